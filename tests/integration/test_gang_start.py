"""A gang that cannot start in time gives its admission back and is requeued.

A node that no kwok manages is Ready on paper (its status written by hand) but nothing ever runs
its pods — a machine whose kubelet or device plugin hangs. The gang placed there must be released
after the start timeout, its pods removed, and the job requeued saying why.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import Kubectl, Tenants, job_manifest, job_status, wait_for

pytestmark = pytest.mark.integration

OPERATOR_ARGS = ("--standalone", "--gang-start-timeout=5", "--requeue-backoff=30")
NODE = "stuck-h20-01"


@pytest.fixture
def stuck_node(kubectl: Kubectl) -> Iterator[str]:
    labels = {"nvidia.com/gpu.product": "NVIDIA-H20", "nvidia.com/gpu.count": "8"}
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE, "labels": labels}}
    assert kubectl.apply(node)[0] == 0
    resources = {"cpu": "96", "memory": "1Ti", "pods": "110", "nvidia.com/gpu": "8"}
    status = {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "on paper",
                "lastHeartbeatTime": "2030-01-01T00:00:00Z",
                "lastTransitionTime": "2030-01-01T00:00:00Z",
            }
        ],
    }
    kubectl.run(
        "patch",
        "node",
        NODE,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    yield NODE
    kubectl.run("delete", "node", NODE, "--wait=false")


def test_a_gang_that_does_not_start_is_requeued(
    kubectl: Kubectl, tenants: Tenants, stuck_node: str
) -> None:
    ns = tenants.add("t-stuck", [{"acceleratorClass": "nvidia-h20", "nominal": 8}])
    job = job_manifest("hangs", ns, [{"acceleratorClass": "nvidia-h20", "devicesPerReplica": 8}])
    assert kubectl.apply(job)[0] == 0

    def admitted_there() -> dict[str, Any] | None:
        status = job_status(kubectl, ns, "hangs")
        placement = status.get("placement") or [{}]
        return status if placement[0].get("node") == stuck_node else None

    wait_for("the gang to be placed on the stuck node", admitted_there)

    def requeued() -> dict[str, Any] | None:
        status = job_status(kubectl, ns, "hangs")
        return status if status.get("reason") == "GangStartTimeout" else None

    status = wait_for("the gang to be released and requeued", requeued, timeout=60)
    assert status["phase"] == "Queued"
    # the centre's fault, not the job's: counted apart, the restart budget untouched
    assert status["startTimeouts"] == 1
    assert status.get("restartCount", 0) == 0
    assert not status.get("placement")
    assert "did not start within" in status["message"], status["message"]
    wait_for(
        "the stuck pods to be removed",
        lambda: not kubectl.get("pods", "-n", ns)["items"],
        timeout=30,
    )
