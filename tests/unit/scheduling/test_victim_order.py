"""Victim order with mixed priorities and borrowers: borrowers first, then lowest priority,
then newest. Each test is built so that one reversal of that order picks a different victim."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from suanli.placement.model import Placement, ReplicaAssignment
from suanli.scheduling.cycle import build_book, run_cycle
from suanli.scheduling.gangs import bind_admission, release_admission
from suanli.scheduling.model import Admission, QuotaSpec, ReclaimPolicy
from suanli.scheduling.model import WithinQuotaPolicy as Within
from suanli.scheduling.preemption import PreemptionKind, candidates_for, find_victims

from .helpers import ASCEND, CLASSES, add_nodes, ascend, job, quota

StateFactory = Callable[[], Any]


def running(
    key: str, node: str, devices: tuple[int, ...], *, priority: int, created: float
) -> Admission:
    request = job(key, ascend(len(devices)), priority=priority, created=created)
    placement = Placement(request.key, 0, "ascend-910b", (ReplicaAssignment(node, devices, 1000),))
    return Admission(request, 0, placement)


def world(
    new_state: StateFactory, nodes: int, quotas: list[QuotaSpec], admitted: list[Admission]
) -> tuple[Any, Any]:
    state = new_state()
    add_nodes(state, ASCEND, nodes)
    for admission in admitted:
        bind_admission(state, admission)
    return state, build_book(quotas, CLASSES, admitted)


def victims_of(plan: Any) -> list[str]:
    assert plan is not None
    return sorted(v.admission.job.key for v in plan.victims)


LAB = [
    quota("own", ascend=16, cohort="lab", within=Within.LOWER_PRIORITY, reclaim=ReclaimPolicy.ANY),
    quota("peer", ascend=8, cohort="lab"),
]


def test_candidates_are_borrowers_first_then_lowest_priority_then_newest() -> None:
    node = "ascend-910b-0"
    admitted = [
        running("own/o-p0-old", node, (0,), priority=0, created=1),
        running("own/o-p2", node, (1,), priority=2, created=9),
        running("own/o-p0-new", node, (2,), priority=0, created=5),
        running("own/o-p5", node, (3,), priority=5, created=0),  # equal priority: never
        running("peer/p-p9", node, (0, 1, 2, 3), priority=9, created=0),
        running("peer/p-p1-old", node, (0, 1, 2, 3), priority=1, created=6),
        running("peer/p-p0", node, (0, 1, 2, 3), priority=0, created=2),
        running("peer/p-p1-new", node, (0, 1, 2, 3), priority=1, created=8),
    ]
    book = build_book(LAB, CLASSES, admitted)
    assert book.used("peer", "devices:ascend-910b") > book.nominal("peer", "devices:ascend-910b")
    urgent = job("own/urgent", ascend(4), priority=5, created=100)

    found = candidates_for(urgent, urgent.options[0], "own", book=book, admitted=admitted)

    assert [(a.job.key, owner, kind) for a, owner, kind in found] == [
        ("peer/p-p0", "peer", PreemptionKind.RECLAIM),
        ("peer/p-p1-new", "peer", PreemptionKind.RECLAIM),
        ("peer/p-p1-old", "peer", PreemptionKind.RECLAIM),
        ("peer/p-p9", "peer", PreemptionKind.RECLAIM),  # reclaim policy Any: any priority
        ("own/o-p0-new", "own", PreemptionKind.WITHIN_QUOTA),
        ("own/o-p0-old", "own", PreemptionKind.WITHIN_QUOTA),
        ("own/o-p2", "own", PreemptionKind.WITHIN_QUOTA),
    ]


def test_reclaim_lower_priority_policy_spares_borrowers_of_equal_or_higher_priority() -> None:
    quotas = [
        quota(
            "own",
            ascend=16,
            cohort="lab",
            within=Within.NEVER,
            reclaim=ReclaimPolicy.LOWER_PRIORITY,
        ),
        quota("peer", ascend=8, cohort="lab"),
    ]
    node = "ascend-910b-0"
    admitted = [
        running("peer/low", node, (0, 1, 2, 3), priority=1, created=0),
        running("peer/equal", node, (4, 5, 6, 7), priority=5, created=1),
        running("peer/high", node, (0, 1, 2, 3), priority=7, created=2),
        running("own/mine", node, (4,), priority=0, created=3),  # within policy Never
    ]
    book = build_book(quotas, CLASSES, admitted)
    urgent = job("own/urgent", ascend(4), priority=5, created=100)
    found = candidates_for(urgent, urgent.options[0], "own", book=book, admitted=admitted)
    assert [a.job.key for a, _, _ in found] == ["peer/low"]


def test_the_lowest_priority_job_is_evicted_even_when_a_higher_one_is_newer(
    new_state: StateFactory,
) -> None:
    quotas = [quota("team", ascend=8, within=Within.LOWER_PRIORITY)]
    admitted = [
        running("team/low-old", "ascend-910b-0", (0, 1, 2, 3), priority=0, created=0),
        running("team/mid-new", "ascend-910b-0", (4, 5, 6, 7), priority=1, created=10),
    ]
    state, book = world(new_state, 1, quotas, admitted)
    urgent = job("team/urgent", ascend(4), priority=5, created=100)
    plan = find_victims(urgent, 0, "team", book=book, state=state, admitted=admitted)
    assert victims_of(plan) == ["team/low-old"]


def test_among_equal_priorities_the_newest_job_is_evicted(new_state: StateFactory) -> None:
    quotas = [quota("team", ascend=8, within=Within.LOWER_PRIORITY)]
    admitted = [
        running("team/b-old", "ascend-910b-0", (0, 1, 2, 3), priority=2, created=0),
        running("team/a-new", "ascend-910b-0", (4, 5, 6, 7), priority=2, created=10),
    ]
    state, book = world(new_state, 1, quotas, admitted)
    urgent = job("team/urgent", ascend(4), priority=5, created=100)
    plan = find_victims(urgent, 0, "team", book=book, state=state, admitted=admitted)
    assert victims_of(plan) == ["team/a-new"]


def borrower_world() -> tuple[list[QuotaSpec], list[Admission]]:
    quotas = [
        quota(
            "own",
            ascend=8,
            cohort="lab",
            within=Within.LOWER_PRIORITY,
            reclaim=ReclaimPolicy.LOWER_PRIORITY,
        ),
        quota("peer", ascend=8, cohort="lab"),
    ]
    admitted = [
        # the lender's own job has the lowest priority of all, yet the borrowers go first
        running("own/mine-low", "ascend-910b-0", (0, 1, 2, 3), priority=0, created=0),
        running("peer/a", "ascend-910b-0", (4, 5, 6, 7), priority=2, created=1),
        running("peer/b", "ascend-910b-1", (0, 1, 2, 3), priority=2, created=2),
        running("peer/c", "ascend-910b-1", (4, 5, 6, 7), priority=2, created=3),
    ]
    return quotas, admitted


def test_a_borrowed_job_is_evicted_before_the_quotas_own_lower_priority_job(
    new_state: StateFactory,
) -> None:
    quotas, admitted = borrower_world()
    state, book = world(new_state, 2, quotas, admitted)
    assert book.used("peer", "devices:ascend-910b") == 12_000  # borrowing 4 of own's 8
    urgent = job("own/urgent", ascend(4), priority=5, created=100)
    plan = find_victims(urgent, 0, "own", book=book, state=state, admitted=admitted)
    assert plan is not None
    assert [(v.admission.job.key, v.quota, v.kind) for v in plan.victims] == [
        ("peer/c", "peer", PreemptionKind.RECLAIM)
    ]


def test_the_cycle_preempts_the_borrower_and_then_admits_the_lender(
    new_state: StateFactory,
) -> None:
    quotas, admitted = borrower_world()
    state, _ = world(new_state, 2, quotas, admitted)
    urgent = job("own/urgent", ascend(4), priority=5, created=100)
    result = run_cycle([urgent], admitted, quotas, CLASSES, state)
    (preempt,) = result.preemptions
    assert preempt.job.key == "own/urgent"
    assert [v.admission.job.key for v in preempt.victims] == ["peer/c"]
    assert preempt.reason == "CohortReclaim"
    assert result.admitted == []
    # the victim gone, the next cycle admits the lender onto the freed devices
    (victim,) = (a for a in admitted if a.job.key == "peer/c")
    release_admission(state, victim)
    rest = [a for a in admitted if a is not victim]
    admit = run_cycle([urgent], rest, quotas, CLASSES, state).admitted
    assert [(a.job.key, a.placement.replicas[0].node) for a in admit] == [
        ("own/urgent", "ascend-910b-1")
    ]


def test_a_victim_set_needing_two_is_the_two_lowest_not_the_two_newest(
    new_state: StateFactory,
) -> None:
    quotas = [quota("team", ascend=8, within=Within.LOWER_PRIORITY)]
    node = "ascend-910b-0"
    admitted = [
        running("team/p0", node, (0, 1), priority=0, created=0),
        running("team/p1", node, (2, 3), priority=1, created=1),
        running("team/p3", node, (4, 5), priority=3, created=3),
        running("team/p2", node, (6, 7), priority=2, created=2),
    ]
    state, book = world(new_state, 1, quotas, admitted)
    # 4 devices: the two lowest free 4 (so do the two highest, or the two newest)
    urgent = job("team/urgent", ascend(4), priority=9, created=100)
    plan = find_victims(urgent, 0, "team", book=book, state=state, admitted=admitted)
    assert victims_of(plan) == ["team/p0", "team/p1"]
