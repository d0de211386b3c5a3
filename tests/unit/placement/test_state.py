"""Cluster-state bookkeeping on both implementations: nodes, binds, releases, errors."""

from __future__ import annotations

from types import ModuleType

import pytest

from suanli.placement.model import Gang, GangOption, Placement, Policy, WorkloadShape
from tests.unit.placement.conftest import A100, ASCEND_910, CLASSES


def fresh(impl: ModuleType) -> object:
    state = impl.ClusterState(CLASSES)
    state.add_node("a0", "ascend-910", 192000, 786432, 110, devices=8, rack="r1")
    state.add_node("g0", "nvidia-a100", 96000, 393216, 110, devices=8, rack="r1")
    return state


def test_bind_with_a_count_picks_legal_devices_deterministically(impl: ModuleType) -> None:
    state = impl.ClusterState(CLASSES)
    state.add_node("a0", "ascend-910", 192000, 786432, 110, devices=8)
    assert state.bind("p1", "a0", 1000, 1024, devices=1) == (0,)
    assert state.bind("p2", "a0", 1000, 1024, devices=4) == (4, 5, 6, 7)
    assert state.bind("p3", "a0", 1000, 1024, devices=2) == (1, 2)
    state.release("p2")
    assert state.node_free("a0") == (
        190000,
        786432 - 2048,
        108,
        (0, 0, 0, 1000, 1000, 1000, 1000, 1000),
    )


def test_bind_refuses_devices_that_are_not_free(impl: ModuleType) -> None:
    state = fresh(impl)
    state.bind("p1", "g0", 1000, 1024, devices=[3], milli=700)
    with pytest.raises(ValueError, match="device 3 on 'g0' does not have 500 milli free"):
        state.bind("p2", "g0", 1000, 1024, devices=[3], milli=500)
    with pytest.raises(ValueError, match="unknown node 'nope'"):
        state.bind("p3", "nope", 1, 1, devices=1)
    with pytest.raises(ValueError, match="already bound"):
        state.bind("p1", "g0", 1, 1, devices=0)


def test_remove_node_forgets_its_pods_and_update_keeps_them(impl: ModuleType) -> None:
    state = fresh(impl)
    result = state.place(Gang("j", 1, (GangOption("nvidia-a100", 2, 1000, 8000, 1024),)))
    assert isinstance(result, Placement)
    state.update_node("g0", "nvidia-a100", 48000, 393216, 110, devices=8, schedulable=False)
    assert state.node_free("g0")[0] == 40000
    with pytest.raises(ValueError, match="cannot change device class or count"):
        state.update_node("g0", "nvidia-a100", 48000, 393216, 110, devices=4)
    state.remove_node("g0")
    assert state.pod_keys() == []
    assert state.node_names() == ["a0"]
    state.release_gang("j")  # its pods went with the node: nothing left to release, no error
    with pytest.raises(KeyError):
        state.release_gang("j")


def test_unknown_names_raise_clear_errors(impl: ModuleType) -> None:
    state = fresh(impl)
    with pytest.raises(ValueError, match="unknown device class 'h100'"):
        state.add_node("x", "h100", 1000, 1024, 10, devices=8)
    with pytest.raises(ValueError, match="cpu_milli must be > 0"):
        state.add_node("x", None, 0, 1024, 10)
    with pytest.raises(ValueError, match=r"devices must be 0\.\.8 for nvidia-a100"):
        state.add_node("x", "nvidia-a100", 1000, 1024, 10, devices=9)
    with pytest.raises(ValueError, match="already exists"):
        state.add_node("g0", None, 1000, 1024, 10)
    with pytest.raises(ValueError, match="gang 'j' is already placed"):
        state.place(Gang("j", 1, (GangOption(None, cpu_milli=1),)))
        state.place(Gang("j", 1, (GangOption(None, cpu_milli=1),)))


def test_removed_slot_is_reused_and_new_node_starts_empty(impl: ModuleType) -> None:
    state = fresh(impl)
    state.bind("p", "g0", 1000, 1024, devices=8)
    state.remove_node("g0")
    state.add_node("g1", "nvidia-a100", 96000, 393216, 110, devices=8)
    assert state.node_free("g1") == (96000, 393216, 110, (1000,) * 8)


def test_capacity_summary_counts_fragmented_devices(impl: ModuleType) -> None:
    state = fresh(impl)
    state.bind("p1", "g0", 96000, 1024, devices=[0], milli=500)  # all CPU gone
    summary = state.capacity_summary()
    gpu = summary[A100.name]
    assert (gpu.total_devices, gpu.allocated_milli, gpu.free_milli) == (8, 500, 7500)
    assert gpu.free_whole_devices == 7
    assert gpu.fragmented_milli == 7500  # no CPU left: nothing on the node is usable
    assert summary[ASCEND_910.name].fragmented_milli == 0


def test_per_class_policy_and_explicit_mix(impl: ModuleType) -> None:
    state = impl.ClusterState(CLASSES, class_policies={"nvidia-a100": Policy.SPREAD})
    state.add_node("g0", "nvidia-a100", 96000, 393216, 110, devices=8)
    state.add_node("g1", "nvidia-a100", 96000, 393216, 110, devices=8)
    state.bind("p", "g0", 1000, 1024, devices=1)
    spread = state.place(Gang("s", 1, (GangOption("nvidia-a100", 1),)))
    assert isinstance(spread, Placement) and spread.replicas[0].node == "g1"
    state.set_policy(Policy.FRAGMENTATION_AWARE)
    # With a mix of 8-GPU requests, breaking the untouched node g1 further is the costlier move.
    state.set_workload_mix([WorkloadShape(0, 0, 8, 1000, 1), WorkloadShape(0, 0, 1, 1000, 1)])
    state.release_gang("s")
    packed = state.place(Gang("f", 1, (GangOption("nvidia-a100", 1),)))
    assert isinstance(packed, Placement) and packed.replicas[0].node == "g0"


def test_update_node_keeps_the_device_totals_the_utilisation_comes_from() -> None:
    """The reference's utilisation (it weighs the balance term) counts live devices: a node whose
    device count changes moves the total by the difference (a sum there was a surviving mutant)."""
    from suanli.placement import reference

    state = reference.ClusterState(CLASSES)
    state.add_node("a0", "ascend-910", 192000, 786432, 110, devices=8)
    state.add_node("g0", "nvidia-a100", 96000, 393216, 110, devices=8)
    state.update_node("g0", "nvidia-a100", 96000, 393216, 110, devices=4)
    assert (state._dev_total, state._dev_free) == (12 * reference.WHOLE, 12 * reference.WHOLE)
    state.bind("p1", "a0", 1000, 1024, devices=2)
    state.update_node("g0", "nvidia-a100", 96000, 393216, 110, devices=6)
    assert (state._dev_total, state._dev_free) == (14 * reference.WHOLE, 12 * reference.WHOLE)
