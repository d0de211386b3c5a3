from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suanli.metrics import MeteringRow, RunningAllocation, folded_usage, meter
from suanli.metrics.metering import elapsed_seconds


def test_accumulated_plus_running_time_devices() -> None:
    row = MeteringRow(
        "team-a",
        "ascend-910b",
        accumulated_device_seconds=1000,
        accumulated_pflop_seconds=320,
        running=(RunningAllocation(devices=8, pflops_per_device=0.32, started_at=100),),
    )
    [usage] = meter([row], now=160)
    assert usage.device_seconds == pytest.approx(1000 + 60 * 8)
    assert usage.pflop_seconds == pytest.approx(320 + 60 * 8 * 0.32)


def test_rows_for_the_same_quota_and_class_are_summed_and_sorted() -> None:
    rows = [
        MeteringRow("team-b", "h100", 5, 1),
        MeteringRow("team-a", "h100", 1, 1),
        MeteringRow("team-b", "h100", 7, 2),
    ]
    usages = meter(rows, now=0)
    assert [(u.quota, u.device_seconds, u.pflop_seconds) for u in usages] == [
        ("team-a", 1, 1),
        ("team-b", 12, 3),
    ]


def test_a_pod_starting_in_the_future_counts_zero_not_negative() -> None:
    allocation = RunningAllocation(devices=8, pflops_per_device=1, started_at=200)
    assert elapsed_seconds(allocation, now=150) == 0
    [usage] = meter([MeteringRow("q", "c", 10, 10, (allocation,))], now=150)
    assert usage.device_seconds == 10


def test_a_finished_unfolded_pod_stops_counting_at_its_end() -> None:
    allocation = RunningAllocation(devices=2, pflops_per_device=1, started_at=100, finished_at=130)
    row = MeteringRow("q", "c", 0, 0, (allocation,))
    assert meter([row], now=500)[0].device_seconds == 60
    assert meter([row], now=115)[0].device_seconds == 30


def test_folding_a_finished_pod_leaves_the_total_unchanged() -> None:
    finished = RunningAllocation(devices=4, pflops_per_device=0.5, started_at=10, finished_at=70)
    still_running = RunningAllocation(devices=1, pflops_per_device=0.5, started_at=0)
    before = MeteringRow("q", "c", 100, 50, (finished, still_running))
    device_seconds, pflop_seconds = folded_usage(finished)
    after = MeteringRow("q", "c", 100 + device_seconds, 50 + pflop_seconds, (still_running,))
    assert meter([after], now=90) == meter([before], now=90)


def test_folding_a_running_pod_is_refused() -> None:
    with pytest.raises(ValueError, match="finished_at"):
        folded_usage(RunningAllocation(devices=1, pflops_per_device=1, started_at=0))


allocations = st.builds(
    RunningAllocation,
    devices=st.integers(min_value=0, max_value=64),
    pflops_per_device=st.floats(min_value=0, max_value=5),
    started_at=st.floats(min_value=0, max_value=10_000),
    finished_at=st.none(),
)
rows = st.builds(
    MeteringRow,
    quota=st.sampled_from(["team-a", "team-b"]),
    accelerator_class=st.sampled_from(["ascend-910b", "nvidia-h100"]),
    accumulated_device_seconds=st.floats(min_value=0, max_value=1e9),
    accumulated_pflop_seconds=st.floats(min_value=0, max_value=1e9),
    running=st.lists(allocations, max_size=4).map(tuple),
)


@given(
    records=st.lists(rows, max_size=5),
    before_restart=st.floats(min_value=0, max_value=20_000),
    downtime=st.floats(min_value=0, max_value=20_000),
)
def test_restart_with_the_same_records_never_lowers_a_counter(
    records: list[MeteringRow], before_restart: float, downtime: float
) -> None:
    # The operator scrapes at before_restart, dies, and a new process reads the same records
    # from the API server after downtime: no process memory is involved, only records and time.
    first = {(u.quota, u.accelerator_class): u for u in meter(records, before_restart)}
    same_moment = {(u.quota, u.accelerator_class): u for u in meter(list(records), before_restart)}
    later = {
        (u.quota, u.accelerator_class): u for u in meter(list(records), before_restart + downtime)
    }
    assert same_moment == first
    assert first.keys() == later.keys()
    for key, usage in first.items():
        assert later[key].device_seconds >= usage.device_seconds
        assert later[key].pflop_seconds >= usage.pflop_seconds


@given(
    allocation=allocations,
    duration=st.floats(min_value=0, max_value=10_000),
    fold_delay=st.floats(min_value=0, max_value=10_000),
)
def test_finishing_and_folding_keep_the_counter_monotone(
    allocation: RunningAllocation, duration: float, fold_delay: float
) -> None:
    start = allocation.started_at
    running = MeteringRow("q", "c", 0, 0, (allocation,))
    finished_allocation = RunningAllocation(
        allocation.devices, allocation.pflops_per_device, start, finished_at=start + duration
    )
    finished = MeteringRow("q", "c", 0, 0, (finished_allocation,))
    device_seconds, pflop_seconds = folded_usage(finished_allocation)
    folded = MeteringRow("q", "c", device_seconds, pflop_seconds)
    end = start + duration
    timeline = [
        meter([running], end)[0],
        meter([finished], end)[0],
        meter([finished], end + fold_delay)[0],
        meter([folded], end + fold_delay)[0],
    ]
    for earlier, later in itertools.pairwise(timeline):
        assert later.device_seconds >= earlier.device_seconds
        assert later.pflop_seconds >= earlier.pflop_seconds
