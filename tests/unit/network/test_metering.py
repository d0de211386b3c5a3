"""The hub's metering is the exact sum of the members' (suanli.network.metering)."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from suanli.network import MemberMetering, network_metering


def test_sum_over_centres_per_class() -> None:
    entries = [
        MemberMetering("gz", "team-a", "ascend-910b", 3600.0, 1.1),
        MemberMetering("wh", "team-a", "ascend-910b", 120.0, 2.2),
        MemberMetering("wh", "team-a", "nvidia-h100", 80.0, 79.12),
    ]
    got = network_metering(entries)
    assert got == {
        "ascend-910b": (Fraction(3720), Fraction(1.1) + Fraction(2.2)),
        "nvidia-h100": (Fraction(80), Fraction(79.12)),
    }
    assert got["ascend-910b"][0].denominator == 1
    assert float(got["ascend-910b"][1]) == math.fsum([1.1, 2.2])  # exact sum, rounded once


def test_a_quota_read_twice_counts_once() -> None:
    first = MemberMetering("gz", "team-a", "ascend-910b", 10.0, 1.0)
    later = MemberMetering("gz", "team-a", "ascend-910b", 20.0, 2.0)
    assert network_metering([first, later]) == {"ascend-910b": (Fraction(20), Fraction(2))}


ENTRY = st.builds(
    MemberMetering,
    centre=st.sampled_from(["gz", "wh", "nj"]),
    quota=st.sampled_from(["team-a", "team-b"]),
    accelerator_class=st.sampled_from(["ascend-910b", "nvidia-h100"]),
    device_seconds=st.integers(0, 10**12).map(float),
    pflop_seconds=st.floats(0, 1e12, allow_nan=False),
)


@given(st.lists(ENTRY, max_size=30, unique_by=lambda e: (e.centre, e.quota, e.accelerator_class)))
def test_sum_is_exact_whatever_the_order(entries: list[MemberMetering]) -> None:
    forward = network_metering(entries)
    backward = network_metering(list(reversed(entries)))
    assert forward == backward
    for cls, (devices, pflops) in forward.items():
        mine = [e for e in entries if e.accelerator_class == cls]
        assert devices == sum(int(e.device_seconds) for e in mine)
        assert devices.denominator == 1
        assert float(pflops) == math.fsum(e.pflop_seconds for e in mine)
