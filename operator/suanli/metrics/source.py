"""What the metrics layer needs to know about the cluster, as a small typed Protocol.

Why a Protocol and plain records instead of reading the operator's cache directly: the gauges
must equal ground truth recomputed from the API server, and the metering counters must survive
operator restarts. Both hold only if every state-derived number is computed at scrape time from
the current records (never accumulated in process memory). The operator implements
``ClusterStateSource`` over its cache; tests implement it with literal rows. The records are
frozen dataclasses that validate themselves, so a bad row fails loudly naming the field instead
of exporting a nonsense sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Protocol, runtime_checkable

JOB_PHASES: tuple[str, ...] = ("Pending", "Admitted", "Running", "Succeeded", "Failed", "Suspended")
"""TrainingJob phases exported by ``suanli_jobs``; every phase is always exported (0 when empty)
so that dashboards and alerts see a stable set of series."""


def _require_label(record: object, field_name: str) -> None:
    value = getattr(record, field_name)
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"{type(record).__name__}.{field_name} must be a non-empty string, got {value!r}"
        )


def _require_non_negative(record: object, field_name: str) -> None:
    value = getattr(record, field_name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{type(record).__name__}.{field_name} must be a number, got {value!r}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"{type(record).__name__}.{field_name} must be >= 0, got {value!r}")


def _validate(record: object, labels: Sequence[str]) -> None:
    # With postponed annotations, field.type is the annotation text: plain "float"/"int" fields
    # are checked here; optional ones ("float | None") by the record itself.
    for field in fields(record):  # type: ignore[arg-type]
        if field.name in labels:
            _require_label(record, field.name)
        elif field.type in ("float", "int"):
            _require_non_negative(record, field.name)


@dataclass(frozen=True)
class QuotaRow:
    """One ComputeQuota's share of one AcceleratorClass, in devices and normalised PFLOPS.

    ``used`` counts devices held by the quota's admitted jobs, borrowed ones included;
    ``borrowed`` is the part of ``used`` above ``nominal`` taken from other quotas' idle share;
    ``lent`` is the part of this quota's ``nominal`` currently used by others;
    ``pending`` is the demand of the quota's jobs still waiting for admission.
    """

    quota: str
    accelerator_class: str
    nominal_devices: float
    used_devices: float
    borrowed_devices: float
    lent_devices: float
    pending_devices: float
    nominal_pflops: float
    used_pflops: float
    borrowed_pflops: float
    lent_pflops: float
    pending_pflops: float

    def __post_init__(self) -> None:
        _validate(self, ("quota", "accelerator_class"))


@dataclass(frozen=True)
class JobPhaseCount:
    """How many TrainingJobs of one quota are in one phase (phase is one of ``JOB_PHASES``)."""

    quota: str
    phase: str
    jobs: int

    def __post_init__(self) -> None:
        _validate(self, ("quota", "phase"))
        if self.phase not in JOB_PHASES:
            raise ValueError(
                f"JobPhaseCount.phase must be one of {', '.join(JOB_PHASES)}, got {self.phase!r}"
            )


@dataclass(frozen=True)
class QueueRow:
    """The admission queue of one quota for one class.

    ``oldest_pending_since`` is the Unix time the longest-waiting pending job started waiting
    (its creation or last requeue); ``None`` when nothing waits.
    """

    quota: str
    accelerator_class: str
    pending_jobs: int
    oldest_pending_since: float | None

    def __post_init__(self) -> None:
        _validate(self, ("quota", "accelerator_class"))
        if self.oldest_pending_since is not None:
            _require_non_negative(self, "oldest_pending_since")
        if (self.pending_jobs == 0) != (self.oldest_pending_since is None):
            raise ValueError(
                "QueueRow.oldest_pending_since must be set exactly when pending_jobs > 0 "
                f"(pending_jobs={self.pending_jobs}, "
                f"oldest_pending_since={self.oldest_pending_since!r})"
            )


@dataclass(frozen=True)
class CapacityRow:
    """Capacity of one AcceleratorClass (always one row per catalogued class, even if empty).

    ``fragmented_devices`` are free devices that no legal request shape of the class can use
    (the placement core's ``capacity_summary()`` computes it); they are part of ``free_devices``.
    Node counts let alerts notice nodes going NotReady or disappearing.
    """

    accelerator_class: str
    vendor: str
    total_devices: float
    allocated_devices: float
    free_devices: float
    fragmented_devices: float
    total_pflops: float
    allocated_pflops: float
    free_pflops: float
    fragmented_pflops: float
    ready_nodes: int
    not_ready_nodes: int

    def __post_init__(self) -> None:
        _validate(self, ("accelerator_class", "vendor"))
        if self.fragmented_devices > self.free_devices:
            raise ValueError(
                "CapacityRow.fragmented_devices must not exceed free_devices "
                f"({self.fragmented_devices} > {self.free_devices})"
            )


@dataclass(frozen=True)
class RunningAllocation:
    """Devices one running (or finished but not yet folded) pod holds for a quota and class.

    ``finished_at`` is set once the pod ended but before its usage was added to the quota's
    ``status.metering``; usage then stops growing at ``finished_at``.
    """

    devices: int
    pflops_per_device: float
    started_at: float
    finished_at: float | None = None

    def __post_init__(self) -> None:
        _validate(self, ())
        if self.finished_at is not None:
            _require_non_negative(self, "finished_at")
            if self.finished_at < self.started_at:
                raise ValueError(
                    "RunningAllocation.finished_at must not be before started_at "
                    f"({self.finished_at} < {self.started_at})"
                )


@dataclass(frozen=True)
class MeteringRow:
    """Everything needed to meter one quota × class, straight from the API server's records.

    ``accumulated_*`` come from ComputeQuota ``status.metering`` (usage of pods that finished and
    were folded in); ``running`` lists pods still holding devices. The exported counter is
    ``accumulated + Σ (min(now, finished_at) − started_at) × devices`` — see
    ``suanli.metrics.metering``.
    """

    quota: str
    accelerator_class: str
    accumulated_device_seconds: float
    accumulated_pflop_seconds: float
    running: tuple[RunningAllocation, ...] = ()

    def __post_init__(self) -> None:
        _validate(self, ("quota", "accelerator_class"))


@runtime_checkable
class ClusterStateSource(Protocol):
    """A consistent read of the operator's cache, asked for at every scrape.

    Implementations return fresh immutable rows each call and must not block on the API server:
    the cache is the source, and it mirrors the API server. At most one ``QuotaRow`` and
    ``QueueRow`` per (quota, class) and one ``CapacityRow`` per class: a duplicate would expose
    the same series twice, which Prometheus rejects. ``JobPhaseCount`` and ``MeteringRow``
    duplicates are summed.
    """

    def quota_rows(self) -> Sequence[QuotaRow]: ...

    def job_phase_counts(self) -> Sequence[JobPhaseCount]: ...

    def queue_rows(self) -> Sequence[QueueRow]: ...

    def capacity_rows(self) -> Sequence[CapacityRow]: ...

    def metering_rows(self) -> Sequence[MeteringRow]: ...
