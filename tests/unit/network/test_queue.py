"""Table tests of the hub queue (suanli.network.queue): which hub jobs wait for a centre."""

from __future__ import annotations

from typing import Any

import pytest

from suanli.network import QueuedJob, hub_queue, queue_lengths


def job(name: str, created: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "team-a", "creationTimestamp": created},
        "spec": {
            "replicas": 2,
            "accelerators": [
                {"acceleratorClass": "nvidia-h100", "devicesPerReplica": 4},
                {"acceleratorClass": "ascend-910b", "devicesPerReplica": 8, "replicas": 1},
            ],
        },
        "status": status,
    }


@pytest.mark.parametrize(
    ("status", "queued"),
    [
        ({}, True),  # not handled by the hub yet
        ({"phase": "Queued", "reason": "QuotaExceeded"}, True),
        ({"phase": "Queued", "reason": "Withdrawn"}, True),  # between two centres
        ({"phase": "Queued", "reason": "Dispatched", "centre": "wuhan"}, False),
        ({"phase": "Running", "centre": "wuhan"}, False),
        ({"phase": "Failed", "reason": "NoCentre"}, False),  # finished: not waiting
        ({"phase": "Succeeded"}, False),
    ],
)
def test_which_jobs_wait_for_a_centre(status: dict[str, Any], queued: bool) -> None:
    assert bool(hub_queue([job("a", "2026-01-01T00:00:00Z", **status)])) is queued


def test_oldest_first_with_options_reason_and_quota() -> None:
    jobs = [
        job("late", "2026-01-01T00:00:09Z", phase="Queued", reason="NoCentre", quota="team-a"),
        job("early", "2026-01-01T00:00:01Z", phase="Queued", reason="QuotaExceeded", message="m"),
    ]
    deleting = job("gone", "2026-01-01T00:00:00Z")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    queued = hub_queue([*jobs, deleting])
    assert [q.name for q in queued] == ["early", "late"]
    assert queued[0] == QueuedJob(
        "team-a",
        "early",
        None,
        "QuotaExceeded",
        "m",
        "2026-01-01T00:00:01Z",
        ("2×4 nvidia-h100", "1×8 ascend-910b"),
    )
    assert queue_lengths(queued) == {("", "QuotaExceeded"): 1, ("team-a", "NoCentre"): 1}
