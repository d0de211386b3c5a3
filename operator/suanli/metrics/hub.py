"""Metrics of the compute-network hub (``suanli-operator --hub``, docs/network.md).

The same split as the member operator's: what the hub last saw of each centre and its queue is
read at scrape time from a :class:`HubStateSource` (the hub's last completed cycle), so the
gauges say what ``kubectl get computecentres`` says; what happens (dispatches, withdrawals,
re-dispatches, dispatch latency, cycle time) is counted by :class:`HubMetrics` as it happens.
Labels are bounded: centre and quota are object names, class an AcceleratorClass, state and
reason constants — never a job name.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

CENTRE_STATES = ("Reachable", "Unreachable", "OutOfService", "NoKubeconfig")

DISPATCH_LATENCY_BUCKETS: tuple[float, ...] = (
    0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip
"""Copy created → seen admitted: a poll interval or two, up to the dispatch timeout and beyond."""

CYCLE_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class HubCentreClass:
    accelerator_class: str
    devices: int
    free_devices: int
    capacity_pflops: float
    free_pflops: float


@dataclass(frozen=True)
class HubCentreRow:
    """One ComputeCentre as the hub wrote its status in the last cycle."""

    centre: str
    region: str
    state: str
    last_contact: float | None
    jobs: int
    classes: tuple[HubCentreClass, ...] = ()


@dataclass(frozen=True)
class HubQueueRow:
    """Hub jobs not dispatched to any centre, per hub quota and recorded reason."""

    quota: str
    reason: str
    jobs: int


class HubStateSource(Protocol):
    def centre_rows(self) -> Sequence[HubCentreRow]: ...

    def queue_rows(self) -> Sequence[HubQueueRow]: ...


CENTRE_UP = "suanli_hub_centre_up"
CENTRE_STATE = "suanli_hub_centre_state"
CENTRE_LAST_CONTACT = "suanli_hub_centre_last_contact_timestamp_seconds"
CENTRE_JOBS = "suanli_hub_centre_jobs"
CENTRE_DEVICES = "suanli_hub_centre_devices"
CENTRE_FREE_DEVICES = "suanli_hub_centre_free_devices"
CENTRE_PFLOPS = "suanli_hub_centre_pflops"
CENTRE_FREE_PFLOPS = "suanli_hub_centre_free_pflops"
QUEUE_JOBS = "suanli_hub_queue_jobs"


class HubStateCollector:
    """A prometheus_client collector reading a :class:`HubStateSource` at every scrape."""

    def __init__(self, source: HubStateSource) -> None:
        self.source = source

    def describe(self) -> Iterable[Metric]:
        return self._families([], [])

    def collect(self) -> Iterable[Metric]:
        return self._families(self.source.centre_rows(), self.source.queue_rows())

    @staticmethod
    def _families(centres: Sequence[HubCentreRow], queue: Sequence[HubQueueRow]) -> list[Metric]:
        up = GaugeMetricFamily(
            CENTRE_UP,
            "1 when the hub's last poll of the centre answered within the centre-lost time "
            "(state Reachable), else 0.",
            labels=("centre", "region"),
        )
        state = GaugeMetricFamily(
            CENTRE_STATE,
            "1 for the centre's current state (Reachable, Unreachable, OutOfService, "
            "NoKubeconfig), 0 for the others.",
            labels=("centre", "state"),
        )
        contact = GaugeMetricFamily(
            CENTRE_LAST_CONTACT,
            "Unix time of the centre's last answered poll (absent: never answered).",
            labels=("centre",),
        )
        jobs = GaugeMetricFamily(
            CENTRE_JOBS, "Hub jobs whose current copy is in the centre.", labels=("centre",)
        )
        per_class = ("centre", "class")
        devices = GaugeMetricFamily(
            CENTRE_DEVICES, "Devices of the class in the centre (last poll).", labels=per_class
        )
        free = GaugeMetricFamily(
            CENTRE_FREE_DEVICES,
            "Devices of the class not held by suanli pods in the centre (last poll).",
            labels=per_class,
        )
        pflops = GaugeMetricFamily(
            CENTRE_PFLOPS,
            "Normalised PFLOPS of the class in the centre (last poll).",
            labels=per_class,
        )
        free_pflops = GaugeMetricFamily(
            CENTRE_FREE_PFLOPS,
            "Free normalised PFLOPS of the class in the centre (last poll).",
            labels=per_class,
        )
        queued = GaugeMetricFamily(
            QUEUE_JOBS,
            "Hub jobs not dispatched to any centre yet, by hub quota and the reason the hub "
            "recorded (QuotaExceeded, NoCentre, Withdrawn, …).",
            labels=("quota", "reason"),
        )
        for row in centres:
            up.add_metric((row.centre, row.region), 1.0 if row.state == "Reachable" else 0.0)
            for name in CENTRE_STATES:
                state.add_metric((row.centre, name), 1.0 if row.state == name else 0.0)
            if row.last_contact is not None:
                contact.add_metric((row.centre,), row.last_contact)
            jobs.add_metric((row.centre,), float(row.jobs))
            for entry in row.classes:
                key = (row.centre, entry.accelerator_class)
                devices.add_metric(key, float(entry.devices))
                free.add_metric(key, float(entry.free_devices))
                pflops.add_metric(key, entry.capacity_pflops)
                free_pflops.add_metric(key, entry.free_pflops)
        for q in queue:
            queued.add_metric((q.quota, q.reason), float(q.jobs))
        return [up, state, contact, jobs, devices, free, pflops, free_pflops, queued]


class HubMetrics:
    """Everything the hub process exposes on ``--metrics-port``, in its own registry."""

    def __init__(self, version: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        Info(
            "suanli_build", "Version of the running suanli operator.", registry=self.registry
        ).info({"version": version, "python": platform.python_version()})
        self._dispatches = Counter(
            "suanli_hub_dispatches",
            "Copies the hub created in a member centre.",
            ("centre",),
            registry=self.registry,
        )
        self._withdrawals = Counter(
            "suanli_hub_withdrawals",
            "Copies withdrawn because they stayed queued past --dispatch-timeout.",
            ("centre",),
            registry=self.registry,
        )
        self._redispatches = Counter(
            "suanli_hub_redispatches",
            "Hub jobs dispatched again because their copy in the centre was seen gone or the "
            "centre was asserted out of service (labelled with the centre left).",
            ("centre",),
            registry=self.registry,
        )
        self._latency = Histogram(
            "suanli_hub_dispatch_latency_seconds",
            "From the hub creating a copy to the hub seeing it admitted in the member.",
            ("centre",),
            buckets=DISPATCH_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._leader = Gauge(
            "suanli_hub_leader",
            "1 while this hub replica holds the hub Lease and dispatches, else 0 (a standby "
            "polls the centres but writes nothing).",
            registry=self.registry,
        )
        self._cycle = Histogram(
            "suanli_hub_cycle_duration_seconds",
            "Duration of one hub cycle (poll every centre, dispatch, mirror, write status).",
            buckets=CYCLE_BUCKETS,
            registry=self.registry,
        )

    def attach_state(self, source: HubStateSource) -> HubStateCollector:
        collector = HubStateCollector(source)
        self.registry.register(collector)
        return collector

    def initialise(self, centres: Iterable[str]) -> None:
        """Zero series for known centres, so rate() answers 0 before the first event."""
        for centre in centres:
            self._dispatches.labels(centre)
            self._withdrawals.labels(centre)
            self._redispatches.labels(centre)
            self._latency.labels(centre)

    def count_dispatch(self, centre: str) -> None:
        self._dispatches.labels(centre).inc()

    def count_withdrawal(self, centre: str) -> None:
        self._withdrawals.labels(centre).inc()

    def count_redispatch(self, centre: str) -> None:
        self._redispatches.labels(centre).inc()

    def observe_dispatch_latency(self, centre: str, seconds: float) -> None:
        self._latency.labels(centre).observe(max(seconds, 0.0))

    def set_leader(self, leading: bool) -> None:
        self._leader.set(1 if leading else 0)

    def observe_cycle(self, seconds: float) -> None:
        self._cycle.observe(max(seconds, 0.0))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
