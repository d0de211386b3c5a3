"""The exact status, message and backoff of lifecycle steps the main table only samples.

Tenants read these messages in ``kubectl get trainingjob`` and in Events; the backoff decides
when a gang that could not start may be placed again. Each row is facts in, the whole expected
:class:`~suanli.controller.lifecycle.Transition` out (found missing by mutation testing: a
message set to ``None``, a time difference turned into a sum, the "and N more" cut-off moved,
the operator's backoff settings dropped for the defaults).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from suanli.api.trainingjob import ConditionType, Phase
from suanli.controller.lifecycle import (
    ConditionChange,
    Event,
    JobFacts,
    LifecycleSettings,
    PodFacts,
    StatusUpdate,
    Transition,
    transition,
)
from suanli.reasons import Reason
from tests.unit.controller.test_lifecycle import NOW, cluster, job, node, pod, starting


def test_a_gang_whose_replicas_all_succeeded_is_succeeded_with_its_message() -> None:
    message = "all 2 replicas succeeded"
    pods = [pod(0, "Succeeded"), pod(1, "Succeeded")]
    assert transition(job(), pods, cluster(), NOW) == Transition(
        status=StatusUpdate(
            phase=Phase.SUCCEEDED,
            reason=Reason.SUCCEEDED,
            message=message,
            conditions=(
                ConditionChange(ConditionType.FINISHED, True, Reason.SUCCEEDED, message),
                ConditionChange(ConditionType.RUNNING, False, Reason.SUCCEEDED, message),
            ),
            started_at=None,  # it had started: startedAt stays
            finished_at=NOW,
        ),
        event=Event("Normal", Reason.SUCCEEDED, message),
    )


def test_a_job_past_its_max_run_time_fails_saying_how_long_it_ran() -> None:
    ran_too_long = job(started_at=NOW - 50, max_run_seconds=30)
    message = "ran 50 s, longer than spec.maxRunSeconds (30 s); pods deleted, the job failed"
    assert transition(ran_too_long, [pod(0), pod(1)], cluster(), NOW) == Transition(
        status=StatusUpdate(
            phase=Phase.FAILED,
            reason=Reason.MAX_RUN_TIME_EXCEEDED,
            message=message,
            conditions=(
                ConditionChange(
                    ConditionType.FINISHED, True, Reason.MAX_RUN_TIME_EXCEEDED, message
                ),
                ConditionChange(
                    ConditionType.RUNNING, False, Reason.MAX_RUN_TIME_EXCEEDED, message
                ),
            ),
            finished_at=NOW,
        ),
        retire=("train-a2-0", "train-a2-1"),
        event=Event("Warning", Reason.MAX_RUN_TIME_EXCEEDED, message),
        eviction=Reason.MAX_RUN_TIME_EXCEEDED,
    )


@dataclass(frozen=True)
class Waiting:
    name: str
    replicas: int
    pods: tuple[PodFacts, ...]
    listed: str  # what the GangStartTimeout message says is not running


WAITING = (
    Waiting(
        "three-missing-are-all-named",
        3,
        (),
        "pod train-a2-0 missing, pod train-a2-1 missing, pod train-a2-2 missing",
    ),
    Waiting(
        "a-fourth-is-counted",
        4,
        (),
        "pod train-a2-0 missing, pod train-a2-1 missing, pod train-a2-2 missing and 1 more",
    ),
    Waiting(
        "running-pods-are-not-listed",
        3,
        (pod(0, "Running"), pod(1, "Pending"), pod(2, None)),
        "pod train-a2-1 Pending on n1, pod train-a2-2 not scheduled on n2",
    ),
)


@pytest.mark.parametrize("case", WAITING, ids=[w.name for w in WAITING])
def test_a_gang_start_timeout_names_at_most_three_waiting_pods(case: Waiting) -> None:
    nodes = tuple(f"n{i}" for i in range(case.replicas))
    facts = starting(placement_nodes=nodes, admitted_at=NOW - 301)
    nodes_up = cluster(*(node(n) for n in nodes))
    step = transition(facts, list(case.pods), nodes_up, NOW)
    assert step.status is not None
    assert step.status.message == (
        f"the gang did not start within 300 s of admission ({case.listed}); released, "
        "requeued in 10 s (gang-start timeout 1 of 3)"
    )


@dataclass(frozen=True)
class Backoff:
    start_timeouts: int
    seconds: float


# The operator's own knobs, not the defaults: base 7 s, cap 20 s, limit 5.
KNOBS = LifecycleSettings(requeue_backoff=7.0, requeue_backoff_max=20.0, gang_start_limit=5)
BACKOFFS = (Backoff(0, 7.0), Backoff(1, 14.0), Backoff(2, 20.0), Backoff(4, 20.0))


@pytest.mark.parametrize("case", BACKOFFS, ids=[f"after-{b.start_timeouts}" for b in BACKOFFS])
def test_a_gang_start_timeout_backs_off_by_the_operator_s_settings(case: Backoff) -> None:
    facts: JobFacts = starting(start_timeouts=case.start_timeouts, admitted_at=NOW - 301)
    step = transition(facts, [], cluster(), NOW, KNOBS)
    assert step.requeue_after == case.seconds
    assert step.status is not None
    assert step.status.start_timeouts == case.start_timeouts + 1
    assert step.status.message.endswith(
        f"requeued in {case.seconds:g} s (gang-start timeout {case.start_timeouts + 1} of 5)"
    )


def test_a_lost_node_is_noticed_after_a_replica_that_already_succeeded() -> None:
    """Replica 0 is done (its node no longer matters); replica 1's node was deleted."""
    step = transition(job(), [pod(0, "Succeeded"), pod(1)], cluster(without=["n1"]), NOW)
    assert step.status is not None
    assert (step.status.phase, step.eviction, step.gang_restart) == (
        Phase.QUEUED,
        Reason.NODE_LOST,
        True,
    )
    assert step.status.message == (
        "node n1 was deleted (replica 1); restarting the whole gang (not counted against "
        "restartLimit: 0 of 3 used)"
    )
