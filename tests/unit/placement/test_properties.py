"""Property tests: capacity, atomicity, chip-rule legality, determinism, and twin agreement.

Each example builds a random cluster and a random sequence of place / release operations, runs
it on the compiled core (memo on and off) and on the reference, and checks every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from suanli.placement import _core, reference
from suanli.placement.model import (
    WHOLE,
    DeviceClass,
    Failure,
    Gang,
    GangOption,
    Placement,
    Policy,
    TopologyLevel,
    TopologyMode,
    WorkloadShape,
)
from tests.unit.placement.conftest import CLASSES

BY_NAME = {c.name: c for c in CLASSES}
SETTINGS = settings(max_examples=40, derandomize=True, deadline=None)


@dataclass(frozen=True)
class NodeSpec:
    device_class: str | None
    devices: int
    cpu: int
    mem: int
    rack: str
    super_node: str


@st.composite
def node_specs(draw: st.DrawFn) -> NodeSpec:
    cls = draw(st.sampled_from([*BY_NAME, None]))
    if cls is None:
        devices = 0
    elif cls == "nvidia-t4":
        devices = draw(st.sampled_from([2, 4]))
    else:
        devices = BY_NAME[cls].devices_per_node
    return NodeSpec(
        cls,
        devices,
        draw(st.sampled_from([8000, 32000, 96000])),
        draw(st.sampled_from([32768, 262144])),
        # "" is a node without the label: it belongs to no domain of that level
        draw(st.sampled_from(["r1", "r2", "r3", ""])),
        draw(st.sampled_from(["s1", "s2", ""])),
    )


@st.composite
def options(draw: st.DrawFn) -> GangOption:
    cls = draw(st.sampled_from([*BY_NAME, None]))
    cpu = draw(st.sampled_from([0, 1000, 4000, 16000]))
    mem = draw(st.sampled_from([0, 1024, 16384]))
    if cls is None:
        return GangOption(None, 0, WHOLE, cpu, mem)
    device_class = BY_NAME[cls]
    # Mostly legal counts, sometimes an illegal one (3) to exercise IllegalShape.
    count = draw(st.sampled_from([1, 1, 1, *device_class.allowed_counts, 3]))
    milli = WHOLE
    if device_class.fractional and count == 1:
        milli = draw(st.sampled_from([WHOLE, 250, 300, 500, 500, 810]))
    return GangOption(cls, count, milli, cpu, mem)


@st.composite
def gangs(draw: st.DrawFn, index: int) -> Gang:
    opts = tuple(draw(st.lists(options(), min_size=1, max_size=2)))
    replicas = draw(st.integers(1, 3))
    return Gang(
        f"g{index}",
        replicas,
        opts,
        min_replicas=draw(st.sampled_from([None, 1])),
        topology=draw(st.sampled_from(list(TopologyMode))),
        topology_level=draw(st.sampled_from(list(TopologyLevel))),
        choose_best_option=draw(st.booleans()),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[NodeSpec], list[tuple[str, Any]], Policy, bool]:
    nodes = draw(st.lists(node_specs(), min_size=1, max_size=10))
    steps: list[tuple[str, Any]] = []
    for index in range(draw(st.integers(1, 40))):
        if index and draw(st.integers(0, 4)) == 0:
            steps.append(("release", draw(st.integers(0, index - 1))))
        else:
            steps.append(("place", draw(gangs(index))))
    return nodes, steps, draw(st.sampled_from(list(Policy))), draw(st.booleans())


def build(module: Any, nodes: list[NodeSpec], policy: Policy, with_mix: bool) -> Any:
    state = module.ClusterState(CLASSES, policy=policy, track_recent_mix=not with_mix)
    if with_mix:
        state.set_workload_mix(
            [
                WorkloadShape(4000, 1024, 1, 500, 3),
                WorkloadShape(1000, 512, 1, 250, 2),
                WorkloadShape(16000, 16384, 8, WHOLE, 1),
                WorkloadShape(1000, 1024, 2, WHOLE, 2, ("ascend-910",)),
                WorkloadShape(1000, 1024, 0, WHOLE, 1),
            ]
        )
    for i, spec in enumerate(nodes):
        state.add_node(
            f"n{i}",
            spec.device_class,
            spec.cpu,
            spec.mem,
            16,
            devices=spec.devices,
            rack=spec.rack,
            super_node=spec.super_node,
        )
    return state


def snapshot(state: Any) -> dict[str, tuple[int, int, int, tuple[int, ...]]]:
    return {name: state.node_free(name) for name in state.node_names()}


def check_legal(result: Placement, gang: Gang, nodes: list[NodeSpec]) -> None:
    option = gang.options[result.option_index]
    want = gang.replicas_for(option)
    assert gang.min_replicas_for(option) <= len(result.replicas) <= want
    if gang.topology == TopologyMode.REQUIRE:
        level = gang.topology_level
        specs = [nodes[int(r.node[1:])] for r in result.replicas]
        domains = {s.rack if level == TopologyLevel.RACK else s.super_node for s in specs}
        assert len(domains) == 1 and "" not in domains, (level, domains)
    for replica in result.replicas:
        spec = nodes[int(replica.node[1:])]
        devices = replica.device_indices
        assert len(devices) == option.devices_per_replica
        assert len(set(devices)) == len(devices)
        if option.device_class is None:
            continue
        assert spec.device_class == option.device_class
        device_class: DeviceClass = BY_NAME[option.device_class]
        group = min(device_class.group_size, spec.devices)
        groups = {i // group for i in devices}
        if len(devices) <= group:
            assert len(groups) == 1, (devices, group)
        else:
            assert sorted(devices) == [
                i for g in sorted(groups) for i in range(g * group, (g + 1) * group)
            ]


def run(module: Any, scenario: Any, memo: bool = True, index_after: int = 32) -> list[Any]:
    nodes, steps, policy, with_mix = scenario
    state = build(module, nodes, policy, with_mix)
    if module is _core:
        state.use_memo = memo
        state.index_after = index_after
    initial = snapshot(state)
    outcomes: list[Any] = []
    placed: dict[int, str] = {}
    for kind, arg in steps:
        if kind == "release":
            gang_id = placed.pop(arg, None)
            if gang_id is not None:
                state.release_gang(gang_id)
            outcomes.append(("release", gang_id, snapshot(state)))
            continue
        before = snapshot(state)
        result = state.place(arg)
        after = snapshot(state)
        for cpu, mem, pods, devices in after.values():
            assert cpu >= 0 and mem >= 0 and pods >= 0
            assert all(0 <= d <= WHOLE for d in devices)
        if isinstance(result, Failure):
            assert after == before, "a failed gang changed the state"
        else:
            check_legal(result, arg, nodes)
            placed[int(arg.id[1:])] = arg.id
        outcomes.append((result, after))
    for gang_id in placed.values():
        state.release_gang(gang_id)
    assert snapshot(state) == initial, "releasing every gang did not restore the cluster"
    assert state.pod_keys() == []
    return outcomes


@SETTINGS
@given(scenarios())
def test_compiled_and_reference_make_the_same_decisions(scenario: Any) -> None:
    assert run(_core, scenario) == run(reference, scenario)


@SETTINGS
@given(scenarios())
def test_memo_of_equal_node_states_changes_no_decision(scenario: Any) -> None:
    assert run(_core, scenario, memo=True) == run(_core, scenario, memo=False)


@SETTINGS
@given(scenarios())
def test_per_shape_index_changes_no_decision(scenario: Any) -> None:
    without = run(_core, scenario, memo=False)
    assert run(_core, scenario, memo=True, index_after=1) == without
    assert run(_core, scenario, memo=True, index_after=2) == without


@SETTINGS
@given(scenarios())
def test_decisions_are_deterministic(scenario: Any) -> None:
    assert run(_core, scenario) == run(_core, scenario)


@SETTINGS
@given(scenarios())
def test_capacity_summary_agrees_and_adds_up(scenario: Any) -> None:
    nodes, steps, policy, with_mix = scenario
    states = [build(m, nodes, policy, with_mix) for m in (_core, reference)]
    for kind, arg in steps:
        if kind == "place":
            for state in states:
                state.place(arg)
    compiled, ref = (s.capacity_summary() for s in states)
    assert compiled == ref
    for row in compiled.values():
        assert row.allocated_milli + row.free_milli == row.total_devices * WHOLE
        assert 0 <= row.fragmented_milli <= row.free_milli
        assert row.free_whole_devices * WHOLE <= row.free_milli
