"""The workload mix the fragmentation-aware policy measures fragmentation against.

Why: FGD (ATC '23) scores a placement by how much it raises the *expected* fragmentation of a
node, where "expected" is over the request shapes that will arrive next. The simulator knows the
mix up front (the pod list); the operator does not, so by default it learns it from the recent
gangs it placed. Weights are integer counts so compiled and reference scores stay identical.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass

from suanli.placement.model import WHOLE, DeviceClass, GangOption, WorkloadShape

ShapeRow = tuple[int, int, int, int, int]
"""(cpu_milli, memory_mib, devices, milli, weight) of one shape usable on a device class."""


@dataclass(frozen=True, slots=True)
class MixTable:
    """The mix, pre-split per device class.

    ``const_weight[k]`` sums the weights of shapes that can never use class ``k`` devices
    (CPU-only shapes, shapes naming other classes, shapes illegal on ``k``): for them every free
    milli of a class-``k`` node counts as fragment. ``shapes[k]`` lists the others.
    """

    source: tuple[WorkloadShape, ...]
    const_weight: tuple[int, ...]
    shapes: tuple[tuple[ShapeRow, ...], ...]
    total_weight: int

    @classmethod
    def empty(cls, classes: int) -> MixTable:
        return cls((), (0,) * classes, ((),) * classes, 0)

    @classmethod
    def build(cls, source: Sequence[WorkloadShape], classes: Sequence[DeviceClass]) -> MixTable:
        const: list[int] = []
        rows: list[tuple[ShapeRow, ...]] = []
        for device_class in classes:
            fixed, usable = 0, []
            for shape in source:
                if shape.weight == 0:
                    continue
                if not _can_use(shape, device_class):
                    fixed += shape.weight
                    continue
                row = (shape.cpu_milli, shape.memory_mib, shape.devices, shape.milli, shape.weight)
                usable.append(row)
            const.append(fixed)
            rows.append(tuple(_merge(usable)))
        total = sum(shape.weight for shape in source)
        return cls(tuple(source), tuple(const), tuple(rows), total)

    def resized(self, classes: Sequence[DeviceClass]) -> MixTable:
        return MixTable.build(self.source, classes)


def _can_use(shape: WorkloadShape, device_class: DeviceClass) -> bool:
    if shape.devices == 0:
        return False
    if shape.device_classes and device_class.name not in shape.device_classes:
        return False
    if shape.milli < WHOLE:
        return device_class.fractional and shape.devices == 1
    return shape.devices <= device_class.devices_per_node


def _merge(rows: list[ShapeRow]) -> list[ShapeRow]:
    """Add up the weights of identical shapes; sort so rows sharing (devices, milli) are
    adjacent (the compiled core computes the usable milli once per such run)."""
    merged: dict[tuple[int, int, int, int], int] = {}
    for cpu, mem, count, milli, weight in rows:
        merged[(cpu, mem, count, milli)] = merged.get((cpu, mem, count, milli), 0) + weight
    rows = [(*shape, weight) for shape, weight in merged.items()]
    return sorted(rows, key=lambda row: (row[2], row[3], row[0], row[1]))


class RecentMix:
    """The shapes of the last ``window`` placed gangs; the table is rebuilt every ``refresh``."""

    def __init__(self, window: int = 512, refresh: int = 64) -> None:
        self._window: deque[WorkloadShape] = deque(maxlen=window)
        self._refresh = refresh
        self._since = 0
        self.dirty = False

    def observe(self, option: GangOption, replicas: int) -> None:
        classes = () if option.device_class is None else (option.device_class,)
        milli = option.milli if option.devices_per_replica else WHOLE
        shape = WorkloadShape(
            option.cpu_milli, option.memory_mib, option.devices_per_replica, milli, replicas,
            classes,
        )  # fmt: skip
        self._window.append(shape)
        self._since += 1
        if self._since >= self._refresh or len(self._window) <= self._refresh:
            self.dirty = True

    def table(self, classes: Sequence[DeviceClass]) -> MixTable:
        self.dirty = False
        self._since = 0
        counts: Counter[WorkloadShape] = Counter()
        for shape in self._window:
            counts[shape] += 1
        merged = [
            WorkloadShape(
                s.cpu_milli, s.memory_mib, s.devices, s.milli, s.weight * n, s.device_classes
            )
            for s, n in counts.items()
        ]
        return MixTable.build(merged, classes)
