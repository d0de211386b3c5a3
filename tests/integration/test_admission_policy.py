"""The quota bypass is closed: in a namespace a ComputeQuota serves, only suanli creates pods that
ask for accelerators. The chart's ValidatingAdmissionPolicy runs in the real apiserver; the
operator runs as the chart's ServiceAccount, so its pods pass and everyone else's are refused.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from suanli.api.manifests import ADMISSION_POLICY
from suanli.localcluster import LocalCluster
from tests.integration.conftest import (
    REPO,
    Kubectl,
    Tenants,
    job_manifest,
    wait_for,
    wait_for_phase,
)

pytestmark = pytest.mark.integration

POLICY = REPO / "deploy" / "operator" / "admissionpolicy.yaml"
H100 = "nvidia-h100"


@pytest.fixture(scope="module")
def policy(cluster: LocalCluster) -> Iterator[None]:
    """Installed for this module only: other modules create accelerator pods as admin."""
    cluster.apply_paths(POLICY)
    yield
    for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
        cluster.kubectl("delete", kind, ADMISSION_POLICY, "--ignore-not-found")


def pod(name: str, namespace: str, resources: dict[str, Any], init: bool = False) -> dict[str, Any]:
    container = {"name": "c", "image": "example.invalid/x:1", "resources": resources}
    spec: dict[str, Any] = {"containers": [container]}
    if init:
        spec = {
            "initContainers": [container],
            "containers": [{"name": "main", "image": "example.invalid/x:1"}],
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def create(
    cluster: LocalCluster, manifest: dict[str, Any], *who: str
) -> subprocess.CompletedProcess[str]:
    """A server-side dry run: admission runs in full, nothing is stored."""
    return cluster.kubectl(
        "create",
        "--dry-run=server",
        "-f",
        "-",
        *who,
        input_text=yaml.safe_dump(manifest),
        check=False,
    )


TENANT = ("--as=alice", "--as-group=t-vap-team")
# Extended resources must be requested and limited alike, or validation refuses the pod first.
NPU = {"requests": {"huawei.com/Ascend910": "1"}, "limits": {"huawei.com/Ascend910": "1"}}


def test_only_suanli_creates_accelerator_pods_where_a_quota_serves(
    cluster: LocalCluster, kubectl: Kubectl, policy: None, tenants: Tenants
) -> None:
    ns = tenants.add("t-vap", [{"acceleratorClass": H100, "nominal": 8}])
    cluster.kubectl(
        "create", "rolebinding", "t-vap-edit", "--clusterrole=edit", "--group=t-vap-team", "-n", ns
    )
    gpu = pod("direct-gpu", ns, {"limits": {"nvidia.com/gpu": "1"}})

    def refused() -> str:
        result = create(cluster, gpu, *TENANT)
        return result.stderr if result.returncode != 0 else ""

    message = wait_for("the policy to refuse a tenant's GPU pod", refused, timeout=30)
    assert ADMISSION_POLICY in message and "ComputeQuota t-vap" in message, message
    assert "submit a TrainingJob" in message
    cases = {
        "NPU request, tenant": (
            pod("npu", ns, NPU),
            TENANT,
        ),
        "GPU in an init container": (
            pod("init", ns, {"limits": {"nvidia.com/gpu": "1"}}, init=True),
            TENANT,
        ),
        "GPU pod, admin": (gpu, ()),
    }
    outcomes = {}
    for case, (manifest, who) in cases.items():
        result = create(cluster, manifest, *who)
        outcomes[case] = result.returncode != 0 and ADMISSION_POLICY in result.stderr
    allowed = {
        "CPU-only pod, tenant": (pod("cpu", ns, {"requests": {"cpu": "1"}}), TENANT),
        "GPU pod, namespace no quota serves": (
            pod("elsewhere", "default", {"limits": {"nvidia.com/gpu": "1"}}),
            (),
        ),
        "GPU pod, suanli's ServiceAccount": (
            gpu,
            ("--as=system:serviceaccount:suanli-system:suanli-operator",),
        ),
    }
    for case, (manifest, who) in allowed.items():
        result = create(cluster, manifest, *who)
        outcomes[case] = result.returncode == 0
        assert result.returncode == 0 or ADMISSION_POLICY not in result.stderr, result.stderr
    print(
        "\n".join(
            f"  {case:40} {'as expected' if ok else 'WRONG'}" for case, ok in outcomes.items()
        )
    )
    assert all(outcomes.values()), outcomes

    # The operator, authenticated as the chart's ServiceAccount, creates the job's GPU pods.
    job = job_manifest("through-suanli", ns, [{"acceleratorClass": H100, "devicesPerReplica": 2}])
    code, output = kubectl.apply(job)
    assert code == 0, output
    wait_for_phase(kubectl, ns, "through-suanli", "Running")
    pods = kubectl.get("pods", "-n", ns, "-l", "suanli.io/job-name=through-suanli")["items"]
    limits = pods[0]["spec"]["containers"][0]["resources"]["limits"]
    assert limits.get("nvidia.com/gpu") == "2", limits
