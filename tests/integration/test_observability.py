"""A real Prometheus scrapes the running operator while jobs run on the local centre.

Checks: every dashboard panel and variable expression returns data; every alert expression is
accepted and the metrics it reads have data; the gauges equal the ground truth recomputed from the
API server; the metering counters never go down across an operator restart.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from suanli.api.acceleratorclass import AcceleratorClass
from suanli.controller.inventory import class_of_node
from suanli.controller.translate import catalogue_entry
from suanli.localcluster import LocalCluster
from suanli.localcluster.cli import start_operator
from suanli.metrics import all_series_names
from suanli.observability.queries import all_expressions
from suanli.quantity import to_int
from tests.integration.conftest import (
    Kubectl,
    Tenants,
    job_manifest,
    private_cluster,
    wait_for,
    wait_for_phase,
)
from tests.unit.observability.prometheus_harness import Prometheus, free_port

pytestmark = pytest.mark.integration

ARGS = ("--standalone", "--requeue-backoff=1")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with private_cluster(tmp_path_factory, "observed-control-plane") as local:
        yield local


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, metrics_port: int) -> Iterator[dict[str, int]]:
    ports = start_operator(cluster, ARGS, metrics_port=metrics_port)
    yield ports
    cluster.stop_process("operator")


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, metrics_port: int, operator: dict[str, int]
) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), [f"127.0.0.1:{metrics_port}"])
    yield server
    server.stop()


def value(prometheus: Prometheus, expression: str) -> float:
    result = prometheus.query(expression)
    assert len(result) == 1, f"{expression}: {result}"
    return float(result[0]["value"][1])


def ground_truth(kubectl: Kubectl) -> dict[str, Any]:
    """Devices per class (nodes), devices used per namespace and class (live suanli pods) and
    jobs per namespace and phase, recomputed from the API server alone."""
    catalogue = {
        c["metadata"]["name"]: catalogue_entry(AcceleratorClass.model_validate(c))
        for c in kubectl.get("acceleratorclasses")["items"]
    }
    capacity: dict[str, int] = {}
    for node in kubectl.get("nodes")["items"]:
        cls = class_of_node(node["metadata"]["labels"], catalogue)
        if cls is not None:
            allocatable = node["status"]["allocatable"].get(catalogue[cls].resource_name, 0)
            capacity[cls] = capacity.get(cls, 0) + to_int(allocatable)
    used: dict[tuple[str, str], int] = {}
    for pod in kubectl.get("pods", "-A", "-l", "app.kubernetes.io/managed-by=suanli")["items"]:
        if pod["status"].get("phase") in ("Succeeded", "Failed"):
            continue
        cls = pod["metadata"]["annotations"]["suanli.io/accelerator-class"]
        limits = pod["spec"]["containers"][0]["resources"]["limits"]
        key = (pod["metadata"]["namespace"], cls)
        used[key] = used.get(key, 0) + to_int(limits[catalogue[cls].resource_name])
    phases: dict[tuple[str, str], int] = {}
    for job in kubectl.get("trainingjobs", "-A")["items"]:
        phase = (job.get("status") or {}).get("phase") or "Queued"
        phase = {"Queued": "Pending", "Preempted": "Pending"}.get(phase, phase)
        key = (job["metadata"]["namespace"], phase)
        phases[key] = phases.get(key, 0) + 1
    return {"capacity": capacity, "used": used, "phases": phases}


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_prometheus_sees_what_the_api_server_says(
    cluster: LocalCluster,
    kubectl: Kubectl,
    tenants: Tenants,
    prometheus: Prometheus,
    operator: dict[str, int],
    metrics_port: int,
) -> None:
    npu = tenants.add("obs-npu", [{"acceleratorClass": "ascend-910b", "nominal": 16}])
    gpu = tenants.add("obs-gpu", [{"acceleratorClass": "nvidia-h100", "nominal": 8}])
    ascend = [{"acceleratorClass": "ascend-910b", "devicesPerReplica": 8}]
    h100 = [{"acceleratorClass": "nvidia-h100", "devicesPerReplica": 4}]
    for manifest in (
        job_manifest("pretrain", npu, ascend, replicas=2),
        job_manifest("waits", npu, ascend),
        job_manifest("serve", gpu, h100),
        job_manifest("short", gpu, h100, duration="2s"),
        job_manifest("three", npu, [{"acceleratorClass": "ascend-910b", "devicesPerReplica": 3}]),
    ):
        assert kubectl.apply(manifest)[0] == 0
    wait_for_phase(kubectl, npu, "pretrain", "Running")
    wait_for_phase(kubectl, gpu, "serve", "Running")
    wait_for_phase(kubectl, gpu, "short", "Succeeded")
    wait_for("waits to wait", lambda: kubectl.get("tj", "waits", "-n", npu).get("status"))

    # the member operator's expressions; the hub's are checked in test_network.py
    uses = [u for u in all_expressions(rate_interval="30s", range_="5m") if u.scrape == "operator"]
    panels = [u for u in uses if u.kind in ("panel", "variable")]
    alerts = [u for u in uses if u.kind == "alert"]
    assert panels and alerts

    def missing() -> list[str]:
        return [u.used_in for u in panels if not prometheus.query(u.expression)]

    wait_for("every panel and variable to return data", lambda: not missing(), timeout=90)
    known = all_series_names()
    for use in alerts:
        prometheus.query(use.expression)  # accepted by Prometheus (raises otherwise)
        names = set(re.findall(r"\bsuanli_[a-z_]+", use.expression))
        assert names and names <= known, use.used_in
        for name in names:
            assert prometheus.query(name) or prometheus.query(f"{name}_bucket"), (
                f"{use.used_in}: {name} has no data"
            )

    truth = ground_truth(kubectl)

    def gauges_match() -> bool:
        truth.update(ground_truth(kubectl))
        for cls, devices in truth["capacity"].items():
            if value(prometheus, f'suanli_capacity_total_devices{{class="{cls}"}}') != devices:
                return False
        for quota, cls in ((npu, "ascend-910b"), (gpu, "nvidia-h100")):
            expected = truth["used"].get((quota, cls), 0)
            expression = f'suanli_quota_used_devices{{quota="{quota}",class="{cls}"}}'
            if value(prometheus, expression) != expected:
                return False
        for (quota, phase), count in truth["phases"].items():
            expression = f'suanli_jobs{{quota="{quota}",phase="{phase}"}}'
            if value(prometheus, expression) != count:
                return False
        return True

    wait_for("the gauges to equal the API server's ground truth", gauges_match, timeout=30)
    assert truth["used"][(npu, "ascend-910b")] == 16
    assert truth["phases"][(gpu, "Succeeded")] == 1

    metered = f'suanli_metered_device_seconds_total{{quota="{gpu}",class="nvidia-h100"}}'
    wait_for("metering of the GPU tenant", lambda: prometheus.query(metered))
    before = value(prometheus, metered)
    assert before > 0
    # The short job's pods are deleted with it: their time must move into the quota's status,
    # exactly what their own start and finish times say (ground truth, to the second).
    short_pods = kubectl.get("pods", "-n", gpu, "-l", "suanli.io/job-name=short")["items"]
    truth_seconds = 0.0
    for pod in short_pods:
        devices = int(pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
        started = _epoch(pod["status"]["startTime"])
        ended = max(
            _epoch(c["state"]["terminated"]["finishedAt"])
            for c in pod["status"]["containerStatuses"]
        )
        truth_seconds += (ended - started) * devices
    assert short_pods and truth_seconds > 0
    kubectl.run("delete", "trainingjob", "short", "-n", gpu)
    cluster.stop_process("operator")
    time.sleep(3)
    start_operator(cluster, ARGS, metrics_port=metrics_port)
    restarted = time.time()

    def scraped_since_restart() -> bool:
        result = prometheus.query(f"timestamp({metered})")
        return bool(result) and float(result[0]["value"][1]) > restarted + 2

    wait_for("scrapes of the restarted operator", scraped_since_restart, timeout=60)
    assert value(prometheus, metered) >= before
    for counter in ("suanli_metered_device_seconds_total", "suanli_metered_pflop_seconds_total"):
        for series in prometheus.query(f"resets({counter}[10m])"):
            assert float(series["value"][1]) == 0, series

    def billed() -> float | None:
        status = kubectl.get("computequota", gpu).get("status") or {}
        rows = [r for r in status.get("metering") or [] if r["acceleratorClass"] == "nvidia-h100"]
        return float(rows[0]["deviceSeconds"]) if rows else None

    # across the restart: billed once the garbage collector deleted the pods, never twice
    assert wait_for("the short job's time in the quota's metering", billed, 90) == truth_seconds
    assert value(prometheus, metered) >= before


def test_a_pod_billed_just_before_a_crash_is_not_billed_twice(
    cluster: LocalCluster,
    kubectl: Kubectl,
    tenants: Tenants,
    prometheus: Prometheus,
    operator: dict[str, int],
    metrics_port: int,
) -> None:
    """The crash window between folding a pod's time into the quota and deleting the pod: the
    fold (metering + foldedPods) is written by hand, the operator restarts, the pod still runs."""
    gpu = tenants.add("obs-crash", [{"acceleratorClass": "nvidia-h100", "nominal": 8}])
    job = job_manifest("serve", gpu, [{"acceleratorClass": "nvidia-h100", "devicesPerReplica": 4}])
    assert kubectl.apply(job)[0] == 0
    wait_for_phase(kubectl, gpu, "serve", "Running")
    metered = f'suanli_metered_device_seconds_total{{quota="{gpu}",class="nvidia-h100"}}'
    wait_for("metering of the new tenant", lambda: prometheus.query(metered))
    time.sleep(3)  # some running time to bill
    [pod] = kubectl.get("pods", "-n", gpu, "-l", "suanli.io/job-name=serve")["items"]
    devices = int(pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
    # read before the stop: once its target is down Prometheus marks the series stale
    before = value(prometheus, metered)
    cluster.stop_process("operator")
    quota = kubectl.get("computequota", gpu)
    started = datetime.fromisoformat(pod["status"]["startTime"].replace("Z", "+00:00"))
    elapsed = (datetime.now(UTC) - started).total_seconds() * devices
    rows = {r["acceleratorClass"]: r for r in quota["status"].get("metering") or []}
    row = rows.setdefault(
        "nvidia-h100", {"acceleratorClass": "nvidia-h100", "deviceSeconds": 0, "pflopSeconds": 0}
    )
    row["deviceSeconds"] = round(float(row["deviceSeconds"]) + elapsed, 3)
    status = {"metering": list(rows.values()), "foldedPods": [pod["metadata"]["uid"]]}
    kubectl.run(
        "patch",
        "computequota",
        gpu,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    start_operator(cluster, ARGS, metrics_port=metrics_port)
    restarted = time.time()

    def scraped_since_restart() -> bool:
        result = prometheus.query(f"timestamp({metered})")
        return bool(result) and float(result[0]["value"][1]) > restarted + 2

    wait_for("scrapes of the restarted operator", scraped_since_restart, timeout=60)
    after = value(prometheus, metered)
    # Billed once: the folded time replaces the pod's running time, it is not added to it — the
    # counter is exactly the quota's metering, and it did not go down.
    assert before <= after == pytest.approx(row["deviceSeconds"], abs=0.01), (before, row, after)
