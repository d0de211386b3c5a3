"""Every dashboard and alert expression returns data from a real Prometheus scraping real metrics.

A ``Metrics`` registry over a fake ``ClusterStateSource`` is served with prometheus_client's HTTP
server and scraped every second by Debian's Prometheus 2.42, next to a hub's ``HubMetrics``
over a fake network (the compute-network dashboard and alert). The source is set up so that every
alert condition holds, so alert expressions must return series too (proving their label matching
fits what is exposed). Then the "operator" restarts (a new registry on the same port, same
records) and the metering counters must not reset; then it loses leadership and the
no-active-operator expression must return data. Takes ~15 s; fails (never skips) without the
prometheus binary.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import start_http_server

from suanli.metrics import HubMetrics, MeteringRow, Metrics, QueueRow, RunningAllocation
from suanli.observability.queries import all_expressions
from tests.unit.metrics.fakes import FakeSource, busy_source, capacity_row
from tests.unit.metrics.test_hub import network
from tests.unit.observability.prometheus_harness import Prometheus, free_port


def on_fire_source() -> FakeSource:
    """Every alert condition true: long wait, exhausted quota, fragmentation, a lost node."""
    source = busy_source()
    now = time.time()
    source.queues[0] = QueueRow("team-a", "ascend-910b", 2, now - 7200)
    source.metering[0] = MeteringRow(
        "team-a", "ascend-910b", 36_000, 11_520,
        (RunningAllocation(devices=8, pflops_per_device=0.32, started_at=now - 600),),
    )  # fmt: skip
    source.capacity.append(
        capacity_row("ascend-910", "huawei", free_devices=16, fragmented_devices=12,
                     free_pflops=4.0, fragmented_pflops=3.0, not_ready_nodes=1)
    )  # fmt: skip
    return source


class Operator:
    """What the running operator does to its metrics, in a background thread."""

    def __init__(self, source: FakeSource, port: int) -> None:
        self.metrics = Metrics(version="0.0.0-test")
        self.metrics.attach_state(source)
        self.metrics.set_leader(True)
        self.server, _ = start_http_server(port, addr="127.0.0.1", registry=self.metrics.registry)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()

    def _work(self) -> None:
        metrics = self.metrics
        while not self.stopping.wait(0.05):
            metrics.observe_cycle(2.0)  # slow cycles: the cycle alert's condition holds
            metrics.observe_placement("ascend-910b", 0.004)
            metrics.count_api_error("pods", "Timeout")
            metrics.count_admission("team-a", "ascend-910b", "Borrowed")
            metrics.count_rejection("team-b", "nvidia-h100", "IllegalChipCount")
            metrics.count_eviction("team-b", "nvidia-h100", "Preempted")
            metrics.count_preemption("team-a", "ascend-910b")
            metrics.count_gang_restart("team-a", "ascend-910b")
            metrics.observe_queue_wait("team-a", "ascend-910b", 40)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.server.shutdown()
        self.server.server_close()


class Hub:
    """A compute-network hub's metrics: one centre lost (the alert's condition), dispatches."""

    def __init__(self, port: int) -> None:
        self.metrics = HubMetrics(version="0.0.0-test")
        self.metrics.attach_state(network())
        self.server, _ = start_http_server(port, addr="127.0.0.1", registry=self.metrics.registry)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()

    def _work(self) -> None:
        while not self.stopping.wait(0.05):
            for centre in ("wuhan", "nanjing"):
                self.metrics.count_dispatch(centre)
                self.metrics.count_withdrawal(centre)
                self.metrics.count_redispatch(centre)
                self.metrics.observe_dispatch_latency(centre, 1.3)
            self.metrics.observe_cycle(0.2)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[tuple[FakeSource, int, Prometheus]]:
    source = on_fire_source()
    port, hub_port = free_port(), free_port()
    prometheus = Prometheus(tmp_path, [f"127.0.0.1:{port}", f"127.0.0.1:{hub_port}"])
    hub = Hub(hub_port)
    try:
        yield source, port, prometheus
    finally:
        hub.stop()
        prometheus.stop()


def test_expressions_gauges_and_restart_against_real_prometheus(
    centre: tuple[FakeSource, int, Prometheus],
) -> None:
    source, port, prometheus = centre
    operator = Operator(source, port)
    try:
        uses = [u for u in all_expressions(rate_interval="30s", range_="5m")]
        no_leader = [u for u in uses if u.used_in == "alert SuanliNoActiveOperator"]
        leading = [u for u in uses if u not in no_leader]

        def all_return_data() -> bool:
            return all(prometheus.query(use.expression) for use in leading)

        prometheus.wait_for(all_return_data, "every expression to return data", timeout=60)
        for use in leading:
            assert prometheus.query(use.expression), use.used_in

        # Gauges equal the records they were derived from.
        row = source.quotas[0]
        [used] = prometheus.query('suanli_quota_used_devices{quota="team-a"}')
        assert float(used["value"][1]) == row.used_devices
        [total] = prometheus.query("sum(suanli_capacity_total_devices)")
        assert float(total["value"][1]) == sum(r.total_devices for r in source.capacity)
        # Every alert's condition holds, with the labels the runbooks talk about.
        lost = prometheus.query(next(u.expression for u in uses if "NodesLost" in u.used_in))
        assert {"class": "ascend-910", "vendor": "huawei"} in [s["metric"] for s in lost]
        lost = prometheus.query(
            next(u.expression for u in uses if "CentreUnreachable" in u.used_in)
        )
        # nanjing lost, xian without a usable kubeconfig; wuhan answers
        assert sorted(s["metric"]["centre"] for s in lost) == ["nanjing", "xian"]
        fragmented = prometheus.query(
            next(u.expression for u in uses if "FragmentationHigh" in u.used_in)
        )
        assert [s["metric"] for s in fragmented] == [{"class": "ascend-910", "vendor": "huawei"}]

        metered = 'suanli_metered_device_seconds_total{quota="team-a", class="ascend-910b"}'
        [before] = prometheus.query(metered)

        # Restart: a new process with an empty registry, reading the same records.
        operator.stop()
        time.sleep(2)  # a couple of failed scrapes while the operator is down
        operator = Operator(source, port)
        after_restart = time.time()

        def scraped_after_restart() -> bool:
            result = prometheus.query(f"timestamp({metered})")
            return bool(result) and float(result[0]["value"][1]) > after_restart + 1

        prometheus.wait_for(scraped_after_restart, "scrapes of the restarted operator")
        [after] = prometheus.query(metered)
        assert float(after["value"][1]) > float(before["value"][1])
        for counter in (
            "suanli_metered_device_seconds_total",
            "suanli_metered_pflop_seconds_total",
        ):
            for series in prometheus.query(f"resets({counter}[5m])"):
                assert float(series["value"][1]) == 0, series
        # Event counters live in process memory and do reset: resets() sees it, rate() copes.
        [events] = prometheus.query("resets(suanli_admissions_total[5m])")
        assert float(events["value"][1]) >= 1

        # Losing leadership: the state families go, the no-active-operator condition holds.
        operator.metrics.set_leader(False)
        [alert] = no_leader
        prometheus.wait_for(lambda: bool(prometheus.query(alert.expression)), alert.used_in)
        prometheus.wait_for(
            lambda: not prometheus.query("suanli_quota_used_devices"), "state families to go"
        )
    finally:
        operator.stop()
