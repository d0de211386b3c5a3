"""Item 4, load: jobs of up to 8 pods from many tenants on many fake NPU/GPU nodes, arriving as a
Poisson stream with run times drawn from the Philly trace (``../shared/traces/philly``, Jeon et
al., ATC '19) divided by 600 and kept within 1–30 s. Long: 2,000 jobs, 50 tenants, 500 nodes;
bounded: 80 jobs, 5 tenants, 40 nodes.

Every invariant holds throughout, every job ends placed, finished or pending with a reason, and
the figure prints admission latency p50/p99 (submission → every pod of the first attempt seen by
the watcher), cycle time p50/p99 (the operator's own log), API requests per admitted pod (the
audit log), and the operator's peak RSS and CPU seconds (/proc). Targets, printed beside the
figures, not asserted: p99 admission ≤ 2 s while the cluster has room, RSS ≤ 300 MB.
"""

from __future__ import annotations

import csv
import random
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from suanli.localcluster import LocalCluster
from suanli.localcluster.fakenodes import MODELS, node_manifest
from tests.integration.conftest import REPO, private_cluster
from tests.reliability.faults import operator_writes
from tests.reliability.harness import Harness, long_run, new_watcher, record_figure

pytestmark = pytest.mark.integration

PHILLY = REPO.parent / "shared" / "traces" / "philly" / "philly_runtime.csv"
GANG_START_TIMEOUT = 60
ARGS = (
    "--standalone",
    f"--gang-start-timeout={GANG_START_TIMEOUT}",
    "--requeue-backoff=1",
)
JOBS, TENANTS, NODES, RATE = (2000, 50, 500, 8.0) if long_run() else (80, 5, 40, 2.0)
CLASSES = ("ascend-910b", "nvidia-h100", "nvidia-a100")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with private_cluster(tmp_path_factory, "reliability-load", nodes=False) as local:
        nodes = []
        for index in range(NODES):
            kind = CLASSES[index % len(CLASSES)]
            rack = f"rack-{kind}-{index // 24:02d}"
            nodes.append(node_manifest(f"{kind}-{index:04d}", MODELS[kind], rack))
        for start in range(0, len(nodes), 100):
            local.apply_objects(nodes[start : start + 100])
        yield local


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Sampler:
    """Peak RSS and CPU seconds of one process, read from /proc every half second."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_rss_mb, self.cpu_seconds = pid, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import os

        ticks = os.sysconf("SC_CLK_TCK")
        while not self._stop.wait(0.5):
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
                stat = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return
            rss = re.search(r"VmRSS:\s+(\d+) kB", status)
            if rss:
                self.peak_rss_mb = max(self.peak_rss_mb, int(rss.group(1)) / 1024)
            self.cpu_seconds = (int(stat[11]) + int(stat[12])) / ticks

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def run_times(rng: random.Random, count: int) -> list[float]:
    with PHILLY.open() as handle:
        trace = [float(row["runtime"]) for row in csv.DictReader(handle)]
    return [min(30.0, max(1.0, rng.choice(trace) / 600)) for _ in range(count)]


def test_load_keeps_every_invariant(harness: Harness) -> None:
    rng = random.Random(4)
    tenants = [f"ld-{i:02d}" for i in range(TENANTS)]
    share = max(64, (NODES * 8) // TENANTS // len(CLASSES) * 2)  # a gang of 8 × 8 fits
    for tenant in tenants:
        harness.tenant(tenant, [{"acceleratorClass": c, "nominal": share} for c in CLASSES])
    seconds = run_times(rng, JOBS)
    jobs: list[tuple[float, dict[str, Any]]] = []
    at = 0.0
    for index in range(JOBS):
        at += rng.expovariate(RATE)
        replicas = rng.choice((1, 1, 1, 2, 2, 4, 8))
        devices = rng.choice((1, 2, 4, 8)) if replicas == 1 else 8
        job = harness.job(
            f"j-{index:04d}", rng.choice(tenants), rng.choice(CLASSES), devices,
            replicas=replicas, seconds=round(seconds[index]),
        )  # fmt: skip
        jobs.append((at, job))
    assert harness.start("operator", ARGS)
    pid = harness.pid("operator")
    submitted: dict[tuple[str, str], float] = {}
    since = time.time()
    with new_watcher(harness.cluster, harness, GANG_START_TIMEOUT) as watcher, Sampler(pid) as use:
        began = time.monotonic()
        pending = list(jobs)
        while pending:
            now = time.monotonic() - began
            due = [j for t, j in pending if t <= now]
            pending = [(t, j) for t, j in pending if t > now]
            if due:
                stamp = time.time()
                harness.apply_all(due)
                for job in due:
                    submitted[(job["metadata"]["namespace"], job["metadata"]["name"])] = stamp
            time.sleep(0.2)
        harness.wait_settled(timeout=900 if long_run() else 300)
        latencies = admission_latencies(watcher, submitted, jobs)
        cycles = cycle_times(harness)
        requests = len(operator_writes(harness.cluster, since, writes_only=False))
        pods = sum(1 for p in watcher.pods.values() if p.job is not None)
        harness.finish(watcher, bills=JOBS * 8)
    figure = watcher.report(
        "load",
        runs=1,
        faults_injected=0,
        jobs=JOBS,
        tenants=TENANTS,
        nodes=NODES,
        arrival_rate_per_s=RATE,
        admission_p50_s=round(percentile(latencies, 0.5), 2),
        admission_p99_s=round(percentile(latencies, 0.99), 2),
        admission_target_p99_s=2.0,
        cycle_p50_ms=round(percentile(cycles, 0.5), 1),
        cycle_p99_ms=round(percentile(cycles, 0.99), 1),
        api_requests=requests,
        api_requests_per_pod=round(requests / max(pods, 1), 2),
        pods=pods,
        peak_rss_mb=round(use.peak_rss_mb, 1),
        rss_target_mb=300,
        cpu_seconds=round(use.cpu_seconds, 1),
    )
    record_figure(figure)
    assert not watcher.violations, "\n".join(map(str, watcher.violations))


def admission_latencies(
    watcher: Any, submitted: dict[tuple[str, str], float], jobs: list[tuple[float, dict[str, Any]]]
) -> list[float]:
    """Submission → the last pod of the job's first admission first seen by the watcher."""
    replicas = {
        (j["metadata"]["namespace"], j["metadata"]["name"]): int(j["spec"]["replicas"])
        for _, j in jobs
    }
    firsts: dict[tuple[str, str], list[float]] = {}
    lowest: dict[tuple[str, str], int] = {}
    for pod in watcher.pods.values():
        if pod.job is None or pod.attempt is None:
            continue
        key = (pod.namespace, pod.job)
        if pod.attempt < lowest.get(key, 1 << 30):
            lowest[key] = pod.attempt
            firsts[key] = []
        if pod.attempt == lowest[key]:
            firsts[key].append(pod.first_seen)
    return [
        max(seen) - submitted[key]
        for key, seen in firsts.items()
        if key in submitted and len(seen) >= replicas.get(key, 1)
    ]


def cycle_times(harness: Harness) -> list[float]:
    log = (harness.cluster.logs_dir / "operator.log").read_text(errors="replace")
    return [float(m) for m in re.findall(r"suanli\.loop: cycle \d+: .* in ([\d.]+) ms", log)]
