"""Cycle and model details the scenario tables only sample (found missing by mutation testing):
the borrowing pass comes after every in-quota admission, a waiting job keeps the overtaking count
it carries, a gang carries its CPU and memory into the core, a zero compute budget is legal, and
the book reports one job's charge."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest

from suanli.placement.model import GangOption
from suanli.reasons import Reason
from suanli.scheduling.cycle import Admit, Wait, run_cycle
from suanli.scheduling.gangs import gang_option
from suanli.scheduling.model import JobOption, QuotaSpec, SchedulingInputError
from suanli.scheduling.quota import QuotaBook, device_resource

from .helpers import ASCEND, CLASSES, add_nodes, ascend, job, milli, quota

StateFactory = Callable[[], Any]


def test_borrowing_waits_for_every_quota_s_own_jobs(new_state: StateFactory) -> None:
    """team-a's gang needs 8 borrowed devices and comes first (priority 9); team-b's job is
    inside its own quota. The first pass admits only in-quota work, so team-b runs and team-a,
    which could only have borrowed what team-b now uses, waits."""
    state = new_state()
    add_nodes(state, ASCEND, 2)
    lab = [quota("team-a", ascend=8, cohort="lab"), quota("team-b", ascend=8, cohort="lab")]
    pending = [
        job("team-a/big", ascend(8, 2), created=1, priority=9),
        job("team-b/mine", ascend(8), created=2),
    ]
    result = run_cycle(pending, [], lab, CLASSES, state)
    assert [(type(d).__name__, d.job.key) for d in result.decisions] == [
        ("Admit", "team-b/mine"),
        ("Wait", "team-a/big"),
    ]
    wait = result.decision_for("team-a/big")
    assert isinstance(wait, Wait) and wait.reason is Reason.QUOTA_EXCEEDED


@pytest.mark.parametrize(
    ("option", "reason"),
    [(ascend(8, 3), Reason.QUOTA_EXCEEDED), (ascend(3), Reason.ILLEGAL_SHAPE)],
    ids=["over-quota", "illegal-shape"],
)
def test_a_waiting_job_keeps_the_overtaking_count_it_carries(
    new_state: StateFactory, option: JobOption, reason: Reason
) -> None:
    state = new_state()
    add_nodes(state, ASCEND, 2)
    result = run_cycle(
        [job("team-a/big", option, created=1)],
        [],
        [quota("team-a", ascend=16)],
        CLASSES,
        state,
        overtaken={"team-a/big": 2},
    )
    (decision,) = result.decisions
    assert isinstance(decision, Wait)
    assert (decision.reason, decision.overtaken) == (reason, 2)
    assert not isinstance(decision, Admit)


def test_a_gang_option_carries_the_replica_s_cpu_and_memory() -> None:
    option = JobOption(
        "ascend-910b", 2, 1, cpu_milli_per_replica=4000, memory_bytes_per_replica=2**31
    )
    assert gang_option(option) == GangOption(
        "ascend-910b", devices_per_replica=2, milli=1000, cpu_milli=4000, memory_mib=2048
    )


@pytest.mark.parametrize("budget", [0, Fraction(1, 2), 3])
def test_a_compute_budget_of_zero_or_a_fraction_is_legal(budget: Fraction | int) -> None:
    spec = QuotaSpec("q", frozenset({"q"}), {}, compute_budget_pflops=budget)
    assert spec.compute_budget_pflops == budget


def test_a_negative_compute_budget_is_refused() -> None:
    with pytest.raises(SchedulingInputError, match="compute_budget_pflops must be >= 0"):
        QuotaSpec("q", frozenset({"q"}), {}, compute_budget_pflops=-1)


def test_the_book_reports_one_job_s_charge() -> None:
    book = QuotaBook([quota("team-a", ascend=16)], CLASSES)
    demand = book.demand(ascend(4, 2))
    book.charge("team-a/j", "team-a", demand)
    assert demand[device_resource("ascend-910b")] == milli(8)
    assert book.charge_of("team-a/j") == ("team-a", dict(demand))
    assert book.charge_of("team-a/other") is None


@pytest.mark.parametrize("field", ["cpu_milli_per_replica", "memory_bytes_per_replica"])
def test_a_negative_cpu_or_memory_request_is_refused(field: str) -> None:
    with pytest.raises(SchedulingInputError, match=f"{field} must be a non-negative integer"):
        JobOption("ascend-910b", 1, 1, **{field: -1})  # type: ignore[arg-type]
