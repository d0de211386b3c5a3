"""Share waste curves: what they estimate, where they apply, and the decision they change."""

from __future__ import annotations

import dataclasses
from types import ModuleType

from suanli.placement import reference
from suanli.placement.mix import MixTable, cpu_levels, waste_curve, waste_curves
from suanli.placement.model import (
    WASTE_CPU_LEVELS,
    WASTE_WEIGHT,
    WHOLE,
    DeviceClass,
    Gang,
    GangOption,
    Placement,
    Policy,
    WorkloadShape,
)
from tests.unit.placement.conftest import A100, ASCEND_910

GPU = DeviceClass("gpu", 1, 1, (1,), None, True)

MIX = [
    WorkloadShape(4000, 1024, 1, 470, 10),
    WorkloadShape(4000, 1024, 1, 320, 4),
    WorkloadShape(4000, 1024, 1, 650, 3),
    WorkloadShape(8000, 1024, 1, WHOLE, 10),
]


def per_milli(curve: tuple[int, ...], total: int) -> dict[int, float]:
    return {f: curve[f] / (WASTE_WEIGHT * total) for f in range(WHOLE + 1)}


def test_free_milli_no_request_fits_is_all_waste_and_nothing_is_negative() -> None:
    curve = per_milli(waste_curve(((320, 4), (470, 10), (WHOLE, 10)), 27), 27)
    assert curve[0] == 0
    for free in range(320):
        assert abs(curve[free] - free) < 1e-3
    assert all(0 <= value <= free + 1e-3 for free, value in curve.items())


def test_free_milli_an_abundant_request_fills_is_worth_more_than_a_sliver() -> None:
    # 530 free is nearly always taken by the next 470 (leaving 60); 210 free never is.
    curve = per_milli(waste_curve(((320, 4), (470, 10), (WHOLE, 10)), 27), 27)
    assert curve[530] < 0.6 * curve[210]
    assert curve[WHOLE] < curve[530]


def test_classes_without_share_shapes_keep_fgd_unchanged() -> None:
    table = MixTable.build(
        [WorkloadShape(1000, 1024, 8, WHOLE, 2), WorkloadShape(1000, 1024, 1, WHOLE, 3)],
        [ASCEND_910, A100],
    )
    assert table.waste == ((), ())
    shares = MixTable.build([WorkloadShape(1000, 1024, 1, 500, 1)], [ASCEND_910, A100])
    assert shares.waste[0] == ()  # Ascend devices are never shared
    assert [level for level, _ in shares.waste[1]] == [1000]


def test_cpu_levels_keep_every_share_request_and_stay_bounded() -> None:
    rows = tuple((cpu, 1024, 1, WHOLE, 1) for cpu in range(1000, 60000, 1000))
    rows += ((3152, 1024, 1, 810, 5), (4000, 1024, 1, 470, 5))
    levels = cpu_levels(rows)
    assert levels == sorted(levels)
    assert len(levels) == WASTE_CPU_LEVELS
    assert {3152, 4000} <= set(levels)
    curves = waste_curves(rows, 69)
    assert [level for level, _ in curves] == levels
    # The lowest level only knows the shapes that fit it: a 470 share needs 4000 CPU.
    lowest = per_milli(curves[0][1], 69)
    assert abs(lowest[470] - 470) < 1e-3


def test_a_node_no_request_fits_counts_every_free_milli_as_waste() -> None:
    table = MixTable.build(MIX, [GPU])
    starved = reference.expected_fragmentation(
        table, 0, cpu=2000, mem=65536, pods=4, free=[530], group=1
    )
    fed = reference.expected_fragmentation(
        table, 0, cpu=32000, mem=65536, pods=4, free=[530], group=1
    )
    assert starved == table.dead_weight * 530 + sum(row[4] for row in table.shapes[0]) * 530
    assert fed < starved


def test_a_share_goes_where_the_leftover_will_be_used(impl: ModuleType) -> None:
    """A 320 share beside a 470 leaves 210 free that no shape of the mix can use; beside
    another 320 it leaves 360 that the next 320 fills. FGD's one-step measure prefers the 470
    (the leftover of 530 - 320 looks small); the waste curves prefer the 320."""
    state = impl.ClusterState([GPU], policy=Policy.FRAGMENTATION_AWARE, track_recent_mix=False)
    state.set_workload_mix(MIX)
    for name, used in (("beside-470", 470), ("beside-320", 320), ("fresh", 0)):
        state.add_node(name, "gpu", 32000, 65536, 16, devices=1)
        if used:
            state.bind(f"{name}-old", name, 4000, 1024, devices=[0], milli=used)
    placed = state.place(Gang("g", 1, (GangOption("gpu", 1, 320, 4000, 1024),)))
    assert isinstance(placed, Placement)
    assert placed.replicas[0].node == "beside-320"

    table = MixTable.build(MIX, [GPU])
    fgd_only = dataclasses.replace(table, waste=((),))

    def increase(mix: MixTable, free: int) -> int:
        def frag(cpu: int, left: int) -> int:
            return reference.expected_fragmentation(
                mix, 0, cpu=cpu, mem=65536, pods=15, free=[left], group=1
            )

        return frag(24000, free - 320) - frag(28000, free)

    assert increase(fgd_only, 530) < increase(fgd_only, 680)  # FGD alone picks the 470
    assert increase(table, 680) < increase(table, 530)
