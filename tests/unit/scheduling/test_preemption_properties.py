"""Property tests of the victim search: minimal when it answers, complete when it does not,
and the book and cluster state are left exactly as found."""

from __future__ import annotations

from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from suanli.placement.model import Placement, Policy
from suanli.scheduling.cycle import run_cycle
from suanli.scheduling.gangs import bind_admission, gang_for
from suanli.scheduling.model import Admission, JobOption, JobRequest, ReclaimPolicy
from suanli.scheduling.model import WithinQuotaPolicy as Within
from suanli.scheduling.preemption import find_victims
from suanli.scheduling.quota import QuotaBook

from .helpers import ASCEND, CLASSES, add_nodes, implementations, quota

QUOTAS = [
    quota("own", ascend=12, cohort="lab", within=Within.LOWER_PRIORITY, reclaim=ReclaimPolicy.ANY),
    quota("peer", ascend=12, cohort="lab"),
]
running_job = st.tuples(st.sampled_from(("own", "peer")), st.sampled_from((1, 2, 4)))


def fresh_state(state_class: Any, admitted: list[Admission]) -> Any:
    state = state_class(CLASSES, policy=Policy.BEST_FIT, track_recent_mix=False)
    add_nodes(state, ASCEND, 3)
    for admission in admitted:
        bind_admission(state, admission)
    return state


def fits(state_class: Any, admitted: list[Admission], request: JobRequest) -> bool:
    state = fresh_state(state_class, admitted)
    book = QuotaBook(QUOTAS, CLASSES)
    for admission in admitted:
        spec = book.quota_for_namespace(admission.job.namespace)
        assert spec is not None
        book.charge(admission.job.key, spec.name, book.demand(admission.option), force=True)
    option = request.options[0]
    if not book.fit("own", book.demand(option)).fits:
        return False
    return isinstance(state.place(gang_for(request, option)), Placement)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(
    jobs=st.lists(running_job, min_size=8, max_size=16),
    wanted=st.sampled_from((2, 4, 8)),
    priorities=st.lists(st.integers(0, 2), min_size=16, max_size=16),
    implementation=st.sampled_from(implementations()),
)
def test_victim_sets_are_minimal_complete_and_side_effect_free(
    jobs: list[tuple[str, int]], wanted: int, priorities: list[int], implementation: Any
) -> None:
    pending = [
        JobRequest(ns, f"r{i}", priorities[i], float(i), (JobOption("ascend-910b", size, 1),))
        for i, (ns, size) in enumerate(jobs)
    ]
    state = fresh_state(implementation, [])
    admitted = [a.admission for a in run_cycle(pending, [], QUOTAS, CLASSES, state).admitted]
    urgent = JobRequest("own", "urgent", 3, 99.0, (JobOption("ascend-910b", wanted, 1),))

    state = fresh_state(implementation, admitted)
    book = QuotaBook(QUOTAS, CLASSES)
    for admission in admitted:
        spec = book.quota_for_namespace(admission.job.namespace)
        assert spec is not None
        book.charge(admission.job.key, spec.name, book.demand(admission.option))
    free_before = {name: state.node_free(name) for name in state.node_names()}
    usage_before = {name: book.usage(name) for name in ("own", "peer")}

    plan = find_victims(urgent, 0, "own", book=book, state=state, admitted=admitted)

    assert {name: state.node_free(name) for name in state.node_names()} == free_before
    assert {name: book.usage(name) for name in ("own", "peer")} == usage_before
    if fits(implementation, admitted, urgent):
        event("fits without preemption")
        assert plan is None  # nothing to evict
        return
    reclaim_possible = book.used("own", "devices:ascend-910b") + wanted * 1000 <= 12_000 and bool(
        book.borrowed("peer")
    )
    allowed = [
        a
        for a in admitted
        if (a.job.namespace == "own" and a.job.priority < urgent.priority)
        or (a.job.namespace == "peer" and reclaim_possible)
    ]
    event(f"{'no plan' if plan is None else 'victims'}, reclaim possible={reclaim_possible}")
    if plan is None:
        if not reclaim_possible:
            # complete: even evicting every lower-priority job of the quota would not make room
            # (reclaim is bounded by what the peer borrowed, so it is not claimed complete)
            rest = [a for a in admitted if a not in allowed]
            assert not fits(implementation, rest, urgent)
        return
    victims = {v.admission.job.key for v in plan.victims}
    event(f"{len(victims)} victims")
    assert victims <= {a.job.key for a in allowed}
    assert fits(implementation, [a for a in admitted if a.job.key not in victims], urgent)
    for spared in victims:
        kept = [a for a in admitted if a.job.key not in victims or a.job.key == spared]
        assert not fits(implementation, kept, urgent), f"{spared} need not be evicted"
