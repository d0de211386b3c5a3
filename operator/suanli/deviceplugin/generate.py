"""Regenerate ``api_pb2.py``, ``api_pb2.pyi`` and ``api_pb2_grpc.py`` from ``api.proto``.

``python -m suanli.deviceplugin.generate`` writes them in place; ``--check`` exits non-zero when
the committed files differ from what the installed ``grpcio-tools`` generates.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE_ROOT = HERE.parents[1]
PROTO = "suanli/deviceplugin/api.proto"
OUTPUTS = ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py")


def generate(out_root: Path) -> dict[str, str]:
    from grpc_tools import protoc

    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{SOURCE_ROOT}",
            f"--python_out={out_root}",
            f"--pyi_out={out_root}",
            f"--grpc_python_out={out_root}",
            str(SOURCE_ROOT / PROTO),
        ]
    )
    if code != 0:
        raise SystemExit(f"protoc failed on {PROTO} (exit {code})")
    return {name: (out_root / "suanli" / "deviceplugin" / name).read_text() for name in OUTPUTS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
    stale = [
        n for n, text in fresh.items() if not (HERE / n).exists() or (HERE / n).read_text() != text
    ]
    if args.check:
        for name in stale:
            print(f"{name} differs from what {PROTO} generates", file=sys.stderr)
        return 1 if stale else 0
    for name, text in fresh.items():
        (HERE / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
