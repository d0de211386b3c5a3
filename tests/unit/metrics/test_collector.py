from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from suanli.metrics import JOB_PHASES, ClusterStateCollector, Metrics, meter
from tests.unit.metrics.fakes import NOW, FakeSource, busy_source


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse the real text exposition back, as Prometheus would."""
    parsed: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            parsed[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return parsed


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics)[(name, frozenset(labels.items()))]


def leading(source: FakeSource, now: float = NOW) -> Metrics:
    metrics = Metrics(version="1.2.3")
    metrics.attach_state(source, clock=lambda: now)
    metrics.set_leader(True)
    return metrics


def test_quota_gauges_equal_the_source_rows() -> None:
    source = busy_source()
    metrics = leading(source)
    for row in source.quotas:
        for what in ("nominal", "used", "borrowed", "lent", "pending"):
            for unit in ("devices", "pflops"):
                assert value(
                    metrics, f"suanli_quota_{what}_{unit}", quota=row.quota,
                    **{"class": row.accelerator_class},
                ) == pytest.approx(getattr(row, f"{what}_{unit}"))  # fmt: skip


def test_capacity_gauges_and_nodes_equal_the_source_rows() -> None:
    source = busy_source()
    metrics = leading(source)
    for row in source.capacity:
        labels = {"class": row.accelerator_class, "vendor": row.vendor}
        for what in ("total", "allocated", "free", "fragmented"):
            for unit in ("devices", "pflops"):
                assert value(metrics, f"suanli_capacity_{what}_{unit}", **labels) == pytest.approx(
                    getattr(row, f"{what}_{unit}")
                )
        assert value(metrics, "suanli_nodes", state="ready", **labels) == row.ready_nodes
        assert value(metrics, "suanli_nodes", state="not_ready", **labels) == row.not_ready_nodes


def test_every_phase_of_a_known_quota_is_exported_even_when_zero() -> None:
    metrics = leading(busy_source())
    for phase in JOB_PHASES:
        expected = {"Running": 3, "Pending": 2}.get(phase, 0)
        assert value(metrics, "suanli_jobs", quota="team-a", phase=phase) == expected
    assert value(metrics, "suanli_jobs", quota="team-b", phase="Succeeded") == 5


def test_queue_age_is_measured_at_scrape_time() -> None:
    source = busy_source()
    labels = {"quota": "team-a", "class": "ascend-910b"}
    assert value(leading(source), "suanli_queue_oldest_pending_age_seconds", **labels) == 900
    later = leading(source, now=NOW + 100)
    assert value(later, "suanli_queue_oldest_pending_age_seconds", **labels) == 1000
    assert value(later, "suanli_queue_pending_jobs", **labels) == 2
    idle = {"quota": "team-b", "class": "nvidia-h100"}
    assert value(later, "suanli_queue_oldest_pending_age_seconds", **idle) == 0


def test_metering_counters_are_derived_from_records() -> None:
    source = busy_source()
    metrics = leading(source)
    # 36 000 folded + 8 devices × 600 s running + 8 devices × 200 s finished, not yet folded.
    labels = {"quota": "team-a", "class": "ascend-910b"}
    assert value(metrics, "suanli_metered_device_seconds_total", **labels) == pytest.approx(
        36_000 + 8 * 600 + 8 * 200
    )
    assert value(metrics, "suanli_metered_pflop_seconds_total", **labels) == pytest.approx(
        11_520 + (8 * 600 + 8 * 200) * 0.32
    )
    expected = {(u.quota, u.accelerator_class): u for u in meter(source.metering, NOW)}
    team_b = expected[("team-b", "nvidia-h100")]
    assert value(
        metrics, "suanli_metered_device_seconds_total", quota="team-b", **{"class": "nvidia-h100"}
    ) == pytest.approx(team_b.device_seconds)


def test_metering_survives_an_operator_restart() -> None:
    source = busy_source()
    labels = {"quota": "team-a", "class": "ascend-910b"}
    before = value(leading(source, NOW), "suanli_metered_device_seconds_total", **labels)
    # A brand-new process (new registry, no memory) reading the same records 30 s later.
    after = value(leading(source, NOW + 30), "suanli_metered_device_seconds_total", **labels)
    assert after == pytest.approx(before + 8 * 30)


def test_followers_export_no_cluster_state() -> None:
    source = busy_source()
    metrics = Metrics(version="1.2.3")
    metrics.attach_state(source, clock=lambda: NOW)
    names = {name for name, _ in samples(metrics)}
    assert not any(name.startswith(("suanli_quota_", "suanli_capacity_")) for name in names)
    assert samples(metrics)[("suanli_scheduler_leader", frozenset())] == 0
    assert source.calls == 0
    metrics.set_leader(True)
    assert ("suanli_scheduler_leader", frozenset()) in samples(metrics)
    assert source.calls == 1  # read once, by the one exposition while leading
    metrics.set_leader(False)
    assert not any(name.startswith("suanli_quota_") for name, _ in samples(metrics))


def test_registering_does_not_read_the_source() -> None:
    source = busy_source()
    Metrics(version="1.2.3").attach_state(source)
    assert source.calls == 0


def test_a_source_that_is_not_one_is_refused() -> None:
    with pytest.raises(TypeError, match="ClusterStateSource"):
        ClusterStateCollector(object())  # type: ignore[arg-type]
