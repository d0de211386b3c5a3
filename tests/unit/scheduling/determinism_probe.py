"""A fixed multi-tenant scenario run through several scheduling cycles, printed as text.

Run as ``python -m tests.unit.scheduling.determinism_probe IMPLEMENTATION`` by
test_determinism_across_processes.py under different ``PYTHONHASHSEED`` values: anything that
leaks set or dict iteration order, object ids or the clock into a decision changes the text.
Namespaces live in frozensets and most jobs tie on priority and age, so tie-breaking is what is
being exercised.
"""

from __future__ import annotations

import sys
from typing import Any

from suanli.placement.model import Policy
from suanli.scheduling.cycle import Admit, CycleResult, run_cycle
from suanli.scheduling.gangs import release_admission
from suanli.scheduling.model import Admission, JobRequest, ReclaimPolicy, WithinQuotaPolicy

from .helpers import ASCEND, CLASSES, H100, add_nodes, ascend, h100, job, quota

QUOTAS = [
    quota(
        f"tenant-{t}",
        h100=8 + 4 * t,
        ascend=16,
        cohort="city",
        namespaces=[f"tenant-{t}-{suffix}" for suffix in ("train", "eval", "dev", "ci")],
        within=WithinQuotaPolicy.LOWER_PRIORITY,
        reclaim=ReclaimPolicy.ANY if t % 2 else ReclaimPolicy.LOWER_PRIORITY,
    )
    for t in range(4)
]
SHAPES = [(8, 2), (4, 1), (2, 1), (8, 1), (1, 1), (8, 3)]


def jobs(wave: int) -> list[JobRequest]:
    found = []
    for t in range(4):
        for i, suffix in enumerate(("train", "eval", "dev", "ci")):
            devices, replicas = SHAPES[(t + i + wave) % len(SHAPES)]
            found.append(
                job(
                    f"tenant-{t}-{suffix}/w{wave}-j{i}",
                    h100(devices, replicas),
                    ascend(devices, replicas),
                    priority=(wave + i) % 3,
                    created=float(wave),  # every job of a wave ties on age
                )
            )
    return found


def describe(result: CycleResult) -> list[str]:
    lines = [repr(decision) for decision in result.decisions]
    lines.append(repr(result.positions))
    lines.append(repr(result.overtaken))
    lines.extend(repr(result.quota_status(spec.name)) for spec in QUOTAS)
    return lines


def trace(implementation: str) -> list[str]:
    from tests.unit.scheduling.helpers import implementations

    (state_class,) = (c for c in implementations() if implementation in c.__module__)
    state: Any = state_class(CLASSES, policy=Policy.FRAGMENTATION_AWARE)
    add_nodes(state, H100, 4)
    add_nodes(state, ASCEND, 5)
    pending: dict[str, JobRequest] = {}
    admitted: dict[str, Admission] = {}
    overtaken: dict[str, int] = {}
    lines: list[str] = []
    for wave in range(4):
        pending |= {j.key: j for j in jobs(wave)}
        result = run_cycle(
            list(pending.values()),
            list(admitted.values()),
            QUOTAS,
            CLASSES,
            state,
            overtaken=overtaken,
        )
        lines += describe(result)
        overtaken = result.overtaken
        for decision in result.decisions:
            if isinstance(decision, Admit):
                del pending[decision.job.key]
                admitted[decision.job.key] = decision.admission
        for preempt in result.preemptions:
            for victim in preempt.victims:
                key = victim.admission.job.key
                release_admission(state, admitted.pop(key))
                pending[key] = victim.admission.job
        # the oldest third of the running jobs finish
        for key in sorted(admitted)[: len(admitted) // 3]:
            release_admission(state, admitted.pop(key))
        lines.append(repr(state.capacity_summary()))
        lines.append(repr(sorted(state.pod_keys())))
    return lines


if __name__ == "__main__":
    sys.stdout.write("\n".join(trace(sys.argv[1])) + "\n")
