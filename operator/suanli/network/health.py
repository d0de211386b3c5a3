"""A centre's state, and what the hub does with a job's copy given what it saw and when.

The rule that matters: a job is re-dispatched only when the hub can be sure the old copy does
not run — it saw the copy (and its pods) gone in a poll made after the copy was created, or a
platform engineer asserted that the centre is out of service and the re-dispatch time since the
last contact has passed. Being unreachable for a long time alone is never enough: the network
may be cut with the member's gang healthy (docs/network.md, "Failure rules").
"""

from __future__ import annotations

from enum import StrEnum


class CentreState(StrEnum):
    REACHABLE = "Reachable"
    UNREACHABLE = "Unreachable"
    OUT_OF_SERVICE = "OutOfService"
    NO_KUBECONFIG = "NoKubeconfig"


class CopySeen(StrEnum):
    """What the last poll that answered saw of a job's copy in its centre."""

    PRESENT = "Present"  # the copy exists and is not finished
    FINISHED = "Finished"  # the copy is Succeeded or Failed
    DELETING = "Deleting"  # the copy or one of its pods is still there, being deleted
    GONE = "Gone"  # neither the copy nor any of its pods exists


class Action(StrEnum):
    MIRROR = "Mirror"  # copy the copy's status to the hub job
    KEEP = "Keep"  # nothing new is known: leave the hub job as it is
    MARK_LOST = "MarkLost"  # reason CentreUnreachable; the phase stays as last mirrored
    DELETE_COPY = "DeleteCopy"  # remove the copy (the centre is being taken out of service)
    WAIT_GONE = "WaitGone"  # the copy is being deleted: wait until it and its pods are gone
    REDISPATCH = "Redispatch"  # the old copy cannot run: dispatch the job again


def centre_state(
    *,
    has_kubeconfig: bool,
    out_of_service: bool,
    last_contact: float | None,
    now: float,
    lost_after: float,
) -> CentreState:
    """Out of service (asserted) first, then no usable kubeconfig, then by the last contact."""
    if out_of_service:
        return CentreState.OUT_OF_SERVICE
    if not has_kubeconfig:
        return CentreState.NO_KUBECONFIG
    if last_contact is None or now - last_contact >= lost_after:
        return CentreState.UNREACHABLE
    return CentreState.REACHABLE


def copy_action(
    *,
    state: CentreState,
    seen: CopySeen | None,
    observed_at: float | None,
    dispatched_at: float,
    last_contact: float | None,
    now: float,
    lost_after: float,
    redispatch_after: float,
) -> Action:
    """What to do with a dispatched hub job's copy.

    ``seen``/``observed_at``: what the centre's latest successful poll saw of the copy and when
    that poll *started* (None: no poll answered since the copy was created). A poll that
    started before ``dispatched_at`` says nothing about the copy.
    """
    fresh = (
        seen is not None
        and observed_at is not None
        and observed_at >= dispatched_at
        and last_contact is not None
        and now - last_contact < lost_after
    )
    if fresh:
        if seen is CopySeen.GONE:
            return Action.REDISPATCH
        if seen is CopySeen.DELETING:
            return Action.WAIT_GONE
        if seen is CopySeen.FINISHED:
            return Action.MIRROR
        if state is CentreState.OUT_OF_SERVICE:
            return Action.DELETE_COPY
        return Action.MIRROR
    contact = last_contact if last_contact is not None else dispatched_at
    if state is CentreState.OUT_OF_SERVICE and now - contact >= redispatch_after:
        return Action.REDISPATCH
    if now - contact >= lost_after:
        return Action.MARK_LOST
    return Action.KEEP


def should_withdraw(
    *,
    phase: str | None,
    observed_at: float | None,
    dispatched_at: float,
    now: float,
    timeout: float,
) -> bool:
    """A copy still queued ``timeout`` seconds after it was created, as seen by a poll made
    after its creation, is withdrawn (deleted with a resourceVersion precondition, so a copy
    admitted meanwhile is kept) and the next centre is tried."""
    if observed_at is None or observed_at < dispatched_at:
        return False
    return phase in (None, "Queued") and now - dispatched_at >= timeout
