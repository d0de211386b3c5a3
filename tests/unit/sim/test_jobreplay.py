"""The job-level replay: conservation, determinism, FIFO order, the fairness arithmetic, the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from suanli.sim.cli import main
from suanli.sim.jobreplay import (
    SCHEDULERS,
    Workload,
    jain,
    make_workload,
    percentile,
    proportional_shape,
    replay_jobs,
    time_average,
    water_fill,
)
from suanli.sim.trace import TraceNode, TracePod

NODES = [TraceNode(f"n{i}", 96_000, 393_216, 8, "G2") for i in range(4)]
SHAPES = [
    TracePod("whole", 8000, 32_768, 1, 1000, ()),
    TracePod("share", 4000, 16_384, 1, 500, ()),
    TracePod("big", 64_000, 262_144, 8, 1000, ()),
    TracePod("pair", 16_000, 65_536, 2, 1000, ()),
    TracePod("cpu", 4000, 1024, 0, 0, ()),  # CPU-only: not a job shape
]
GAPS = [1.0, 2.0, 5.0, 30.0, 60.0, 600.0]
RUNTIMES = [60.0, 300.0, 1200.0, 3600.0, 7200.0]


def workload(seed: int = 5, jobs: int = 90, load: float = 1.5) -> Workload:
    return make_workload(NODES, SHAPES, GAPS, RUNTIMES, jobs=jobs, seed=seed, load=load)


def test_jain_index() -> None:
    assert jain([1.0, 1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert jain([1.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
    assert jain([1.0, 2.0]) == pytest.approx(0.9)  # (1+2)^2 / (2 * (1+4))
    with pytest.raises(ValueError, match="no values"):
        jain([])


def test_water_fill_gives_weighted_max_min_shares() -> None:
    shares = water_fill(10.0, {"a": 2.0, "b": 8.0, "c": 8.0}, {"a": 1.0, "b": 1.0, "c": 1.0})
    assert shares == pytest.approx({"a": 2.0, "b": 4.0, "c": 4.0})
    weighted = water_fill(9.0, {"a": 9.0, "b": 9.0}, {"a": 2.0, "b": 1.0})
    assert weighted == pytest.approx({"a": 6.0, "b": 3.0})


def test_percentile_and_time_average() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([], 95) == 0.0
    # 0 for [0, 10), 1 for [10, 40): averaged over [0, 40) -> 0.75.
    assert time_average([0.0, 10.0], [0.0, 1.0], (0.0, 40.0)) == pytest.approx(0.75)


def test_proportional_shape_caps_cpu_and_memory_at_the_gpus_part_of_a_node() -> None:
    share = proportional_shape(TracePod("s", 40_000, 300_000, 1, 500, ()), NODES)
    assert (share.cpu_milli, share.memory_mib) == (6000, 24_576)  # half a GPU of 8
    small = proportional_shape(TracePod("t", 2000, 4096, 1, 1000, ()), NODES)
    assert (small.cpu_milli, small.memory_mib) == (2000, 4096)  # already below: unchanged


def test_workload_is_seeded_and_only_has_job_shapes() -> None:
    first, again, other = workload(5), workload(5), workload(6)
    assert first == again
    assert first.jobs != other.jobs
    assert all(job.gpus > 0 for job in first.jobs)
    assert {job.replicas for job in first.jobs if job.gpus == 8} <= {1, 2, 4}
    arrivals = [job.arrival for job in first.jobs]
    assert arrivals == sorted(arrivals)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_job_arrives_waits_and_finishes_exactly_once(scheduler: str) -> None:
    load = workload()
    result = replay_jobs(load, scheduler)
    assert set(result.records) == {job.name for job in load.jobs}
    for record in result.records.values():
        assert record.first_start is not None and record.finish is not None
        assert record.first_start >= record.job.arrival
        assert record.finish >= record.first_start + record.job.runtime
        assert record.starts == record.preempted + 1
    assert all(0.0 <= u <= 1.0 for u in result.utilisation)
    assert all(0.0 <= f <= 1.0 for f in result.fragmentation)
    summary = result.summary()
    assert summary["p95_wait_s"] >= 0 and summary["mean_wait_s"] >= 0
    assert summary == replay_jobs(load, scheduler).summary()  # deterministic


def test_fifo_starts_jobs_in_arrival_order_and_backfilling_does_not() -> None:
    load = workload(jobs=120, load=2.0)
    fifo = replay_jobs(load, "fifo")
    starts = [fifo.records[job.name].first_start for job in load.jobs]
    assert starts == sorted(starts)  # type: ignore[type-var]
    best_fit = replay_jobs(load, "best_fit")
    starts = [best_fit.records[job.name].first_start for job in load.jobs]
    assert starts != sorted(starts)  # type: ignore[type-var]
    assert best_fit.summary()["mean_wait_s"] < fifo.summary()["mean_wait_s"]


def test_uncontended_replay_has_no_fairness_figure() -> None:
    calm = make_workload(NODES, SHAPES[:2], GAPS, [60.0], jobs=10, seed=1, load=0.05)
    result = replay_jobs(calm, "kueue")
    assert math.isnan(result.summary()["jain"])
    # Nothing queues: a job waits only for the next scheduling pass (at most one cycle, 30 s).
    assert 0 <= max(result.waits()) <= 30.0


def test_replay_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="scheduler must be one of"):
        replay_jobs(workload(), "slurm")
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        make_workload(NODES, SHAPES, GAPS, RUNTIMES, jobs=0, seed=1)
    with pytest.raises(ValueError, match="no GPU pod that fits"):
        make_workload(NODES, SHAPES[4:], GAPS, RUNTIMES, jobs=3, seed=1)


def test_jobs_cli_prints_a_table_and_writes_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "openb_node_list_gpu_node.csv").write_text(
        "sn,cpu_milli,memory_mib,gpu,model\n"
        + "".join(f"n{i},96000,393216,8,G2\n" for i in range(3)),
        encoding="utf-8",
    )
    header = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
    header += "creation_time,deletion_time,scheduled_time\n"
    rows = "".join(
        f"p{i},{4000 + 1000 * (i % 3)},16384,{1 + i % 2},{500 if i % 2 == 0 else 1000},,LS,"
        f"Running,{i * 37},{i * 37 + 100},{i * 37}\n"
        for i in range(40)
    )
    (tmp_path / "pods.csv").write_text(header + rows, encoding="utf-8")
    (tmp_path / "runtime.csv").write_text("runtime\n60\n600\n3600\n", encoding="utf-8")
    code = main(
        [
            "jobs", "--trace-dir", str(tmp_path), "--pods", "pods.csv",
            "--runtimes", str(tmp_path / "runtime.csv"), "--nodes", "3", "--jobs", "40",
            "--schedulers", "fifo,suanli", "--plots", str(tmp_path / "img"),
            "--json-out", str(tmp_path / "out.json"),
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "| fifo |" in out and "| suanli |" in out
    assert (tmp_path / "img" / "jobs-timeline.png").stat().st_size > 1000
    assert (tmp_path / "img" / "jobs-waits.png").read_bytes()[:4] == b"\x89PNG"
    assert '"suanli"' in (tmp_path / "out.json").read_text(encoding="utf-8")
    assert main(["jobs", "--trace-dir", str(tmp_path), "--runtimes", "x", "--model", "H100"]) == 2
