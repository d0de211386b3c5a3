"""Topology modes against each other on random clusters, on both implementations.

For a gang with one option: when ``require`` places it, ``prefer`` must place it exactly the
same way (inside the best domain); when ``require`` cannot, ``prefer`` must fall back to exactly
the unconstrained placement. A core that ignores the mode, the level or the domain labels breaks
one of these on some cluster, whichever way its unconstrained choice happens to fall.
"""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from suanli.placement import _core, reference
from suanli.placement.model import (
    Failure,
    FailureReason,
    Gang,
    GangOption,
    Placement,
    Policy,
    TopologyLevel,
    TopologyMode,
)
from tests.unit.placement.conftest import CLASSES

DEVICE_CLASSES = ("ascend-910", "nvidia-a100")


@st.composite
def clusters(draw: st.DrawFn) -> tuple[list[tuple[str, str, str, list[int]]], Gang, Policy]:
    device_class = draw(st.sampled_from(DEVICE_CLASSES))
    nodes = []
    for _ in range(draw(st.integers(2, 8))):
        used = draw(st.sampled_from([0, 0, 2, 4, 6, 8]))
        nodes.append(
            (
                draw(st.sampled_from(["r1", "r2", "r3", ""])),
                draw(st.sampled_from(["s1", "s2", ""])),
                device_class,
                list(range(used)),
            )
        )
    replicas = draw(st.integers(1, 4))
    count = (
        8 if device_class == "ascend-910" and replicas > 1 else draw(st.sampled_from((1, 2, 4, 8)))
    )
    gang = Gang(
        "job",
        replicas,
        (GangOption(device_class, count, 1000, 1000, 1024),),
        min_replicas=draw(st.sampled_from([None, 1])),
        topology_level=draw(st.sampled_from(list(TopologyLevel))),
    )
    return nodes, gang, draw(st.sampled_from(list(Policy)))


def place(impl: ModuleType, scenario: Any, mode: TopologyMode) -> Placement | Failure:
    nodes, gang, policy = scenario
    state = impl.ClusterState(CLASSES, policy=policy)
    for index, (rack, super_node, device_class, used) in enumerate(nodes):
        name = f"n{index}"
        state.add_node(
            name, device_class, 96000, 393216, 110, devices=8, rack=rack, super_node=super_node
        )
        if used:
            state.bind(f"old-{index}", name, 1000, 1024, devices=used)
    result: Placement | Failure = state.place(replace(gang, topology=mode))
    return result


def domain_of(scenario: Any, node: str) -> str:
    nodes, gang, _ = scenario
    rack, super_node, _, _ = nodes[int(node[1:])]
    return rack if gang.topology_level == TopologyLevel.RACK else super_node


@settings(max_examples=150, derandomize=True, deadline=None)
@given(scenario=clusters(), impl=st.sampled_from([_core, reference]))
def test_prefer_is_require_when_a_domain_fits_and_unconstrained_otherwise(
    scenario: Any, impl: ModuleType
) -> None:
    required = place(impl, scenario, TopologyMode.REQUIRE)
    preferred = place(impl, scenario, TopologyMode.PREFER)
    unconstrained = place(impl, scenario, TopologyMode.NONE)
    if isinstance(required, Placement):
        domains = {domain_of(scenario, r.node) for r in required.replicas}
        assert len(domains) == 1 and "" not in domains, domains
        event("required fits; " + ("differs" if required != unconstrained else "same") + " as free")
        assert preferred == required
        return
    assert isinstance(required, Failure)
    if isinstance(unconstrained, Placement):
        event("only unconstrained fits")
        assert required.reason == FailureReason.TOPOLOGY_UNSATISFIABLE
    else:
        event("nothing fits")
        assert required.reason == unconstrained.reason
    assert preferred == unconstrained


@settings(max_examples=60, derandomize=True, deadline=None)
@given(scenario=clusters())
def test_compiled_and_reference_agree_on_every_topology_mode(scenario: Any) -> None:
    for mode in TopologyMode:
        assert place(_core, scenario, mode) == place(reference, scenario, mode)
