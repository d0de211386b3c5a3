"""The workload mix the fragmentation-aware policy measures fragmentation against.

Why: FGD (ATC '23) scores a placement by how much it raises the *expected* fragmentation of a
node, where "expected" is over the request shapes that will arrive next. The simulator knows the
mix up front (the pod list); the operator does not, so by default it learns it from the recent
gangs it placed. Weights are integer counts so compiled and reference scores stay identical.

Shares (fractions of one device) get a longer view than FGD's next-request one: FGD counts a
device's free milli as lost when the *next* request could not use it, so it happily leaves
210 milli beside a 470 + 320 pair rather than open a fresh device, although 530 free would
almost surely have been filled by the next 470 and 210 almost never is. A *waste curve*
``waste[f]`` instead estimates how much of ``f`` free milli will *never* be allocated: the
device is offered future requests drawn from the mix (a geometric horizon of
``WASTE_HORIZON`` requests on average), takes each one that fits, and whatever is free when
the horizon ends is waste. One pass over ``f`` = 0..1000 computes it, since taking a request
only lowers ``f``:

    waste[f] = (d·f + (1-d)·Σ_{s<=f} p_s·waste[f-s]) / (1 - (1-d)·(1 - Σ_{s<=f} p_s)),
    d = 1 / WASTE_HORIZON, p_s = weight of the shapes of size s / total weight.

Which requests can use a device depends on the node's free CPU too, so each class gets one curve
per free-CPU level (the shapes whose CPU fits that level); below the lowest level nothing fits
and every free milli is waste. The curves are computed here, once, in floating point, and
handed to both implementations as integers, so their scores stay identical.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from suanli.placement.model import (
    WASTE_CPU_LEVELS,
    WASTE_HORIZON,
    WASTE_WEIGHT,
    WHOLE,
    DeviceClass,
    GangOption,
    WorkloadShape,
)

ShapeRow = tuple[int, int, int, int, int]
"""(cpu_milli, memory_mib, devices, milli, weight) of one shape usable on a device class."""

WasteCurve = tuple[int, tuple[int, ...]]
"""(cpu_milli, waste): on a node with at least this much free CPU (and below the next level),
``waste[f]`` is the weighted milli of a device with ``f`` free milli expected never to be used."""


@dataclass(frozen=True, slots=True)
class MixTable:
    """The mix, pre-split per device class.

    ``const_weight[k]`` sums the weights of shapes that can never use class ``k`` devices
    (CPU-only shapes, shapes naming other classes, shapes illegal on ``k``): for them every free
    milli of a class-``k`` node counts as fragment. ``shapes[k]`` lists the others.
    ``waste[k]`` holds class ``k``'s waste curves by ascending CPU level; it is empty when no
    shape of the mix takes a share of a class-``k`` device, and then FGD's measure is used
    unchanged.
    """

    source: tuple[WorkloadShape, ...]
    const_weight: tuple[int, ...]
    shapes: tuple[tuple[ShapeRow, ...], ...]
    total_weight: int
    waste: tuple[tuple[WasteCurve, ...], ...]

    @property
    def dead_weight(self) -> int:
        """What one free milli costs on a node that no shape of the mix fits at all."""
        return WASTE_WEIGHT * self.total_weight

    @classmethod
    def empty(cls, classes: int) -> MixTable:
        return cls((), (0,) * classes, ((),) * classes, 0, ((),) * classes)

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
        waste = tuple(waste_curves(class_rows, total) for class_rows in rows)
        return cls(tuple(source), tuple(const), tuple(rows), total, waste)

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


def waste_curves(rows: tuple[ShapeRow, ...], total: int) -> tuple[WasteCurve, ...]:
    """One waste curve per free-CPU level for a device class whose usable shapes are ``rows``."""
    if total <= 0 or not any(row[3] < WHOLE for row in rows):
        return ()
    curves: list[WasteCurve] = []
    for level in cpu_levels(rows):
        sizes: dict[int, int] = {}
        for cpu, _mem, _count, milli, weight in rows:
            if cpu <= level:
                sizes[milli] = sizes.get(milli, 0) + weight
        curves.append((level, waste_curve(tuple(sorted(sizes.items())), total)))
    return tuple(curves)


def cpu_levels(rows: tuple[ShapeRow, ...]) -> list[int]:
    """The CPU requests of the share shapes, then evenly picked ones of the rest, up to
    ``WASTE_CPU_LEVELS`` in all, ascending."""
    shares = sorted({row[0] for row in rows if row[3] < WHOLE})[:WASTE_CPU_LEVELS]
    others = sorted({row[0] for row in rows} - set(shares))
    room = WASTE_CPU_LEVELS - len(shares)
    if len(others) > room:
        step = (len(others) - 1) / max(1, room - 1)
        others = sorted({others[round(i * step)] for i in range(room)}) if room else []
    return sorted(set(shares) | set(others))


@lru_cache(maxsize=256)
def waste_curve(sizes: tuple[tuple[int, int], ...], total: int) -> tuple[int, ...]:
    """``waste[f]`` for f = 0..WHOLE (see the module docstring), scaled to integer weight-milli.

    ``sizes`` are (milli a request takes from one device, summed weight), ascending; a request
    for whole devices takes 1000 from each.
    """
    keep = 1.0 - 1.0 / WASTE_HORIZON
    chances = [(size, weight / total) for size, weight in sizes]
    waste = [0.0] * (WHOLE + 1)
    for free in range(1, WHOLE + 1):
        fits = taken = 0.0
        for size, chance in chances:
            if size > free:
                break
            fits += chance
            taken += chance * waste[free - size]
        waste[free] = ((1.0 - keep) * free + keep * taken) / (1.0 - keep * (1.0 - fits))
    return tuple(round(WASTE_WEIGHT * total * value) for value in waste)


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
