from __future__ import annotations

import math

import pytest

from suanli.metrics import (
    CapacityRow,
    ClusterStateSource,
    JobPhaseCount,
    MeteringRow,
    QueueRow,
    RunningAllocation,
)
from tests.unit.metrics.fakes import FakeSource, capacity_row, quota_row


def test_fake_source_satisfies_the_protocol() -> None:
    assert isinstance(FakeSource(), ClusterStateSource)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: quota_row(quota=""), "QuotaRow.quota"),
        (lambda: quota_row(cls=""), "QuotaRow.accelerator_class"),
        (lambda: quota_row(used_devices=-1), "QuotaRow.used_devices"),
        (lambda: quota_row(pending_pflops=math.nan), "QuotaRow.pending_pflops"),
        (lambda: quota_row(nominal_devices="32"), "QuotaRow.nominal_devices"),  # type: ignore[arg-type]
        (lambda: JobPhaseCount("team-a", "Runing", 1), "JobPhaseCount.phase"),
        (lambda: JobPhaseCount("team-a", "Running", -1), "JobPhaseCount.jobs"),
        (lambda: QueueRow("team-a", "c", 2, None), "QueueRow.oldest_pending_since"),
        (lambda: QueueRow("team-a", "c", 0, 5.0), "QueueRow.oldest_pending_since"),
        (lambda: capacity_row(vendor=""), "CapacityRow.vendor"),
        (lambda: capacity_row(free_devices=2, fragmented_devices=3), "fragmented_devices"),
        (lambda: capacity_row(ready_nodes=-1), "CapacityRow.ready_nodes"),
        (lambda: RunningAllocation(-8, 0.3, 10.0), "RunningAllocation.devices"),
        (lambda: RunningAllocation(8, 0.3, 10.0, finished_at=5.0), "finished_at"),
        (lambda: MeteringRow("q", "c", -1.0, 0.0), "MeteringRow.accumulated_device_seconds"),
    ],
)
def test_bad_rows_fail_naming_the_field(build: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        build()  # type: ignore[operator]


def test_valid_rows_are_accepted() -> None:
    assert isinstance(capacity_row(), CapacityRow)
    assert QueueRow("team-a", "c", 1, 0.0).pending_jobs == 1
    assert RunningAllocation(8, 0.3, 10.0, finished_at=10.0).finished_at == 10.0
