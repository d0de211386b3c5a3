"""The trace simulator: reading the CSVs, the FGD draw, the replay, the CLI, and the real trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from suanli.placement.model import Policy
from suanli.sim.cli import main, parse_seeds
from suanli.sim.replay import draw_pods, replay
from suanli.sim.trace import TracePod, pod_gang, read_nodes, read_pods

TRACE = Path(__file__).resolve().parents[4] / "shared" / "traces" / "alibaba-gpu-v2023"
POD_HEADER = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
    "creation_time,deletion_time,scheduled_time\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    nodes = write(
        tmp_path,
        "nodes.csv",
        "sn,cpu_milli,memory_mib,gpu,model\n"
        "n0,64000,262144,8,A\nn1,64000,262144,2,B\nn2,32000,65536,0,\n",
    )
    pods = write(
        tmp_path,
        "pods.csv",
        POD_HEADER
        + "p0,4000,8192,1,500,,LS,Running,0,1,0\n"
        + "p1,8000,16384,2,1000,B,LS,Running,0,1,0\n"
        + "p2,2000,4096,0,0,,BE,Running,0,1,0\n",
    )
    return nodes, pods


def test_parse_seeds() -> None:
    assert parse_seeds("42-45") == [42, 43, 44, 45]
    assert parse_seeds("1,3-4") == [1, 3, 4]
    with pytest.raises(Exception, match="--seeds"):
        parse_seeds("x")


def test_reading_names_the_bad_column(tmp_path: Path) -> None:
    bad = write(tmp_path, "nodes.csv", "sn,cpu_milli,memory_mib,gpu,model\nn0,lots,1,1,A\n")
    with pytest.raises(ValueError, match=r"nodes.csv:2: column 'cpu_milli' must be an integer"):
        read_nodes(bad)


def test_gpu_spec_limits_the_options(tiny: tuple[Path, Path]) -> None:
    pods = read_pods(tiny[1])
    assert [o.device_class for o in pod_gang(pods[0], "x", ["A", "B"]).options] == ["A", "B"]
    assert [o.device_class for o in pod_gang(pods[1], "y", ["A", "B"]).options] == ["B"]
    cpu_only = pod_gang(pods[2], "z", ["A", "B"]).options
    assert [(o.device_class, o.devices_per_replica) for o in cpu_only] == [(None, 0)]


def test_draw_reaches_the_demand_and_depends_only_on_the_seed() -> None:
    pods = [TracePod(f"p{i}", 1000, 1024, 1, 100 * (i % 10 + 1), ()) for i in range(50)]
    drawn = draw_pods(pods, 10_000, 1.3, seed=7)
    total = sum(p.gpu_demand_milli for p in drawn)
    assert total >= 13_000 and total - drawn[-1].gpu_demand_milli < 13_000 + 1000
    assert drawn == draw_pods(pods, 10_000, 1.3, seed=7)
    assert drawn != draw_pods(pods, 10_000, 1.3, seed=8)


def test_replay_honours_gpu_spec(tmp_path: Path) -> None:
    nodes = write(tmp_path, "n.csv", "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,8,A\n")
    only_b = write(tmp_path, "p.csv", POD_HEADER + "p0,1000,1024,1,1000,B,LS,Running,0,1,0\n")
    result = replay(read_nodes(nodes), read_pods(only_b), Policy.FRAGMENTATION_AWARE, 1, demand=1.0)
    # The pods name model B, the only node is A: they all arrive and none may be placed.
    assert result.placed == 0 and result.failed == result.arrived == 8
    assert result.failures_by_reason == {"IllegalShape": 8}
    assert result.alloc_pct[100] == 0.0


def test_cli_prints_json_with_per_seed_values(
    tiny: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    nodes, pods = tiny
    code = main(["trace", "--nodes", str(nodes), "--pods", str(pods), "--seeds", "1-3", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["seed"] for s in report["per_seed"]] == [1, 2, 3]
    assert report["gpu_capacity"] == 10
    mean = sum(s["alloc_pct"]["100"] for s in report["per_seed"]) / 3
    assert report["alloc_pct_mean"]["100"] == pytest.approx(mean, abs=1e-3)
    assert 0 < report["alloc_pct_mean"]["130"] <= 100


def test_cli_reports_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "--nodes", "/nonexistent.csv", "--pods", "/nonexistent.csv"]) == 2
    assert "nonexistent.csv" in capsys.readouterr().err


needs_trace = pytest.mark.skipif(not TRACE.is_dir(), reason="../shared trace not present")


@needs_trace
def test_compiled_and_reference_replay_a_trace_sample_identically() -> None:
    nodes = read_nodes(TRACE / "openb_node_list_gpu_node.csv")[::12]
    pods = read_pods(TRACE / "openb_pod_list_default.csv")[::20]
    for policy in Policy:
        compiled = replay(nodes, pods, policy, 42, demand=1.3, implementation="compiled")
        ref = replay(nodes, pods, policy, 42, demand=1.3, implementation="reference")
        assert compiled == ref


@needs_trace
def test_fragmentation_aware_beats_best_fit_on_the_real_trace() -> None:
    nodes = read_nodes(TRACE / "openb_node_list_gpu_node.csv")
    pods = read_pods(TRACE / "openb_pod_list_default.csv")
    frag = replay(nodes, pods, Policy.FRAGMENTATION_AWARE, 42)
    best_fit = replay(nodes, pods, Policy.BEST_FIT, 42)
    assert frag.alloc_pct[130] > best_fit.alloc_pct[130] + 1.0
    assert frag.alloc_pct[130] > 95.0
