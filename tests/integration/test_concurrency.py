"""20 tenants submit 500 jobs at once: quota is never exceeded at any observed moment, no node
holds more devices than it has, and every job ends admitted, finished, or pending with a reason.

Own control plane and operator (a busy centre would slow the other modules down).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from suanli.localcluster import LocalCluster
from tests.integration.conftest import Kubectl, Tenants, job_manifest, private_cluster, wait_for

pytestmark = pytest.mark.integration

TENANTS = 20
JOBS_PER_TENANT = 25
CLASSES = ("ascend-910b", "nvidia-h100", "nvidia-a100")
NOMINAL = 4
BORROWING = 4


OPERATOR_ARGS = ("--standalone", "--requeue-backoff=1")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with private_cluster(tmp_path_factory, "busy-control-plane") as local:
        yield local


def observe(kubectl: Kubectl, limits: dict[str, tuple[str, int]]) -> list[str]:
    """Every quota, cohort or node limit broken right now, judged from live pods in the API
    server: a tenant above nominal + borrowing, a cohort above the sum of its members' nominal
    (borrowing only redistributes what the cohort owns), a node above its devices."""
    problems = []
    per_tenant: dict[str, int] = {}
    per_node: dict[tuple[str, str], int] = {}
    for pod in kubectl.get("pods", "-A", "-l", "app.kubernetes.io/managed-by=suanli")["items"]:
        if pod["status"].get("phase") in ("Succeeded", "Failed"):
            continue
        limits_ = pod["spec"]["containers"][0]["resources"]["limits"]
        devices = sum(int(v) for k, v in limits_.items() if "/" in k)
        namespace = pod["metadata"]["namespace"]
        per_tenant[namespace] = per_tenant.get(namespace, 0) + devices
        resource = next(k for k in limits_ if "/" in k)
        node_key = (pod["spec"]["nodeName"], resource)
        per_node[node_key] = per_node.get(node_key, 0) + devices
    for namespace, used in per_tenant.items():
        cls, ceiling = limits[namespace]
        if used > ceiling:
            problems.append(f"{namespace} uses {used} {cls}, above nominal+borrowing {ceiling}")
    for (node, resource), used in per_node.items():
        if used > 8:
            problems.append(f"{node} has {used} {resource} bound")
    per_cohort: dict[str, int] = {}
    for namespace, used in per_tenant.items():
        per_cohort[limits[namespace][0]] = per_cohort.get(limits[namespace][0], 0) + used
    for cls, used in per_cohort.items():
        owned = NOMINAL * sum(1 for c, _ in limits.values() if c == cls)
        if used > owned:
            problems.append(f"cohort-{cls} uses {used} devices, above its members' nominal {owned}")
    return problems


def test_five_hundred_jobs_from_twenty_tenants(
    kubectl: Kubectl, tenants: Tenants, operator: dict[str, int]
) -> None:
    limits: dict[str, tuple[str, int]] = {}
    documents: list[dict[str, Any]] = []
    for index in range(TENANTS):
        cls = CLASSES[index % len(CLASSES)]
        name = tenants.add(
            f"busy-{index:02d}",
            [{"acceleratorClass": cls, "nominal": NOMINAL, "borrowingLimit": BORROWING}],
            cohort=f"cohort-{cls}",
        )
        limits[name] = (cls, NOMINAL + BORROWING)
        for job in range(JOBS_PER_TENANT):
            devices = (1, 2, 4)[job % 3]
            documents.append(
                job_manifest(
                    f"job-{job:02d}",
                    name,
                    [{"acceleratorClass": cls, "devicesPerReplica": devices}],
                    duration=f"{2 + job % 4}s",
                    priority=job % 3,
                )
            )
    started = time.monotonic()
    result = kubectl.cluster.kubectl(
        "apply", "-f", "-", input_text=yaml.safe_dump_all(documents), check=False
    )
    assert result.returncode == 0, result.stderr
    submitted = time.monotonic() - started

    violations: list[str] = []
    observations = 0
    deadline = time.monotonic() + 480
    finished = 0
    while time.monotonic() < deadline:
        violations += observe(kubectl, limits)
        observations += 1
        jobs = kubectl.get("trainingjobs", "-A")["items"]
        finished = sum(1 for j in jobs if (j.get("status") or {}).get("phase") == "Succeeded")
        if finished == len(documents):
            break
        time.sleep(1)
    assert not violations, violations[:10]
    assert observations >= 5
    # progress, not only safety: every job ran to the end within the deadline
    unfinished = [
        (
            j["metadata"]["namespace"],
            j["metadata"]["name"],
            (j.get("status") or {}).get("phase"),
            (j.get("status") or {}).get("reason"),
        )
        for j in kubectl.get("trainingjobs", "-A")["items"]
        if (j.get("status") or {}).get("phase") != "Succeeded"
    ]
    assert finished == len(documents), (
        f"only {finished} of {len(documents)} jobs finished; still: {unfinished[:20]}"
    )

    jobs = kubectl.get("trainingjobs", "-A")["items"]
    assert len(jobs) == TENANTS * JOBS_PER_TENANT
    for job in jobs:
        status = job.get("status") or {}
        phase = status.get("phase")
        assert phase in ("Queued", "Admitted", "Running", "Succeeded"), (job["metadata"], status)
        if phase == "Queued":
            assert status.get("reason") and status.get("message"), (job["metadata"], status)
    print(
        f"\n500 jobs submitted in {submitted:.1f} s; {finished} finished; "
        f"{observations} observations, no limit ever exceeded"
    )
    wait_for(
        "quota statuses to be written",
        lambda: all(
            (kubectl.get("computequota", name).get("status") or {}).get("usage") for name in limits
        ),
    )
