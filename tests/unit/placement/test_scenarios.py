"""Scenario tests: every case in scenarios.yaml, on the compiled core and on the reference."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from suanli.placement.model import (
    Failure,
    Gang,
    GangOption,
    Placement,
    Policy,
    TopologyLevel,
    TopologyMode,
    selector,
)
from tests.unit.placement.conftest import CLASSES

SCENARIOS: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "scenarios.yaml").read_text(encoding="utf-8")
)


def build(impl: ModuleType, case: dict[str, Any]) -> Any:
    state = impl.ClusterState(CLASSES, policy=Policy(case.get("policy", "fragmentation_aware")))
    for node in case["nodes"]:
        state.add_node(
            node["name"],
            node.get("class"),
            node.get("cpu", 96000),
            node.get("mem", 393216),
            node.get("pods", 110),
            devices=node.get("devices", 0),
            labels=node.get("labels"),
            rack=node.get("rack", ""),
            super_node=node.get("super_node", ""),
            schedulable=node.get("schedulable", True),
        )
    for pod in case.get("bound", []):
        state.bind(
            pod["pod"],
            pod["node"],
            1000,
            1024,
            devices=pod["devices"],
            milli=pod.get("milli", 1000),
        )
    return state


def gang_of(case: dict[str, Any]) -> Gang:
    spec = case["gang"]
    options = tuple(
        GangOption(
            o.get("class"),
            o.get("devices", 0),
            o.get("milli", 1000),
            o.get("cpu", 1000),
            o.get("mem", 1024),
        )
        for o in spec["options"]
    )
    return Gang(
        "job",
        spec["replicas"],
        options,
        min_replicas=spec.get("min_replicas"),
        topology=TopologyMode(spec.get("topology", "none")),
        topology_level=TopologyLevel(spec.get("level", "rack")),
        node_selector=selector(spec.get("selector", {})),
    )


def replicas_of(result: Placement) -> list[list[Any]]:
    return [[r.node, list(r.device_indices)] for r in result.replicas]


@pytest.mark.parametrize("case", SCENARIOS, ids=[c["name"] for c in SCENARIOS])
def test_scenario(impl: ModuleType, case: dict[str, Any]) -> None:
    if "unconstrained" in case["expect"]:
        # the same gang without its topology lands elsewhere: the topology decided the answer
        free = replace(gang_of(case), topology=TopologyMode.NONE)
        unconstrained = build(impl, case).place(free)
        assert isinstance(unconstrained, Placement), unconstrained
        assert replicas_of(unconstrained) == case["expect"]["unconstrained"]
        assert case["expect"]["unconstrained"] != case["expect"].get("replicas")
    state = build(impl, case)
    before = {name: state.node_free(name) for name in state.node_names()}
    result = state.place(gang_of(case))
    expect = case["expect"]
    if "reason" in expect:
        assert isinstance(result, Failure), result
        assert result.reason == expect["reason"]
        assert expect.get("message_contains", "") in result.message
        for key, value in expect.get("numbers", {}).items():
            assert result.numbers[key] == value, (key, result.numbers)
        assert {name: state.node_free(name) for name in state.node_names()} == before
        return
    assert isinstance(result, Placement), result
    assert result.option_index == expect.get("option", 0)
    assert replicas_of(result) == expect["replicas"]
    if "milli" in expect:
        assert all(r.milli == expect["milli"] for r in result.replicas)
    state.release_gang("job")
    assert {name: state.node_free(name) for name in state.node_names()} == before
