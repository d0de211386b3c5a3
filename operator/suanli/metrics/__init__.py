"""Prometheus metrics of the suanli operator (an edge module: it may import prometheus_client).

``Metrics`` holds the event metrics and the registry; ``ClusterStateSource`` is what the operator
implements so that state-derived gauges and metering counters are computed at scrape time from
its cache. ``exposed_series_names`` lists every series name the registry can expose, which the
dashboards and alerts are checked against.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from suanli.metrics.collector import ClusterStateCollector
from suanli.metrics.hub import (
    HubCentreClass,
    HubCentreRow,
    HubMetrics,
    HubQueueRow,
    HubStateCollector,
    HubStateSource,
)
from suanli.metrics.metering import MeteredUsage, folded_usage, meter
from suanli.metrics.registry import Metrics
from suanli.metrics.source import (
    JOB_PHASES,
    CapacityRow,
    ClusterStateSource,
    JobPhaseCount,
    MeteringRow,
    QueueRow,
    QuotaRow,
    RunningAllocation,
)

_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
}


def exposed_series_names(registry: CollectorRegistry) -> frozenset[str]:
    """Every sample name the registry exposes now, including families that have no samples yet.

    Derived from the family names and types, so it does not depend on which label values happen
    to have been observed. ``_created`` series are left out: no query should use them.
    """
    names: set[str] = set()
    for family in registry.collect():
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return frozenset(names)


def operator_series_names() -> frozenset[str]:
    """Every series name a fully wired, leading member operator exposes (events and state)."""
    metrics = Metrics(version="catalogue")
    metrics.attach_state(_NoState())
    metrics.set_leader(True)
    return exposed_series_names(metrics.registry)


def hub_series_names() -> frozenset[str]:
    """Every series name the hub (``--hub``) exposes."""
    metrics = HubMetrics(version="catalogue")
    metrics.attach_state(_NoHubState())
    return exposed_series_names(metrics.registry)


def all_series_names() -> frozenset[str]:
    """Every series name a suanli process can expose: member operator or hub."""
    return operator_series_names() | hub_series_names()


class _NoHubState:
    def centre_rows(self) -> list[HubCentreRow]:
        return []

    def queue_rows(self) -> list[HubQueueRow]:
        return []


class _NoState:
    def quota_rows(self) -> list[QuotaRow]:
        return []

    def job_phase_counts(self) -> list[JobPhaseCount]:
        return []

    def queue_rows(self) -> list[QueueRow]:
        return []

    def capacity_rows(self) -> list[CapacityRow]:
        return []

    def metering_rows(self) -> list[MeteringRow]:
        return []


__all__ = [
    "JOB_PHASES",
    "CapacityRow",
    "ClusterStateCollector",
    "ClusterStateSource",
    "HubCentreClass",
    "HubCentreRow",
    "HubMetrics",
    "HubQueueRow",
    "HubStateCollector",
    "HubStateSource",
    "JobPhaseCount",
    "MeteredUsage",
    "MeteringRow",
    "Metrics",
    "QueueRow",
    "QuotaRow",
    "RunningAllocation",
    "all_series_names",
    "exposed_series_names",
    "folded_usage",
    "hub_series_names",
    "meter",
    "operator_series_names",
]
