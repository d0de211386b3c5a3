"""Reclaim evicts only what still borrows, checked after every eviction (found missing by
mutation testing: the greedy pass stopping at the first quota that stopped borrowing, or
reporting a victim set that does not let the job run).

Cohort ``lab``: team-a (nominal 16) reclaims from its peers; the cluster is smaller than the
nominal sum, so capacity, not only quota, must be freed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from suanli.reasons import Reason
from suanli.scheduling.cycle import Wait
from suanli.scheduling.model import ReclaimPolicy

from .helpers import ASCEND, add_nodes, ascend, job, quota
from .test_cycle import World

StateFactory = Callable[[], Any]


def lab(**nominal: int) -> list[Any]:
    return [
        quota("team-a", ascend=16, cohort="lab", reclaim=ReclaimPolicy.ANY),
        *(quota(name.replace("_", "-"), ascend=n, cohort="lab") for name, n in nominal.items()),
    ]


def test_reclaim_goes_on_to_a_quota_that_still_borrows(new_state: StateFactory) -> None:
    """team-b borrows 8 with two jobs, team-c borrows 4 with one (priority 1). Evicting b2 ends
    team-b's borrowing, so b1 is passed over and team-c's job is reclaimed next."""
    state = new_state()
    add_nodes(state, ASCEND, 3)
    world = World(state, lab(team_b=8, team_c=4))
    world.submit(job("team-b/b1", ascend(8), created=1))
    world.submit(job("team-b/b2", ascend(8), created=2))
    world.submit(job("team-c/c1", ascend(8), created=3, priority=1))
    assert len(world.cycle().admitted) == 3
    world.submit(job("team-a/mine", ascend(8, 2), created=4))
    (preempt,) = world.cycle().preemptions
    assert preempt.job.key == "team-a/mine"
    assert sorted(v.admission.job.key for v in preempt.victims) == ["team-b/b2", "team-c/c1"]


def test_no_victims_when_evicting_borrowers_alone_cannot_make_room(
    new_state: StateFactory,
) -> None:
    """Evicting both of team-b's jobs would make room, but after the first, team-b no longer
    borrows: evicting the second reclaims nothing, so team-a waits and nothing is evicted."""
    state = new_state()
    add_nodes(state, ASCEND, 2)
    world = World(state, lab(team_b=8))
    world.submit(job("team-b/b1", ascend(8), created=1))
    world.submit(job("team-b/b2", ascend(8), created=2))
    assert len(world.cycle().admitted) == 2
    world.submit(job("team-a/mine", ascend(8, 2), created=3))
    result = world.cycle()
    assert result.preemptions == []
    wait = result.decision_for("team-a/mine")
    assert isinstance(wait, Wait) and wait.reason is not Reason.PREEMPTING
