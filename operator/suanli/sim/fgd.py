"""FGD's fragmentation measure, as the authors' simulator computes it.

Why a module of its own: the comparison with FGD (Weng et al., ATC '23) must be same-run, so we
re-implement their score rather than quote their figures, and the re-implementation must follow
their code (``hkust-adsl/kubernetes-scheduler-simulator``: ``pkg/utils/frag.go``,
``pkg/simulator/plugin/fgd_score.go``), not our reading of the paper. What it does, in their terms:

* A node is (free CPU, free milli of each GPU, GPU model). Memory is not part of it: their
  ``NodeResource`` and ``PodResource`` have no memory field.
* The *typical pods* are the pod list's shapes ``(cpu, gpu milli, gpu count, gpu model)``, most
  frequent first, up to 95 % of the pods (``podPopularityThreshold`` 95, step 1, CPU-only pods
  included), with frequencies renormalised over the kept shapes.
* A node's fragmentation is ``sum_t freq_t * x_t`` where ``x_t`` is all of its free GPU milli
  when shape ``t`` cannot run there (CPU-only shape, wrong model, too little CPU, too few GPUs
  with ``milli_t`` free), and otherwise the free milli of the GPUs with less than ``milli_t``
  free (``FragAmountSumExceptQ3``).
* FGD scores a candidate as ``int(sigmoid((frag_before - frag_after) / 1000) * 100)`` (an
  integer 0..100, so many nodes tie; the scheduler picks among ties at random). A share takes
  the GPU with the best score (the first on ties), whole GPUs the lowest-indexed free ones.

:func:`node_fragmentation` is the readable per-node definition (the test oracle);
:class:`FragTable` computes the same numbers for many node states at once with numpy.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from suanli.sim.trace import TracePod

POPULARITY_THRESHOLD = 0.95
"""Share of the pods the typical shapes must cover (the authors' run scripts: 95)."""

DEFAULT_CPU_MILLI = 100
"""kube-scheduler's non-zero default for a pod without a CPU request (``GetNonzeroRequests``)."""

MAX_NODE_SCORE = 100

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class TypicalPod:
    cpu_milli: int
    gpu_milli: int
    """Milli per GPU: 0 for CPU-only shapes, 1000 for whole GPUs."""
    gpus: int
    gpu_spec: tuple[str, ...]
    freq: float


def pod_shape(pod: TracePod) -> tuple[int, int, int, tuple[str, ...]]:
    """The authors' ``PodResource`` of a trace pod: (cpu, milli per GPU, GPU count, models)."""
    cpu = pod.cpu_milli or DEFAULT_CPU_MILLI
    return (cpu, pod.gpu_milli if pod.gpus else 0, pod.gpus, pod.gpu_spec)


def typical_pods(
    pods: Sequence[TracePod], threshold: float = POPULARITY_THRESHOLD
) -> tuple[TypicalPod, ...]:
    """The most frequent shapes covering ``threshold`` of the pods (``GetTypicalPods``)."""
    if not pods:
        raise ValueError("typical_pods: the pod list is empty")
    counts = Counter(pod_shape(pod) for pod in pods)
    # Decreasing count; ties in decreasing (cpu, milli, count, model) order, as sort.Reverse does.
    ordered = sorted(
        counts.items(), key=lambda item: (item[1], item[0][0], item[0][1], item[0][2], item[0][3])
    )[::-1]
    total = len(pods)
    kept: list[tuple[tuple[int, int, int, tuple[str, ...]], int]] = []
    covered = 0
    for shape, count in ordered:
        if covered >= threshold * total:
            break
        kept.append((shape, count))
        covered += count
    return tuple(
        TypicalPod(cpu, milli, gpus, spec, count / covered)
        for (cpu, milli, gpus, spec), count in kept
    )


def node_fragmentation(
    cpu_free: int, gpu_free: Sequence[int], model: str, typical: Sequence[TypicalPod]
) -> float:
    """FGD's fragmentation of one node (GPU milli, frequency-weighted): the readable definition."""
    total = sum(gpu_free)
    frag = 0.0
    for shape in typical:
        if shape.gpus == 0 or (shape.gpu_spec and model not in shape.gpu_spec):
            frag += shape.freq * total
            continue
        hosts = sum(1 for free in gpu_free if free >= shape.gpu_milli) >= shape.gpus
        if hosts and cpu_free >= shape.cpu_milli:
            frag += shape.freq * sum(free for free in gpu_free if free < shape.gpu_milli)
        else:
            frag += shape.freq * total
    return frag


def fgd_score(frag_before: float, frag_after: float) -> int:
    """``int64(sigmoid((before - after) / 1000) * MaxNodeScore)``, as in ``fgd_score.go``."""
    return int(1.0 / (1.0 + math.exp(-(frag_before - frag_after) / 1000.0)) * MAX_NODE_SCORE)


def fgd_scores(frag_before: Floats, frag_after: Floats) -> Ints:
    """:func:`fgd_score` for arrays."""
    sigmoid = 1.0 / (1.0 + np.exp(-(frag_before - frag_after) / 1000.0))
    return np.trunc(sigmoid * MAX_NODE_SCORE).astype(np.int64)


class FragTable:
    """The typical pods pre-split for vectorised fragmentation of many node states at once."""

    def __init__(self, typical: Sequence[TypicalPod], models: Sequence[str]) -> None:
        self.typical = tuple(typical)
        # Every free milli counts for CPU-only shapes, whatever the node.
        self.always = sum(t.freq for t in self.typical if t.gpus == 0)
        gpu_shapes = [t for t in self.typical if t.gpus > 0]
        self.millis = sorted({t.gpu_milli for t in gpu_shapes})
        index = {milli: i for i, milli in enumerate(self.millis)}
        self.milli_of = np.array([index[t.gpu_milli] for t in gpu_shapes], dtype=np.int64)
        self.gpus = np.array([t.gpus for t in gpu_shapes], dtype=np.int64)
        self.cpu = np.array([t.cpu_milli for t in gpu_shapes], dtype=np.int64)
        self.freq = np.array([t.freq for t in gpu_shapes], dtype=np.float64)
        # access[model, shape]: the shape accepts that GPU model.
        self.access = np.array(
            [[not t.gpu_spec or model in t.gpu_spec for t in gpu_shapes] for model in models],
            dtype=np.bool_,
        ).reshape(len(models), len(gpu_shapes))

    def fragmentation(self, cpu_free: Ints, gpu_free: Ints, model: Ints) -> Floats:
        """FGD's fragmentation of each state (rows of ``gpu_free``, padded with 0 GPUs)."""
        hosts, below = self.counts(gpu_free)
        return self.from_counts(cpu_free, gpu_free.sum(axis=1), hosts, below, model)

    def counts(self, gpu_free: Ints) -> tuple[Ints, Ints]:
        """Per state and per distinct milli ``m`` of the shapes: how many GPUs have ``>= m``
        free, and the free milli of those with less."""
        millis = np.array(self.millis, dtype=np.int64)
        at_least = gpu_free[:, :, None] >= millis[None, None, :]
        hosts = at_least.sum(axis=1)
        below = np.where(at_least, 0, gpu_free[:, :, None]).sum(axis=1)
        return hosts.astype(np.int64), below.astype(np.int64)

    def share_deltas(self, before: Ints, after: Ints) -> tuple[Ints, Ints]:
        """How ``counts`` change when one GPU goes from ``before`` to ``after`` free milli."""
        millis = np.array(self.millis, dtype=np.int64)[None, :]
        was, now = before[:, None] >= millis, after[:, None] >= millis
        hosts = now.astype(np.int64) - was.astype(np.int64)
        below = np.where(now, 0, after[:, None]) - np.where(was, 0, before[:, None])
        return hosts, below

    def from_counts(
        self, cpu_free: Ints, total: Ints, hosts: Ints, below: Ints, model: Ints
    ) -> Floats:
        """The fragmentation from :meth:`counts` (plus total free milli, CPU and model)."""
        total_f = total.astype(np.float64)
        frag = self.always * total_f
        if not len(self.freq):
            return frag
        fits = (
            (hosts[:, self.milli_of] >= self.gpus[None, :])
            & (cpu_free[:, None] >= self.cpu[None, :])
            & self.access[model]
        )
        per_shape = np.where(fits, below[:, self.milli_of].astype(np.float64), total_f[:, None])
        frag += per_shape @ self.freq
        return frag
