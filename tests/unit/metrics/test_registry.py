from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from suanli.metrics import Metrics, all_series_names, exposed_series_names, operator_series_names


def value(metrics: Metrics, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    raise AssertionError(f"no sample {name}{labels}")


def test_build_info_and_leader() -> None:
    metrics = Metrics(version="1.2.3")
    build = [
        sample
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for sample in family.samples
        if sample.name == "suanli_build_info"
    ]
    assert len(build) == 1
    assert build[0].labels["version"] == "1.2.3"
    assert value(metrics, "suanli_scheduler_leader") == 0
    metrics.set_leader(True)
    assert metrics.leading
    assert value(metrics, "suanli_scheduler_leader") == 1


def test_event_counters_count_by_bounded_labels() -> None:
    metrics = Metrics(version="1.2.3")
    metrics.count_admission("team-a", "ascend-910b", "WithinNominal")
    metrics.count_admission("team-a", "ascend-910b", "WithinNominal")
    metrics.count_admission("team-a", "ascend-910b", "Borrowed")
    metrics.count_rejection("team-b", "nvidia-h100", "IllegalChipCount")
    metrics.count_eviction("team-b", "nvidia-h100", "Preempted")
    metrics.count_preemption("team-a", "nvidia-h100")
    metrics.count_gang_restart("team-a", "ascend-910b")
    metrics.count_api_error("pods", "Timeout")
    key = {"quota": "team-a", "class": "ascend-910b"}
    assert value(metrics, "suanli_admissions_total", reason="WithinNominal", **key) == 2
    assert value(metrics, "suanli_admissions_total", reason="Borrowed", **key) == 1
    assert value(metrics, "suanli_gang_restarts_total", **key) == 1
    other = {"quota": "team-b", "class": "nvidia-h100"}
    assert value(metrics, "suanli_rejections_total", reason="IllegalChipCount", **other) == 1
    assert value(metrics, "suanli_evictions_total", reason="Preempted", **other) == 1
    assert (
        value(metrics, "suanli_preemptions_total", quota="team-a", **{"class": "nvidia-h100"}) == 1
    )
    assert (
        value(metrics, "suanli_kubernetes_api_errors_total", resource="pods", reason="Timeout") == 1
    )


def test_histograms_land_in_the_right_buckets() -> None:
    metrics = Metrics(version="1.2.3")
    metrics.observe_queue_wait("team-a", "ascend-910b", 90)
    metrics.observe_cycle(0.02)
    metrics.observe_placement("nvidia-h100", 0.0004)
    queue = {"quota": "team-a", "class": "ascend-910b"}
    assert value(metrics, "suanli_queue_wait_seconds_bucket", le="60.0", **queue) == 0
    assert value(metrics, "suanli_queue_wait_seconds_bucket", le="120.0", **queue) == 1
    assert value(metrics, "suanli_scheduler_cycle_duration_seconds_bucket", le="0.01") == 0
    assert value(metrics, "suanli_scheduler_cycle_duration_seconds_bucket", le="0.025") == 1
    assert value(
        metrics, "suanli_scheduler_placement_latency_seconds_bucket", le="0.001",
        **{"class": "nvidia-h100"},
    ) == 1  # fmt: skip


def test_time_cycle_observes_even_when_the_cycle_raises() -> None:
    metrics = Metrics(version="1.2.3")
    ticks = iter([10.0, 10.3])
    with pytest.raises(RuntimeError), metrics.time_cycle(clock=lambda: next(ticks)):
        raise RuntimeError("cycle failed")
    assert value(metrics, "suanli_scheduler_cycle_duration_seconds_count") == 1
    assert value(metrics, "suanli_scheduler_cycle_duration_seconds_sum") == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda m: m.count_admission("", "c", "Borrowed"), "quota"),
        (lambda m: m.count_rejection("q", "", "Borrowed"), "class"),
        (lambda m: m.count_eviction("q", "c", "pod job-7f9c-worker-3 was OOM killed"), "reason"),
        (lambda m: m.count_api_error("pods", "timeout"), "reason"),
        (lambda m: m.count_api_error("", "Timeout"), "resource"),
        (lambda m: m.observe_cycle(-0.1), "seconds"),
        (lambda m: m.observe_queue_wait("q", "c", float("nan")), "seconds"),
        (lambda m: m.observe_placement("c", True), "seconds"),
        (lambda m: m.count_preemption("q" * 254, "c"), "quota"),
    ],
)
def test_bad_label_values_fail_naming_the_field(call: object, field: str) -> None:
    metrics = Metrics(version="1.2.3")
    with pytest.raises(ValueError, match=f"^{field} "):
        call(metrics)  # type: ignore[operator]


def test_the_catalogue_lists_event_and_state_series() -> None:
    names = all_series_names()
    assert "suanli_build_info" in names
    assert "suanli_admissions_total" in names
    assert "suanli_scheduler_cycle_duration_seconds_bucket" in names
    assert "suanli_metered_pflop_seconds_total" in names
    assert "suanli_quota_lent_pflops" in names
    assert all(name.startswith("suanli_") for name in names)
    assert not any(name.endswith("_created") for name in names)


def test_exposed_names_cover_every_sample_actually_exposed() -> None:
    from tests.unit.metrics.fakes import busy_source

    metrics = Metrics(version="1.2.3")
    metrics.attach_state(busy_source())
    metrics.set_leader(True)
    metrics.count_admission("q", "c", "Borrowed")
    metrics.observe_queue_wait("q", "c", 3)
    exposed = {
        sample.name
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for sample in family.samples
        if not sample.name.endswith("_created")
    }
    assert exposed <= exposed_series_names(metrics.registry)
    assert exposed_series_names(metrics.registry) == operator_series_names()


def test_only_bounded_labels_are_used() -> None:
    from tests.unit.metrics.fakes import busy_source

    metrics = Metrics(version="1.2.3")
    metrics.attach_state(busy_source())
    metrics.set_leader(True)
    metrics.count_eviction("q", "c", "NodeLost")
    metrics.count_api_error("pods", "Timeout")
    metrics.observe_placement("c", 0.1)
    bounded = {"quota", "class", "vendor", "phase", "reason", "resource", "state", "le"}
    labels = {
        label
        for family in metrics.registry.collect()
        if family.name != "suanli_build"
        for sample in family.samples
        for label in sample.labels
    }
    assert labels
    assert labels <= bounded
