"""Event metrics of the operator and the registry that ``/metrics`` serves.

Why a ``Metrics`` object with small typed methods instead of module-level prometheus_client
globals: every test gets its own registry (no cross-test bleed), label values are checked in one
place (bounded labels only: quota, class, vendor, resource, reason — never a pod or job name), and
the operator's code reads as ``metrics.count_admission(quota, cls, "WithinNominal")`` rather than
label plumbing. State-derived families come from ``ClusterStateCollector`` attached with
``attach_state``; this module holds only what happens (admissions, cycles, errors, leadership).
"""

from __future__ import annotations

import platform
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import generate_latest

from suanli.metrics.collector import ClusterStateCollector
from suanli.metrics.source import ClusterStateSource
from suanli.reasons import (
    ADMISSION_REASONS,
    API_ERROR_REASONS,
    EVICTION_REASONS,
    OBJECT_ERROR_REASONS,
    REJECTION_REASONS,
)

OBJECT_KINDS = ("TrainingJob", "ComputeQuota", "AcceleratorClass")

LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
"""Scheduling cycle and placement latency: sub-millisecond to half a minute."""

QUEUE_WAIT_BUCKETS: tuple[float, ...] = (
    1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400, 259200,
)  # fmt: skip
"""Queue wait: seconds (idle centre) to three days (a big job behind a full quota)."""

API_RESOURCES = ("trainingjobs", "computequotas", "acceleratorclasses", "pods", "services",
                 "configmaps", "events", "leases")  # fmt: skip

_REASON = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")
_LABEL_VALUE_MAX = 253  # a Kubernetes object name; quota and class names are object names


def _label(field: str, value: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _LABEL_VALUE_MAX:
        raise ValueError(f"{field} must be a non-empty string of at most 253 chars, got {value!r}")
    return value


def _reason(value: str) -> str:
    """Reasons are CamelCase constants (like Kubernetes event reasons), which keeps them bounded."""
    if not isinstance(value, str) or not _REASON.match(value):
        raise ValueError(
            f"reason must be a CamelCase constant such as 'QuotaExceeded', got {value!r}"
        )
    return value


def _seconds(field: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{field} must be a number of seconds >= 0, got {value!r}")
    return float(value)


class Metrics:
    """All metrics one operator process exposes, in its own registry."""

    def __init__(self, version: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._leader = False
        build = Info(
            "suanli_build", "Version of the running suanli operator.", registry=self.registry
        )
        build.info({"version": _label("version", version), "python": platform.python_version()})
        self._leader_gauge = Gauge(
            "suanli_scheduler_leader",
            "1 when this operator replica leads (schedules and exports cluster state), else 0.",
            registry=self.registry,
        )
        self._admissions = Counter(
            "suanli_admissions",
            "TrainingJobs admitted, by quota, class and reason (e.g. WithinNominal, Borrowed).",
            ("quota", "class", "reason"),
            registry=self.registry,
        )
        self._rejections = Counter(
            "suanli_rejections",
            "TrainingJobs refused admission, by quota, class and reason.",
            ("quota", "class", "reason"),
            registry=self.registry,
        )
        self._evictions = Counter(
            "suanli_evictions",
            "Running TrainingJobs evicted, by quota, class and reason (e.g. Preempted, NodeLost).",
            ("quota", "class", "reason"),
            registry=self.registry,
        )
        self._preemptions = Counter(
            "suanli_preemptions",
            "Preemptions performed to admit a job of the quota (labels are the preemptor's).",
            ("quota", "class"),
            registry=self.registry,
        )
        self._gang_restarts = Counter(
            "suanli_gang_restarts",
            "Whole-gang restarts of TrainingJobs after a member pod failed.",
            ("quota", "class"),
            registry=self.registry,
        )
        self._queue_wait = Histogram(
            "suanli_queue_wait_seconds",
            "Time from a TrainingJob entering the queue to its admission.",
            ("quota", "class"),
            buckets=QUEUE_WAIT_BUCKETS,
            registry=self.registry,
        )
        self._cycle = Histogram(
            "suanli_scheduler_cycle_duration_seconds",
            "Duration of one scheduling cycle over the whole queue.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._placement = Histogram(
            "suanli_scheduler_placement_latency_seconds",
            "Time the placement core took to place one gang, by accelerator class.",
            ("class",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._api_errors = Counter(
            "suanli_kubernetes_api_errors",
            "Failed Kubernetes API calls, by resource kind and reason (e.g. Conflict, Timeout).",
            ("resource", "reason"),
            registry=self.registry,
        )
        self._object_errors = Counter(
            "suanli_object_errors",
            "Objects the operator could not handle, by kind and reason (Invalid: refused at the "
            "cache; CreateRefused: the API server refused what was built from it; InternalError: "
            "handling it raised; Conflict: it contradicts an older object). The cycle goes on "
            "for every other object.",
            ("kind", "reason"),
            registry=self.registry,
        )
        self._leader_gauge.set(0)

    # --- state ---------------------------------------------------------------------------------
    def attach_state(
        self, source: ClusterStateSource, clock: Callable[[], float] = time.time
    ) -> ClusterStateCollector:
        """Export cluster-state families read from ``source`` at scrape time, while leading."""
        collector = ClusterStateCollector(source, clock=clock, exporting=lambda: self._leader)
        self.registry.register(collector)
        return collector

    def set_leader(self, leading: bool) -> None:
        self._leader = bool(leading)
        self._leader_gauge.set(1 if self._leader else 0)

    @property
    def leading(self) -> bool:
        return self._leader

    # --- events --------------------------------------------------------------------------------
    def count_admission(self, quota: str, accelerator_class: str, reason: str) -> None:
        self._admissions.labels(
            _label("quota", quota), _label("class", accelerator_class), _reason(reason)
        ).inc()

    def count_rejection(self, quota: str, accelerator_class: str, reason: str) -> None:
        self._rejections.labels(
            _label("quota", quota), _label("class", accelerator_class), _reason(reason)
        ).inc()

    def count_eviction(self, quota: str, accelerator_class: str, reason: str) -> None:
        self._evictions.labels(
            _label("quota", quota), _label("class", accelerator_class), _reason(reason)
        ).inc()

    def count_preemption(self, quota: str, accelerator_class: str) -> None:
        self._preemptions.labels(_label("quota", quota), _label("class", accelerator_class)).inc()

    def count_gang_restart(self, quota: str, accelerator_class: str) -> None:
        self._gang_restarts.labels(_label("quota", quota), _label("class", accelerator_class)).inc()

    def count_api_error(self, resource: str, reason: str) -> None:
        self._api_errors.labels(_label("resource", resource), _reason(reason)).inc()

    def count_object_error(self, kind: str, reason: str) -> None:
        self._object_errors.labels(_label("kind", kind), _reason(reason)).inc()

    def observe_queue_wait(self, quota: str, accelerator_class: str, seconds: float) -> None:
        self._queue_wait.labels(_label("quota", quota), _label("class", accelerator_class)).observe(
            _seconds("seconds", seconds)
        )

    def observe_cycle(self, seconds: float) -> None:
        self._cycle.observe(_seconds("seconds", seconds))

    def observe_placement(self, accelerator_class: str, seconds: float) -> None:
        self._placement.labels(_label("class", accelerator_class)).observe(
            _seconds("seconds", seconds)
        )

    @contextmanager
    def time_cycle(self, clock: Callable[[], float] = time.perf_counter) -> Iterator[None]:
        """``with metrics.time_cycle(): run_cycle()`` — observes the cycle even if it raises."""
        started = clock()
        try:
            yield
        finally:
            self.observe_cycle(max(0.0, clock() - started))

    def initialise(
        self,
        quota_classes: Iterable[tuple[str, str]],
        classes: Iterable[str],
        api_resources: Iterable[str] = API_RESOURCES,
    ) -> None:
        """Create the zero series of every counter for known label values, so ``rate()`` and
        ``increase()`` answer 0 instead of "no data" before the first event (and alerts that
        compare rates see a series at all). Idempotent; only bounded label values are used."""
        for quota, accelerator_class in quota_classes:
            labels = (_label("quota", quota), _label("class", accelerator_class))
            for reason in ADMISSION_REASONS:
                self._admissions.labels(*labels, reason)
            for reason in REJECTION_REASONS:
                self._rejections.labels(*labels, reason)
            for reason in EVICTION_REASONS:
                self._evictions.labels(*labels, reason)
            self._preemptions.labels(*labels)
            self._gang_restarts.labels(*labels)
            self._queue_wait.labels(*labels)
        for accelerator_class in classes:
            self._placement.labels(_label("class", accelerator_class))
        for resource in api_resources:
            for reason in API_ERROR_REASONS:
                self._api_errors.labels(_label("resource", resource), reason)
        for kind in OBJECT_KINDS:
            for reason in OBJECT_ERROR_REASONS:
                self._object_errors.labels(kind, reason)

    # --- exposition ----------------------------------------------------------------------------
    def exposition(self) -> bytes:
        """The Prometheus text exposition of everything in the registry."""
        return generate_latest(self.registry)
