"""Scrape-time metrics derived from cluster state: quotas, jobs, queues, capacity, metering.

Why a custom collector instead of gauges the operator sets: a gauge that the operator updates
drifts from the API server whenever an update is missed, and a counter kept in memory resets on
restart. Here nothing is stored; each scrape asks a ``ClusterStateSource`` for the current
records and turns them into samples, so the numbers equal what you would recompute from the API
server at that moment, and metering counters are the pure function in ``suanli.metrics.metering``.

Only the leading replica exports these families (``exporting`` decides): followers see the same
cache, and summing two copies in a dashboard would double the centre.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from suanli.metrics.metering import meter
from suanli.metrics.source import (
    JOB_PHASES,
    CapacityRow,
    ClusterStateSource,
    QuotaRow,
)

QUOTA_LABELS = ("quota", "class")
CAPACITY_LABELS = ("class", "vendor")


@dataclass(frozen=True)
class RowGauge:
    """A gauge whose value is one attribute of a source row."""

    name: str
    attribute: str
    help: str


QUOTA_GAUGES: tuple[RowGauge, ...] = tuple(
    RowGauge(f"suanli_quota_{what}_{unit}", f"{what}_{unit}", f"{text} ({unit_text}).")
    for what, text in (
        ("nominal", "Guaranteed share of the quota for the accelerator class"),
        ("used", "Held by the quota's admitted jobs, borrowed devices included"),
        ("borrowed", "Part of used above nominal, taken from other quotas' idle share"),
        ("lent", "Part of the quota's nominal share currently used by other quotas"),
        ("pending", "Demand of the quota's jobs waiting for admission"),
    )
    for unit, unit_text in (("devices", "devices"), ("pflops", "normalised PFLOPS"))
)

CAPACITY_GAUGES: tuple[RowGauge, ...] = tuple(
    RowGauge(f"suanli_capacity_{what}_{unit}", f"{what}_{unit}", f"{text} ({unit_text}).")
    for what, text in (
        ("total", "Accelerators of the class on schedulable nodes"),
        ("allocated", "Accelerators of the class held by pods"),
        ("free", "Accelerators of the class not held by any pod"),
        ("fragmented", "Free accelerators that no legal request shape of the class can use"),
    )
    for unit, unit_text in (("devices", "devices"), ("pflops", "normalised PFLOPS"))
)

JOBS = "suanli_jobs"
QUEUE_PENDING_JOBS = "suanli_queue_pending_jobs"
QUEUE_OLDEST_PENDING_AGE = "suanli_queue_oldest_pending_age_seconds"
NODES = "suanli_nodes"
METERED_DEVICE_SECONDS = "suanli_metered_device_seconds"
METERED_PFLOP_SECONDS = "suanli_metered_pflop_seconds"


class ClusterStateCollector:
    """A prometheus_client collector reading a ``ClusterStateSource`` at every scrape."""

    def __init__(
        self,
        source: ClusterStateSource,
        clock: Callable[[], float] = time.time,
        exporting: Callable[[], bool] = lambda: True,
    ) -> None:
        if not isinstance(source, ClusterStateSource):
            raise TypeError(
                f"source must implement ClusterStateSource, got {type(source).__name__}"
            )
        self._source = source
        self._clock = clock
        self._exporting = exporting

    def describe(self) -> Iterable[Metric]:
        """The families without samples, so registering never calls the source."""
        gauges, counters = self._families()
        return [*gauges.values(), *counters.values()]

    def collect(self) -> Iterable[Metric]:
        if not self._exporting():
            return []
        now = self._clock()
        gauges, counters = self._families()
        self._add_quota_rows(gauges, self._source.quota_rows())
        self._add_capacity_rows(gauges, self._source.capacity_rows())
        jobs = gauges[JOBS]
        counts: dict[tuple[str, str], int] = {}
        for count in self._source.job_phase_counts():
            key = (count.quota, count.phase)
            counts[key] = counts.get(key, 0) + count.jobs
        for quota in sorted({quota for quota, _ in counts}):
            for phase in JOB_PHASES:
                jobs.add_metric([quota, phase], counts.get((quota, phase), 0))
        for queue in self._source.queue_rows():
            labels = [queue.quota, queue.accelerator_class]
            gauges[QUEUE_PENDING_JOBS].add_metric(labels, queue.pending_jobs)
            waited = (
                0.0
                if queue.oldest_pending_since is None
                else max(0.0, now - queue.oldest_pending_since)
            )
            gauges[QUEUE_OLDEST_PENDING_AGE].add_metric(labels, waited)
        for usage in meter(self._source.metering_rows(), now):
            labels = [usage.quota, usage.accelerator_class]
            counters[METERED_DEVICE_SECONDS].add_metric(labels, usage.device_seconds)
            counters[METERED_PFLOP_SECONDS].add_metric(labels, usage.pflop_seconds)
        return [*gauges.values(), *counters.values()]

    @staticmethod
    def _add_quota_rows(gauges: dict[str, GaugeMetricFamily], rows: Iterable[QuotaRow]) -> None:
        for row in rows:
            for gauge in QUOTA_GAUGES:
                gauges[gauge.name].add_metric(
                    [row.quota, row.accelerator_class], getattr(row, gauge.attribute)
                )

    @staticmethod
    def _add_capacity_rows(
        gauges: dict[str, GaugeMetricFamily], rows: Iterable[CapacityRow]
    ) -> None:
        for row in rows:
            labels = [row.accelerator_class, row.vendor]
            for gauge in CAPACITY_GAUGES:
                gauges[gauge.name].add_metric(labels, getattr(row, gauge.attribute))
            nodes = gauges[NODES]
            nodes.add_metric([*labels, "ready"], row.ready_nodes)
            nodes.add_metric([*labels, "not_ready"], row.not_ready_nodes)

    @staticmethod
    def _families() -> tuple[dict[str, GaugeMetricFamily], dict[str, CounterMetricFamily]]:
        gauges: dict[str, GaugeMetricFamily] = {}
        counters: dict[str, CounterMetricFamily] = {}
        for quota_gauge in QUOTA_GAUGES:
            gauges[quota_gauge.name] = GaugeMetricFamily(
                quota_gauge.name, quota_gauge.help, labels=QUOTA_LABELS
            )
        for capacity_gauge in CAPACITY_GAUGES:
            gauges[capacity_gauge.name] = GaugeMetricFamily(
                capacity_gauge.name, capacity_gauge.help, labels=CAPACITY_LABELS
            )
        gauges[NODES] = GaugeMetricFamily(
            NODES,
            "Nodes carrying the accelerator class, by readiness (state: ready, not_ready).",
            labels=(*CAPACITY_LABELS, "state"),
        )
        gauges[JOBS] = GaugeMetricFamily(
            JOBS, "TrainingJobs of the quota in each phase.", labels=("quota", "phase")
        )
        gauges[QUEUE_PENDING_JOBS] = GaugeMetricFamily(
            QUEUE_PENDING_JOBS,
            "TrainingJobs of the quota waiting for admission on the class.",
            labels=QUOTA_LABELS,
        )
        gauges[QUEUE_OLDEST_PENDING_AGE] = GaugeMetricFamily(
            QUEUE_OLDEST_PENDING_AGE,
            "How long the longest-waiting pending job of the quota has waited (0 when none).",
            labels=QUOTA_LABELS,
        )
        counters[METERED_DEVICE_SECONDS] = CounterMetricFamily(
            METERED_DEVICE_SECONDS,
            "Accelerator-seconds consumed by the quota on the class, derived from job and pod "
            "records (survives operator restarts).",
            labels=QUOTA_LABELS,
        )
        counters[METERED_PFLOP_SECONDS] = CounterMetricFamily(
            METERED_PFLOP_SECONDS,
            "Normalised PFLOP-seconds consumed by the quota on the class, derived from job and "
            "pod records (survives operator restarts).",
            labels=QUOTA_LABELS,
        )
        return gauges, counters
