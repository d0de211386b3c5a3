"""The pure lifecycle: one table row per rule of docs/operator.md's lifecycle, in the style of
Kueue's ``TestSchedule`` (facts in, the whole expected step out), and Hypothesis properties over
generated jobs, pods and nodes for the invariants no table can cover exhaustively."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import Phase as Stage
from hypothesis import given, settings
from hypothesis import strategies as st

from suanli.api.trainingjob import ConditionType, Phase
from suanli.controller.lifecycle import (
    FINISHED_PHASES,
    JobFacts,
    LifecycleSettings,
    NodeFacts,
    PodFacts,
    Transition,
    apply_failed,
    evict,
    start_backoff,
    transition,
)
from suanli.reasons import EVICTION_REASONS, Reason
from suanli.workload.pods import pod_name

NOW = 100_000.0
SETTINGS = LifecycleSettings()


def job(**changes: Any) -> JobFacts:
    """A two-replica OnFailure job, admitted as attempt 2 on n0 and n1, running for 50 s."""
    base = JobFacts(
        key="team-a/train",
        name="train",
        phase=Phase.RUNNING,
        suspend=False,
        restart_policy="OnFailure",
        restart_limit=None,
        restart_count=0,
        start_timeouts=0,
        attempt=2,
        admitted=True,
        placement_nodes=("n0", "n1"),
        admitted_at=NOW - 100,
        started_at=NOW - 50,
        finished_at=None,
        max_run_seconds=None,
        ttl_seconds_after_finished=None,
    )
    return replace(base, **changes)


def starting(**changes: Any) -> JobFacts:
    """Admitted 100 s ago, not all pods running yet."""
    return job(**{"phase": Phase.ADMITTED, "started_at": None, **changes})


def pending(**changes: Any) -> JobFacts:
    fields: dict[str, Any] = {
        "phase": Phase.QUEUED,
        "admitted": False,
        "placement_nodes": (),
        "admitted_at": None,
        "started_at": None,
    }
    return job(**{**fields, **changes})


def finished(phase: Phase, **changes: Any) -> JobFacts:
    return job(**{"phase": phase, "finished_at": NOW - 60, **changes})


def pod(
    replica: int,
    phase: str | None = "Running",
    *,
    attempt: int = 2,
    node: str | None = None,
    deleting: bool = False,
    started: bool | None = None,
    disrupted: bool = False,
) -> PodFacts:
    return PodFacts(
        name=pod_name("train", attempt, replica),
        attempt=attempt,
        replica=replica,
        phase=phase,
        node=node if node is not None else f"n{replica}",
        deleting=deleting,
        started=started if started is not None else phase not in (None, "Pending"),
        disrupted=disrupted,
    )


def node(
    name: str,
    *,
    ready: bool = True,
    since: float | None = None,
    cordoned: bool = False,
    no_execute: bool = False,
) -> NodeFacts:
    return NodeFacts(name, ready, since, cordoned, no_execute)


def cluster(*facts: NodeFacts, without: Sequence[str] = ()) -> dict[str, NodeFacts]:
    nodes = {f"n{i}": node(f"n{i}") for i in range(3)}
    nodes.update({f.name: f for f in facts})
    for name in without:
        del nodes[name]
    return nodes


HEALTHY = cluster()
A0, A1 = pod_name("train", 2, 0), pod_name("train", 2, 1)
OLD0 = pod_name("train", 1, 0)
RUNNING = (pod(0), pod(1))


def summary(step: Transition) -> dict[str, Any]:
    """Everything a Transition decides except prose: what a row must match exactly."""
    out: dict[str, Any] = {}
    if step.status is not None:
        status = step.status
        out["phase"] = status.phase
        out["reason"] = status.reason
        out["conditions"] = {(c.type, c.status, c.reason) for c in status.conditions}
        for name in ("release", "started_at", "finished_at", "restart_count", "start_timeouts"):
            value = getattr(status, name)
            if value not in (None, False):
                out[name] = value
    for name in ("retire", "force", "create", "delete_job", "requeue_after", "eviction"):
        value = getattr(step, name)
        if value not in ((), None, False):
            out[name] = value
    if step.gang_restart:
        out["gang_restart"] = True
    if step.event is not None:
        out["event"] = (step.event.type, step.event.reason)
    return out


ADM, RUN, FIN = ConditionType.ADMITTED, ConditionType.RUNNING, ConditionType.FINISHED


def restarted(cause: Reason, *, count: int | None = None, **extra: Any) -> dict[str, Any]:
    """The expected whole-gang restart of RUNNING (both pods) for ``cause``."""
    expected: dict[str, Any] = {
        "phase": Phase.QUEUED,
        "reason": Reason.RESTARTING,
        "conditions": {(ADM, False, Reason.RESTARTING), (RUN, False, Reason.RESTARTING)},
        "release": True,
        "retire": (A0, A1),
        "requeue_after": SETTINGS.requeue_backoff,
        "eviction": cause,
        "gang_restart": True,
        "event": ("Warning", Reason.RESTARTING),
    }
    if count is not None:
        expected["restart_count"] = count
    return {**expected, **extra}


def failed(reason: Reason, cause: Reason | None, **extra: Any) -> dict[str, Any]:
    expected: dict[str, Any] = {
        "phase": Phase.FAILED,
        "reason": reason,
        "conditions": {(FIN, True, reason), (RUN, False, reason)},
        "finished_at": NOW,
        "retire": (A0, A1),
        "event": ("Warning", reason),
    }
    if cause is not None:
        expected["eviction"] = cause
    return {**expected, **extra}


def timed_out(count: int, backoff: float, **extra: Any) -> dict[str, Any]:
    expected: dict[str, Any] = {
        "phase": Phase.QUEUED,
        "reason": Reason.GANG_START_TIMEOUT,
        "conditions": {(ADM, False, Reason.GANG_START_TIMEOUT)},
        "release": True,
        "start_timeouts": count,
        "retire": (A0, A1),
        "force": (A1,),
        "requeue_after": backoff,
        "eviction": Reason.GANG_START_TIMEOUT,
        "event": ("Warning", Reason.GANG_START_TIMEOUT),
    }
    return {**expected, **extra}


SUSPENDED_RELEASE: dict[str, Any] = {
    "phase": Phase.SUSPENDED,
    "reason": Reason.SUSPENDED,
    "conditions": {(ADM, False, Reason.SUSPENDED), (RUN, False, Reason.SUSPENDED)},
    "release": True,
    "retire": (A0, A1),
    "eviction": Reason.SUSPENDED,
    "event": ("Normal", Reason.SUSPENDED),
}
LATE = SETTINGS.gang_start_timeout + 1  # seconds after admission: past the gang-start timeout
HALF_STARTED = (pod(0), pod(1, "Pending"))


@dataclass(frozen=True)
class Row:
    name: str
    job: JobFacts
    pods: tuple[PodFacts, ...]
    expect: Mapping[str, Any]
    nodes: Mapping[str, NodeFacts] = dataclasses.field(default_factory=lambda: HEALTHY)
    now: float = NOW
    says: tuple[str, ...] = ()  # the status (or Event) message names these


ROWS = (
    # --- finished jobs: never change phase; TTL deletes ---------------------------------------
    Row("succeeded stays as it is", finished(Phase.SUCCEEDED), (pod(0, "Succeeded"),), {}),
    Row(
        "ttl passed deletes the job",
        finished(Phase.SUCCEEDED, ttl_seconds_after_finished=60),
        (pod(0, "Succeeded"), pod(1, "Succeeded")),
        {"delete_job": True},
    ),
    Row(
        "ttl not yet passed",
        finished(Phase.FAILED, ttl_seconds_after_finished=61),
        (),
        {},
    ),
    Row(
        "ttl 0 without finishedAt deletes at once",
        finished(Phase.SUCCEEDED, ttl_seconds_after_finished=0, finished_at=None),
        (),
        {"delete_job": True},
    ),
    Row(
        "a failed job's pod still live after a crash goes; finished pods stay for the logs",
        finished(Phase.FAILED),
        (pod(0, "Failed"), pod(1)),
        {"retire": (A1,)},
    ),
    Row(
        "suspend on a finished job changes nothing",
        finished(Phase.SUCCEEDED, suspend=True),
        (pod(0, "Succeeded"),),
        {},
    ),
    # --- spec.suspend -----------------------------------------------------------------------
    Row(
        "suspending a running job releases the whole gang, every attempt",
        job(suspend=True),
        (*RUNNING, pod(0, attempt=1, deleting=True)),
        {**SUSPENDED_RELEASE, "retire": (OLD0, A0, A1)},
    ),
    Row(
        "suspending a queued job: Suspended, nothing to release or count",
        pending(suspend=True),
        (),
        {
            "phase": Phase.SUSPENDED,
            "reason": Reason.SUSPENDED,
            "conditions": {(ADM, False, Reason.SUSPENDED)},
            "release": True,
            "event": ("Normal", Reason.SUSPENDED),
        },
        says=("resumes",),
    ),
    Row(
        "already suspended: a pod still live is swept, no status",
        pending(phase=Phase.SUSPENDED, suspend=True),
        (pod(0),),
        {"retire": (A0,)},
    ),
    Row(
        "suspend cleared: pending again, the scheduling cycle writes its status",
        pending(phase=Phase.SUSPENDED),
        (),
        {},
    ),
    # --- pending jobs ----------------------------------------------------------------------------
    Row("a new job has nothing to do", pending(phase=None, attempt=0), (), {}),
    Row(
        "pods of the released attempt are stale and must go",
        pending(),
        (pod(0), pod(1, "Pending")),
        {"retire": (A0, A1), "force": (A1,)},
    ),
    Row(
        "a pod of a later attempt is an admission the cache has not seen: kept",
        pending(attempt=1),
        (pod(0, attempt=2),),
        {},
    ),
    Row(
        "a restart spares pods of a later attempt: the job's snapshot is behind its pods",
        job(),
        (pod(0), pod(1, "Failed"), pod(0, attempt=3)),
        restarted(Reason.POD_FAILED, count=1),
    ),
    Row(
        "a stale pod already terminating on a healthy node is left to finish",
        pending(phase=Phase.PREEMPTED),
        (pod(0, deleting=True),),
        {},
    ),
    Row(
        "a stale pod terminating on a deleted node is forced",
        pending(phase=Phase.PREEMPTED),
        (pod(0, deleting=True),),
        {"retire": (A0,), "force": (A0,)},
        nodes=cluster(without=("n0",)),
    ),
    Row(
        "Admitted without a usable admission record is released and requeued",
        job(phase=Phase.ADMITTED, admitted=False),
        RUNNING,
        {
            "phase": Phase.QUEUED,
            "reason": Reason.INTERNAL_ERROR,
            "conditions": {(ADM, False, Reason.INTERNAL_ERROR)},
            "release": True,
            "retire": (A0, A1),
            "requeue_after": SETTINGS.requeue_backoff,
            "event": ("Warning", Reason.INTERNAL_ERROR),
        },
    ),
    # --- admitted: start ---------------------------------------------------------------------
    Row(
        "all pods running: Running with startedAt",
        starting(),
        RUNNING,
        {
            "phase": Phase.RUNNING,
            "reason": Reason.RUNNING,
            "conditions": {(RUN, True, Reason.RUNNING)},
            "started_at": NOW,
        },
        says=("all 2 replicas are running",),
    ),
    Row(
        "a replica already succeeded counts as started",
        starting(),
        (pod(0, "Succeeded"), pod(1)),
        {
            "phase": Phase.RUNNING,
            "reason": Reason.RUNNING,
            "conditions": {(RUN, True, Reason.RUNNING)},
            "started_at": NOW,
        },
    ),
    Row("running and healthy: nothing to do", job(), RUNNING, {}),
    Row(
        "running with a pod of an earlier attempt: the stale pod goes",
        job(),
        (*RUNNING, pod(0, attempt=1)),
        {"retire": (OLD0,)},
    ),
    Row(
        "missing pods before the start are created (crash recovery)",
        starting(),
        (pod(0),),
        {"create": (1,)},
    ),
    Row(
        "no pods at all yet: all are created",
        starting(),
        (),
        {"create": (0, 1)},
    ),
    Row(
        "a current pod still terminating before the start: wait for its name",
        starting(),
        (pod(0), pod(1, deleting=True)),
        {},
    ),
    Row(
        "stale pods go before missing ones are created (never both at once)",
        starting(),
        (pod(0), pod(1, attempt=1, deleting=False)),
        {"retire": (pod_name("train", 1, 1),)},
    ),
    Row(
        "pods pending within the gang-start timeout: wait",
        starting(),
        HALF_STARTED,
        {},
    ),
    # --- admitted: gang-start timeout ------------------------------------------------------
    Row(
        "gang-start timeout: released, requeued, counted apart from restarts",
        starting(admitted_at=NOW - LATE),
        HALF_STARTED,
        timed_out(1, SETTINGS.requeue_backoff),
        says=(f"pod {A1} Pending on n1", "gang-start timeout 1 of 3", "requeued in 10 s"),
    ),
    Row(
        "the second timeout backs off twice as long; restartCount untouched",
        starting(admitted_at=NOW - LATE, start_timeouts=1, restart_count=2),
        HALF_STARTED,
        timed_out(2, 2 * SETTINGS.requeue_backoff),
    ),
    Row(
        "the third timeout backs off four times as long",
        starting(admitted_at=NOW - LATE, start_timeouts=2),
        HALF_STARTED,
        timed_out(3, 4 * SETTINGS.requeue_backoff),
    ),
    Row(
        "timeout past the gang-start limit: Failed GangStartLimitExceeded",
        starting(admitted_at=NOW - LATE, start_timeouts=3),
        HALF_STARTED,
        failed(
            Reason.GANG_START_LIMIT_EXCEEDED,
            Reason.GANG_START_TIMEOUT,
            start_timeouts=4,
            force=(A1,),
        ),
        says=("gang-start limit 3 reached",),
    ),
    Row(
        "missing pods past the timeout are not created: the gang is requeued",
        starting(admitted_at=NOW - LATE),
        (pod(0),),
        {**timed_out(1, SETTINGS.requeue_backoff, retire=(A0,)), "force": None},
        says=(f"pod {A1} missing",),
    ),
    # --- admitted: failures of the job's own --------------------------------------------------
    Row(
        "a pod failed with OnFailure: whole-gang restart 1 of 3",
        job(),
        (pod(0), pod(1, "Failed")),
        restarted(Reason.POD_FAILED, count=1),
        says=(f"pod {A1} failed", "restarting the whole gang (restart 1 of 3)"),
    ),
    Row(
        "a pod failed on the last restart allowed: restart 3 of 3",
        job(restart_count=2),
        (pod(0, "Failed"), pod(1)),
        restarted(Reason.POD_FAILED, count=3),
        says=("restart 3 of 3",),
    ),
    Row(
        "a pod failed past restartLimit: Failed RestartLimitExceeded",
        job(restart_count=3),
        (pod(0, "Failed"), pod(1)),
        failed(Reason.RESTART_LIMIT_EXCEEDED, Reason.POD_FAILED),
        says=("failed; restartLimit 3 reached (3 restarts): failed",),
    ),
    Row(
        "restartLimit 0: the first failure fails the job",
        job(restart_limit=0),
        (pod(0, "Failed"), pod(1)),
        failed(Reason.RESTART_LIMIT_EXCEEDED, Reason.POD_FAILED),
        says=("failed; restartLimit 0 reached (0 restarts): failed",),
    ),
    Row(
        "a pod failed with restartPolicy Never: Failed",
        job(restart_policy="Never"),
        (pod(0), pod(1, "Failed")),
        failed(Reason.FAILED, Reason.POD_FAILED),
        says=("restartPolicy is Never",),
    ),
    Row(
        "a pod failed before the gang started also restarts it",
        starting(),
        (pod(0, "Failed"), pod(1, "Pending")),
        restarted(Reason.POD_FAILED, count=1, force=(A1,)),
    ),
    Row(
        "a pod vanished after the start: PodLost, counted",
        job(),
        (pod(0),),
        restarted(Reason.POD_LOST, count=1, retire=(A0,)),
        says=(f"pod {A1} disappeared",),
    ),
    Row(
        "a pod deleted by someone else after the start: PodLost, counted",
        job(),
        (pod(0), pod(1, deleting=True)),
        restarted(Reason.POD_LOST, count=1),
    ),
    # --- admitted: failures of the centre's --------------------------------------------------
    Row(
        "a pod failed with DisruptionTarget: restart not counted, even with Never",
        job(restart_policy="Never"),
        (pod(0), pod(1, "Failed", disrupted=True)),
        restarted(Reason.POD_LOST),
        says=("not counted against restartLimit",),
    ),
    Row(
        "a pod being evicted after the start: restart not counted",
        job(restart_count=3),
        (pod(0), pod(1, deleting=True, disrupted=True)),
        restarted(Reason.POD_LOST),
    ),
    Row(
        "a deleted node evicts at once; not counted; its pods are forced",
        job(restart_policy="Never"),
        RUNNING,
        restarted(Reason.NODE_LOST, force=(A1,)),
        nodes=cluster(without=("n1",)),
        says=("node n1 was deleted", "replica 1", "0 of 3 used"),
    ),
    Row(
        "a NoExecute taint evicts at once",
        job(restart_count=3),
        RUNNING,
        restarted(Reason.NODE_LOST, force=(A0,)),
        nodes=cluster(node("n0", no_execute=True)),
        says=("NoExecute",),
    ),
    Row(
        "NotReady within the grace period: nothing",
        job(),
        RUNNING,
        {},
        nodes=cluster(node("n1", ready=False, since=NOW - SETTINGS.not_ready_grace + 1)),
    ),
    Row(
        "NotReady for the whole grace period: evicted, pods forced",
        job(),
        RUNNING,
        restarted(Reason.NODE_LOST, force=(A1,)),
        nodes=cluster(node("n1", ready=False, since=NOW - SETTINGS.not_ready_grace)),
        says=("NotReady for 300 s",),
    ),
    Row(
        "NotReady since an unknown time never evicts",
        job(),
        RUNNING,
        {},
        nodes=cluster(node("n1", ready=False, since=None)),
    ),
    Row(
        "a cordoned (or NoSchedule-tainted) node only stops new placements",
        job(),
        RUNNING,
        {},
        nodes=cluster(node("n0", cordoned=True), node("n1", cordoned=True)),
    ),
    Row(
        "a lost node whose replica already succeeded does not restart the gang",
        job(),
        (pod(0, "Succeeded"), pod(1)),
        {},
        nodes=cluster(without=("n0",)),
    ),
    Row(
        "a lost node before the start releases the gang, not counted",
        starting(),
        HALF_STARTED,
        restarted(Reason.NODE_LOST, force=(A0, A1)),
        nodes=cluster(without=("n0",)),
    ),
    # --- admitted: the end -------------------------------------------------------------------
    Row(
        "all pods succeeded: Succeeded with finishedAt",
        job(),
        (pod(0, "Succeeded"), pod(1, "Succeeded")),
        {
            "phase": Phase.SUCCEEDED,
            "reason": Reason.SUCCEEDED,
            "conditions": {(FIN, True, Reason.SUCCEEDED), (RUN, False, Reason.SUCCEEDED)},
            "finished_at": NOW,
            "event": ("Normal", Reason.SUCCEEDED),
        },
    ),
    Row(
        "all succeeded before Running was seen: startedAt set too",
        starting(),
        (pod(0, "Succeeded"), pod(1, "Succeeded")),
        {
            "phase": Phase.SUCCEEDED,
            "reason": Reason.SUCCEEDED,
            "conditions": {(FIN, True, Reason.SUCCEEDED), (RUN, False, Reason.SUCCEEDED)},
            "started_at": NOW,
            "finished_at": NOW,
            "event": ("Normal", Reason.SUCCEEDED),
        },
    ),
    Row(
        "all succeeded wins over a node lost afterwards",
        job(),
        (pod(0, "Succeeded"), pod(1, "Succeeded")),
        {
            "phase": Phase.SUCCEEDED,
            "reason": Reason.SUCCEEDED,
            "conditions": {(FIN, True, Reason.SUCCEEDED), (RUN, False, Reason.SUCCEEDED)},
            "finished_at": NOW,
            "event": ("Normal", Reason.SUCCEEDED),
        },
        nodes=cluster(without=("n0", "n1")),
    ),
    Row(
        "maxRunSeconds exceeded: pods deleted, Failed MaxRunTimeExceeded",
        job(max_run_seconds=49),
        RUNNING,
        failed(Reason.MAX_RUN_TIME_EXCEEDED, Reason.MAX_RUN_TIME_EXCEEDED),
        says=("longer than spec.maxRunSeconds (49 s)",),
    ),
    Row("maxRunSeconds not yet exceeded", job(max_run_seconds=50), RUNNING, {}),
    Row(
        "maxRunSeconds wins over a failed pod (a restart would reset its clock)",
        job(max_run_seconds=10),
        (pod(0, "Failed"), pod(1)),
        failed(Reason.MAX_RUN_TIME_EXCEEDED, Reason.MAX_RUN_TIME_EXCEEDED),
    ),
)


def _message(step: Transition) -> str:
    parts = [step.status.message if step.status else "", step.event.message if step.event else ""]
    return " | ".join(parts)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
def test_lifecycle_table(row: Row) -> None:
    step = transition(row.job, row.pods, row.nodes, row.now, SETTINGS)
    expected = {k: v for k, v in row.expect.items() if v is not None}
    assert summary(step) == expected
    for words in row.says:
        assert words in _message(step), f"{words!r} not in {_message(step)!r}"


def test_the_table_has_a_row_per_rule() -> None:
    assert len(ROWS) >= 30
    assert len({row.name for row in ROWS}) == len(ROWS)


def test_a_preempted_job_releases_every_pod_and_backs_off() -> None:
    gang = (*RUNNING, pod(0, attempt=1), pod(0, attempt=3))
    step = evict(job(), gang, "preempted by team-a/urgent", HEALTHY)
    assert summary(step) == {
        "phase": Phase.PREEMPTED,
        "reason": Reason.PREEMPTED,
        "conditions": {(ADM, False, Reason.PREEMPTED), (RUN, False, Reason.PREEMPTED)},
        "release": True,
        "retire": (OLD0, A0, A1),
        "requeue_after": SETTINGS.requeue_backoff,
        "eviction": Reason.PREEMPTED,
        "event": ("Warning", Reason.PREEMPTED),
    }
    assert "preempted by team-a/urgent" in _message(step)


def test_a_failed_create_rolls_back_and_requeues() -> None:
    step = apply_failed(
        starting(),
        (pod(0, "Pending"),),
        "pods is forbidden: exceeded quota",
        terminal=False,
        nodes=HEALTHY,
        settings=SETTINGS,
        now=NOW,
    )
    assert summary(step) == {
        "phase": Phase.QUEUED,
        "reason": Reason.APPLY_FAILED,
        "conditions": {(ADM, False, Reason.APPLY_FAILED)},
        "release": True,
        "retire": (A0,),
        "force": (A0,),
        "requeue_after": SETTINGS.requeue_backoff,
        "event": ("Warning", Reason.APPLY_FAILED),
    }
    assert "exceeded quota" in _message(step)


def test_a_create_refused_for_good_fails_with_the_servers_message() -> None:
    why = 'Pod "train-a2-0" is invalid: spec.containers[0].image: Required value'
    step = apply_failed(starting(), (), why, terminal=True, nodes=HEALTHY, now=NOW)
    assert summary(step) == {
        "phase": Phase.FAILED,
        "reason": Reason.CREATE_REFUSED,
        "conditions": {(FIN, True, Reason.CREATE_REFUSED), (ADM, False, Reason.CREATE_REFUSED)},
        "release": True,
        "finished_at": NOW,
        "event": ("Warning", Reason.CREATE_REFUSED),
    }
    assert why in _message(step)


def test_the_start_backoff_doubles_up_to_its_cap() -> None:
    capped = LifecycleSettings(requeue_backoff=10, requeue_backoff_max=100)
    assert [start_backoff(n, capped) for n in range(6)] == [10, 20, 40, 80, 100, 100]
    assert start_backoff(10**6, capped) == 100


def test_every_eviction_reason_is_in_the_metric_label_set() -> None:
    """The metrics registry pre-creates the series of EVICTION_REASONS only."""
    reasons = {
        step.eviction
        for row in ROWS
        if (step := transition(row.job, row.pods, row.nodes, row.now, SETTINGS)).eviction
    }
    assert reasons <= set(EVICTION_REASONS)
    assert reasons >= {
        Reason.POD_FAILED,
        Reason.POD_LOST,
        Reason.NODE_LOST,
        Reason.GANG_START_TIMEOUT,
        Reason.MAX_RUN_TIME_EXCEEDED,
        Reason.SUSPENDED,
    }


# --- properties ------------------------------------------------------------------------------
NODE_NAMES = ("n0", "n1", "n2")
POD_PHASES = (None, "Pending", "Running", "Running", "Succeeded", "Succeeded", "Failed")
times = st.one_of(st.none(), st.floats(NOW - 2_000, NOW, allow_nan=False))


def often(chance: int = 4) -> st.SearchStrategy[bool]:
    """True ``chance`` times in ``chance + 1``: rare facts stay rare, common paths are reached."""
    return st.integers(0, chance).map(bool)


def pods_of(attempt: st.SearchStrategy[int], replica: st.SearchStrategy[int]) -> Any:
    return st.builds(
        pod,
        replica=replica,
        phase=st.sampled_from(POD_PHASES),
        attempt=attempt,
        node=st.sampled_from(NODE_NAMES),
        deleting=often().map(lambda b: not b),
        started=st.booleans(),
        disrupted=often().map(lambda b: not b),
    )


@st.composite
def worlds(
    draw: st.DrawFn,
) -> tuple[JobFacts, tuple[PodFacts, ...], dict[str, NodeFacts], LifecycleSettings]:
    """Jobs biased towards holding an admission on mostly healthy nodes, with the current
    attempt's pods mostly there, so that every rule is reached, not only the first ones."""
    placement = tuple(draw(st.lists(st.sampled_from(NODE_NAMES), min_size=0, max_size=3)))
    attempt = draw(st.integers(0, 4))
    holding = st.sampled_from((Phase.ADMITTED, Phase.RUNNING))
    facts = JobFacts(
        key="team-a/train",
        name="train",
        phase=draw(st.one_of(holding, st.sampled_from((None, *Phase)))),
        suspend=not draw(often()),
        restart_policy=draw(st.sampled_from(("Never", "OnFailure"))),
        restart_limit=draw(st.one_of(st.none(), st.integers(0, 4))),
        restart_count=draw(st.integers(0, 5)),
        start_timeouts=draw(st.integers(0, 5)),
        attempt=attempt,
        admitted=draw(often()),
        placement_nodes=placement,
        admitted_at=draw(times),
        started_at=draw(times),
        finished_at=draw(times),
        max_run_seconds=draw(st.one_of(st.none(), st.integers(1, 4_000))),
        ttl_seconds_after_finished=draw(st.one_of(st.none(), st.integers(0, 4_000))),
    )
    current = [
        draw(pods_of(st.just(attempt), st.just(replica)))
        for replica in range(len(placement))
        if draw(often())
    ]
    others = draw(st.lists(pods_of(st.integers(0, 5), st.integers(0, 3)), max_size=3))
    by_name = {p.name: p for p in (*current, *others)}
    nodes = {}
    for name in NODE_NAMES:
        if draw(often(8)) or name not in placement:
            ready = draw(often())
            nodes[name] = NodeFacts(
                name,
                ready,
                None if ready else draw(times),
                not draw(often()),
                not draw(often(8)),
            )
    config = LifecycleSettings(
        gang_start_timeout=draw(st.sampled_from((0.0, 300.0, 5_000.0))),
        gang_start_limit=draw(st.integers(0, 4)),
        not_ready_grace=draw(st.sampled_from((0.0, 300.0, 5_000.0))),
        default_restart_limit=draw(st.integers(0, 3)),
    )
    return facts, tuple(by_name.values()), nodes, config


PROPERTIES = settings(max_examples=200, derandomize=True, deadline=None)
World = tuple[JobFacts, tuple[PodFacts, ...], dict[str, NodeFacts], LifecycleSettings]


def every_step(world: World) -> list[tuple[str, Transition]]:
    facts, pods, nodes, config = world
    return [
        ("transition", transition(facts, pods, nodes, NOW, config)),
        ("evict", evict(facts, pods, "preempted", nodes, config)),
        ("apply_failed", apply_failed(facts, pods, "x", terminal=False, nodes=nodes, now=NOW)),
        ("refused", apply_failed(facts, pods, "x", terminal=True, nodes=nodes, now=NOW)),
    ]


@PROPERTIES
@given(worlds())
def test_a_finished_job_never_goes_back(world: World) -> None:
    facts, pods, nodes, config = world
    step = transition(facts, pods, nodes, NOW, config)
    if facts.phase in FINISHED_PHASES:
        assert step.status is None
        assert not step.create


@PROPERTIES
@given(worlds())
def test_every_release_retires_every_pod_of_every_attempt(world: World) -> None:
    facts, pods, _, _ = world
    known = {p.name for p in pods if p.attempt <= facts.attempt}
    for _, step in every_step(world):
        if step.status is not None and step.status.release:
            assert set(step.retire) == known
        if step.status is not None and step.status.phase == Phase.FAILED:
            assert set(step.retire) == known


@PROPERTIES
@given(worlds())
def test_counters_never_decrease_and_grow_by_at_most_one(world: World) -> None:
    facts = world[0]
    for _, step in every_step(world):
        if step.status is None:
            continue
        if step.status.restart_count is not None:
            assert step.status.restart_count in (facts.restart_count, facts.restart_count + 1)
        if step.status.start_timeouts is not None:
            assert step.status.start_timeouts in (facts.start_timeouts, facts.start_timeouts + 1)
        # the two counters answer different questions: one step never moves both
        assert step.status.restart_count is None or step.status.start_timeouts is None


@PROPERTIES
@given(worlds())
def test_create_names_only_missing_replicas_of_the_current_attempt(world: World) -> None:
    facts, pods, _, _ = world
    existing = {p.replica for p in pods if p.attempt == facts.attempt}
    for _, step in every_step(world):
        if not step.create:
            continue
        assert facts.admitted
        assert facts.phase in (Phase.ADMITTED, Phase.RUNNING)
        assert facts.started_at is None
        assert len(set(step.create)) == len(step.create)
        for replica in step.create:
            assert 0 <= replica < len(facts.placement_nodes)
            assert replica not in existing


@PROPERTIES
@given(worlds())
def test_a_step_never_both_creates_and_retires(world: World) -> None:
    for _, step in every_step(world):
        assert not (step.create and step.retire)
        assert set(step.force) <= set(step.retire)
        assert not (step.status is not None and step.delete_job)


@PROPERTIES
@given(worlds())
def test_forced_pods_are_those_no_kubelet_will_end_gracefully(world: World) -> None:
    _, pods, nodes, _ = world
    by_name = {p.name: p for p in pods}
    for _, step in every_step(world):
        for name in step.retire:
            p = by_name[name]
            graceful = (
                p.started
                and p.node in nodes
                and nodes[p.node].ready
                and not nodes[p.node].no_execute
            )
            assert (name in step.force) == (not graceful)


@PROPERTIES
@given(worlds())
def test_the_step_is_deterministic_and_ignores_pod_order(world: World) -> None:
    facts, pods, nodes, config = world
    first = transition(facts, pods, nodes, NOW, config)
    assert transition(facts, pods, nodes, NOW, config) == first
    assert transition(facts, tuple(reversed(pods)), nodes, NOW, config) == first


@PROPERTIES
@given(worlds())
def test_a_restart_always_takes_the_whole_gang(world: World) -> None:
    facts, pods, nodes, config = world
    step = transition(facts, pods, nodes, NOW, config)
    if step.gang_restart:
        assert step.status is not None
        assert step.status.phase == Phase.QUEUED
        assert step.status.release
        assert set(step.retire) == {p.name for p in pods if p.attempt <= facts.attempt}
        assert step.eviction in EVICTION_REASONS
        assert step.event is not None
        assert step.event.reason == Reason.RESTARTING


@PROPERTIES
@given(worlds())
def test_no_step_touches_an_admission_the_snapshot_does_not_show(world: World) -> None:
    facts, pods, _, _ = world
    later = {p.name for p in pods if p.attempt > facts.attempt}
    for _, step in every_step(world):
        assert not later & set(step.retire)


def kinds(world: World) -> set[str]:
    """Which rules the step for ``world`` took."""
    facts, pods, nodes, config = world
    step = transition(facts, pods, nodes, NOW, config)
    status = step.status
    reason = status.reason if status is not None else None
    phase = status.phase if status is not None else None
    restarted = step.gang_restart and status is not None
    reached = {
        "restart": restarted and status is not None and bool(status.restart_count),
        "centre restart": restarted and status is not None and not status.restart_count,
        "start timeout": reason == Reason.GANG_START_TIMEOUT,
        "start limit": reason == Reason.GANG_START_LIMIT_EXCEEDED,
        "restart limit": reason == Reason.RESTART_LIMIT_EXCEEDED,
        "create": bool(step.create),
        "running": phase == Phase.RUNNING,
        "succeeded": phase == Phase.SUCCEEDED,
        "max run": reason == Reason.MAX_RUN_TIME_EXCEEDED,
        "suspend": phase == Phase.SUSPENDED,
        "sweep": status is None and bool(step.retire),
        "ttl": step.delete_job,
    }
    return {kind for kind, hit in reached.items() if hit}


def test_the_generated_worlds_reach_every_rule() -> None:
    """The properties above mean something only if the generator reaches each rule."""
    seen: set[str] = set()

    @settings(max_examples=600, derandomize=True, phases=[Stage.generate], database=None)
    @given(worlds())
    def collect(world: World) -> None:
        seen.update(kinds(world))

    collect()
    assert seen == {
        "restart",
        "centre restart",
        "start timeout",
        "start limit",
        "restart limit",
        "create",
        "running",
        "succeeded",
        "max run",
        "suspend",
        "sweep",
        "ttl",
    }
