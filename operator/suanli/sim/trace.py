"""Read the Alibaba ``openb`` node and pod lists into placement-core terms.

Each GPU model becomes a fractional, fully meshed device class (the trace shares GPUs in
milli-units and does not describe NVLink topology); each pod becomes a one-replica gang whose
options are the GPU models its ``gpu_spec`` accepts (any model when empty), scored against
each other (``choose_best_option``), exactly as a scheduler free to pick any model would.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from suanli.placement.model import (
    WHOLE,
    DeviceClass,
    Gang,
    GangOption,
    WorkloadShape,
)


@dataclass(frozen=True, slots=True)
class TraceNode:
    name: str
    cpu_milli: int
    memory_mib: int
    gpus: int
    model: str


@dataclass(frozen=True, slots=True)
class TracePod:
    name: str
    cpu_milli: int
    memory_mib: int
    gpus: int
    gpu_milli: int
    gpu_spec: tuple[str, ...]

    @property
    def gpu_demand_milli(self) -> int:
        """GPU milli the pod asks for, as the FGD simulator counts demand."""
        return self.gpus * self.gpu_milli


def _int(row: dict[str, str], column: str, path: Path, line: int) -> int:
    try:
        return int(row[column])
    except (KeyError, ValueError):
        raise ValueError(
            f"{path}:{line}: column {column!r} must be an integer, got {row.get(column)!r}"
        ) from None


def read_nodes(path: Path) -> list[TraceNode]:
    nodes: list[TraceNode] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            nodes.append(
                TraceNode(
                    row["sn"],
                    _int(row, "cpu_milli", path, line),
                    _int(row, "memory_mib", path, line),
                    _int(row, "gpu", path, line),
                    (row.get("model") or "").strip(),
                )
            )
    if not nodes:
        raise ValueError(f"{path}: no nodes")
    return nodes


def read_pods(path: Path) -> list[TracePod]:
    pods: list[TracePod] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            gpus = _int(row, "num_gpu", path, line)
            milli = _int(row, "gpu_milli", path, line) if gpus else 0
            spec = tuple(dict.fromkeys(m for m in (row.get("gpu_spec") or "").split("|") if m))
            pods.append(
                TracePod(
                    row["name"],
                    _int(row, "cpu_milli", path, line),
                    _int(row, "memory_mib", path, line),
                    gpus,
                    WHOLE if gpus > 1 else milli,
                    spec,
                )
            )
    if not pods:
        raise ValueError(f"{path}: no pods")
    return pods


def device_classes(nodes: list[TraceNode]) -> list[DeviceClass]:
    most: dict[str, int] = {}
    for node in nodes:
        if node.gpus:
            most[node.model] = max(most.get(node.model, 0), node.gpus)
    return [
        DeviceClass(model, count, count, tuple(range(1, count + 1)), None, True)
        for model, count in sorted(most.items())
    ]


def pod_gang(pod: TracePod, gang_id: str, models: list[str]) -> Gang:
    options: tuple[GangOption, ...]
    if pod.gpus == 0:
        options = (GangOption(None, 0, WHOLE, pod.cpu_milli, pod.memory_mib),)
    else:
        accepted = [m for m in models if not pod.gpu_spec or m in pod.gpu_spec]
        options = tuple(
            GangOption(m, pod.gpus, pod.gpu_milli, pod.cpu_milli, pod.memory_mib) for m in accepted
        )
        if not options:  # only models this cluster lacks: name one, so placing it fails
            options = (
                GangOption(pod.gpu_spec[0], pod.gpus, pod.gpu_milli, pod.cpu_milli, pod.memory_mib),
            )
    return Gang(gang_id, 1, options, choose_best_option=len(options) > 1)


def workload_mix(pods: list[TracePod]) -> list[WorkloadShape]:
    """The pod list as a weighted mix of shapes (what FGD calls the target workload)."""
    counts: dict[tuple[int, int, int, int, tuple[str, ...]], int] = {}
    for pod in pods:
        key = (pod.cpu_milli, pod.memory_mib, pod.gpus, pod.gpu_milli or WHOLE, pod.gpu_spec)
        counts[key] = counts.get(key, 0) + 1
    return [
        WorkloadShape(cpu, mem, gpus, milli, weight, spec)
        for (cpu, mem, gpus, milli, spec), weight in counts.items()
    ]
