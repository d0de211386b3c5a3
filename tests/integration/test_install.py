"""The two ways a platform engineer installs suanli, against a real (empty) apiserver:
``helm install`` of the chart, and ``kubectl apply -k deploy`` of the plain manifests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from suanli.localcluster import LocalCluster
from tests.integration.conftest import Kubectl, private_cluster

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CRDS = ("acceleratorclasses", "computequotas", "trainingjobs")


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """An empty control plane per test: no CRDs, no catalogue, nothing of suanli yet."""
    with private_cluster(tmp_path_factory, "install-control-plane", nodes=False, api=False) as c:
        yield c


@pytest.fixture
def kubectl(cluster: LocalCluster) -> Kubectl:
    return Kubectl(cluster)


def installed(kubectl: Kubectl) -> None:
    for crd in CRDS:
        crd_object = kubectl.get("crd", f"{crd}.suanli.io")
        conditions = {c["type"]: c["status"] for c in crd_object["status"]["conditions"]}
        assert conditions.get("Established") == "True", crd
    classes = {c["metadata"]["name"] for c in kubectl.get("acceleratorclasses")["items"]}
    assert {"ascend-910b", "nvidia-h100"} <= classes
    deployment = kubectl.get("deployment", "suanli-operator", "-n", "suanli-system")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "suanli.controller"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    rules = kubectl.get("clusterrole", "suanli-operator")["rules"]
    pod_verbs = {v for r in rules if "pods" in r.get("resources", []) for v in r["verbs"]}
    assert {"create", "delete", "list", "watch"} <= pod_verbs
    assert kubectl.get("role", "suanli-operator", "-n", "suanli-system")["rules"]


def test_helm_install_and_uninstall(cluster: LocalCluster, kubectl: Kubectl) -> None:
    helm = [str(cluster.tools.helm), f"--kubeconfig={cluster.kubeconfig}"]
    result = subprocess.run(
        [
            *helm,
            "install",
            "suanli",
            str(REPO / "charts" / "suanli"),
            "--namespace",
            "suanli-system",
            "--create-namespace",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    installed(kubectl)
    result = subprocess.run(
        [*helm, "uninstall", "suanli", "--namespace", "suanli-system", "--wait"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (
        cluster.kubectl(
            "get", "deployment", "suanli-operator", "-n", "suanli-system", check=False
        ).returncode
        != 0
    )


def test_kubectl_apply_of_the_plain_manifests(cluster: LocalCluster, kubectl: Kubectl) -> None:
    result = cluster.kubectl("apply", "--server-side", "-k", str(REPO / "deploy"), check=False)
    assert result.returncode == 0, result.stderr
    crds = [f"crd/{crd}.suanli.io" for crd in CRDS]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *crds)
    deploy_catalogue = str(REPO / "deploy" / "catalogue")
    result = cluster.kubectl("apply", "--server-side", "-k", deploy_catalogue, check=False)
    assert result.returncode == 0, result.stderr
    installed(kubectl)
