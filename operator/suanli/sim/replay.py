"""Replay a pod list the way the FGD paper's simulator does, and measure GPU allocation.

Method (read in hkust-adsl/kubernetes-scheduler-simulator and its run scripts): pods are drawn
at random, with replacement, from the list until their summed GPU request reaches ``demand`` ×
the cluster's GPU capacity; the draws are shuffled; each is placed once, in order, and never
leaves; a pod that does not fit is dropped. The allocation ratio is allocated GPU milli over
total GPU milli (fractional shares count fractionally), recorded as the arrived demand passes
each checkpoint percentage.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

from suanli.placement import ClusterState, reference
from suanli.placement.model import WHOLE, Failure, Gang, Placement, Policy, WorkloadShape
from suanli.sim.trace import TraceNode, TracePod, device_classes, pod_gang, workload_mix

IMPLEMENTATIONS = ("compiled", "reference")


class _State(Protocol):
    def add_node(
        self, name: str, device_class: str | None, cpu_milli: int, memory_mib: int, pods: int,
        *, devices: int = 0,
    ) -> None: ...  # fmt: skip
    def set_workload_mix(self, shapes: list[WorkloadShape]) -> None: ...
    def place(self, gang: Gang) -> Placement | Failure: ...


@dataclass(slots=True)
class SeedResult:
    seed: int
    alloc_pct: dict[int, float]
    arrived: int
    placed: int
    failed: int
    failures_by_reason: dict[str, int] = field(default_factory=dict)


def draw_pods(
    pods: list[TracePod], capacity_milli: int, demand: float, seed: int
) -> list[TracePod]:
    """Pods drawn with replacement until their GPU request reaches demand × capacity, shuffled."""
    if demand <= 0:
        raise ValueError(f"demand must be > 0, got {demand}")
    if not any(p.gpu_demand_milli for p in pods):
        raise ValueError("the pod list asks for no GPU at all: demand cannot be reached")
    rng = random.Random(seed)
    target = demand * capacity_milli
    drawn: list[TracePod] = []
    total = 0
    while total < target:
        pod = rng.choice(pods)
        drawn.append(pod)
        total += pod.gpu_demand_milli
    rng.shuffle(drawn)
    return drawn


def build_state(
    nodes: list[TraceNode], pods: list[TracePod], policy: Policy, implementation: str
) -> tuple[_State, list[str]]:
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    classes = device_classes(nodes)
    implementation_class = ClusterState if implementation == "compiled" else reference.ClusterState
    state: _State = implementation_class(classes, policy=policy, track_recent_mix=False)
    for node in nodes:
        model = node.model if node.gpus else None
        # Pod slots are not in the trace; 256 never binds before CPU, memory or GPU does.
        state.add_node(node.name, model, node.cpu_milli, node.memory_mib, 256, devices=node.gpus)
    state.set_workload_mix(workload_mix(pods))
    return state, [c.name for c in classes]


def replay(
    nodes: list[TraceNode],
    pods: list[TracePod],
    policy: Policy,
    seed: int,
    *,
    demand: float = 1.3,
    checkpoints: tuple[int, ...] = (50, 80, 90, 100, 110, 120, 130),
    implementation: str = "compiled",
) -> SeedResult:
    capacity = sum(n.gpus for n in nodes) * WHOLE
    if capacity == 0:
        raise ValueError("the node list has no GPUs")
    state, models = build_state(nodes, pods, policy, implementation)
    pending = sorted(c for c in checkpoints if c <= demand * 100 + 1e-9)
    result = SeedResult(seed, {}, 0, 0, 0)
    arrived = allocated = 0
    for index, pod in enumerate(draw_pods(pods, capacity, demand, seed)):
        outcome = state.place(pod_gang(pod, f"p{index}", models))
        arrived += pod.gpu_demand_milli
        result.arrived += 1
        if isinstance(outcome, Placement):
            allocated += pod.gpu_demand_milli
            result.placed += 1
        else:
            result.failed += 1
            reason = str(outcome.reason)
            result.failures_by_reason[reason] = result.failures_by_reason.get(reason, 0) + 1
        while pending and arrived * 100 >= pending[0] * capacity:
            result.alloc_pct[pending.pop(0)] = 100.0 * allocated / capacity
    for checkpoint in pending:  # demand fell just short of the last checkpoint's rounding
        result.alloc_pct[checkpoint] = 100.0 * allocated / capacity
    return result
