"""Item 3, two replicas: the leader is killed (SIGKILL), paused (SIGSTOP) and partitioned through
its own fault proxy (connections reset, then stalled); the other replica must take over within
TAKEOVER_BOUND seconds, and the two must never both act — judged from the apiserver's audit log,
where every write's userAgent names the replica (``suanli-operator/<identity>``): a replaced
leader has no write carried out (Leases aside) from its successor's first write until the next
fault. Writes it attempts that the apiserver refuses (409: a resourceVersion precondition fenced
it off) are reported in the figure, not counted as acting.

The bound: the Lease (LEASE_SECONDS) must expire, and the standby tries every LEASE_SECONDS / 3
seconds; a cycle of a few seconds follows. TAKEOVER_BOUND = 2 × Lease + 8 s.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest

from suanli.localcluster.faultproxy import FaultProxy
from tests.integration.conftest import wait_for
from tests.reliability.faults import Write, leader_gauge, operator_writes
from tests.reliability.harness import Harness, long_run, new_watcher, record_figure
from tests.reliability.test_control_plane_faults import Stream

pytestmark = pytest.mark.integration

GANG_START_TIMEOUT = 30
LEASE_SECONDS = 6
TAKEOVER_BOUND = 2 * LEASE_SECONDS + 8
ARGS = (
    "--standalone",
    f"--gang-start-timeout={GANG_START_TIMEOUT}",
    "--requeue-backoff=1",
    f"--lease-seconds={LEASE_SECONDS}",
)
NAMES = ("operator-a", "operator-b")


@pytest.fixture
def proxies(harness: Harness) -> Iterator[dict[str, FaultProxy]]:
    made = {name: FaultProxy(harness.cluster.api_port) for name in NAMES}
    for proxy in made.values():
        proxy.start()
    try:
        yield made
    finally:
        for proxy in made.values():
            proxy.stop()


@dataclass(frozen=True)
class Handover:
    fault: str
    at: float
    old: str
    new: str
    until: float


def after_handover(writes: list[Write], handovers: list[Handover], accepted: bool) -> list[str]:
    """Writes of a replaced leader after its successor's first write, up to the next fault
    (Leases left out: a standby asks for the Lease). ``accepted``: those the apiserver carried
    out (2xx) — a replica acting; else those it refused (a resourceVersion precondition that
    fenced a stale leader off: an attempt, not an act)."""
    found = []
    acts = [w for w in writes if w.resource != "leases" and (200 <= w.code < 300) == accepted]
    firsts_of = [w for w in writes if w.resource != "leases" and 200 <= w.code < 300]
    for handover in handovers:
        firsts = [w.at for w in firsts_of if w.identity == handover.new and w.at >= handover.at]
        if not firsts:
            continue
        late = [
            w for w in acts if w.identity == handover.old and min(firsts) <= w.at <= handover.until
        ]
        if late:
            found.append(
                f"{handover.fault}: {handover.old} wrote {len(late)} times after {handover.new} "
                "took over, e.g. "
                + ", ".join(f"{w.verb} {w.resource} {w.name} ({w.code})" for w in late[:3])
            )
    return found


def test_two_replicas_never_both_act(harness: Harness, proxies: dict[str, FaultProxy]) -> None:
    harness.tenant("rp-a", [{"acceleratorClass": "nvidia-h100", "nominal": 16}])
    ports: dict[str, int] = {}

    def start(name: str) -> None:
        assert harness.start(name, ARGS, server=f"https://127.0.0.1:{proxies[name].port}")
        ports[name] = int(harness.cluster.read_state()["ports"]["operator_metrics"])

    start(NAMES[0])
    wait_for("a first leader", lambda: leader_gauge(ports[NAMES[0]]) == 1.0, timeout=30)
    start(NAMES[1])
    wait_for("the standby to report", lambda: leader_gauge(ports[NAMES[1]]) == 0.0, timeout=30)
    since = time.time() - 60
    takeovers: dict[str, float] = {}
    problems: list[str] = []
    handovers: list[Handover] = []
    faults = ["kill", "pause", "partition-reset", "partition-stall"] * (5 if long_run() else 1)
    stream = Stream(harness, 2, "rp-a")

    def run_faults() -> None:
        for index, fault in enumerate(faults):
            leader = next((n for n in NAMES if leader_gauge(ports[n]) == 1.0), None)
            assert leader is not None, "no replica leads before the fault"
            other = NAMES[1 - NAMES.index(leader)]
            cut, wall = time.monotonic(), time.time()
            old_identity, new_identity = harness.identity(leader), harness.identity(other)
            if fault == "kill":
                harness.signal(leader, signal.SIGKILL)
            elif fault == "pause":
                harness.signal(leader, signal.SIGSTOP)
            else:
                proxies[leader].set_mode(fault.split("-")[1])
            while time.monotonic() - cut < 3 * TAKEOVER_BOUND:
                if leader_gauge(ports[other]) == 1.0:
                    break
                time.sleep(0.5)
            took = time.monotonic() - cut
            handovers.append(Handover(fault, wall, old_identity, new_identity, float("inf")))
            if len(handovers) > 1:
                handovers[-2] = replace(handovers[-2], until=wall)
            takeovers[f"{index}-{fault}"] = round(took, 1)
            if took > TAKEOVER_BOUND:
                problems.append(f"{fault}: {other} took over after {took:.1f} s")
            time.sleep(LEASE_SECONDS)  # let the new leader act while the old one is cut off
            if fault == "kill":
                harness.cluster.stop_process(leader)
                start(leader)
            elif fault == "pause":
                harness.signal(leader, signal.SIGCONT)
            else:
                proxies[leader].set_mode("pass")
            time.sleep(2 * LEASE_SECONDS)  # the old leader is back: it must not act

    with new_watcher(harness.cluster, harness, GANG_START_TIMEOUT) as watcher:
        with stream:  # arrivals stop before the drain, or it never ends
            run_faults()
        harness.wait_settled(timeout=180)
        harness.finish(watcher, bills=2000)
    writes = operator_writes(harness.cluster, since)
    both = after_handover(writes, handovers, accepted=True)
    fenced = after_handover(writes, handovers, accepted=False)
    figure = watcher.report(
        "two-replicas",
        runs=1,
        faults_injected=len(faults),
        takeover_seconds=takeovers,
        takeover_bound_seconds=TAKEOVER_BOUND,
        audited_writes=len(writes),
        identities=len({w.identity for w in writes}),
        both_acted=both,
        refused_after_handover=fenced,
        problems=problems,
    )
    record_figure(figure)
    assert writes, "the audit log holds no write of a suanli operator"
    assert not both, "\n".join(both)
    assert not problems, "\n".join(problems)
    assert not watcher.violations, "\n".join(map(str, watcher.violations))
