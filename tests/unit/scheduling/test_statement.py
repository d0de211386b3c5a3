"""The Statement undoes exactly one job's assumptions, newest first, and nothing else."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from suanli.placement.model import Placement
from suanli.scheduling import Admission, Statement, gang_for, rollback_admission, run_cycle
from suanli.scheduling.cycle import build_book
from suanli.scheduling.model import SchedulingInputError

from .helpers import ASCEND, CLASSES, add_nodes, ascend, job, milli, quota


def world(new_state: Callable[[], object]) -> tuple[object, list]:
    state = new_state()
    add_nodes(state, ASCEND, 2)
    return state, [quota("team-a", ascend=16), quota("team-b", ascend=16)]


def free(state: object) -> dict[str, object]:
    return {name: state.node_free(name) for name in state.node_names()}  # type: ignore[attr-defined]


def test_discard_undoes_one_job_and_leaves_the_other(new_state: Callable[[], object]) -> None:
    state, quotas = world(new_state)
    book = build_book(quotas, CLASSES, [])
    statement = Statement(book, state)  # type: ignore[arg-type]
    before = free(state)
    first, second = job("team-a/one", ascend(8)), job("team-b/two", ascend(4))
    placed = statement.place(first.key, gang_for(first, first.options[0]))
    assert isinstance(placed, Placement)
    statement.charge(first.key, "team-a", book.demand(first.options[0]))
    after_first = free(state)
    other = statement.place(second.key, gang_for(second, second.options[0]))
    assert isinstance(other, Placement)
    statement.charge(second.key, "team-b", book.demand(second.options[0]))
    assert statement.pending(first.key) == ("place", "charge")

    assert statement.discard(second.key) == 2
    assert free(state) == after_first
    assert book.usage("team-b") == {} and book.usage("team-a") == {"devices:ascend-910b": milli(8)}
    assert statement.discard(second.key) == 0  # nothing left to undo: never undone twice
    statement.commit(first.key)
    assert statement.discard(first.key) == 0  # committed: it stays
    assert free(state) == after_first != before


def test_an_eviction_trial_is_restored_exactly(new_state: Callable[[], object]) -> None:
    state, quotas = world(new_state)
    result = run_cycle([job("team-a/run", ascend(8))], [], quotas, CLASSES, state)  # type: ignore[arg-type]
    (admit,) = result.admitted
    running = Admission(admit.job, 0, admit.placement)
    book = build_book(quotas, CLASSES, [running])
    before_free, before_usage = free(state), book.usage("team-a")
    statement = Statement(book, state)  # type: ignore[arg-type]
    statement.evict(running)
    assert book.usage("team-a") == {}
    mark = len(statement)
    trial = job("team-b/big", ascend(8, 2))
    assert isinstance(statement.place(trial.key, gang_for(trial, trial.options[0])), Placement)
    statement.discard_after(mark)
    statement.discard_after(0)
    assert free(state) == before_free and book.usage("team-a") == before_usage


def test_rollback_of_a_cycle_admission_needs_its_assumption(
    new_state: Callable[[], object],
) -> None:
    state, quotas = world(new_state)
    before = free(state)
    result = run_cycle([job("team-a/j", ascend(8))], [], quotas, CLASSES, state)  # type: ignore[arg-type]
    (admit,) = result.admitted
    rollback_admission(result, admit)
    assert free(state) == before and result.book.usage("team-a") == {}
    with pytest.raises(SchedulingInputError, match="no assumption"):
        rollback_admission(result, admit)
