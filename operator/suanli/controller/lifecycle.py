"""The job lifecycle as one pure function: facts in, the one next step out.

Why pure: the lifecycle is the part of the operator with the most rules and the least room for
error (a wrong step fails a tenant's week-long run, or leaves a gang half-alive holding chips).
Here it is decided from plain facts — the job's status, its pods, the nodes, the time — with no
API client, no clock and no metrics, so every rule is a row of a table test and the invariants
(a finished job stays finished, a release takes the whole gang, counters never go back) are
checked by Hypothesis over generated clusters. ``loop.py`` gathers the facts and carries out the
:class:`Transition`: write the status, bill and delete the pods, create the missing ones, emit
the Event, count the metrics.

Whose fault a release is decides what it costs the job (the spirit of Kubernetes Job's
``podFailurePolicy`` with ``DisruptionTarget → Ignore``, Volcano's ``PodEvicted`` policy apart
from ``PodFailed``, and Kueue's ``waitForPodsReady`` requeue counter apart from the job's
``backoffLimit``):

* the **job's** failures — a container failed, or a pod vanished after the gang started (suanli
  cannot tell a tenant's ``kubectl delete pod`` from anything else) — restart the whole gang with
  ``restartPolicy: OnFailure`` and use up ``restartLimit``; with ``Never`` the job fails;
* the **centre's** failures — a node deleted, tainted ``NoExecute``, or NotReady longer than
  ``not_ready_grace``, or a pod the system disrupted (its ``DisruptionTarget`` condition: node
  pressure, taint eviction, drain) — restart the whole gang whatever the restart policy and do
  **not** count against ``restartLimit``: a tenant must not lose a run because a node died;
* a gang that did not start within ``gang_start_timeout`` is the centre's fault too (it placed
  the gang where it could not start): it is requeued with an exponential backoff and counted in
  ``startTimeouts``, with its own limit, never in ``restartCount``.

A cordoned node or an untolerated ``NoSchedule`` taint only stops new placements: running gangs
stay. Every release (restart, requeue, preemption, suspension, rollback) retires every pod of
the job, of every attempt up to its latest; a re-admission gets a fresh attempt number, so no
later object ever reuses an earlier admission's name, and a pod of an attempt later than the
job's status shows is a newer admission this snapshot has not caught up with: never touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from suanli.api.trainingjob import ConditionType, Phase
from suanli.reasons import Reason
from suanli.workload.pods import pod_name

HOLDING_PHASES = frozenset({Phase.ADMITTED, Phase.RUNNING})
FINISHED_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED})
POD_DONE = frozenset({"Succeeded", "Failed"})
POD_UP = frozenset({"Running", "Succeeded"})
MAX_BACKOFF_DOUBLINGS = 62  # 2**62 × any sane base is past every cap; keeps the float finite


@dataclass(frozen=True)
class LifecycleSettings:
    """The operator's lifecycle knobs (all seconds are wall-clock seconds)."""

    gang_start_timeout: float = 300.0  # from admission until every pod runs
    gang_start_limit: int = 3  # GangStartTimeouts requeued before the next one fails the job
    requeue_backoff: float = 10.0  # base backoff of every requeue
    requeue_backoff_max: float = 3600.0  # cap of the GangStartTimeout backoff (Kueue's default)
    not_ready_grace: float = 300.0  # NotReady this long evicts (node-lifecycle's default)
    default_restart_limit: int = 3  # spec.restartLimit when unset


DEFAULT_SETTINGS = LifecycleSettings()


@dataclass(frozen=True)
class NodeFacts:
    """What the loop knows of one node. A node absent from the mapping has been deleted."""

    name: str
    ready: bool
    # lastTransitionTime of the Ready condition when it is not True; None (unknown) never evicts
    not_ready_since: float | None
    unschedulable: bool  # cordoned or an untolerated NoSchedule taint: only stops placements
    no_execute: bool  # an untolerated NoExecute taint other than not-ready/unreachable
    # (device index, HCCL device IP) the node publishes (Ascend device plugin); for rank tables
    device_ips: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class PodFacts:
    """One pod of a job (any attempt), as the cache last saw it."""

    name: str
    attempt: int  # the attempt label
    replica: int
    phase: str | None  # Pending, Running, Succeeded, Failed, or None
    node: str | None
    deleting: bool  # has a deletionTimestamp
    started: bool  # status.startTime is set (it consumed accelerator time)
    disrupted: bool = False  # condition DisruptionTarget is True: the system took it away


@dataclass(frozen=True)
class JobFacts:
    """One TrainingJob's spec and status as far as its lifecycle depends on them."""

    key: str
    name: str
    phase: Phase | None
    suspend: bool
    restart_policy: str  # "Never" | "OnFailure"
    restart_limit: int | None
    restart_count: int  # failures of the job's own restarted so far (never decreases)
    start_timeouts: int  # GangStartTimeouts so far (never decreases)
    # The number of the job's latest admission (-1 if it never had one): an admitted job's pods
    # are <job>-a<attempt>-<replica>; a job holding no admission should have no pods of attempts
    # up to this one; pods of a *higher* attempt belong to an admission this snapshot of the job
    # does not show yet and are left alone (see known_pods).
    attempt: int
    admitted: bool  # status records a usable admission (chosenOption + placement)
    placement_nodes: tuple[str, ...]  # node of each replica, by replica index
    admitted_at: float | None
    started_at: float | None
    finished_at: float | None
    max_run_seconds: int | None
    ttl_seconds_after_finished: int | None


@dataclass(frozen=True)
class ConditionChange:
    type: ConditionType
    status: bool
    reason: Reason
    message: str


@dataclass(frozen=True)
class StatusUpdate:
    """The job's next status. ``None`` counters and times mean "leave as they are"."""

    phase: Phase
    reason: Reason
    message: str
    conditions: tuple[ConditionChange, ...]
    release: bool = False  # the writer clears chosenOption, placement, admittedAt, startedAt
    started_at: float | None = None
    finished_at: float | None = None
    restart_count: int | None = None
    start_timeouts: int | None = None


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: Reason
    message: str


@dataclass(frozen=True)
class Transition:
    """The next step for one job. The empty Transition means "nothing to do"."""

    status: StatusUpdate | None = None
    retire: tuple[str, ...] = ()  # pods to bill and then delete, by name (sorted)
    force: tuple[str, ...] = ()  # of those, pods to delete with grace 0
    create: tuple[int, ...] = ()  # replicas of the current attempt whose pods are missing
    event: Event | None = None
    delete_job: bool = False  # ttlSecondsAfterFinished has passed
    requeue_after: float | None = None  # seconds before the job may be admitted again
    eviction: Reason | None = None  # suanli_evictions_total{reason}
    gang_restart: bool = False  # suanli_gang_restarts_total


# --- the rules -----------------------------------------------------------------------------------
def transition(
    job: JobFacts,
    pods: Sequence[PodFacts],
    nodes: Mapping[str, NodeFacts],
    now: float,
    settings: LifecycleSettings = DEFAULT_SETTINGS,
) -> Transition:
    """The one next step of ``job``, given its pods (of every attempt) and the nodes."""
    pods = known_pods(job, pods)
    if job.phase in FINISHED_PHASES:
        return _finished(job, pods, nodes, now)
    if job.suspend:
        return _suspended(job, pods, nodes)
    if job.phase in HOLDING_PHASES:
        if job.admitted and job.placement_nodes:
            return _admitted(job, pods, nodes, now, settings)
        message = (
            f"status.phase is {job.phase.value} but the status records no usable admission "
            f"(chosenOption, placement); released and requeued in {settings.requeue_backoff:g} s"
        )
        return _release(
            pods,
            nodes,
            Phase.QUEUED,
            Reason.INTERNAL_ERROR,
            message,
            requeue_after=settings.requeue_backoff,
        )
    # Pending (new, Queued, Preempted, or Suspended with suspend cleared): the scheduling cycle
    # decides its status; a pod left over from an earlier admission must go.
    return _sweep(job, pods, nodes, up_to_attempt=job.attempt)


def evict(
    job: JobFacts,
    pods: Sequence[PodFacts],
    why: str,
    nodes: Mapping[str, NodeFacts],
    settings: LifecycleSettings = DEFAULT_SETTINGS,
) -> Transition:
    """A preemption victim: release the gang, Preempted, requeued after one backoff (so the
    preemptor gets the room it was made for instead of an older victim taking it back)."""
    pods = known_pods(job, pods)
    backoff = settings.requeue_backoff
    return _release(
        pods,
        nodes,
        Phase.PREEMPTED,
        Reason.PREEMPTED,
        f"{why}; the whole gang was released, requeued in {backoff:g} s",
        requeue_after=backoff,
        eviction=Reason.PREEMPTED,
        stopped_running=True,
    )


def apply_failed(
    job: JobFacts,
    pods: Sequence[PodFacts],
    why: str,
    *,
    terminal: bool,
    nodes: Mapping[str, NodeFacts],
    settings: LifecycleSettings = DEFAULT_SETTINGS,
    now: float,
) -> Transition:
    """Roll back an admission whose objects could not all be created: every pod goes.

    ``terminal``: the API server refused for a reason that will not change by itself (422, 400),
    so retrying would loop for ever — the job fails with ``CreateRefused`` and ``why`` (the
    server's message). Otherwise it is requeued with ``ApplyFailed`` after a backoff.
    """
    pods = known_pods(job, pods)
    if terminal:
        message = f"the API server refused the job's objects: {why}; the job failed"
        retire, force = _release_all(pods, nodes)
        return Transition(
            status=StatusUpdate(
                phase=Phase.FAILED,
                reason=Reason.CREATE_REFUSED,
                message=message,
                conditions=(
                    ConditionChange(ConditionType.FINISHED, True, Reason.CREATE_REFUSED, message),
                    ConditionChange(ConditionType.ADMITTED, False, Reason.CREATE_REFUSED, message),
                ),
                release=True,
                finished_at=now,
            ),
            retire=retire,
            force=force,
            event=Event("Warning", Reason.CREATE_REFUSED, message),
        )
    backoff = settings.requeue_backoff
    return _release(
        pods,
        nodes,
        Phase.QUEUED,
        Reason.APPLY_FAILED,
        f"creating the job's objects failed: {why}; rolled back, requeued in {backoff:g} s",
        requeue_after=backoff,
    )


def known_pods(job: JobFacts, pods: Sequence[PodFacts]) -> list[PodFacts]:
    """The pods this snapshot of the job can speak for: those of its attempts so far.

    A pod labelled with a later attempt exists only if a newer admission was written (the status
    is written before any pod is created), so this snapshot of the job is behind the pods'
    watch: every rule ignores such a pod, and a release never deletes another admission's gang
    when the writes are done in either order. The next cycle sees the newer job.
    """
    return [p for p in pods if p.attempt <= job.attempt]


def restart_limit(job: JobFacts, settings: LifecycleSettings = DEFAULT_SETTINGS) -> int:
    return settings.default_restart_limit if job.restart_limit is None else job.restart_limit


def will_restart(job: JobFacts, settings: LifecycleSettings = DEFAULT_SETTINGS) -> bool:
    """Whether a failure of the job's own restarts the gang (else the job fails)."""
    return job.restart_policy == "OnFailure" and job.restart_count < restart_limit(job, settings)


def start_backoff(start_timeouts: int, settings: LifecycleSettings = DEFAULT_SETTINGS) -> float:
    """Backoff after the (``start_timeouts`` + 1)-th GangStartTimeout: base × 2ⁿ, capped."""
    doublings = min(max(start_timeouts, 0), MAX_BACKOFF_DOUBLINGS)
    return float(min(settings.requeue_backoff * 2.0**doublings, settings.requeue_backoff_max))


# --- by phase ------------------------------------------------------------------------------------
def _finished(
    job: JobFacts, pods: Sequence[PodFacts], nodes: Mapping[str, NodeFacts], now: float
) -> Transition:
    """A finished job never changes phase. Its finished pods stay (logs) until TTL deletes the job
    with them; a pod still live — a crash between the Failed status and the deletion — goes."""
    ttl = job.ttl_seconds_after_finished
    if ttl is not None:
        finished = job.finished_at if job.finished_at is not None else now
        if now - finished >= ttl:
            return Transition(delete_job=True)
    live = [p for p in pods if p.phase not in POD_DONE]
    return _sweep(job, live, nodes, up_to_attempt=job.attempt)


def _suspended(
    job: JobFacts, pods: Sequence[PodFacts], nodes: Mapping[str, NodeFacts]
) -> Transition:
    if job.phase == Phase.SUSPENDED and not job.admitted:
        return _sweep(job, pods, nodes, up_to_attempt=job.attempt)
    held = job.admitted and job.phase in HOLDING_PHASES
    message = "suspended by spec.suspend; pods removed, quota released; resumes when it is false"
    return _release(
        pods,
        nodes,
        Phase.SUSPENDED,
        Reason.SUSPENDED,
        message,
        eviction=Reason.SUSPENDED if held else None,
        stopped_running=held,
        event_type="Normal",
    )


def _admitted(
    job: JobFacts,
    pods: Sequence[PodFacts],
    nodes: Mapping[str, NodeFacts],
    now: float,
    settings: LifecycleSettings,
) -> Transition:
    replicas = range(len(job.placement_nodes))
    current = {p.replica: p for p in pods if p.attempt == job.attempt and p.replica in replicas}
    live = {r: p for r, p in current.items() if not p.deleting}
    started = job.started_at is not None
    complete = len(live) == len(replicas)

    if complete and all(p.phase == "Succeeded" for p in live.values()):
        message = f"all {len(replicas)} replicas succeeded"
        return Transition(
            status=StatusUpdate(
                phase=Phase.SUCCEEDED,
                reason=Reason.SUCCEEDED,
                message=message,
                conditions=(
                    ConditionChange(ConditionType.FINISHED, True, Reason.SUCCEEDED, message),
                    ConditionChange(ConditionType.RUNNING, False, Reason.SUCCEEDED, message),
                ),
                started_at=None if started else now,
                finished_at=now,
            ),
            event=Event("Normal", Reason.SUCCEEDED, message),
        )

    max_run = job.max_run_seconds
    if job.started_at is not None and max_run is not None and now - job.started_at > max_run:
        return _fail(
            pods,
            nodes,
            now,
            Reason.MAX_RUN_TIME_EXCEEDED,
            f"ran {now - job.started_at:g} s, longer than spec.maxRunSeconds ({max_run} s); "
            "pods deleted, the job failed",
            eviction=Reason.MAX_RUN_TIME_EXCEEDED,
        )

    for replica, node in enumerate(job.placement_nodes):
        pod = live.get(replica)
        if pod is not None and pod.phase == "Succeeded":
            continue  # a replica that is done does not need its node any more
        problem = _node_problem(node, nodes, now, settings)
        if problem is not None:
            return _centre_restart(
                job, pods, nodes, Reason.NODE_LOST, f"{problem} (replica {replica})", settings
            )

    failed = sorted((p for p in live.values() if p.phase == "Failed"), key=lambda p: p.replica)
    own = [p for p in failed if not p.disrupted]
    if own:
        return _restart_or_fail(
            job, pods, nodes, now, Reason.POD_FAILED, f"pod {own[0].name} failed", settings
        )
    if failed:
        return _centre_restart(
            job, pods, nodes, Reason.POD_LOST, f"pod {failed[0].name} was disrupted", settings
        )

    absent = [r for r in replicas if r not in live]
    if started and absent:
        name = pod_name(job.name, job.attempt, absent[0])
        going = current.get(absent[0])
        if going is not None and going.disrupted:
            return _centre_restart(
                job, pods, nodes, Reason.POD_LOST, f"pod {name} was evicted", settings
            )
        return _restart_or_fail(
            job, pods, nodes, now, Reason.POD_LOST, f"pod {name} disappeared", settings
        )

    if complete and all(p.phase in POD_UP for p in live.values()):
        if job.phase == Phase.RUNNING and started:
            return _sweep(job, pods, nodes, up_to_attempt=job.attempt - 1)
        message = f"all {len(replicas)} replicas are running"
        return Transition(
            status=StatusUpdate(
                phase=Phase.RUNNING,
                reason=Reason.RUNNING,
                message=message,
                conditions=(ConditionChange(ConditionType.RUNNING, True, Reason.RUNNING, message),),
                started_at=None if started else now,
            )
        )

    if (
        not started
        and job.admitted_at is not None
        and now - job.admitted_at > settings.gang_start_timeout
    ):
        return _start_timeout(job, pods, nodes, now, settings, _not_running(job, live))

    stale = _sweep(job, pods, nodes, up_to_attempt=job.attempt - 1)
    if stale.retire or started:
        return stale
    # Crash recovery: the admission is recorded, some pods were never created. A replica whose
    # pod is still being deleted waits: its name is taken until it is gone.
    return Transition(create=tuple(r for r in replicas if r not in current))


# --- the steps -----------------------------------------------------------------------------------
def _node_problem(
    node: str, nodes: Mapping[str, NodeFacts], now: float, settings: LifecycleSettings
) -> str | None:
    """Why the node no longer runs the gang, or None while it may come back."""
    facts = nodes.get(node)
    if facts is None:
        return f"node {node} was deleted"
    if facts.no_execute:
        return f"node {node} has a NoExecute taint"
    if not facts.ready and facts.not_ready_since is not None:
        for_seconds = now - facts.not_ready_since
        if for_seconds >= settings.not_ready_grace:
            return (
                f"node {node} has been NotReady for {for_seconds:g} s "
                f"(grace {settings.not_ready_grace:g} s)"
            )
    return None


def _not_running(job: JobFacts, live: Mapping[int, PodFacts]) -> str:
    waiting = []
    for replica, node in enumerate(job.placement_nodes):
        pod = live.get(replica)
        if pod is None:
            waiting.append(f"pod {pod_name(job.name, job.attempt, replica)} missing")
        elif pod.phase not in POD_UP:
            waiting.append(f"pod {pod.name} {pod.phase or 'not scheduled'} on {node}")
    shown = ", ".join(waiting[:3])
    more = f" and {len(waiting) - 3} more" if len(waiting) > 3 else ""
    return shown + more


def _restart_or_fail(
    job: JobFacts,
    pods: Sequence[PodFacts],
    nodes: Mapping[str, NodeFacts],
    now: float,
    cause: Reason,
    why: str,
    settings: LifecycleSettings,
) -> Transition:
    """A failure of the job's own: restart the whole gang while restartLimit allows."""
    limit = restart_limit(job, settings)
    if will_restart(job, settings):
        count = job.restart_count + 1
        return _release(
            pods,
            nodes,
            Phase.QUEUED,
            Reason.RESTARTING,
            f"{why}; restarting the whole gang (restart {count} of {limit})",
            requeue_after=settings.requeue_backoff,
            eviction=cause,
            gang_restart=True,
            restart_count=count,
            stopped_running=True,
        )
    if job.restart_policy == "OnFailure":
        reason = Reason.RESTART_LIMIT_EXCEEDED
        message = f"{why}; restartLimit {limit} reached ({job.restart_count} restarts): failed"
    else:
        reason, message = Reason.FAILED, f"{why}; restartPolicy is Never: the job failed"
    return _fail(pods, nodes, now, reason, message, eviction=cause)


def _centre_restart(
    job: JobFacts,
    pods: Sequence[PodFacts],
    nodes: Mapping[str, NodeFacts],
    cause: Reason,
    why: str,
    settings: LifecycleSettings,
) -> Transition:
    """The centre's failure: restart the whole gang, whatever the policy, without counting it."""
    return _release(
        pods,
        nodes,
        Phase.QUEUED,
        Reason.RESTARTING,
        f"{why}; restarting the whole gang (not counted against restartLimit: "
        f"{job.restart_count} of {restart_limit(job, settings)} used)",
        requeue_after=settings.requeue_backoff,
        eviction=cause,
        gang_restart=True,
        stopped_running=True,
    )


def _start_timeout(
    job: JobFacts,
    pods: Sequence[PodFacts],
    nodes: Mapping[str, NodeFacts],
    now: float,
    settings: LifecycleSettings,
    waiting: str,
) -> Transition:
    count = job.start_timeouts + 1
    limit = settings.gang_start_limit
    why = (
        f"the gang did not start within {settings.gang_start_timeout:g} s of admission ({waiting})"
    )
    if job.start_timeouts < limit:
        backoff = start_backoff(job.start_timeouts, settings)
        return _release(
            pods,
            nodes,
            Phase.QUEUED,
            Reason.GANG_START_TIMEOUT,
            f"{why}; released, requeued in {backoff:g} s (gang-start timeout {count} of {limit})",
            requeue_after=backoff,
            eviction=Reason.GANG_START_TIMEOUT,
            start_timeouts=count,
        )
    return _fail(
        pods,
        nodes,
        now,
        Reason.GANG_START_LIMIT_EXCEEDED,
        f"{why}; gang-start limit {limit} reached ({job.start_timeouts} requeues): failed",
        eviction=Reason.GANG_START_TIMEOUT,
        start_timeouts=count,
    )


def _release(
    pods: Sequence[PodFacts],
    nodes: Mapping[str, NodeFacts],
    phase: Phase,
    reason: Reason,
    message: str,
    *,
    requeue_after: float | None = None,
    eviction: Reason | None = None,
    gang_restart: bool = False,
    restart_count: int | None = None,
    start_timeouts: int | None = None,
    stopped_running: bool = False,
    event_type: Literal["Normal", "Warning"] = "Warning",
) -> Transition:
    """Give the admission back: every pod of the job goes, the status drops the admission."""
    conditions = [ConditionChange(ConditionType.ADMITTED, False, reason, message)]
    if stopped_running:
        conditions.append(ConditionChange(ConditionType.RUNNING, False, reason, message))
    retire, force = _release_all(pods, nodes)
    return Transition(
        status=StatusUpdate(
            phase=phase,
            reason=reason,
            message=message,
            conditions=tuple(conditions),
            release=True,
            restart_count=restart_count,
            start_timeouts=start_timeouts,
        ),
        retire=retire,
        force=force,
        event=Event(event_type, reason, message),
        requeue_after=requeue_after,
        eviction=eviction,
        gang_restart=gang_restart,
    )


def _fail(
    pods: Sequence[PodFacts],
    nodes: Mapping[str, NodeFacts],
    now: float,
    reason: Reason,
    message: str,
    *,
    eviction: Reason | None,
    start_timeouts: int | None = None,
) -> Transition:
    """Final. The admission record stays for the post-mortem (where it ran); a Failed job holds
    no quota because the charge is derived from Admitted/Running jobs only."""
    retire, force = _release_all(pods, nodes)
    return Transition(
        status=StatusUpdate(
            phase=Phase.FAILED,
            reason=reason,
            message=message,
            conditions=(
                ConditionChange(ConditionType.FINISHED, True, reason, message),
                ConditionChange(ConditionType.RUNNING, False, reason, message),
            ),
            finished_at=now,
            start_timeouts=start_timeouts,
        ),
        retire=retire,
        force=force,
        event=Event("Warning", reason, message),
        eviction=eviction,
    )


def _sweep(
    job: JobFacts,
    pods: Sequence[PodFacts],
    nodes: Mapping[str, NodeFacts],
    *,
    up_to_attempt: int,
) -> Transition:
    """Retire pods of attempts up to ``up_to_attempt`` (stale ones), with no status change.

    A pod already being deleted is left to finish unless it must be forced (its node is gone).
    """
    retire: list[str] = []
    force: list[str] = []
    for pod in pods:
        if pod.attempt > up_to_attempt:
            continue
        forced = _must_force(pod, nodes)
        if pod.deleting and not forced:
            continue
        retire.append(pod.name)
        if forced:
            force.append(pod.name)
    return Transition(retire=tuple(sorted(retire)), force=tuple(sorted(force)))


def _release_all(
    pods: Sequence[PodFacts], nodes: Mapping[str, NodeFacts]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Every pod of the job, and those of them no kubelet will confirm a graceful end of."""
    retire = tuple(sorted({p.name for p in pods}))
    force = tuple(sorted({p.name for p in pods if _must_force(p, nodes)}))
    return retire, force


def _must_force(pod: PodFacts, nodes: Mapping[str, NodeFacts]) -> bool:
    """Delete with grace 0: the pod never started (nothing to stop gracefully), or its node is
    gone, NotReady or NoExecute-tainted (no kubelet will confirm, the pod would hang for ever)."""
    if not pod.started or pod.node is None:
        return True
    node = nodes.get(pod.node)
    return node is None or not node.ready or node.no_execute
