"""Edges of the state's inputs that no scenario reaches: the smallest share a pod may hold."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.unit.placement.conftest import CLASSES


def test_a_one_milli_share_binds_and_a_zero_share_is_refused(impl: ModuleType) -> None:
    state = impl.ClusterState(CLASSES)
    state.add_node("g0", "nvidia-a100", 96000, 393216, 110, devices=8)
    assert state.bind("tiny", "g0", 1000, 1024, devices=[3], milli=1) == (3,)
    assert state.node_free("g0")[3][3] == 999
    with pytest.raises(ValueError, match="milli"):
        state.bind("none", "g0", 1000, 1024, devices=[4], milli=0)
