"""The plain data model: shape legality messages and validation that names the bad field."""

from __future__ import annotations

import pytest

from suanli.placement import _core
from suanli.placement.model import DeviceClass, Gang, GangOption, WorkloadShape, check_shape
from tests.unit.placement.conftest import A100, ASCEND_910, ASCEND_910B_16


def test_compiled_core_is_really_compiled() -> None:
    assert _core.__file__ is not None
    assert _core.__file__.endswith((".so", ".pyd")), _core.__file__


@pytest.mark.parametrize(
    ("device_class", "devices", "replicas", "milli", "expected"),
    [
        (ASCEND_910, 3, 1, 1000, "3 devices per replica is not legal for ascend-910: legal counts "
         "are 1, 2, 4 or 8 (inside one 4-device group, or whole groups)"),
        (ASCEND_910, 4, 2, 1000, "a 2-replica gang on ascend-910 must take exactly 8 devices per "
         "replica, got 4"),
        (ASCEND_910, 1, 1, 500, "ascend-910 devices cannot be shared: milli must be 1000, got 500"),
        (ASCEND_910B_16, 12, 1, 1000, "12 devices per replica is not legal for ascend-910b-16"),
        (A100, 2, 1, 500, "a fractional share (milli=500) needs exactly 1 device per replica"),
        (A100, 3, 1, 1000, "legal counts are 1, 2, 4 or 8 (on one node)"),
        (A100, 1, 1, 0, "milli must be 1..1000, got 0"),
        (A100, 1, 0, 1000, "replicas must be at least 1, got 0"),
    ],
)  # fmt: skip
def test_illegal_shapes_name_the_legal_ones(
    device_class: DeviceClass, devices: int, replicas: int, milli: int, expected: str
) -> None:
    message = check_shape(device_class, devices, replicas, milli)
    assert message is not None and expected in message


@pytest.mark.parametrize(
    ("device_class", "devices", "replicas", "milli"),
    [(ASCEND_910, 8, 4, 1000), (ASCEND_910, 2, 1, 1000), (ASCEND_910B_16, 16, 1, 1000),
     (A100, 1, 1, 250), (A100, 8, 3, 1000)],
)  # fmt: skip
def test_legal_shapes_pass(
    device_class: DeviceClass, devices: int, replicas: int, milli: int
) -> None:
    assert check_shape(device_class, devices, replicas, milli) is None


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: DeviceClass("x", 8, 3, (1,)), "group_size 3 must divide"),
        (lambda: DeviceClass("x", 8, 4, (1, 6)), "allowed_counts entry 6"),
        (lambda: DeviceClass("x", 8, 4, (2, 1)), "allowed_counts must be non-empty, sorted"),
        (lambda: DeviceClass("x", 32, 4, (1,)), "devices_per_node must be 1..16"),
        (lambda: DeviceClass("x", 8, 4, (1, 2), multi_replica_count=8), "multi_replica_count 8"),
        (lambda: GangOption("a", -1), "GangOption.devices_per_replica must be >= 0"),
        (lambda: GangOption("a", 0), "GangOption.devices_per_replica must be > 0"),
        (lambda: GangOption(None, 2), "GangOption.device_class is required"),
        (lambda: GangOption(None, cpu_milli=-5), "GangOption.cpu_milli must be >= 0"),
        (lambda: Gang("", 1, (GangOption(None),)), "Gang.id must not be empty"),
        (lambda: Gang("g", 0, (GangOption(None),)), "Gang.replicas must be >= 1"),
        (lambda: Gang("g", 1, ()), "Gang.options must list at least one option"),
        (lambda: Gang("g", 2, (GangOption(None),), min_replicas=3), "Gang.min_replicas must be"),
        (lambda: WorkloadShape(0, 0, 1, 0, 1), "WorkloadShape: devices must be"),
    ],
)
def test_bad_input_names_the_field(build: object, field: str) -> None:
    with pytest.raises(ValueError, match=field.replace("(", r"\(").replace(")", r"\)")):
        build()  # type: ignore[operator]
