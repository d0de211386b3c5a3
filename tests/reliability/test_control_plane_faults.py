"""Item 2, control-plane faults: kube-apiserver restarted mid-run, etcd stopped, and a loopback
fault proxy (suanli.localcluster.faultproxy) between the operator and the apiserver that stalls,
resets, slows, half-closes and freezes its connections — while jobs keep arriving.

After each fault heals, a canary job must be admitted and running within a stated bound (the
loop never wedges): 60 s, or Kopf's ``settings.watching.inactivity_timeout`` (120 s,
suanli.controller.handlers) + 60 s for the frozen connections that only a client-side timeout can
notice. While the proxy stalls the operator's connections longer than its Lease, the operator
must stop calling itself leader: a replica that cannot reach the apiserver holds no Lease.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from suanli.localcluster.faultproxy import FaultProxy
from tests.integration.conftest import wait_for
from tests.reliability.faults import leader_gauge, restart_apiserver, stop_etcd
from tests.reliability.harness import Harness, long_run, new_watcher, record_figure

pytestmark = pytest.mark.integration

GANG_START_TIMEOUT = 30
LEASE_SECONDS = 6
INACTIVITY_TIMEOUT = 120
ARGS = (
    "--standalone",
    f"--gang-start-timeout={GANG_START_TIMEOUT}",
    "--requeue-backoff=1",
    f"--lease-seconds={LEASE_SECONDS}",
)


class Stream:
    """Jobs arriving every ``period`` seconds from a thread until stopped."""

    def __init__(self, harness: Harness, period: float, namespace: str = "cp-a") -> None:
        self.harness, self.period, self.namespace = harness, period, namespace
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            job = self.harness.job(f"s-{self.sent}", self.namespace, "nvidia-h100", 2, seconds=2)
            try:
                self.harness.apply_all([job], attempts=1)
                self.sent += 1
            except Exception:  # the apiserver is away: this arrival is lost, as a client's would be
                pass

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


@pytest.fixture
def proxy(harness: Harness) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(harness.cluster.api_port)
    fault_proxy.start()
    try:
        yield fault_proxy
    finally:
        fault_proxy.stop()


def test_the_operator_rides_out_control_plane_faults(harness: Harness, proxy: FaultProxy) -> None:
    harness.tenant("cp-a", [{"acceleratorClass": "nvidia-h100", "nominal": 16}])
    harness.tenant("cp-c", [{"acceleratorClass": "nvidia-a100", "nominal": 8}])
    assert harness.start("operator", ARGS, server=f"https://127.0.0.1:{proxy.port}")
    metrics = int(harness.cluster.read_state()["ports"]["operator_metrics"])
    wait_for("the operator to lead", lambda: leader_gauge(metrics) == 1.0, timeout=30)
    etcd_seconds = 30 if long_run() else 8
    stall_seconds = 3 * LEASE_SECONDS
    canaries = 0
    recovery: dict[str, float] = {}
    problems: list[str] = []
    lease_kept: dict[str, bool] = {}

    def canary(fault: str, bound: float) -> None:
        nonlocal canaries
        canaries += 1
        name = f"canary-{canaries}"
        started = time.monotonic()
        harness.apply_all([harness.job(name, "cp-c", "nvidia-a100", 1, seconds=1)])

        def ran() -> bool:
            for job in harness.jobs():
                if job["metadata"]["name"] == name:
                    phase = (job.get("status") or {}).get("phase")
                    return phase in ("Running", "Succeeded")
            return False

        deadline = started + bound
        while time.monotonic() < deadline and not ran():
            time.sleep(1)
        recovery[fault] = round(time.monotonic() - started, 1)
        if not ran():
            problems.append(f"after {fault}: canary {name} not running within {bound:.0f} s")

    def stalled_leader(fault: str, action: Callable[[], object]) -> None:
        """Cut the operator off longer than its Lease; it must stop calling itself leader."""
        action()
        deadline = time.monotonic() + stall_seconds
        dropped = False
        while time.monotonic() < deadline:
            dropped = dropped or leader_gauge(metrics) == 0.0
            time.sleep(1)
        lease_kept[fault] = not dropped
        if not dropped:
            problems.append(
                f"{fault}: the operator still called itself leader after {stall_seconds} s "
                f"without reaching the apiserver (Lease {LEASE_SECONDS} s)"
            )

    def hold(mode: str, seconds: float, delay: float = 0.0) -> Callable[[], None]:
        def inject() -> None:
            proxy.set_mode(mode, delay)
            time.sleep(seconds)

        return inject

    def freeze() -> None:
        proxy.freeze()

    faults: list[tuple[str, Callable[[], object], float]] = [
        ("apiserver-restart", lambda: restart_apiserver(harness.cluster), 60),
        ("etcd-stop", lambda: stop_etcd(harness.cluster, etcd_seconds), 60),
        ("proxy-reset", hold("reset", 3), 60),
        ("proxy-slow", hold("slow", 10, delay=0.3), 60),
        ("proxy-half-close", hold("half-close", 5), 60),
        ("proxy-stall", lambda: stalled_leader("proxy-stall", hold("stall", 0)), 60),
        (
            "proxy-freeze",
            lambda: stalled_leader("proxy-freeze", freeze),
            INACTIVITY_TIMEOUT + 60,
        ),
    ]
    rounds = 3 if long_run() else 1
    injected = 0
    with new_watcher(harness.cluster, harness, GANG_START_TIMEOUT) as watcher:
        with Stream(harness, 2):  # arrivals stop before the drain, or it never ends
            for _ in range(rounds):
                for name, inject, bound in faults:
                    inject()
                    proxy.set_mode("pass")
                    injected += 1
                    canary(name, bound)
        if not problems:  # a wedged operator settles nothing: report what wedged it instead
            harness.wait_settled(timeout=180)
            harness.finish(watcher, bills=2000)
    figure = watcher.report(
        "control-plane",
        runs=rounds,
        faults_injected=injected,
        proxy=vars(proxy.stats),
        recovery_seconds=recovery,
        leader_while_cut_off=lease_kept,
        problems=problems,
    )
    record_figure(figure)
    assert not problems, "\n".join(problems)
    assert not watcher.violations, "\n".join(map(str, watcher.violations))
