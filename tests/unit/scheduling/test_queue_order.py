"""Small pieces no other scheduling test reaches: the queue's display order, a job's demand per
option, the cohort-name check, and what a cycle's statement logs for an admission."""

from __future__ import annotations

from fractions import Fraction

import pytest

from suanli.scheduling.cycle import run_cycle
from suanli.scheduling.model import SchedulingInputError
from suanli.scheduling.queue import global_order
from suanli.scheduling.quota import QuotaBook, device_resource

from .helpers import CLASSES, ascend, h100, job, quota


def test_global_order_is_priority_then_lower_share_then_age_then_key() -> None:
    jobs = {
        "busy": [
            job("busy/old", ascend(1), created=1),
            job("busy/urgent", ascend(1), priority=5, created=9),
        ],
        "idle": [
            job("idle/b", ascend(1), created=2),
            job("idle/a", ascend(1), created=2),
        ],
    }
    shares = {"busy": Fraction(3, 4), "idle": Fraction(1, 4)}
    ordered = global_order(jobs, shares.__getitem__)
    assert [j.key for j in ordered] == ["busy/urgent", "idle/a", "idle/b", "busy/old"]


def test_global_order_of_no_jobs_is_empty() -> None:
    assert global_order({"busy": []}, lambda _: Fraction(0)) == []


def test_job_demand_charges_the_chosen_option() -> None:
    book = QuotaBook([quota("team", h100=16, ascend=16)], CLASSES)
    request = job("team/x", h100(8, 2), ascend(4, 3))
    assert book.job_demand(request, 0) == {device_resource("nvidia-h100"): 16_000}
    assert book.job_demand(request, 1) == {device_resource("ascend-910b"): 12_000}


def test_an_empty_cohort_name_is_refused_naming_the_field() -> None:
    with pytest.raises(SchedulingInputError, match="quota team: cohort must be a name or unset"):
        quota("team", ascend=8, cohort="")


def test_a_statement_logs_the_placement_and_the_charge_of_an_admission() -> None:
    from suanli.placement.reference import ClusterState

    from .helpers import ASCEND, add_nodes

    state = ClusterState(CLASSES)
    add_nodes(state, ASCEND, 1)
    result = run_cycle([job("team/x", ascend(4))], [], [quota("team", ascend=8)], CLASSES, state)
    assert result.statement is not None
    assert result.statement.pending("team/x") == ("place", "charge")
