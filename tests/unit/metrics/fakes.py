"""A ClusterStateSource made of literal rows, as the operator's cache would produce them."""

from __future__ import annotations

from dataclasses import dataclass, field

from suanli.metrics import (
    CapacityRow,
    JobPhaseCount,
    MeteringRow,
    QueueRow,
    QuotaRow,
    RunningAllocation,
)

NOW = 1_800_000_000.0


@dataclass
class FakeSource:
    quotas: list[QuotaRow] = field(default_factory=list)
    phases: list[JobPhaseCount] = field(default_factory=list)
    queues: list[QueueRow] = field(default_factory=list)
    capacity: list[CapacityRow] = field(default_factory=list)
    metering: list[MeteringRow] = field(default_factory=list)
    calls: int = 0

    def quota_rows(self) -> list[QuotaRow]:
        self.calls += 1
        return list(self.quotas)

    def job_phase_counts(self) -> list[JobPhaseCount]:
        return list(self.phases)

    def queue_rows(self) -> list[QueueRow]:
        return list(self.queues)

    def capacity_rows(self) -> list[CapacityRow]:
        return list(self.capacity)

    def metering_rows(self) -> list[MeteringRow]:
        return list(self.metering)


def quota_row(quota: str = "team-a", cls: str = "ascend-910b", **values: float) -> QuotaRow:
    defaults: dict[str, float] = {
        "nominal_devices": 32,
        "used_devices": 40,
        "borrowed_devices": 8,
        "lent_devices": 0,
        "pending_devices": 16,
        "nominal_pflops": 10.24,
        "used_pflops": 12.8,
        "borrowed_pflops": 2.56,
        "lent_pflops": 0,
        "pending_pflops": 5.12,
    }
    defaults.update(values)
    return QuotaRow(quota=quota, accelerator_class=cls, **defaults)


def capacity_row(cls: str = "ascend-910b", vendor: str = "huawei", **values: float) -> CapacityRow:
    defaults: dict[str, float] = {
        "total_devices": 64,
        "allocated_devices": 40,
        "free_devices": 24,
        "fragmented_devices": 3,
        "total_pflops": 20.48,
        "allocated_pflops": 12.8,
        "free_pflops": 7.68,
        "fragmented_pflops": 0.96,
        "ready_nodes": 4,
        "not_ready_nodes": 1,
    }
    defaults.update(values)
    ready = int(defaults.pop("ready_nodes"))
    not_ready = int(defaults.pop("not_ready_nodes"))
    return CapacityRow(
        accelerator_class=cls,
        vendor=vendor,
        ready_nodes=ready,
        not_ready_nodes=not_ready,
        **defaults,
    )


def busy_source() -> FakeSource:
    """Two vendors, two quotas, jobs in several phases, a queue, running and finished usage."""
    return FakeSource(
        quotas=[
            quota_row(),
            quota_row("team-b", "nvidia-h100", used_devices=4, borrowed_devices=0, lent_devices=4),
        ],
        phases=[
            JobPhaseCount("team-a", "Running", 3),
            JobPhaseCount("team-a", "Pending", 2),
            JobPhaseCount("team-b", "Succeeded", 5),
        ],
        queues=[
            QueueRow("team-a", "ascend-910b", pending_jobs=2, oldest_pending_since=NOW - 900),
            QueueRow("team-b", "nvidia-h100", pending_jobs=0, oldest_pending_since=None),
        ],
        capacity=[
            capacity_row(),
            capacity_row(
                "nvidia-h100",
                "nvidia",
                total_devices=16,
                allocated_devices=4,
                free_devices=12,
                fragmented_devices=0,
                fragmented_pflops=0,
            ),
        ],
        metering=[
            MeteringRow(
                "team-a",
                "ascend-910b",
                accumulated_device_seconds=36_000,
                accumulated_pflop_seconds=11_520,
                running=(
                    RunningAllocation(devices=8, pflops_per_device=0.32, started_at=NOW - 600),
                    RunningAllocation(
                        devices=8,
                        pflops_per_device=0.32,
                        started_at=NOW - 300,
                        finished_at=NOW - 100,
                    ),
                ),
            ),
            MeteringRow("team-b", "nvidia-h100", 7_200, 7_128),
        ],
    )
