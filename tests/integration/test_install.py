"""The two ways a platform engineer installs suanli, against a real (empty) apiserver:
``helm install`` of the chart, and ``kubectl apply -k deploy`` of the plain manifests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from suanli.localcluster import LocalCluster
from tests.integration.conftest import Kubectl, private_cluster

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CRDS = ("acceleratorclasses", "computequotas", "trainingjobs", "computecentres")


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
    assert container["command"] == ["python3", "-m", "suanli.controller"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    rules = kubectl.get("clusterrole", "suanli-operator")["rules"]
    pod_verbs = {v for r in rules if "pods" in r.get("resources", []) for v in r["verbs"]}
    assert {"create", "delete", "list", "watch"} <= pod_verbs
    assert kubectl.get("role", "suanli-operator", "-n", "suanli-system")["rules"]


NAMESPACE = "suanli-system"
# Changed by the control plane itself while the test runs; not objects anyone installed.
VOLATILE = {"events", "events.events.k8s.io", "leases.coordination.k8s.io"}


def helm_command(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(cluster.tools.helm), f"--kubeconfig={cluster.kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def everything(cluster: LocalCluster) -> set[str]:
    """Every object the apiserver holds (kind/name, namespace), volatile kinds aside."""
    kinds = cluster.kubectl("api-resources", "--verbs=list", "-o", "name").stdout.split()
    listed = ",".join(kind for kind in kinds if kind not in VOLATILE)
    result = cluster.kubectl(
        "get",
        listed,
        "-A",
        "-o",
        "custom-columns=KIND:.kind,NS:.metadata.namespace,NAME:.metadata.name",
        "--no-headers",
    )
    return {" ".join(line.split()) for line in result.stdout.splitlines() if line.strip()}


def restricted_namespace(cluster: LocalCluster) -> None:
    """The namespace a platform engineer prepares: Pod Security "restricted" enforced."""
    cluster.kubectl("create", "namespace", NAMESPACE)
    cluster.kubectl(
        "label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted"
    )
    cluster.wait_for_default_service_account(NAMESPACE)


def test_helm_lint_strict_passes(cluster: LocalCluster) -> None:
    result = helm_command(cluster, "lint", "--strict", str(REPO / "charts" / "suanli"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_helm_template_offline_is_accepted_by_the_apiserver(cluster: LocalCluster) -> None:
    """``helm template`` as GitOps tools run it (no cluster, Helm's default Kubernetes version),
    then every object through the real apiserver's validation and admission (server dry run)."""
    cluster.apply_paths(*sorted((REPO / "crds").glob("*.yaml")))
    crds = [f"crd/{crd}.suanli.io" for crd in CRDS]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *crds)
    restricted_namespace(cluster)
    for values in ((), ("--set", "certManager.enabled=false,networkPolicy.enabled=true")):
        rendered = subprocess.run(
            [str(cluster.tools.helm), "template", "suanli", str(REPO / "charts" / "suanli"),
             "--namespace", NAMESPACE, *values],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert rendered.returncode == 0, rendered.stderr
        result = cluster.kubectl(
            "apply", "--server-side", "--dry-run=server", "-f", "-",
            input_text=rendered.stdout, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "Warning" not in result.stderr, result.stderr
    # The operator pod itself meets Pod Security "restricted" (enforced in that namespace).
    cluster.kubectl("create", "serviceaccount", "suanli-operator", "-n", NAMESPACE)
    deployment = yaml.safe_load((REPO / "deploy" / "operator" / "deployment.yaml").read_text())
    template = deployment["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "operator-pod", "namespace": NAMESPACE, **template["metadata"]},
        "spec": template["spec"],
    }
    result = cluster.kubectl(
        "create", "--dry-run=server", "-f", "-", input_text=yaml.safe_dump(pod), check=False
    )
    assert result.returncode == 0 and "Warning" not in result.stderr, result.stderr
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    result = cluster.kubectl(
        "create", "--dry-run=server", "-f", "-", input_text=yaml.safe_dump(pod), check=False
    )
    assert result.returncode != 0 and "restricted" in result.stderr, "enforcement is not on"


def test_helm_install_upgrade_and_uninstall(cluster: LocalCluster, kubectl: Kubectl) -> None:
    restricted_namespace(cluster)
    before = everything(cluster)
    chart = str(REPO / "charts" / "suanli")
    result = helm_command(cluster, "install", "suanli", chart, "--namespace", NAMESPACE)
    assert result.returncode == 0, result.stderr
    installed(kubectl)
    deployment = kubectl.get("deployment", "suanli-operator", "-n", NAMESPACE)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    budget = kubectl.get("poddisruptionbudget", "suanli-operator", "-n", NAMESPACE)
    assert budget["spec"]["maxUnavailable"] == 1
    service = kubectl.get("service", "suanli-webhook", "-n", NAMESPACE)
    assert service["spec"]["ports"][0]["port"] == 443
    assert service["spec"]["ports"][0]["targetPort"] == "webhook"
    webhooks = kubectl.get("validatingwebhookconfiguration", "suanli.io")["webhooks"]
    assert {w["name"] for w in webhooks} == {
        "trainingjobs.suanli.io", "computequotas.suanli.io", "acceleratorclasses.suanli.io"
    }  # fmt: skip
    assert {w["failurePolicy"] for w in webhooks} == {"Ignore"}
    kubectl.get("validatingadmissionpolicy", "suanli.io-accelerator-pods")
    assert kubectl.get("clusterrole", "suanli-tenant")["rules"]

    result = helm_command(
        cluster, "upgrade", "suanli", chart, "--namespace", NAMESPACE, "--reuse-values",
        "--set", "replicaCount=3", "--set", "webhook.failurePolicy=Fail",
        "--set", "rbac.userRoles=false", "--set", "image.tag=9.9.9",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    deployment = kubectl.get("deployment", "suanli-operator", "-n", NAMESPACE)
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":9.9.9")
    webhooks = kubectl.get("validatingwebhookconfiguration", "suanli.io")["webhooks"]
    assert {w["failurePolicy"] for w in webhooks} == {"Fail"}
    gone = cluster.kubectl("get", "clusterrole", "suanli-tenant", check=False)
    assert gone.returncode != 0, "a role switched off by the upgrade is still there"
    refused = helm_command(
        cluster, "upgrade", "suanli", chart, "--namespace", NAMESPACE, "--set", "replicas=3"
    )
    assert refused.returncode != 0 and "replicas" in refused.stderr, refused.stderr

    result = helm_command(cluster, "uninstall", "suanli", "--namespace", NAMESPACE, "--wait")
    assert result.returncode == 0, result.stderr
    # The CRDs stay (Helm's convention), and with them the aggregator's APIService of their group.
    left = everything(cluster) - before - {"APIService <none> v1alpha1.suanli.io"}
    assert {line.split()[0] for line in left} <= {"CustomResourceDefinition"}, sorted(left)
    assert len(left) == len(CRDS), sorted(left)


def test_kubectl_apply_of_the_plain_manifests(cluster: LocalCluster, kubectl: Kubectl) -> None:
    result = cluster.kubectl("apply", "--server-side", "-k", str(REPO / "deploy"), check=False)
    assert result.returncode == 0, result.stderr
    crds = [f"crd/{crd}.suanli.io" for crd in CRDS]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *crds)
    deploy_catalogue = str(REPO / "deploy" / "catalogue")
    result = cluster.kubectl("apply", "--server-side", "-k", deploy_catalogue, check=False)
    assert result.returncode == 0, result.stderr
    installed(kubectl)
