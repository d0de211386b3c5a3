"""Container images for the real node, made without any registry.

- the sandbox (pause) image: an OCI archive written here from the static ``pause`` binary that
  ``hack/build-tools.sh`` compiles (one file, one layer);
- a Python base image: ``debootstrap --variant=minbase --include=python3`` of Debian bookworm,
  committed with ``buildah``;
- the operator image: ``buildah bud`` of the project's ``Dockerfile`` with ``--build-arg
  BASE=<that base>``, ``--network none`` and ``--pull=never``; the build context carries the
  compiled wheel's install tree, so nothing is fetched during the build.

Archives are cached in ``$SUANLI_CACHE/images`` under a key of their inputs; containerd imports
them with ``ctr images import --base-name`` (without it the reference names are dropped).
Everything prints what it builds and how long it took.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from suanli.localcluster.cluster import BUILD_SCRIPT, DEFAULT_CACHE, REPO_ROOT

IMAGES_DIR = DEFAULT_CACHE / "images"
PAUSE_REFERENCE = "docker.io/library/suanli-pause:1"
BASE_REFERENCE = "localhost/suanli-python-base:bookworm"
OPERATOR_REFERENCE = "docker.io/library/suanli:dev"
DEBIAN_SUITE = "bookworm"


class ImageError(RuntimeError):
    """An image could not be built; the message names the step."""


def log(message: str) -> None:
    print(f"[suanli-images] {message}", file=sys.stderr, flush=True)


def node_tool_dirs() -> list[Path]:
    """kubernetes (kubelet, kube-proxy), coredns and pause bin directories, built if missing."""
    paths = [
        Path(p)
        for p in subprocess.run(
            ["bash", str(BUILD_SCRIPT), "node-paths"], check=True, capture_output=True, text=True
        ).stdout.split()
    ]
    wanted = [
        paths[0] / "kubelet",
        paths[0] / "kube-proxy",
        paths[1] / "coredns",
        paths[2] / "pause",
    ]
    if not all(p.exists() for p in wanted):
        log("building kubelet, kube-proxy, coredns, pause (hack/build-tools.sh node)")
        subprocess.run(["nice", "-n", "10", "bash", str(BUILD_SCRIPT), "node"], check=True)
    missing = [str(p) for p in wanted if not p.exists()]
    if missing:
        raise ImageError(f"not built: {', '.join(missing)}")
    return paths


def coredns_binary() -> Path:
    return node_tool_dirs()[1] / "coredns"


# --- OCI archives written from Python -------------------------------------------------------------
def _blob(layout: tarfile.TarFile, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size = len(data)
    info.mtime = 0
    layout.addfile(info, io.BytesIO(data))
    return f"sha256:{digest}", len(data)


def _add_file(archive: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    archive.addfile(info, io.BytesIO(data))


def write_single_file_image(path: Path, reference: str, binary: Path, target: str) -> None:
    """An OCI image-layout archive: one layer holding ``binary`` at ``target``, its entrypoint."""
    layer_tar = io.BytesIO()
    with tarfile.open(fileobj=layer_tar, mode="w") as layer:
        _add_file(layer, target.lstrip("/"), binary.read_bytes(), 0o755)
    diff_id = "sha256:" + hashlib.sha256(layer_tar.getvalue()).hexdigest()
    compressed = gzip.compress(layer_tar.getvalue(), mtime=0)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": [target], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tarfile.open(tmp, mode="w") as out:
        layer_digest, layer_size = _blob(out, compressed)
        config_digest, config_size = _blob(out, json.dumps(config).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_size,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest,
                    "size": layer_size,
                }
            ],
        }
        manifest_digest, manifest_size = _blob(out, json.dumps(manifest).encode())
        index = {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest,
                    "size": manifest_size,
                    "annotations": {"org.opencontainers.image.ref.name": reference},
                }
            ],
        }
        _add_file(out, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}', 0o644)
        _add_file(out, "index.json", json.dumps(index).encode(), 0o644)
    tmp.replace(path)


def pause_archive() -> Path:
    binary = node_tool_dirs()[2] / "pause"
    key = hashlib.sha256(binary.read_bytes()).hexdigest()[:12]
    path = IMAGES_DIR / f"pause-{key}.tar"
    if not path.exists():
        write_single_file_image(path, PAUSE_REFERENCE, binary, "/pause")
        log(f"pause image written: {path}")
    return path


# --- buildah-built images -------------------------------------------------------------------
def _buildah(*args: str, capture: bool = False) -> str:
    storage = IMAGES_DIR / "buildah"
    argv = [
        "nice", "-n", "10", "buildah",
        f"--root={storage / 'root'}", f"--runroot={storage / 'run'}", "--storage-driver=overlay",
        *args,
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=capture, text=True, check=False)
    if result.returncode != 0:
        raise ImageError(
            f"buildah {' '.join(args)} failed: {(result.stderr or '').strip()[-2000:]}"
        )
    return result.stdout if capture else ""


def _has_image(reference: str) -> bool:
    try:
        _buildah("inspect", "--type=image", reference, capture=True)
    except ImageError:
        return False
    return True


def _debian_mirror() -> str:
    """The mirror apt is configured with (so debootstrap reaches what apt reaches)."""
    candidates = [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]
    for candidate in candidates:
        if not candidate.exists():
            continue
        for line in candidate.read_text().splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1:
                return words[1]
            if words[:1] == ["deb"] and len(words) > 2:
                url = next(w for w in words[1:] if "://" in w)
                if "security" not in url:
                    return url
    return "http://deb.debian.org/debian"


def ensure_base_image() -> str:
    """The Python base image in buildah's storage (debootstrap, ~40 s cold)."""
    if _has_image(BASE_REFERENCE):
        return BASE_REFERENCE
    t0 = time.monotonic()
    mirror = _debian_mirror()
    log(f"base image: debootstrap --variant=minbase --include=python3 {DEBIAN_SUITE} from {mirror}")
    with tempfile.TemporaryDirectory(dir=IMAGES_DIR) as tmp:
        rootfs = Path(tmp) / "rootfs"
        result = subprocess.run(
            ["nice", "-n", "10", "debootstrap", "--variant=minbase", "--include=python3",
             DEBIAN_SUITE, str(rootfs), mirror],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise ImageError(f"debootstrap failed: {result.stdout[-1500:]}{result.stderr[-1500:]}")
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        t1 = time.monotonic()
        container = _buildah("from", "scratch", capture=True).strip()
        try:
            mount = Path(_buildah("mount", container, capture=True).strip())
            subprocess.run(["cp", "-a", f"{rootfs}/.", str(mount)], check=True)
            _buildah("umount", container)
            _buildah("config", "--cmd=/usr/bin/python3", container)
            _buildah("commit", "--quiet", container, BASE_REFERENCE)
        finally:
            _buildah("rm", container)
    log(
        f"base image {BASE_REFERENCE}: debootstrap {t1 - t0:.0f} s, "
        f"commit {time.monotonic() - t1:.0f} s"
    )
    return BASE_REFERENCE


def _source_key() -> str:
    digest = hashlib.sha256()
    for path in _source_files():
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _source_files() -> list[Path]:
    files = [REPO_ROOT / "Dockerfile", REPO_ROOT / "setup.py", REPO_ROOT / "pyproject.toml"]
    return files + sorted(
        p
        for p in (REPO_ROOT / "operator" / "suanli").rglob("*")
        if p.suffix in (".py", ".pyx", ".pxd", ".pyi", ".json", ".proto", ".yaml") and p.is_file()
    )


def _fresh_package_wheel() -> Path | None:
    """The wheel ``make package`` left in build/wheel, if no source changed after it was built
    (``make test`` builds it just before the integration tests: no second Cython compile)."""
    wheels = sorted((REPO_ROOT / "build" / "wheel").glob("suanli-*.whl"))
    if len(wheels) != 1:
        return None
    newest_source = max(p.stat().st_mtime for p in _source_files())
    return wheels[0] if wheels[0].stat().st_mtime > newest_source else None


def build_operator_image(python: str = sys.executable) -> Path:
    """``make image``: the project's Dockerfile on the local base; an OCI archive of the result."""
    key = _source_key()
    archive = IMAGES_DIR / f"suanli-{key}.tar"
    if archive.exists():
        log(f"operator image cached: {archive}")
        return archive
    IMAGES_DIR.mkdir(parents=True, exist_ok=True)
    base = ensure_base_image()
    context = REPO_ROOT / "build" / "image"
    shutil.rmtree(context, ignore_errors=True)
    (context / "wheel").mkdir(parents=True)
    t0 = time.monotonic()
    packaged = _fresh_package_wheel()
    if packaged is not None:
        log(f"operator image: reusing {packaged} (`make package` built it from these sources)")
        shutil.copy2(packaged, context / "wheel" / packaged.name)
    else:
        log("operator image: pip wheel . (Cython core compiled)")
        subprocess.run(
            ["nice", "-n", "10", python, "-m", "pip", "wheel", "-q", "--no-deps",
             "-w", str(context / "wheel"), str(REPO_ROOT)],
            check=True,
        )  # fmt: skip
    wheel = next((context / "wheel").glob("suanli-*.whl"))
    t1 = time.monotonic()
    log(f"  wheel {wheel.name} in {t1 - t0:.0f} s; pip install --target (the image's site tree)")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-compile",
         "--target", str(context / "site"), str(wheel)],
        check=True,
    )  # fmt: skip
    for junk in (context / "site").glob("bin"):
        shutil.rmtree(junk)
    t2 = time.monotonic()
    log(f"  site tree in {t2 - t1:.0f} s; buildah bud --build-arg BASE={base}")
    _buildah(
        "bud", "--quiet", "--network=none", "--pull=never", "--layers=false",
        f"--build-arg=BASE={base}", "--build-arg=CONTEXT=build/image",
        f"--tag={OPERATOR_REFERENCE}", f"--file={REPO_ROOT / 'Dockerfile'}", str(REPO_ROOT),
    )  # fmt: skip
    tmp = archive.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    _buildah("push", "--quiet", OPERATOR_REFERENCE, f"oci-archive:{tmp}:{OPERATOR_REFERENCE}")
    tmp.replace(archive)
    for old in IMAGES_DIR.glob("suanli-*.tar"):
        if old != archive:
            old.unlink()
    size = archive.stat().st_size / 2**20
    log(
        f"operator image {OPERATOR_REFERENCE}: bud+push {time.monotonic() - t2:.0f} s, "
        f"{size:.0f} MiB -> {archive}"
    )
    return archive


def ensure_node_images() -> list[Path]:
    """Every archive the real node imports at start: pause and the operator image.

    ``SUANLI_OPERATOR_IMAGE=<archive>`` uses that archive instead of building one for the current
    sources (to iterate on tests without rebuilding the image for every edit).
    """
    override = os.environ.get("SUANLI_OPERATOR_IMAGE")
    if override:
        if not Path(override).is_file():
            raise ImageError(f"SUANLI_OPERATOR_IMAGE={override}: no such archive")
        return [pause_archive(), Path(override)]
    return [pause_archive(), build_operator_image()]


def import_archive(containerd_socket: Path, archive: Path) -> None:
    """``ctr images import`` into the CRI namespace, keeping the reference names."""
    with tarfile.open(archive) as tar:
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
    reference = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
    base_name = reference.rsplit(":", 1)[0]
    result = subprocess.run(
        ["ctr", f"--address={containerd_socket}", "-n", "k8s.io", "images", "import",
         f"--base-name={base_name}", str(archive)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise ImageError(f"ctr import {archive} failed: {result.stderr.strip()}")


def main() -> int:
    t0 = time.monotonic()
    archive = build_operator_image()
    log(f"make image: {archive} ({time.monotonic() - t0:.0f} s)")
    print(archive)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
