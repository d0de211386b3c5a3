"""The FGD authors' policies re-implemented: the score by hand, the vectorised code against the
readable definition, and the published figures on the real trace."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from suanli.sim.cli import AUTHORS_POLICIES as CLI_POLICIES
from suanli.sim.cli import main as main_cli
from suanli.sim.fgd import FragTable, TypicalPod, fgd_score, node_fragmentation, typical_pods
from suanli.sim.policies import (
    AUTHORS_POLICIES,
    ArrayCluster,
    AuthorsPolicy,
    replay_authors,
)
from suanli.sim.trace import TraceNode, TracePod, read_nodes, read_pods

TRACE = Path(__file__).resolve().parents[4] / "shared" / "traces" / "alibaba-gpu-v2023"
needs_trace = pytest.mark.skipif(not TRACE.is_dir(), reason="../shared trace not present")

SHARE = TypicalPod(2000, 500, 1, (), 0.5)
PAIR = TypicalPod(4000, 1000, 2, (), 0.3)
CPU_ONLY = TypicalPod(1000, 0, 0, (), 0.2)
MIX = (SHARE, PAIR, CPU_ONLY)


def test_fragmentation_and_score_of_a_known_node_by_hand() -> None:
    # 10 cores free, GPUs with 1000, 1000, 300 and 0 milli free: 2300 free in all.
    # SHARE fits (two GPUs have 500): only the 300 beside is fragment -> 0.5 * 300 = 150.
    # PAIR fits (two whole GPUs): the 300 is fragment -> 0.3 * 300 = 90.
    # CPU_ONLY can use no GPU: all 2300 -> 0.2 * 2300 = 460. Total 700.
    assert node_fragmentation(10_000, [1000, 1000, 300, 0], "A", MIX) == pytest.approx(700)
    # A 500 share (2 cores) on GPU 0 leaves 8 cores and 500, 1000, 300, 0 (1800 free):
    # SHARE still fits: 0.5 * 300 = 150; PAIR no longer does: 0.3 * 1800 = 540;
    # CPU_ONLY: 0.2 * 1800 = 360. Total 1050.
    assert node_fragmentation(8_000, [500, 1000, 300, 0], "A", MIX) == pytest.approx(1050)
    # Score: int(sigmoid((700 - 1050) / 1000) * 100) = int(41.338...) = 41.
    assert fgd_score(700, 1050) == 41
    assert fgd_score(1050, 700) == 58  # int(58.66...)
    assert fgd_score(500, 500) == 50


def test_a_shape_for_another_model_counts_all_free_milli() -> None:
    only_b = TypicalPod(1000, 500, 1, ("B",), 1.0)
    assert node_fragmentation(10_000, [1000, 400], "A", (only_b,)) == 1400
    assert node_fragmentation(10_000, [1000, 400], "B", (only_b,)) == 400
    assert node_fragmentation(500, [1000, 400], "B", (only_b,)) == 1400  # too little CPU


def test_typical_pods_keep_the_most_frequent_shapes_up_to_95_percent() -> None:
    pods = [TracePod(f"a{i}", 1000, 1, 1, 500, ()) for i in range(60)]
    pods += [TracePod(f"b{i}", 2000, 1, 1, 1000, ()) for i in range(36)]
    pods += [TracePod(f"c{i}", 0, 1, 0, 0, ()) for i in range(4)]  # 4 % : left out
    shapes = typical_pods(pods)
    assert [(t.cpu_milli, t.gpu_milli, t.gpus) for t in shapes] == [(1000, 500, 1), (2000, 1000, 1)]
    assert [t.freq for t in shapes] == pytest.approx([60 / 96, 36 / 96])
    # A CPU request of 0 counts as kube-scheduler's non-zero default, 100 millicores.
    assert typical_pods([TracePod("z", 0, 1, 0, 0, ())])[0].cpu_milli == 100


def test_vectorised_fragmentation_equals_the_definition() -> None:
    rng = np.random.default_rng(7)
    models = ["A", "B"]
    mix = (*MIX, TypicalPod(3000, 250, 1, ("B",), 0.1), TypicalPod(500, 1000, 4, (), 0.05))
    table = FragTable(mix, models)
    gpus = rng.choice([0, 100, 250, 300, 500, 750, 1000], size=(300, 4))
    cpu = rng.integers(0, 12_000, 300)
    model = rng.integers(0, 2, 300)
    fast = table.fragmentation(cpu, gpus, model)
    slow = [
        node_fragmentation(int(cpu[i]), [int(g) for g in gpus[i]], models[model[i]], mix)
        for i in range(300)
    ]
    assert fast == pytest.approx(slow)
    # The share deltas give the same counts as recounting after the change.
    before = gpus[:, 0]
    after = np.maximum(before - 250, 0)
    hosts, below = table.counts(gpus)
    d_hosts, d_below = table.share_deltas(before, after)
    changed = gpus.copy()
    changed[:, 0] = after
    assert np.array_equal(hosts + d_hosts, table.counts(changed)[0])
    assert np.array_equal(below + d_below, table.counts(changed)[1])


def _brute_force_fgd(
    cluster: ArrayCluster, pod: TracePod, mix: tuple[TypicalPod, ...], rank: np.ndarray
) -> tuple[int, int]:
    """(node, GPU) FGD picks, computed from the definition: best score, then the node whose
    name sorts first (rank), then the lowest GPU index."""
    best: tuple[int, int, int, int] | None = None
    for node, gpu in itertools.product(range(len(cluster.cpu_free)), range(4)):
        free = [int(g) for g in cluster.gpu_free[node, :4]]
        if free[gpu] < pod.gpu_milli or cluster.cpu_free[node] < pod.cpu_milli:
            continue
        model = cluster.models[cluster.model[node]]
        before = node_fragmentation(int(cluster.cpu_free[node]), free, model, mix)
        free[gpu] -= pod.gpu_milli
        after = node_fragmentation(int(cluster.cpu_free[node]) - pod.cpu_milli, free, model, mix)
        key = (-fgd_score(before, after), int(rank[node]), gpu, node)
        if best is None or key < best:
            best = key
    assert best is not None
    return best[3], best[2]


def test_fgd_share_choice_equals_brute_force_on_random_clusters() -> None:
    rng = np.random.default_rng(3)
    nodes = [TraceNode(f"n{i}", 16_000, 65_536, 4, "A") for i in range(12)]
    pods = [TracePod("share", 2000, 1024, 1, 500, ()), TracePod("pair", 4000, 1024, 2, 1000, ())]
    mix = typical_pods(pods)
    for trial in range(15):
        cluster = ArrayCluster.build(nodes)
        cluster.gpu_free[:, :4] = rng.choice([0, 200, 500, 600, 1000], size=(12, 4))
        cluster.cpu_free[:] = rng.integers(0, 16_000, 12)
        policy = AuthorsPolicy("fgd", cluster, pods, np.random.default_rng(trial))
        share = TracePod("x", 1500, 512, 1, int(rng.choice([100, 300, 500])), ())
        expected = _brute_force_fgd(cluster, share, mix, policy.rank)
        if not policy.cluster.feasible(share, "filter").any():
            continue
        node, gpus = policy.place(share)  # type: ignore[misc]
        assert (node, gpus[0]) == expected


def test_best_fit_takes_the_fullest_node_and_packing_a_used_gpu() -> None:
    nodes = [TraceNode(f"n{i}", 32_000, 65_536, 2, "A") for i in range(3)]
    pods = [TracePod("p", 1000, 1024, 1, 500, ())]
    cluster = ArrayCluster.build(nodes)
    cluster.gpu_free[1, :2] = [1000, 500]  # node 1 is the fullest, with a half-used GPU
    best_fit = AuthorsPolicy("authors_best_fit", cluster, pods, np.random.default_rng(0))
    assert best_fit.place(pods[0]) == (1, (1,))  # the tightest GPU on the fullest node
    cluster = ArrayCluster.build(nodes)
    cluster.gpu_free[2, :2] = [700, 1000]
    packing = AuthorsPolicy("gpu_packing", cluster, pods, np.random.default_rng(0))
    assert packing.place(pods[0]) == (2, (0,))  # share on the used GPU first


def test_memory_filter_is_a_choice() -> None:
    nodes = [TraceNode("n0", 32_000, 1024, 2, "A")]
    hungry = TracePod("p", 1000, 4096, 1, 1000, ())
    cluster = ArrayCluster.build(nodes)
    assert not cluster.feasible(hungry, "filter").any()
    assert cluster.feasible(hungry, "ignore").all()
    with pytest.raises(ValueError, match="memory must be one of"):
        AuthorsPolicy("fgd", cluster, [hungry], np.random.default_rng(0), memory="soft")
    with pytest.raises(ValueError, match="policy must be one of"):
        AuthorsPolicy("tetris", cluster, [hungry], np.random.default_rng(0))


def test_the_cli_lists_the_same_policies() -> None:
    assert CLI_POLICIES == AUTHORS_POLICIES


@needs_trace
def test_fgd_and_best_fit_reproduce_the_published_figures_on_the_default_list() -> None:
    # Published means (seeds 42-51) at 130 %: 06-FGD 95.39 (std 0.08), 05-BestFit 93.08 (0.13).
    nodes = read_nodes(TRACE / "openb_node_list_gpu_node.csv")
    pods = read_pods(TRACE / "openb_pod_list_default.csv")
    fgd = replay_authors(nodes, pods, "fgd", 42).alloc_pct[130]
    best_fit = replay_authors(nodes, pods, "authors_best_fit", 42).alloc_pct[130]
    assert abs(fgd - 95.39) < 0.3
    assert abs(best_fit - 93.08) < 0.3


def test_compare_cli_prints_both_policies_per_list_and_names_the_half(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "openb_node_list_gpu_node.csv").write_text(
        "sn,cpu_milli,memory_mib,gpu,model\n"
        + "".join(f"n{i},64000,262144,{8 if i % 2 else 2},A\n" for i in range(6)),
        encoding="utf-8",
    )
    header = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
    header += "creation_time,deletion_time,scheduled_time\n"
    rows = "".join(
        f"p{i},{2000 + 1000 * (i % 4)},8192,{1 + (i % 3 == 0)},"
        f"{300 + 100 * (i % 7) if i % 3 else 1000},,LS,Running,0,1,0\n"
        for i in range(30)
    )
    for name in ("openb_pod_list_default.csv", "openb_pod_list_cpu300.csv"):
        (tmp_path / name).write_text(header + rows, encoding="utf-8")
    out_json = tmp_path / "out.json"
    code = main_cli(
        [
            "compare", "--trace-dir", str(tmp_path), "--seeds", "1",
            "--policies", "fragmentation_aware,fgd", "--json-out", str(out_json),
        ]
    )  # fmt: skip
    assert code == 0
    table = capsys.readouterr().out
    assert "| default | tune |" in table and "| cpu300 | report |" in table
    rows_out = json.loads(out_json.read_text(encoding="utf-8"))
    assert {r["pod_list"] for r in rows_out} == {"openb_pod_list_default", "openb_pod_list_cpu300"}
    for row in rows_out:
        lead = row["mean_130"]["fragmentation_aware"] - row["mean_130"]["fgd"]
        assert row["lead_over_fgd"] == pytest.approx(lead, abs=1e-3)
    assert main_cli(["compare", "--trace-dir", str(tmp_path), "--policies", "tetris"]) == 2
    assert main_cli(["compare", "--trace-dir", str(tmp_path), "--lists", "nope"]) == 2
