"""Crash safety: restart the operator at any point and it rebuilds the same view from the API
server — never binding a gang twice, never leaving one partial, never re-admitting a finished job,
never losing a queued one — and a standby replica takes over when the leader dies.

This module runs its own control plane, because it stops and starts operators.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from suanli.localcluster import LocalCluster
from suanli.localcluster.cli import start_operator
from suanli.workload.pods import GangSpec, ReplicaSlot, build_pod
from tests.integration.conftest import (
    Kubectl,
    Tenants,
    job_manifest,
    job_status,
    private_cluster,
    wait_for,
    wait_for_phase,
)

pytestmark = pytest.mark.integration

OPERATOR_ARGS = ARGS = (
    "--standalone",
    "--gang-start-timeout=60",
    "--requeue-backoff=1",
    "--lease-seconds=6",
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with private_cluster(tmp_path_factory, "restart-control-plane") as local:
        yield local


def pods(kubectl: Kubectl, namespace: str) -> dict[str, dict[str, Any]]:
    return {
        p["metadata"]["name"]: p
        for p in kubectl.get("pods", "-n", namespace)["items"]
        if not p["metadata"].get("deletionTimestamp")
    }


def devices_per_node(kubectl: Kubectl) -> dict[tuple[str, str], int]:
    used: dict[tuple[str, str], int] = {}
    for pod in kubectl.get("pods", "-A")["items"]:
        if pod["status"].get("phase") in ("Succeeded", "Failed"):
            continue
        node = pod["spec"].get("nodeName")
        for container in pod["spec"]["containers"]:
            for resource, count in (container.get("resources", {}).get("limits") or {}).items():
                if "/" in resource:
                    used[(node, resource)] = used.get((node, resource), 0) + int(count)
    return used


def test_a_restarted_operator_rebuilds_the_same_view(
    cluster: LocalCluster, kubectl: Kubectl, operator: dict[str, int], tenants: Tenants
) -> None:
    ns = tenants.add("t-crash", [{"acceleratorClass": "nvidia-h100", "nominal": 16}])
    opt = [{"acceleratorClass": "nvidia-h100", "devicesPerReplica": 8}]
    assert kubectl.apply(job_manifest("running", ns, opt))[0] == 0
    assert (
        kubectl.apply(
            job_manifest(
                "finished",
                ns,
                [{"acceleratorClass": "nvidia-h100", "devicesPerReplica": 1}],
                duration="1s",
            )
        )[0]
        == 0
    )
    wait_for_phase(kubectl, ns, "running", "Running")
    finished = wait_for_phase(kubectl, ns, "finished", "Succeeded")
    assert kubectl.apply(job_manifest("queued", ns, opt, replicas=2))[0] == 0
    wait_for("queued to wait", lambda: job_status(kubectl, ns, "queued").get("reason"))
    before_pods = {n: p["metadata"]["uid"] for n, p in pods(kubectl, ns).items()}
    running_before = job_status(kubectl, ns, "running")

    cluster.stop_process("operator")

    # While it is down: a new job arrives, and a decision was recorded but not applied — the
    # job status says Admitted with a placement, and only one of its two pods exists.
    assert kubectl.apply(job_manifest("newcomer", ns, opt))[0] == 0
    ascend = tenants.add("t-crash-npu", [{"acceleratorClass": "ascend-910b", "nominal": 16}])
    half = job_manifest(
        "half-applied",
        ascend,
        [{"acceleratorClass": "ascend-910b", "devicesPerReplica": 8}],
        replicas=2,
    )
    assert kubectl.apply(half)[0] == 0
    job = kubectl.get("trainingjob", "half-applied", "-n", ascend)
    nodes = sorted(
        n["metadata"]["name"]
        for n in kubectl.get("nodes")["items"]
        if n["metadata"]["labels"].get("accelerator-type") == "module-910b-8"
    )[:2]
    placement = [
        {"replica": i, "node": node, "deviceIndices": list(range(8))}
        for i, node in enumerate(nodes)
    ]
    status = {
        "phase": "Admitted",
        "reason": "Admitted",
        "quota": ascend,
        "restartCount": 0,
        "admittedAt": "2030-01-01T00:00:00Z",
        "chosenOption": {
            "index": 0,
            "acceleratorClass": "ascend-910b",
            "devicesPerReplica": 8,
            "replicas": 2,
        },
        "placement": placement,
    }
    kubectl.run(
        "patch",
        "trainingjob",
        "half-applied",
        "-n",
        ascend,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    spec = GangSpec(
        namespace=ascend,
        job_name="half-applied",
        job_uid=job["metadata"]["uid"],
        attempt=0,
        template=half["spec"]["template"],
        accelerator_class="ascend-910b",
        vendor="huawei",
        resource_name="huawei.com/Ascend910",
        devices_per_replica=8,
    )
    assert kubectl.apply(build_pod(spec, ReplicaSlot(0, nodes[0], tuple(range(8))), 2))[0] == 0

    start_operator(cluster, ARGS)

    def completed() -> dict[str, dict[str, Any]] | None:
        found = pods(kubectl, ascend)
        return found if len(found) == 2 else None

    gang = wait_for("the half-applied gang to be completed", completed, timeout=60)
    assert {p["spec"]["nodeName"] for p in gang.values()} == set(nodes)
    wait_for_phase(kubectl, ascend, "half-applied", "Running")
    wait_for_phase(kubectl, ns, "newcomer", "Running")
    after = pods(kubectl, ns)
    for name, uid in before_pods.items():
        assert after[name]["metadata"]["uid"] == uid, f"{name} was recreated"
    assert set(after) == set(before_pods) | {"newcomer-a0-0"}
    assert job_status(kubectl, ns, "running")["placement"] == running_before["placement"]
    again = job_status(kubectl, ns, "finished")
    assert again["phase"] == "Succeeded" and again["finishedAt"] == finished["finishedAt"]
    assert job_status(kubectl, ns, "queued")["phase"] == "Queued"
    for (node, resource), count in devices_per_node(kubectl).items():
        assert count <= 8, f"{node} has {count} {resource} bound"


def leader_gauge(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("suanli_scheduler_leader "):
                return float(line.split()[1])
    raise AssertionError("suanli_scheduler_leader not exported")


def test_a_standby_replica_takes_over_when_the_leader_dies(
    cluster: LocalCluster, kubectl: Kubectl, operator: dict[str, int], tenants: Tenants
) -> None:
    first = cluster.read_state()["ports"]["operator_metrics"]
    wait_for("the first replica to lead", lambda: leader_gauge(first) == 1.0)
    standby = start_operator(cluster, ARGS, name="operator-standby")
    wait_for("the standby to report", lambda: leader_gauge(standby["metrics"]) == 0.0)
    assert leader_gauge(first) == 1.0
    os.kill(int(cluster.read_state()["processes"]["operator"]["pid"]), signal.SIGKILL)
    wait_for("the standby to lead", lambda: leader_gauge(standby["metrics"]) == 1.0, timeout=30)
    ns = tenants.add("t-failover", [{"acceleratorClass": "nvidia-a100", "nominal": 8}])
    job = job_manifest(
        "after-failover", ns, [{"acceleratorClass": "nvidia-a100", "devicesPerReplica": 8}]
    )
    assert kubectl.apply(job)[0] == 0
    wait_for_phase(kubectl, ns, "after-failover", "Running")
