"""Placement details the scenario table only samples (found missing by mutation testing): a
per-class policy applies to the first registered class too, and a node with one millicore free
still counts its free devices as usable. Run on both cores."""

from __future__ import annotations

from typing import Any

import pytest

from suanli.placement import _core, reference
from suanli.placement.model import DeviceClass, Gang, GangOption, Placement

A = DeviceClass("a", 8, 8, (1, 2, 4, 8))
B = DeviceClass("b", 8, 8, (1, 2, 4, 8))
CORES = [_core.ClusterState, reference.ClusterState]


@pytest.mark.parametrize("core", CORES, ids=["compiled", "reference"])
@pytest.mark.parametrize(("policy", "node"), [("spread", "y"), ("best_fit", "x")])
def test_the_first_class_s_own_policy_decides_its_placements(
    core: Any, policy: str, node: str
) -> None:
    """x already holds one device: best fit packs next to it, spread takes the empty node y;
    the global policy is the other one."""
    other = "best_fit" if policy == "spread" else "spread"
    state = core([A, B], policy=other, class_policies={"a": policy})
    for name in ("x", "y"):
        state.add_node(name, "a", 10_000, 10_000, 10, devices=8)
    state.bind("other/0", "x", 0, 0, devices=(0,))
    placement = state.place(Gang("g", 1, (GangOption("a", 1),)))
    assert isinstance(placement, Placement)
    assert placement.replicas[0].node == node


@pytest.mark.parametrize("core", CORES, ids=["compiled", "reference"])
@pytest.mark.parametrize(("cpu_free", "fragmented"), [(1, 0), (0, 7000)])
def test_one_free_millicore_keeps_a_node_s_devices_usable(
    core: Any, cpu_free: int, fragmented: int
) -> None:
    state = core([A])
    state.add_node("x", "a", 1000 + cpu_free, 10_000, 10, devices=8)
    state.bind("other/0", "x", 1000, 0, devices=(0,))
    summary = state.capacity_summary()["a"]
    assert (summary.free_milli, summary.fragmented_milli) == (7000, fragmented)


RINGS = DeviceClass("rings", 8, 4, (1, 2, 4, 8))


@pytest.mark.parametrize("core", CORES, ids=["compiled", "reference"])
@pytest.mark.parametrize(("options", "expected"), [({}, 6000), ({"track_recent_mix": False}, 0)])
def test_by_default_fragmentation_is_measured_against_the_recent_demand(
    core: Any, options: dict[str, bool], expected: int
) -> None:
    """After 70 four-chip gangs (the recent demand), a node holding chips 0 and 4 has six free
    chips and no free ring of four: all six are expected to be stranded. Without tracking there
    is no demand to measure against."""
    state = core([RINGS], **options)
    for index in range(40):
        state.add_node(f"n{index}", "rings", 100_000, 100_000, 110, devices=8)
    for index in range(70):
        assert isinstance(state.place(Gang(f"g{index}", 1, (GangOption("rings", 4),))), Placement)
    for index in range(70):
        state.release_gang(f"g{index}")
    state.bind("other/0", "n0", 0, 0, devices=(0, 4))
    assert state.capacity_summary()["rings"].expected_fragmented_milli == expected


@pytest.mark.parametrize("core", CORES, ids=["compiled", "reference"])
def test_a_counted_bind_that_fits_no_ring_takes_loose_free_chips(core: Any) -> None:
    """A pod suanli did not place (the device plugin gave it four chips) is bound by count even
    when no ring has four free: it takes free chips wherever they are."""
    state = core([RINGS])
    state.add_node("n", "rings", 100_000, 100_000, 110, devices=8)
    state.bind("other/0", "n", 0, 0, devices=(0, 4))
    state.bind("other/1", "n", 0, 0, devices=4)
    assert sum(1 for milli in state.node_free("n")[3] if milli == 1000) == 2


@pytest.mark.parametrize("core", CORES, ids=["compiled", "reference"])
def test_a_class_registered_twice_is_refused_by_name(core: Any) -> None:
    with pytest.raises(ValueError, match="device class 'a' is already registered"):
        core([A, A])
