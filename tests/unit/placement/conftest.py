"""Both implementations, imported explicitly: a missing compiled core fails the suite."""

from __future__ import annotations

from types import ModuleType

import pytest

from suanli.placement import _core, reference
from suanli.placement.model import DeviceClass

IMPLEMENTATIONS: dict[str, ModuleType] = {"compiled": _core, "reference": reference}

ASCEND_910 = DeviceClass("ascend-910", 8, 4, (1, 2, 4, 8), 8, False, 256.0)
ASCEND_910B_16 = DeviceClass("ascend-910b-16", 16, 8, (1, 2, 4, 8, 16), 16, False, 376.0)
A100 = DeviceClass("nvidia-a100", 8, 8, (1, 2, 4, 8), None, True, 312.0)
T4 = DeviceClass("nvidia-t4", 4, 4, (1, 2, 4), None, True, 65.0)
CLASSES = (ASCEND_910, ASCEND_910B_16, A100, T4)


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def impl(request: pytest.FixtureRequest) -> ModuleType:
    return IMPLEMENTATIONS[request.param]
