"""Table tests of the centre-lost and re-dispatch rules (suanli.network.health)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suanli.network import Action, CentreState, CopySeen, centre_state, copy_action, should_withdraw

LOST = 30.0
REDISPATCH = 300.0
R, U, OOS = CentreState.REACHABLE, CentreState.UNREACHABLE, CentreState.OUT_OF_SERVICE


@pytest.mark.parametrize(
    ("kubeconfig", "out_of_service", "last_contact", "now", "want"),
    [
        (True, False, 100.0, 110.0, R),
        (True, False, 100.0, 130.0, U),  # exactly lost_after: lost
        (True, False, None, 0.0, U),  # never answered
        (False, False, 100.0, 101.0, CentreState.NO_KUBECONFIG),
        (True, True, 100.0, 101.0, OOS),  # the assertion comes first
        (False, True, None, 0.0, OOS),
    ],
)
def test_centre_state(
    kubeconfig: bool,
    out_of_service: bool,
    last_contact: float | None,
    now: float,
    want: CentreState,
) -> None:
    got = centre_state(
        has_kubeconfig=kubeconfig,
        out_of_service=out_of_service,
        last_contact=last_contact,
        now=now,
        lost_after=LOST,
    )
    assert got is want


# (case, state, seen, observed_at, dispatched_at, last_contact, now, expected)
ROWS = [
    ("running copy, fresh poll: mirror", R, CopySeen.PRESENT, 105, 100, 105, 110, Action.MIRROR),
    ("finished copy: mirror", R, CopySeen.FINISHED, 105, 100, 105, 110, Action.MIRROR),
    (
        "copy gone in a fresh poll: re-dispatch",
        R,
        CopySeen.GONE,
        105,
        100,
        105,
        110,
        Action.REDISPATCH,
    ),
    (
        "a poll that started before the create says nothing",
        R,
        CopySeen.GONE,
        99,
        100,
        99,
        101,
        Action.KEEP,
    ),
    (
        "copy being deleted: wait until it and its pods are gone",
        R,
        CopySeen.DELETING,
        105,
        100,
        105,
        110,
        Action.WAIT_GONE,
    ),
    (
        "last answer 15 s ago: what it saw is mirrored",
        R,
        CopySeen.PRESENT,
        105,
        100,
        105,
        120,
        Action.MIRROR,
    ),
    ("no answer for lost-after: marked", U, CopySeen.PRESENT, 105, 100, 105, 135, Action.MARK_LOST),
    (
        "unreachable for an hour: still only marked",
        U,
        CopySeen.PRESENT,
        105,
        100,
        105,
        3705,
        Action.MARK_LOST,
    ),
    (
        "out of service, not yet re-dispatch time: marked",
        OOS,
        CopySeen.PRESENT,
        105,
        100,
        105,
        300,
        Action.MARK_LOST,
    ),
    (
        "out of service, re-dispatch time passed: re-dispatch",
        OOS,
        CopySeen.PRESENT,
        105,
        100,
        105,
        405,
        Action.REDISPATCH,
    ),
    (
        "out of service but answering: delete the copy first",
        OOS,
        CopySeen.PRESENT,
        105,
        100,
        105,
        110,
        Action.DELETE_COPY,
    ),
    (
        "out of service, answering, copy gone: re-dispatch",
        OOS,
        CopySeen.GONE,
        105,
        100,
        105,
        110,
        Action.REDISPATCH,
    ),
    (
        "never answered since dispatch, unreachable: marked from the dispatch",
        U,
        None,
        None,
        100,
        None,
        131,
        Action.MARK_LOST,
    ),
]


@pytest.mark.parametrize(
    ("state", "seen", "observed_at", "dispatched_at", "last_contact", "now", "want"),
    [r[1:] for r in ROWS],
    ids=[r[0] for r in ROWS],
)
def test_copy_action(
    state: CentreState,
    seen: CopySeen | None,
    observed_at: float | None,
    dispatched_at: float,
    last_contact: float | None,
    now: float,
    want: Action,
) -> None:
    got = copy_action(
        state=state,
        seen=seen,
        observed_at=observed_at,
        dispatched_at=dispatched_at,
        last_contact=last_contact,
        now=now,
        lost_after=LOST,
        redispatch_after=REDISPATCH,
    )
    assert got is want


@given(
    seen=st.none() | st.sampled_from(list(CopySeen)),
    observed_at=st.none() | st.floats(0, 1e6),
    dispatched_at=st.floats(0, 1e6),
    last_contact=st.none() | st.floats(0, 1e6),
    elapsed=st.floats(0, 1e7),
)
def test_an_unreachable_centre_never_leads_to_a_redispatch_without_proof(
    seen: CopySeen | None,
    observed_at: float | None,
    dispatched_at: float,
    last_contact: float | None,
    elapsed: float,
) -> None:
    """Without the out-of-service assertion, REDISPATCH needs a poll, made after the create and
    within lost-after, that saw the copy and its pods gone."""
    now = max(dispatched_at, last_contact or 0.0, observed_at or 0.0) + elapsed
    got = copy_action(
        state=U,
        seen=seen,
        observed_at=observed_at,
        dispatched_at=dispatched_at,
        last_contact=last_contact,
        now=now,
        lost_after=LOST,
        redispatch_after=REDISPATCH,
    )
    if got is Action.REDISPATCH:
        assert seen is CopySeen.GONE
        assert observed_at is not None and observed_at >= dispatched_at
        assert last_contact is not None and now - last_contact < LOST


@pytest.mark.parametrize(
    ("phase", "observed_at", "now", "want"),
    [
        ("Queued", 131.0, 131.0, True),
        (None, 131.0, 131.0, True),
        ("Queued", 129.0, 129.0, False),  # not yet the timeout
        ("Queued", 99.0, 131.0, False),  # the poll predates the copy
        ("Queued", None, 131.0, False),
        ("Admitted", 131.0, 131.0, False),
        ("Running", 500.0, 500.0, False),
    ],
)
def test_should_withdraw(
    phase: str | None, observed_at: float | None, now: float, want: bool
) -> None:
    assert (
        should_withdraw(
            phase=phase, observed_at=observed_at, dispatched_at=100.0, now=now, timeout=30
        )
        is want
    )
