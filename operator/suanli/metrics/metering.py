"""Per-tenant metering: device-seconds and PFLOP-seconds consumed per quota and class.

Why derived, not accumulated: the centre bills tenants from these counters, and an operator
restart (or a leader change) must neither lose nor double-count usage. So the value is a pure
function of records that live in the API server — the seconds of finished pods folded into
ComputeQuota ``status.metering``, plus the elapsed time of pods still running — and of the clock.
For fixed records the value only grows with time; a restarted operator reading the same records
reports the same or a larger value, which keeps Prometheus counters monotone.

The one obligation on the operator: folding a finished pod into ``status.metering`` and dropping
it from the running set must happen in one write, with the fold adding exactly
``(finished_at − started_at) × devices`` (see ``folded_usage``), so the total never jumps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from suanli.metrics.source import MeteringRow, RunningAllocation


@dataclass(frozen=True)
class MeteredUsage:
    """Consumed compute of one quota × class up to a moment."""

    quota: str
    accelerator_class: str
    device_seconds: float
    pflop_seconds: float


def elapsed_seconds(allocation: RunningAllocation, now: float) -> float:
    """Seconds the allocation has held its devices by ``now``; never negative.

    A pod whose start lies in the future (clock skew between nodes and the operator) counts zero
    rather than a negative amount, which would make the counter go down.
    """
    end = now if allocation.finished_at is None else min(now, allocation.finished_at)
    return max(0.0, end - allocation.started_at)


def folded_usage(allocation: RunningAllocation) -> tuple[float, float]:
    """(device-seconds, PFLOP-seconds) to add to ``status.metering`` when a finished pod is folded.

    Equal to what ``meter`` counted for the pod at any time after it finished, so folding leaves
    the exported total unchanged.
    """
    if allocation.finished_at is None:
        raise ValueError("RunningAllocation.finished_at must be set before folding its usage")
    seconds = elapsed_seconds(allocation, allocation.finished_at)
    device_seconds = seconds * allocation.devices
    return device_seconds, device_seconds * allocation.pflops_per_device


def meter(rows: Iterable[MeteringRow], now: float) -> list[MeteredUsage]:
    """Total usage per quota × class at ``now``; rows for the same pair are summed.

    The result is sorted by (quota, class) so exposition order is stable.
    """
    totals: dict[tuple[str, str], tuple[float, float]] = {}
    for row in rows:
        device_seconds = row.accumulated_device_seconds
        pflop_seconds = row.accumulated_pflop_seconds
        for allocation in row.running:
            held = elapsed_seconds(allocation, now) * allocation.devices
            device_seconds += held
            pflop_seconds += held * allocation.pflops_per_device
        key = (row.quota, row.accelerator_class)
        previous_devices, previous_pflops = totals.get(key, (0.0, 0.0))
        totals[key] = (previous_devices + device_seconds, previous_pflops + pflop_seconds)
    return [
        MeteredUsage(quota, accelerator_class, device_seconds, pflop_seconds)
        for (quota, accelerator_class), (device_seconds, pflop_seconds) in sorted(totals.items())
    ]
