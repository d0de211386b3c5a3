"""The operator's side of the metrics contract: rows for ``suanli.metrics.ClusterStateSource``.

Rows are computed once per scheduling cycle from the same snapshot the cycle decided on and
published as one immutable bundle; the scrape thread only ever reads the latest bundle, so a
scrape never sees half a cycle. Metering rows carry raw records (accumulated seconds from the
quota's status, start/finish times of pods), and the counter is computed at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from suanli.controller.cache import Object
from suanli.controller.conditions import epoch_seconds
from suanli.controller.inventory import CatalogueEntry, NodeRecord
from suanli.metrics.source import (
    CapacityRow,
    JobPhaseCount,
    MeteringRow,
    QueueRow,
    QuotaRow,
    RunningAllocation,
)
from suanli.placement.model import ClassCapacity
from suanli.quantity import to_int
from suanli.scheduling.model import QuotaSpec
from suanli.scheduling.quota import QuotaStatus

PHASE_FOR_METRICS = {
    None: "Pending",
    "Queued": "Pending",
    "Preempted": "Pending",
    "Admitted": "Admitted",
    "Running": "Running",
    "Succeeded": "Succeeded",
    "Failed": "Failed",
    "Suspended": "Suspended",
}


@dataclass(frozen=True)
class Rows:
    quotas: tuple[QuotaRow, ...] = ()
    phases: tuple[JobPhaseCount, ...] = ()
    queues: tuple[QueueRow, ...] = ()
    capacity: tuple[CapacityRow, ...] = ()
    metering: tuple[MeteringRow, ...] = ()


@dataclass
class PublishedState:
    """Implements ``ClusterStateSource`` by returning the latest published rows."""

    rows: Rows = field(default_factory=Rows)

    def publish(self, rows: Rows) -> None:
        self.rows = rows

    def quota_rows(self) -> Sequence[QuotaRow]:
        return self.rows.quotas

    def job_phase_counts(self) -> Sequence[JobPhaseCount]:
        return self.rows.phases

    def queue_rows(self) -> Sequence[QueueRow]:
        return self.rows.queues

    def capacity_rows(self) -> Sequence[CapacityRow]:
        return self.rows.capacity

    def metering_rows(self) -> Sequence[MeteringRow]:
        return self.rows.metering


def quota_rows(
    quotas: Iterable[QuotaSpec],
    statuses: Mapping[str, QuotaStatus],
    catalogue: Mapping[str, CatalogueEntry],
) -> tuple[QuotaRow, ...]:
    rows = []
    for spec in quotas:
        status = statuses[spec.name]
        for cls, share in sorted(spec.devices.items()):
            resource = f"devices:{cls}"
            tflops = catalogue[cls].device_class.tflops if cls in catalogue else 0.0
            values = [
                float(share.nominal),
                status.used.get(resource, 0) / 1000,
                status.borrowed.get(resource, 0) / 1000,
                status.lent.get(resource, 0) / 1000,
                status.pending.get(resource, 0) / 1000,
            ]
            pflops = [v * tflops / 1000 for v in values]
            rows.append(QuotaRow(spec.name, cls, *values, *pflops))
    return tuple(rows)


def capacity_rows(
    summary: Mapping[str, ClassCapacity],
    catalogue: Mapping[str, CatalogueEntry],
    nodes: Iterable[NodeRecord],
) -> tuple[CapacityRow, ...]:
    ready: dict[str, int] = {}
    not_ready: dict[str, int] = {}
    for node in nodes:
        if node.device_class is None:
            continue
        bucket = ready if node.schedulable else not_ready
        bucket[node.device_class] = bucket.get(node.device_class, 0) + 1
    rows = []
    for name, entry in sorted(catalogue.items()):
        capacity = summary.get(name)
        total = float(capacity.total_devices) if capacity else 0.0
        allocated = capacity.allocated_milli / 1000 if capacity else 0.0
        free = capacity.free_milli / 1000 if capacity else 0.0
        fragmented = min(capacity.fragmented_milli / 1000, free) if capacity else 0.0
        per = entry.device_class.tflops / 1000
        rows.append(
            CapacityRow(
                name,
                entry.vendor,
                total,
                allocated,
                free,
                fragmented,
                total * per,
                allocated * per,
                free * per,
                fragmented * per,
                ready.get(name, 0),
                not_ready.get(name, 0),
            )
        )
    return tuple(rows)


def pod_allocation(pod: Object, devices: int, tflops: float) -> RunningAllocation | None:
    """Accelerator time one of our pods has used so far (None: it never started)."""
    status: Mapping[str, Any] = pod.get("status") or {}
    started = epoch_seconds(status.get("startTime"))
    if started is None:
        return None
    finished = None
    containers = status.get("containerStatuses") or []
    terminated = [(c.get("state") or {}).get("terminated") for c in containers]
    # done when the pod says so, or when every container has stopped (a deleted pod's
    # containers stop before the kubelet reports a phase)
    if status.get("phase") in ("Succeeded", "Failed") or (terminated and all(terminated)):
        ends = [epoch_seconds((t or {}).get("finishedAt")) for t in terminated]
        known = [e for e in ends if e is not None]
        finished = max(*known, started) if known else started
    elif (pod.get("metadata") or {}).get("deletionTimestamp"):
        # a deleted pod holds its devices until its deletion time at the latest: the exported
        # counter and the bill (suanli.controller.metering) both stop there
        deadline = epoch_seconds(pod["metadata"]["deletionTimestamp"])
        finished = None if deadline is None else max(deadline, started)
    return RunningAllocation(devices, tflops / 1000, started, finished)


def pod_devices(pod: Object, resource_name: str) -> int:
    total = 0
    for container in pod.get("spec", {}).get("containers") or []:
        limits = (container.get("resources") or {}).get("limits") or {}
        total += to_int(limits.get(resource_name, 0))
    return total
