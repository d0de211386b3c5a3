"""The FGD authors' policies re-implemented as simulator policies, to compare in the same run.

Why: comparing our placement core with another simulator's published figures mixes two
differences (the policy and the simulator). Here FGD and the baselines of the paper run on the
same cluster, the same pod draws and the same allocation metric as the placement core
(:mod:`suanli.sim.replay`), so only the policy differs. Each follows the authors' Go code
(``hkust-adsl/kubernetes-scheduler-simulator``, ``pkg/simulator/plugin/*.go``, run with the
settings of ``experiments/run_scripts/generate_run_scripts.py``):

* ``fgd``: :mod:`suanli.sim.fgd`; shares go to the GPU with the best FGD score.
* ``authors_best_fit``: ``int((1 - (0.5 (cpu_free - cpu) / 128 000 + 0.5 (gpu_free - gpu) /
  8 000)) * 100)``; CPU and GPU only.
* ``dot_product`` (``merge``, ``max``): ``int((1 - (cpu_free cpu / 128 000² + gpu_free gpu /
  8 000²) / 2) * 100)`` (the smaller the dot product, the higher the score, as in their code).
* ``gpu_packing``: shares on used GPUs first (100 - free % / 10, at least 50), then free GPUs
  on used nodes (50 - GPUs used, at least 33), then idle nodes (33 - GPUs, at least the GPUs).
* ``random``: a uniformly random feasible node.

Scores are integers 0..100 (kube-scheduler's ``MaxNodeScore``), so many nodes tie. Their
vendored kube-scheduler breaks ties by the smallest node name (``selectHost``, changed "for
reproducibility"), and the simulator prefixes node names with a random permutation: ties go to a
random but fixed order of the nodes, drawn here per seed with a ``numpy`` generator. Except
for FGD and ``random`` (random GPU), a share goes to the tightest GPU it fits (first on ties)
and whole GPUs to the lowest-indexed free ones (their ``gpuSelMethod`` best).

Feasibility is kube-scheduler's filter: GPU model, CPU, GPUs (one with the share free, or
enough wholly free ones) and, with ``memory="filter"``, memory (``NodeResourcesFit``). With
``memory="ignore"`` memory is not modelled at all; see ``docs/simulator.md`` for which of the two
reproduces the published figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from suanli.placement.model import WHOLE
from suanli.sim.fgd import (
    MAX_NODE_SCORE,
    Bools,
    FragTable,
    Ints,
    fgd_scores,
    pod_shape,
    typical_pods,
)
from suanli.sim.replay import SeedResult, draw_pods
from suanli.sim.trace import TraceNode, TracePod

AUTHORS_POLICIES = ("fgd", "authors_best_fit", "dot_product", "gpu_packing", "random")
"""Policy names; the FGD authors' labels are 06-FGD, 05-BestFit, 02-DotProd, 04-GpuPacking and
01-Random."""

PUBLISHED_NAMES = {
    "fgd": "06-FGD",
    "authors_best_fit": "05-BestFit",
    "dot_product": "02-DotProd",
    "gpu_packing": "04-GpuPacking",
    "random": "01-Random",
}

MEMORY_MODES = ("filter", "ignore")

MAX_SPEC_CPU = 128_000
MAX_SPEC_GPU = 8_000
MAX_GPUS = 8


@dataclass(slots=True)
class ArrayCluster:
    """Free CPU, memory and per-GPU milli of every node, as numpy arrays (GPUs padded with 0)."""

    models: list[str]
    model: Ints
    cpu_free: Ints
    mem_free: Ints
    gpu_free: Ints
    gpu_count: Ints

    @classmethod
    def build(cls, nodes: Sequence[TraceNode]) -> ArrayCluster:
        models = sorted({node.model for node in nodes if node.gpus})
        index = {model: i for i, model in enumerate(models)}
        width = max([MAX_GPUS, *(node.gpus for node in nodes)])
        gpu_free = np.zeros((len(nodes), width), dtype=np.int64)
        for row, node in enumerate(nodes):
            gpu_free[row, : node.gpus] = WHOLE
        return cls(
            models,
            np.array([index.get(node.model, -1) if node.gpus else -1 for node in nodes], np.int64),
            np.array([node.cpu_milli for node in nodes], dtype=np.int64),
            np.array([node.memory_mib for node in nodes], dtype=np.int64),
            gpu_free,
            np.array([node.gpus for node in nodes], dtype=np.int64),
        )

    def feasible(self, pod: TracePod, memory: str) -> Bools:
        """kube-scheduler's filter for one pod (Open-Gpu-Share + NodeResourcesFit)."""
        ok = self.cpu_free >= pod.cpu_milli
        if memory == "filter":
            ok &= self.mem_free >= pod.memory_mib
        if pod.gpus == 0:
            return ok
        if pod.gpu_spec:
            accepted = [i for i, model in enumerate(self.models) if model in pod.gpu_spec]
            ok &= np.isin(self.model, accepted)
        else:
            ok &= self.model >= 0
        if pod.gpu_milli < WHOLE:
            return ok & (self.gpu_free >= pod.gpu_milli).any(axis=1)
        enough: Bools = (self.gpu_free == WHOLE).sum(axis=1) >= pod.gpus
        return ok & enough

    def take(self, node: int, pod: TracePod, gpus: tuple[int, ...]) -> None:
        self.cpu_free[node] -= pod.cpu_milli
        self.mem_free[node] -= pod.memory_mib
        for gpu in gpus:
            self.gpu_free[node, gpu] -= pod.gpu_milli


def _tightest_gpu(row: Ints, milli: int) -> int:
    """The GPU with the least free milli that still fits (first on ties)."""
    fitting = np.where(row >= milli, row, WHOLE + 1)
    return int(np.argmin(fitting))


def _whole_gpus(row: Ints, count: int) -> tuple[int, ...]:
    return tuple(int(i) for i in np.flatnonzero(row == WHOLE)[:count])


class AuthorsPolicy:
    """One of the FGD authors' policies over an :class:`ArrayCluster`."""

    def __init__(
        self,
        name: str,
        cluster: ArrayCluster,
        pods: Sequence[TracePod],
        rng: np.random.Generator,
        memory: str = "filter",
    ) -> None:
        if name not in AUTHORS_POLICIES:
            raise ValueError(f"policy must be one of {AUTHORS_POLICIES}, got {name!r}")
        if memory not in MEMORY_MODES:
            raise ValueError(f"memory must be one of {MEMORY_MODES}, got {memory!r}")
        self.name, self.cluster, self.rng, self.memory = name, cluster, rng, memory
        # Ties go to the node whose name sorts first; the simulator prefixes node names with a
        # random permutation, so that is a random but fixed order of the nodes.
        self.rank = rng.permutation(len(cluster.cpu_free))
        self.table = FragTable(typical_pods(pods), cluster.models) if name == "fgd" else None
        if self.table is not None:  # per-node caches, refreshed for the node that changes
            c = cluster
            self.hosts, self.below = self.table.counts(c.gpu_free)
            self.frag = self.table.from_counts(
                c.cpu_free, c.gpu_free.sum(axis=1), self.hosts, self.below, c.model
            )

    def _refresh(self, node: int) -> None:
        assert self.table is not None
        c = self.cluster
        one = slice(node, node + 1)
        hosts, below = self.table.counts(c.gpu_free[one])
        self.hosts[node], self.below[node] = hosts[0], below[0]
        self.frag[node] = self.table.from_counts(
            c.cpu_free[one], c.gpu_free[one].sum(axis=1), hosts, below, c.model[one]
        )[0]

    def place(self, pod: TracePod) -> tuple[int, tuple[int, ...]] | None:
        """Choose (node, GPU indices) for the pod and take them, or None when nothing fits."""
        ok = self.cluster.feasible(pod, self.memory)
        candidates = np.flatnonzero(ok)
        if not len(candidates):
            return None
        if self.name == "fgd":
            node, gpus = self._fgd(pod, candidates)
        else:
            scores = self._scores(pod, candidates)
            node = self._pick(candidates, scores)
            gpus = self._gpus(pod, node)
        self.cluster.take(node, pod, gpus)
        if self.table is not None:
            self._refresh(node)
        return node, gpus

    def _pick(self, candidates: Ints, scores: Ints) -> int:
        best = candidates[scores == scores.max()]
        return int(best[np.argmin(self.rank[best])])

    def _gpus(self, pod: TracePod, node: int) -> tuple[int, ...]:
        row = self.cluster.gpu_free[node]
        if pod.gpus == 0:
            return ()
        if pod.gpu_milli < WHOLE:
            if self.name == "random":
                fitting = np.flatnonzero(row >= pod.gpu_milli)
                return (int(fitting[self.rng.integers(len(fitting))]),)
            return (_tightest_gpu(row, pod.gpu_milli),)
        return _whole_gpus(row, pod.gpus)

    def _scores(self, pod: TracePod, candidates: Ints) -> Ints:
        c = self.cluster
        cpu = c.cpu_free[candidates].astype(np.float64)
        gpu = c.gpu_free[candidates].sum(axis=1).astype(np.float64)
        request = float(pod.gpu_demand_milli)
        if self.name == "random":  # RandomScore gives 100 to one feasible node drawn at random
            scores = np.zeros(len(candidates), dtype=np.int64)
            scores[self.rng.integers(len(candidates))] = MAX_NODE_SCORE
            return scores
        if self.name == "authors_best_fit":
            left = (cpu - pod.cpu_milli) / MAX_SPEC_CPU * 0.5 + (gpu - request) / MAX_SPEC_GPU * 0.5
            fit: Ints = np.trunc((1.0 - left) * MAX_NODE_SCORE).astype(np.int64)
            return fit
        if self.name == "dot_product":
            dot = (cpu / MAX_SPEC_CPU) * (pod.cpu_milli / MAX_SPEC_CPU) + (gpu / MAX_SPEC_GPU) * (
                request / MAX_SPEC_GPU
            )
            aligned: Ints = np.trunc((1.0 - dot / 2.0) * MAX_NODE_SCORE).astype(np.int64)
            return aligned
        return self._packing(pod, candidates)

    def _packing(self, pod: TracePod, candidates: Ints) -> Ints:
        c = self.cluster
        if pod.gpus == 0:
            return np.zeros(len(candidates), dtype=np.int64)
        rows = c.gpu_free[candidates]
        count = c.gpu_count[candidates]
        full = (rows == WHOLE).sum(axis=1)
        idle = np.maximum(MAX_NODE_SCORE // 3 - full, full)
        if pod.gpu_milli >= WHOLE:  # whole GPUs on a used node are always free ones
            used = np.maximum(MAX_NODE_SCORE // 2 - pod.gpus, MAX_NODE_SCORE // 3)
            whole: Ints = np.where(full == count, idle, used).astype(np.int64)
            return whole
        tightest = np.where(rows >= pod.gpu_milli, rows, WHOLE + 1).min(axis=1)
        shared = np.maximum(MAX_NODE_SCORE - (tightest * 100 // WHOLE) // 10, MAX_NODE_SCORE // 2)
        on_free = np.maximum(MAX_NODE_SCORE // 2 - 1, MAX_NODE_SCORE // 3)
        scores = np.where(tightest == WHOLE, on_free, shared)
        packed: Ints = np.where(full == count, idle, scores).astype(np.int64)
        return packed

    def _fgd(self, pod: TracePod, candidates: Ints) -> tuple[int, tuple[int, ...]]:
        """FGD from the cached per-node counts: a whole-GPU request lowers every count by the
        GPUs it takes (they were wholly free) and the free total by their milli; a share
        changes one GPU, whose effect on the counts is :meth:`FragTable.share_deltas`."""
        assert self.table is not None
        c = self.cluster
        cpu_after = c.cpu_free[candidates] - pod_shape(pod)[0]
        rows = c.gpu_free[candidates]
        total = rows.sum(axis=1)
        model = c.model[candidates]
        before = self.frag[candidates]
        hosts, below = self.hosts[candidates], self.below[candidates]
        if pod.gpus == 0 or pod.gpu_milli >= WHOLE:
            after = self.table.from_counts(
                cpu_after, total - pod.gpu_demand_milli, hosts - pod.gpus, below, model
            )
            node = self._pick(candidates, fgd_scores(before, after))
            return node, _whole_gpus(c.gpu_free[node], pod.gpus) if pod.gpus else ()
        # A share: one candidate per (node, distinct free value that fits), lowest index kept.
        width = rows.shape[1]
        fits = rows >= pod.gpu_milli
        duplicate = np.zeros_like(fits)
        for j in range(1, width):
            duplicate[:, j] = (rows[:, :j] == rows[:, j : j + 1]).any(axis=1)
        pair_row, pair_gpu = np.nonzero(fits & ~duplicate)
        free = rows[pair_row, pair_gpu]
        d_hosts, d_below = self.table.share_deltas(free, free - pod.gpu_milli)
        after = self.table.from_counts(
            cpu_after[pair_row],
            total[pair_row] - pod.gpu_milli,
            hosts[pair_row] + d_hosts,
            below[pair_row] + d_below,
            model[pair_row],
        )
        scores = fgd_scores(before[pair_row], after)
        # Per node: the best score, then the lowest GPU index (fgd_score.go keeps the first max).
        order = np.lexsort((pair_gpu, -scores, pair_row))
        first = np.ones(len(order), dtype=np.bool_)
        first[1:] = pair_row[order][1:] != pair_row[order][:-1]
        best = order[first]
        top = best[scores[best] == scores[best].max()]
        chosen = top[np.argmin(self.rank[candidates[pair_row[top]]])]
        return int(candidates[pair_row[chosen]]), (int(pair_gpu[chosen]),)


def replay_authors(
    nodes: Sequence[TraceNode],
    pods: Sequence[TracePod],
    policy: str,
    seed: int,
    *,
    demand: float = 1.3,
    checkpoints: tuple[int, ...] = (50, 80, 90, 100, 110, 120, 130),
    memory: str = "filter",
) -> SeedResult:
    """:func:`suanli.sim.replay.replay` with one of the authors' policies (same draws)."""
    cluster = ArrayCluster.build(nodes)
    capacity = int(cluster.gpu_count.sum()) * WHOLE
    if capacity == 0:
        raise ValueError("the node list has no GPUs")
    chooser = AuthorsPolicy(policy, cluster, pods, np.random.default_rng(seed), memory)
    pending = sorted(c for c in checkpoints if c <= demand * 100 + 1e-9)
    result = SeedResult(seed, {}, 0, 0, 0)
    arrived = allocated = 0
    for pod in draw_pods(list(pods), capacity, demand, seed):
        placed = chooser.place(pod)
        arrived += pod.gpu_demand_milli
        result.arrived += 1
        if placed is None:
            result.failed += 1
            result.failures_by_reason["Unschedulable"] = (
                result.failures_by_reason.get("Unschedulable", 0) + 1
            )
        else:
            allocated += pod.gpu_demand_milli
            result.placed += 1
        while pending and arrived * 100 >= pending[0] * capacity:
            result.alloc_pct[pending.pop(0)] = 100.0 * allocated / capacity
    for checkpoint in pending:
        result.alloc_pct[checkpoint] = 100.0 * allocated / capacity
    return result
