"""The hub's metrics (suanli.metrics.hub): gauges read from the last cycle, events counted."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from suanli.metrics import HubMetrics, exposed_series_names, hub_series_names
from suanli.metrics.hub import CENTRE_STATES, HubCentreClass, HubCentreRow, HubQueueRow

ASCEND = HubCentreClass("ascend-910b", 16, 8, 5.12, 2.56)


@dataclass
class FakeHub:
    centres: list[HubCentreRow] = field(default_factory=list)
    queue: list[HubQueueRow] = field(default_factory=list)

    def centre_rows(self) -> list[HubCentreRow]:
        return self.centres

    def queue_rows(self) -> list[HubQueueRow]:
        return self.queue


def network() -> FakeHub:
    """Wuhan answering, Nanjing lost (its classes as last polled), Xi'an never reached."""
    return FakeHub(
        [
            HubCentreRow("wuhan", "hubei", "Reachable", 1_700_000_000.0, 2, (ASCEND,)),
            HubCentreRow("nanjing", "jiangsu", "Unreachable", 1_699_999_000.0, 1, (ASCEND,)),
            HubCentreRow("xian", "shaanxi", "NoKubeconfig", None, 0),
        ],
        [HubQueueRow("team-a", "QuotaExceeded", 3), HubQueueRow("", "NoQuota", 1)],
    )


def samples(metrics: HubMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
    }


def test_gauges_say_what_the_last_cycle_wrote() -> None:
    metrics = HubMetrics("1.2.3")
    metrics.attach_state(network())
    got = samples(metrics)
    assert got[("suanli_hub_centre_up", (("centre", "wuhan"), ("region", "hubei")))] == 1
    assert got[("suanli_hub_centre_up", (("centre", "nanjing"), ("region", "jiangsu")))] == 0
    for state in CENTRE_STATES:
        value = got[("suanli_hub_centre_state", (("centre", "nanjing"), ("state", state)))]
        assert value == (1 if state == "Unreachable" else 0)
    contact = "suanli_hub_centre_last_contact_timestamp_seconds"
    assert got[(contact, (("centre", "wuhan"),))] == 1_700_000_000
    assert not [k for k in got if k[0] == contact and ("centre", "xian") in k[1]]
    key = (("centre", "wuhan"), ("class", "ascend-910b"))
    assert got[("suanli_hub_centre_devices", key)] == 16
    assert got[("suanli_hub_centre_free_devices", key)] == 8
    assert got[("suanli_hub_centre_free_pflops", key)] == 2.56
    assert got[("suanli_hub_centre_pflops", key)] == 5.12
    assert got[("suanli_hub_centre_jobs", (("centre", "wuhan"),))] == 2
    queue = (("quota", "team-a"), ("reason", "QuotaExceeded"))
    assert got[("suanli_hub_queue_jobs", queue)] == 3


def test_events_are_counted_per_centre() -> None:
    metrics = HubMetrics("1.2.3")
    metrics.attach_state(FakeHub())
    metrics.initialise(["wuhan"])
    assert samples(metrics)[("suanli_hub_dispatches_total", (("centre", "wuhan"),))] == 0
    metrics.count_dispatch("wuhan")
    metrics.count_withdrawal("wuhan")
    metrics.count_redispatch("nanjing")
    metrics.observe_dispatch_latency("wuhan", 1.3)
    metrics.observe_cycle(0.2)
    got = samples(metrics)
    assert got[("suanli_hub_dispatches_total", (("centre", "wuhan"),))] == 1
    assert got[("suanli_hub_withdrawals_total", (("centre", "wuhan"),))] == 1
    assert got[("suanli_hub_redispatches_total", (("centre", "nanjing"),))] == 1
    bucket = (("centre", "wuhan"), ("le", "2.0"))
    assert got[("suanli_hub_dispatch_latency_seconds_bucket", bucket)] == 1
    assert got[("suanli_hub_cycle_duration_seconds_count", ())] == 1


def test_the_catalogue_lists_every_hub_series() -> None:
    metrics = HubMetrics("1.2.3")
    metrics.attach_state(network())
    metrics.count_dispatch("wuhan")
    exposed = {name for name, _ in samples(metrics) if not name.endswith("_created")}
    assert exposed <= exposed_series_names(metrics.registry) == hub_series_names()
    assert all(n.startswith("suanli_hub_") or n == "suanli_build_info" for n in exposed)
