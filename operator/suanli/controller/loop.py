"""The single scheduling loop: snapshot the cache, decide, apply, and drive each job's lifecycle.

One cycle: (1) read the snapshot — objects the cache found invalid are quarantined with a
Valid=False condition naming the field and left out; the placement core's state is brought level
with nodes, foreign pods and recorded admissions; (2) :func:`suanli.scheduling.cycle.run_cycle`
orders the queue, admits against quota and places; (3) :mod:`.apply` writes each admission
(status first, then rank table, Service, pods; all or nothing) and each wait and preemption;
(4) the pure :func:`.lifecycle.transition` decides every other job's next step and the applier
carries it out; (5) deleted pods are billed and released (:mod:`.metering`); (6) quota and
class status and the metric rows are derived (:mod:`.derived`).

One object never stops the cycle for the others: each job's handling is confined (an exception
becomes that job's InternalError condition, an Event and a counter), and a failure of the
decision step keeps lifecycle, metering and status going.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from suanli.api.trainingjob import ConditionType, Phase
from suanli.controller import derived, lifecycle, status, validate
from suanli.controller.apply import Applier, utcnow
from suanli.controller.cache import Cache, Kind, Object, Snapshot, object_key
from suanli.controller.facts import JobView, job_facts, pod_facts
from suanli.controller.faults import crash_point
from suanli.controller.inventory import Inventory, sync_admissions
from suanli.controller.kube import Kube
from suanli.controller.lifecycle import LifecycleSettings
from suanli.controller.metering import Meter
from suanli.controller.observed import PublishedState
from suanli.controller.world import LEGACY_JOB_FINALIZER, Problem, World, observe
from suanli.metrics import Metrics
from suanli.reasons import Reason
from suanli.scheduling.cycle import Admit, CycleConfig, CycleResult, Wait, run_cycle
from suanli.scheduling.preemption import Preempt

log = logging.getLogger("suanli.loop")

DEBOUNCE_SECONDS = 0.2
TICK_SECONDS = 5.0


@dataclass(frozen=True)
class Settings:
    gang_start_timeout: float = 300.0
    gang_start_limit: int = 3
    requeue_backoff: float = 10.0
    not_ready_grace: float = 300.0
    max_overtakes: int = 8

    @property
    def lifecycle(self) -> LifecycleSettings:
        return LifecycleSettings(
            gang_start_timeout=self.gang_start_timeout,
            gang_start_limit=self.gang_start_limit,
            requeue_backoff=self.requeue_backoff,
            not_ready_grace=self.not_ready_grace,
        )


def _checked(check: Callable[[Object], Any]) -> Callable[[Object], Any]:
    """A cache checker that never raises: a crash of the check is the object's problem."""

    def safe(body: Object) -> Any:
        try:
            return check(body)
        except Exception as exc:
            log.exception("checking %s failed", body.get("metadata", {}).get("name"))
            problem = validate.Problem(
                "metadata", f"metadata: the object could not be checked: {exc}"
            )
            return validate.Verdict(None, (problem,))

    return safe


class Controller:
    """Owns the cache, the placement inventory and the loop; Kopf handlers only feed ``cache``."""

    def __init__(
        self, kube: Kube, settings: Settings | None = None, metrics: Metrics | None = None
    ) -> None:
        self.cache = Cache(
            checkers={
                Kind.TRAINING_JOB: _checked(validate.check_training_job),
                Kind.COMPUTE_QUOTA: _checked(validate.check_compute_quota),
                Kind.ACCELERATOR_CLASS: _checked(validate.check_accelerator_class),
            }
        )
        self.kube = kube
        self.metrics = metrics
        self.settings = settings or Settings()
        self.published = PublishedState()
        self.leading = True
        self.inventory = Inventory()
        self.meter = Meter(kube)
        self.applier = Applier(kube, self.inventory, self.settings.lifecycle, metrics)
        self.overtaken: dict[str, int] = {}
        self.cycles = 0
        self.last_result: CycleResult | None = None
        self.quota_of_namespace: dict[str, str] = {}

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.cache.changed.wait(), timeout=TICK_SECONDS)
            await asyncio.sleep(DEBOUNCE_SECONDS)
            self.cache.changed.clear()
            if not self.leading:
                continue
            try:
                started = time.perf_counter()
                await self.cycle()
                if self.metrics is not None:
                    self.metrics.observe_cycle(time.perf_counter() - started)
            except Exception:
                log.exception("scheduling cycle failed; the state is rebuilt from the cache")
                self.inventory.__init__()  # type: ignore[misc]
                await asyncio.sleep(1.0)
                self.cache.changed.set()

    # --- one cycle -----------------------------------------------------------------------------
    async def cycle(self) -> None:
        started, now = time.perf_counter(), time.time()
        crash_point("cycle-start")
        self.applier.writes = 0
        snapshot = self.cache.snapshot()
        world = observe(snapshot, self.applier.not_before, now, self.quota_of_namespace)
        self.quota_of_namespace = world.quota_of_namespace
        self._sync(snapshot, world)
        if self.metrics is not None:
            self.metrics.initialise(
                ((q.name, c) for q in world.quotas for c in q.devices), world.catalogue
            )
        marks = {"snapshot": time.perf_counter()}
        result = self._decide(world)
        marks["decide"] = time.perf_counter()
        evicted = await self._apply(result, world)
        marks["apply"] = time.perf_counter()
        # admissions first: quarantining a burst of bad objects never delays anyone's admission
        await self.applier.together(
            [
                *(
                    self._guard(view, self._step(view, world, now))
                    for key, view in world.views.items()
                    if key not in evicted and key not in world.decided(result)
                ),
                *(
                    self._quarantine(snapshot, key, problem)
                    for key, problem in world.invalid.items()
                ),
            ]
        )
        marks["lifecycle"] = time.perf_counter()
        deleting = [
            p for p in snapshot.of(Kind.POD).values() if p["metadata"].get("deletionTimestamp")
        ]
        await self.meter.release(deleting, world.quota_of_namespace, world.catalogue, now)
        for body in world.legacy_finalized:
            try:
                await asyncio.to_thread(self.kube.remove_finalizer, body, LEGACY_JOB_FINALIZER)
            except Exception as exc:  # the next cycle tries again; nobody else waits on it
                log.warning("legacy finalizer of %s not removed: %s", object_key(body), exc)
        writes = self.applier.writes
        writes += await derived.write_statuses(self.kube, snapshot, world, result, self.inventory)
        self.published.publish(
            derived.metric_rows(
                snapshot,
                world.quotas,
                result,
                world.invalid_phases,
                world.catalogue,
                world.quota_of_namespace,
                self.meter.folded,
                self.inventory,
            )
        )
        marks["status"] = time.perf_counter()
        self.cycles += 1
        phases, previous = [], started
        for phase, mark in marks.items():
            phases.append(f"{phase} {(mark - previous) * 1000:.1f}")
            previous = mark
        log.info(
            "cycle %d: %d pending, %d admitted, %d decisions, %d writes in %.1f ms (%s ms)",
            self.cycles,
            len(world.pending),
            len(world.admitted),
            len(result.decisions),
            writes,
            (time.perf_counter() - started) * 1000,
            ", ".join(phases),
        )

    def _sync(self, snapshot: Snapshot, world: World) -> None:
        self.inventory.set_catalogue(world.catalogue)
        self.inventory.sync_nodes(snapshot.of(Kind.NODE).values())
        self.meter.level_with(world.folded_recorded, world.live_uids)
        for request in world.pending:
            self.inventory.forget_gang(request.key)
        self.inventory.learn_mix(
            [r.options[0] for r in world.pending] + [a.option for a in world.admitted]
        )
        for key in sync_admissions(self.inventory, world.admitted):
            log.error("job %s: recorded placement conflicts with the cluster", key)
        # after the admissions: a released gang's pods then take its chips until they are gone
        self.inventory.sync_foreign_pods(snapshot.of(Kind.POD), world.covered_pods)

    def _decide(self, world: World) -> CycleResult:
        """The pure decision; if it fails, nothing is admitted this cycle but the rest goes on."""
        try:
            result = run_cycle(
                world.pending,
                world.admitted,
                world.quotas,
                [entry.device_class for entry in world.catalogue.values()],
                self.inventory.state,
                overtaken=self.overtaken,
                config=CycleConfig(max_overtakes=self.settings.max_overtakes),
                releasing=world.releasing,
            )
        except Exception:
            log.exception("the scheduling decision failed; nothing is admitted this cycle")
            self.inventory.__init__()  # type: ignore[misc]
            return run_cycle([], [], [], [], self.inventory.state)
        self.overtaken = result.overtaken
        self.last_result = result
        if self.metrics is not None:
            for device_class, seconds in result.placement_seconds:
                self.metrics.observe_placement(device_class, seconds)
        return result

    async def _apply(self, result: CycleResult, world: World) -> set[str]:
        """Admissions, waits and evictions, concurrently; returns the evicted jobs' keys."""
        work: list[Awaitable[None]] = []
        evicted: set[str] = set()
        for decision in result.decisions:
            if isinstance(decision, Admit):
                view = world.views[decision.job.key]
                entry = world.catalogue[decision.job.options[decision.option_index].device_class]
                admission = self.applier.admit(
                    decision, view, result, entry, world.volumes_of(view), world.nodes
                )
                work.append(self._guard(view, admission))
            elif isinstance(decision, Wait):
                work.append(self._guard(world.views[decision.job.key], self._wait(decision, world)))
            elif isinstance(decision, Preempt):
                if self.metrics is not None:
                    cls = decision.job.options[decision.option_index].device_class
                    self.metrics.count_preemption(decision.quota, cls)
                for victim in decision.victims:
                    key = victim.admission.job.key
                    if key in evicted or key not in world.views:
                        continue
                    evicted.add(key)
                    view = world.views[key]
                    transition = lifecycle.evict(
                        job_facts(view),
                        [pod_facts(p) for p in view.pods],
                        victim.message,
                        world.nodes,
                        self.settings.lifecycle,
                    )
                    work.append(
                        self._guard(view, self.applier.carry_out(view, transition, world.catalogue))
                    )
        await self.applier.together(work)
        return evicted

    async def _step(self, view: JobView, world: World, now: float) -> None:
        transition = lifecycle.transition(
            job_facts(view),
            [pod_facts(p) for p in view.pods],
            world.nodes,
            now,
            self.settings.lifecycle,
        )
        if transition != lifecycle.Transition():
            await self.applier.carry_out(view, transition, world.catalogue, world.volumes_of(view))

    async def _wait(self, wait: Wait, world: World) -> None:
        view = world.views[wait.job.key]
        if self.metrics is not None and wait.quota and view.status.get("reason") != wait.reason:
            self.metrics.count_rejection(wait.quota, wait.job.options[0].device_class, wait.reason)
        phase = Phase.PREEMPTED if view.phase is Phase.PREEMPTED else Phase.QUEUED
        desired = status.job_status(
            view.status,
            phase=phase,
            reason=wait.reason,
            message=wait.message,
            conditions=[status.Wanted(ConditionType.ADMITTED, False, wait.reason, wait.message)],
            generation=view.generation,
            now=utcnow(),
            queue_position=wait.position or None,
            quota=wait.quota,
        )
        await self.applier.write(view.body, desired)

    async def _quarantine(self, snapshot: Snapshot, key: str, problem: Problem) -> None:
        """An object that cannot run as written: Valid=False naming the field, an Event."""
        body = snapshot.of(Kind.TRAINING_JOB)[key]
        desired = status.invalid_job_status(
            body.get("status") or {},
            reason=problem.reason,
            message=problem.message,
            generation=body.get("metadata", {}).get("generation"),
            now=utcnow(),
        )
        if not status.differs(body.get("status") or {}, desired):
            return
        if await self.applier.write(body, desired):
            await self.applier.event(body, "Warning", problem.reason, problem.message)
            if self.metrics is not None and problem.reason in (
                Reason.INVALID,
                Reason.FORBIDDEN_POD_FIELD,
            ):
                self.metrics.count_object_error("TrainingJob", Reason.INVALID.value)

    async def _guard(self, view: JobView, work: Awaitable[Any]) -> None:
        """Run one job's work; an exception is that job's problem, never the cycle's."""
        try:
            await work
        except Exception as exc:
            log.exception("job %s: handling it failed", view.key)
            if self.metrics is not None:
                self.metrics.count_object_error("TrainingJob", Reason.INTERNAL_ERROR.value)
            message = f"suanli could not handle this job: {type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):
                desired = status.job_status(
                    view.status,
                    phase=view.phase or Phase.QUEUED,
                    reason=Reason.INTERNAL_ERROR,
                    message=message,
                    conditions=[],
                    generation=view.generation,
                    now=utcnow(),
                )
                if await self.applier.write(view.body, desired):
                    await self.applier.event(view.body, "Warning", Reason.INTERNAL_ERROR, message)
