"""The per-shape best-node index against the plain scan and the reference, on loaded clusters.

The small random clusters of ``test_properties`` rarely reach the index's hard cases: many nodes
answering the same request shape again and again, a cluster-wide balance weight that makes
nodes with different imbalances tie on the effective key, nodes cordoned, resized, removed and
re-added between decisions. Here each example builds a cluster of a few dozen pre-loaded nodes
and runs a long sequence of single-pod decisions drawn from a handful of shapes (so indexes are
reused), interleaved with node changes, on the compiled core with the index (``use_memo``), the
compiled core scanning every node, and the reference; every decision must be identical.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from suanli.placement import _core, reference
from suanli.placement.model import Gang, GangOption, Placement, Policy, WorkloadShape
from tests.unit.placement.conftest import A100, ASCEND_910, ASCEND_910B_16, CLASSES

SETTINGS = settings(max_examples=25, derandomize=True, deadline=None)
SHAPES = (
    GangOption(A100.name, 1, 1000, 8000, 32768),
    GangOption(A100.name, 1, 500, 4000, 16384),
    GangOption(A100.name, 1, 250, 2000, 8192),
    GangOption(A100.name, 2, 1000, 16000, 65536),
    GangOption(ASCEND_910.name, 2, 1000, 16000, 65536),
    GangOption(ASCEND_910.name, 4, 1000, 32000, 131072),
)


def build(module: Any, seed: int, nodes: int, policy: Policy, weight: int, idle: int) -> Any:
    rng = random.Random(seed)
    state = module.ClusterState(CLASSES, policy=policy, track_recent_mix=False)
    state.set_workload_mix(
        [
            WorkloadShape(8000, 32768, 1, 1000, weight),
            WorkloadShape(4000, 16384, 1, 500, 1),
            WorkloadShape(32000, 131072, 4, 1000, 1),
            WorkloadShape(16000, 65536, 2, 1000, 1, (ASCEND_910.name,)),
        ]
    )
    for i in range(nodes):
        cls = ASCEND_910 if i % 3 == 2 else A100
        # Uneven capacities and requests spread the nodes' imbalances finely, so that nodes
        # with different imbalances often tie on the effective key (same balance penalty).
        cpu = rng.randrange(48000, 192000)
        state.add_node(f"n{i}", cls.name, cpu, rng.randrange(262144, 786432), 110, devices=8)
        for j in range(rng.randrange(0, 6)):
            milli = rng.choice([1000, 1000, 500, 250]) if cls is A100 else 1000
            try:
                state.bind(
                    f"pre-{i}-{j}",
                    f"n{i}",
                    rng.randrange(500, 9000),
                    rng.randrange(1024, 8192),
                    devices=1,
                    milli=milli,
                )
            except ValueError:
                break
    # Idle nodes of a class no request asks for lower the utilisation, hence the balance
    # weight, so that wide ranges of imbalance share one penalty value.
    for i in range(idle):
        state.add_node(f"idle{i}", ASCEND_910B_16.name, 192000, 786432, 110, devices=16)
    return state


Params = tuple[int, int, Policy, int, int, int]


def run(module: Any, params: Params, memo: bool = True) -> list[Any]:
    seed, nodes, policy, weight, idle, index_after = params
    state = build(module, seed, nodes, policy, weight, idle)
    if module is _core:
        state.use_memo = memo
        state.index_after = index_after
    rng = random.Random(seed + 1)
    outcomes: list[Any] = []
    kept: list[str] = []
    removed: list[int] = []
    for step in range(120):
        roll = rng.random()
        if roll < 0.05:
            i = rng.randrange(nodes)
            name = f"n{i}"
            if i not in removed:
                cls = ASCEND_910 if i % 3 == 2 else A100
                state.update_node(
                    name, cls.name, 192000, 786432, 110, devices=8, schedulable=rng.random() < 0.5
                )
            outcomes.append(("update", name))
            continue
        if roll < 0.08 and kept:
            state.release_gang(kept.pop(rng.randrange(len(kept))))
            outcomes.append(("release",))
            continue
        if roll < 0.10:
            i = rng.randrange(nodes)
            if i in removed:
                removed.remove(i)
                state.add_node(f"n{i}", A100.name, 96000, 786432, 110, devices=8)
            else:
                removed.append(i)
                state.remove_node(f"n{i}")  # its pods are forgotten; their gangs stay known
            outcomes.append(("node", i))
            continue
        gang = Gang(f"g{step}", 1, (rng.choice(SHAPES),))
        result = state.place(gang)
        outcomes.append(result)
        if isinstance(result, Placement):
            if rng.random() < 0.6:
                state.release_gang(gang.id)
            else:
                kept.append(gang.id)
    outcomes.append(sorted(state.node_free(n) for n in state.node_names()))
    return outcomes


@st.composite
def params(draw: st.DrawFn) -> Params:
    return (
        draw(st.integers(0, 10**6)),
        draw(st.integers(8, 60)),
        draw(st.sampled_from([Policy.FRAGMENTATION_AWARE] * 3 + list(Policy))),
        draw(st.sampled_from([1, 2, 40])),
        draw(st.sampled_from([0, 30, 300])),
        draw(st.sampled_from([1, 1, 3, 32])),
    )


@SETTINGS
@given(params())
def test_index_decides_as_the_scan(p: Params) -> None:
    assert run(_core, p, memo=True) == run(_core, p, memo=False)


@SETTINGS
@given(params())
def test_index_decides_as_the_reference(p: Params) -> None:
    assert run(_core, p) == run(reference, p)
