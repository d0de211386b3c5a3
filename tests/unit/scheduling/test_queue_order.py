"""The queue's display order and a job's demand per option, checked on their own."""

from __future__ import annotations

from fractions import Fraction

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
