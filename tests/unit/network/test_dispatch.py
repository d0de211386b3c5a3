"""Table tests and properties of the hub's dispatch decision (suanli.network.dispatch)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suanli.network import (
    CentreView,
    JobOption,
    candidates,
    charged_devices,
    choose,
    options_within_quota,
    why_not_dispatched,
)

NS = "team-a"
ASCEND = JobOption(0, "ascend-910b", 8)
H100_FIRST = JobOption(0, "nvidia-h100", 8)
ASCEND_SECOND = JobOption(1, "ascend-910b", 8)


def centre(
    name: str,
    free: dict[str, int],
    room: dict[str, int] | None = None,
    available: bool = True,
    price: float | None = None,
) -> CentreView:
    return CentreView(
        name=name,
        available=available,
        free=free,
        devices={cls: 16 for cls in free},
        quota_room={(NS, cls): n for cls, n in (room if room is not None else free).items()},
        price_per_pflop_hour=price,
    )


NOMINAL = {"ascend-910b": 32, "nvidia-h100": 32}

CASES = [
    # (name, options, centres, excluded, expected centre, expected class)
    (
        "an Ascend-only job goes to the Ascend centre",
        [ASCEND],
        [centre("gz", {"nvidia-h100": 16}), centre("wh", {"ascend-910b": 16})],
        frozenset(),
        "wh",
        "ascend-910b",
    ),
    (
        "the centre with too few free devices is passed over",
        [ASCEND],
        [centre("gz", {"ascend-910b": 4}), centre("nj", {"ascend-910b": 8})],
        frozenset(),
        "nj",
        "ascend-910b",
    ),
    (
        "free devices but no member quota room: passed over",
        [ASCEND],
        [
            centre("gz", {"ascend-910b": 16}, room={"ascend-910b": 0}),
            centre("nj", {"ascend-910b": 8}),
        ],
        frozenset(),
        "nj",
        "ascend-910b",
    ),
    (
        "no member quota serves the namespace: passed over",
        [ASCEND],
        [centre("gz", {"ascend-910b": 16}, room={}), centre("nj", {"ascend-910b": 8})],
        frozenset(),
        "nj",
        "ascend-910b",
    ),
    (
        "an unavailable centre is passed over",
        [ASCEND],
        [centre("gz", {"ascend-910b": 16}, available=False), centre("nj", {"ascend-910b": 8})],
        frozenset(),
        "nj",
        "ascend-910b",
    ),
    (
        "a centre tried in this round is passed over",
        [ASCEND],
        [centre("gz", {"ascend-910b": 16}), centre("nj", {"ascend-910b": 8})],
        frozenset({"gz"}),
        "nj",
        "ascend-910b",
    ),
    (
        "the tenant's first option wins over price and room",
        [H100_FIRST, ASCEND_SECOND],
        [centre("gz", {"ascend-910b": 16}, price=1.0), centre("wh", {"nvidia-h100": 8}, price=9)],
        frozenset(),
        "wh",
        "nvidia-h100",
    ),
    (
        "the first option fits nowhere: the second is taken",
        [H100_FIRST, ASCEND_SECOND],
        [centre("gz", {"ascend-910b": 16}), centre("wh", {"nvidia-h100": 4})],
        frozenset(),
        "gz",
        "ascend-910b",
    ),
    (
        "same option: the cheaper centre",
        [ASCEND],
        [centre("gz", {"ascend-910b": 16}, price=3.0), centre("nj", {"ascend-910b": 8}, price=2)],
        frozenset(),
        "nj",
        "ascend-910b",
    ),
    (
        "a priced centre before an unpriced one",
        [ASCEND],
        [centre("gz", {"ascend-910b": 16}), centre("nj", {"ascend-910b": 8}, price=50.0)],
        frozenset(),
        "nj",
        "ascend-910b",
    ),
    (
        "same price: the one with more room left",
        [ASCEND],
        [centre("gz", {"ascend-910b": 8}), centre("nj", {"ascend-910b": 16})],
        frozenset(),
        "nj",
        "ascend-910b",
    ),
    (
        "a full tie: by name",
        [ASCEND],
        [centre("nj", {"ascend-910b": 16}), centre("gz", {"ascend-910b": 16})],
        frozenset(),
        "gz",
        "ascend-910b",
    ),
]


@pytest.mark.parametrize(
    ("options", "centres", "excluded", "want_centre", "want_class"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_choose(
    options: list[JobOption],
    centres: list[CentreView],
    excluded: frozenset[str],
    want_centre: str,
    want_class: str,
) -> None:
    chosen = choose(NS, options, NOMINAL, {}, centres, excluded)
    assert chosen is not None
    assert (chosen.centre, chosen.option.accelerator_class) == (want_centre, want_class)


def test_hub_quota_limits_the_options() -> None:
    charged = charged_devices([("ascend-910b", 16), ("ascend-910b", 8), ("nvidia-h100", 8)])
    assert charged == {"ascend-910b": 24, "nvidia-h100": 8}
    nominal = {"ascend-910b": 32, "nvidia-h100": 8}
    assert options_within_quota([ASCEND], nominal, charged) == [ASCEND]
    assert options_within_quota([H100_FIRST, ASCEND_SECOND], nominal, charged) == [ASCEND_SECOND]
    assert options_within_quota([JobOption(0, "ascend-910b", 9)], nominal, charged) == []
    assert options_within_quota([JobOption(0, "unknown", 1)], nominal, charged) == []


def test_over_the_hub_quota_nothing_is_chosen_and_the_message_has_numbers() -> None:
    centres = [centre("gz", {"ascend-910b": 16})]
    charged = {"ascend-910b": 28}
    assert choose(NS, [ASCEND], NOMINAL, charged, centres) is None
    reason, message = why_not_dispatched(NS, [ASCEND], NOMINAL, charged, centres, "team-a")
    assert reason == "QuotaExceeded"
    assert message == "waiting for 8 × ascend-910b: hub quota team-a has 4 of 32 free"


def test_no_centre_message_names_each_centre() -> None:
    centres = [
        centre("gz", {"ascend-910b": 4}),
        centre("wh", {}, available=False),
        centre("nj", {"ascend-910b": 16}, room={}),
    ]
    assert choose(NS, [ASCEND], NOMINAL, {}, centres) is None
    reason, message = why_not_dispatched(NS, [ASCEND], NOMINAL, {}, centres, "team-a")
    assert reason == "NoCentre"
    assert message == (
        "no centre can take the job now: gz: 4 ascend-910b free, quota room 4, need 8; "
        "nj: no quota serves team-a for ascend-910b; wh: not available"
    )


@st.composite
def networks(draw: st.DrawFn) -> tuple[list[JobOption], list[CentreView]]:
    classes = ["ascend-910b", "nvidia-h100", "nvidia-a100"]
    count = draw(st.integers(1, 3))
    options = [
        JobOption(i, draw(st.sampled_from(classes)), draw(st.integers(1, 32))) for i in range(count)
    ]
    centres = []
    for index in range(draw(st.integers(0, 5))):
        free = draw(st.dictionaries(st.sampled_from(classes), st.integers(0, 32)))
        room = draw(st.dictionaries(st.sampled_from(classes), st.integers(0, 32)))
        centres.append(
            CentreView(
                name=f"c{index}",
                available=draw(st.booleans()),
                free=free,
                devices={c: n + draw(st.integers(0, 8)) for c, n in free.items()},
                quota_room={(NS, c): n for c, n in room.items()},
                price_per_pflop_hour=draw(st.none() | st.floats(0, 100)),
            )
        )
    return options, centres


@given(networks())
def test_every_candidate_could_admit_and_the_best_comes_first(
    network: tuple[list[JobOption], list[CentreView]],
) -> None:
    options, centres = network
    found = candidates(NS, options, centres)
    by_name = {c.name: c for c in centres}
    for candidate in found:
        view = by_name[candidate.centre]
        cls = candidate.option.accelerator_class
        assert view.available
        assert view.free.get(cls, 0) >= candidate.option.devices
        assert view.quota_room[(NS, cls)] >= candidate.option.devices
    assert [c.key() for c in found] == sorted(c.key() for c in found)
    # nothing that could admit is missed
    expected = sum(
        1
        for view in centres
        if view.available
        for o in options
        if view.free.get(o.accelerator_class, 0) >= o.devices
        and view.quota_room.get((NS, o.accelerator_class), -1) >= o.devices
    )
    assert len(found) == expected
    chosen = choose(
        NS, options, {c: 10**6 for c in ("ascend-910b", "nvidia-h100", "nvidia-a100")}, {}, centres
    )
    assert chosen == (found[0] if found else None)
