"""Generated files match their Python sources, and the Helm chart renders exactly deploy/.

The helm tests need the helm binary built by `make tools`. On a developer machine without it
they skip; in CI (CI=true) a missing helm is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from suanli.api.generate import crd_files, generated_files
from suanli.api.manifests import DEFAULT_NAMESPACE, all_params, operator_manifests

from .conftest import REPO_ROOT

HELM_VERSION = "v3.21.4"
KUBE_VERSION = "1.34.0"
CHART = REPO_ROOT / "charts" / "suanli"


def test_generated_files_are_committed_and_up_to_date() -> None:
    drifted = [
        path
        for path, text in generated_files().items()
        if not (REPO_ROOT / path).is_file()
        or (REPO_ROOT / path).read_text(encoding="utf-8") != text
    ]
    assert drifted == [], f"run `make generate`: {drifted}"


def test_crd_copies_are_identical_in_crds_chart_and_deploy() -> None:
    files = crd_files()
    names = {Path(p).name for p in files}
    assert len(names) == 4
    for name in names:
        texts = {files[f"{d}/{name}"] for d in ("crds", "charts/suanli/crds", "deploy/crds")}
        assert len(texts) == 1


def test_every_chart_value_is_used_and_documented_in_values_yaml() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    for param in all_params():
        path = param.values_path
        if path is None:
            continue
        cursor: Any = values
        for key in path:
            cursor = cursor[key]
        assert cursor == param.default


def helm_binary() -> Path | None:
    cache = Path(os.environ.get("SUANLI_CACHE", Path.home() / ".cache" / "suanli"))
    candidate = cache / f"helm-{HELM_VERSION}" / "bin" / "helm"
    if candidate.is_file():
        return candidate
    found = shutil.which("helm")
    return Path(found) if found else None


@pytest.fixture(scope="module")
def helm() -> Path:
    binary = helm_binary()
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("helm is required in CI: run `make tools` (hack/build-tools.sh)")
        pytest.skip("helm not built yet (make tools); CI runs this test")
    return binary


def run_helm(helm: Path, *args: str) -> str:
    result = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, f"helm {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def render(helm: Path, *extra: str) -> list[dict[str, Any]]:
    text = run_helm(
        helm,
        "template",
        "suanli",
        str(CHART),
        "--namespace",
        DEFAULT_NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
        *extra,
    )
    return [doc for doc in yaml.safe_load_all(text) if doc]


def key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return (obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace", ""))


def test_helm_lint_passes(helm: Path) -> None:
    output = run_helm(helm, "lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION)
    assert "0 chart(s) failed" in output


def test_chart_renders_exactly_the_deploy_manifests(helm: Path) -> None:
    """The drift test: chart defaults == deploy/, object by object, for our templates."""
    rendered = {key(o): o for o in render(helm)}
    expected: dict[tuple[str, str, str], dict[str, Any]] = {}
    for stem in operator_manifests():
        path = REPO_ROOT / "deploy/operator" / f"{stem}.yaml"
        if not path.exists():  # every object of it off by default (ServiceMonitor): chart only
            continue
        for obj in yaml.safe_load_all(path.read_text()):
            expected[key(obj)] = obj
    for path in sorted((REPO_ROOT / "deploy/catalogue").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        obj = yaml.safe_load(path.read_text())
        expected[key(obj)] = obj
    for object_key, obj in expected.items():
        assert object_key in rendered, f"{object_key} is in deploy/ but not in the chart"
        assert rendered[object_key] == obj, f"{object_key} differs between chart and deploy/"
    # Objects only in the chart must come from other teams' templates (dashboards, alerts).
    extra = [k for k in rendered if k not in expected]
    assert all("dashboard" in k[1] or "rule" in k[1] or "alert" in k[1] for k in extra), extra


def test_values_change_what_the_chart_renders(helm: Path) -> None:
    objects = render(
        helm,
        "--set",
        "image.tag=9.9.9",
        "--set",
        "catalogue.install=false",
        "--set",
        "leaderElection.leaseSeconds=30",
        "--namespace",
        "elsewhere",
    )
    kinds = [o["kind"] for o in objects]
    assert "AcceleratorClass" not in kinds
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/suanli/suanli:9.9.9"
    assert "--lease-seconds=30" in container["args"]
    assert deployment["metadata"]["namespace"] == "elsewhere"
    [binding] = [o for o in objects if o["kind"] == "ClusterRoleBinding"]
    assert binding["subjects"][0]["namespace"] == "elsewhere"


def test_deployment_probes_and_ports_follow_the_operator_contract() -> None:
    [deployment] = operator_manifests()["deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090, "webhook": 9443}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["command"] == ["python3", "-m", "suanli.controller"]


def test_rbac_is_least_privilege() -> None:
    [role, _binding, _nrole, _nbinding] = operator_manifests()["rbac"]
    verbs = {
        (group, resource): set(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    for (group, resource), allowed in verbs.items():
        assert "*" not in allowed and group != "*" and resource != "*"
        if resource in {"nodes", "namespaces", "customresourcedefinitions", "priorityclasses"}:
            assert allowed <= {"get", "list", "watch"}, (resource, allowed)
    assert ("", "secrets") not in verbs
    assert {"create", "delete"} <= verbs[("", "pods")]
    assert "patch" in verbs[("suanli.io", "trainingjobs/status")]
