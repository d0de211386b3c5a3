"""The single scheduling loop: snapshot the cache, decide, apply, and drive each job's lifecycle.

One cycle: (1) bring the placement core's state level with the cache (nodes, foreign pods,
recorded admissions); (2) let :func:`suanli.scheduling.cycle.run_cycle` order the queue, admit
against quota and place; (3) apply each decision — the job's status is written *first* (with a
resourceVersion precondition), then its pods; any failure rolls the admission back so a gang is
bound entirely or not at all; (4) move admitted jobs along Admitted → Running → Succeeded/Failed,
restarting gangs, enforcing run time, suspension and TTL; (5) write derived quota status.

Statuses are written as differences from what the object already says, so an idle cluster costs
no API calls, and a restarted operator converges to the same statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from suanli.api.acceleratorclass import AcceleratorClass
from suanli.api.computequota import ComputeQuota
from suanli.api.trainingjob import ConditionType, Phase, TrainingJob
from suanli.constants import ACCELERATOR_CLASS_ANNOTATION, ATTEMPT_LABEL, JOB_NAME_LABEL
from suanli.controller.cache import Cache, Kind, Object, Snapshot
from suanli.controller.conditions import (
    epoch_seconds,
    now_rfc3339,
    same_ignoring_time,
    set_condition,
)
from suanli.controller.inventory import (
    CatalogueEntry,
    Inventory,
    admission_signature,
    is_suanli_pod,
    release_job,
    sync_admissions,
)
from suanli.controller.kube import Kube
from suanli.controller.observed import (
    PHASE_FOR_METRICS,
    PublishedState,
    Rows,
    capacity_rows,
    pod_allocation,
    pod_devices,
    quota_rows,
)
from suanli.controller.translate import (
    catalogue_entry,
    job_request,
    option_problems,
    placement_status,
    quota_spec,
    recorded_admission,
)
from suanli.metrics import Metrics
from suanli.metrics.source import JobPhaseCount, MeteringRow, QueueRow, RunningAllocation
from suanli.placement.model import ClassCapacity, Failure, Gang, Placement
from suanli.reasons import Reason
from suanli.scheduling.cycle import (
    Admit,
    CycleConfig,
    CycleResult,
    Wait,
    rollback_admission,
    run_cycle,
)
from suanli.scheduling.model import Admission, JobRequest, QuotaSpec
from suanli.scheduling.preemption import Preempt
from suanli.scheduling.quota import class_of
from suanli.workload.pods import (
    GangSpec,
    ReplicaSlot,
    build_gang,
    build_service,
    template_violations,
)

log = logging.getLogger("suanli.loop")

DEBOUNCE_SECONDS = 0.2
TICK_SECONDS = 5.0
PENDING_PHASES = (None, Phase.QUEUED.value, Phase.PREEMPTED.value)
ADMITTED_PHASES = (Phase.ADMITTED.value, Phase.RUNNING.value)
FINISHED_PHASES = (Phase.SUCCEEDED.value, Phase.FAILED.value)
DEFAULT_RESTART_LIMIT = 3
# Status fields that describe an admission; cleared whenever a job gives its admission back.
RELEASED: dict[str, Any] = {
    "chosenOption": None,
    "placement": None,
    "admittedAt": None,
    "startedAt": None,
}


@dataclass(frozen=True)
class Settings:
    gang_start_timeout: float = 300.0
    requeue_backoff: float = 10.0
    max_overtakes: int = 8


class TimedPlacement:
    """The placement state as the scheduling cycle sees it, timing every ``place`` call."""

    def __init__(self, state: Any, metrics: Metrics | None) -> None:
        self.state = state
        self.metrics = metrics

    def place(self, gang: Gang) -> Placement | Failure:
        started = time.perf_counter()
        outcome: Placement | Failure = self.state.place(gang)
        if self.metrics is not None and gang.options[0].device_class:
            self.metrics.observe_placement(
                gang.options[0].device_class, time.perf_counter() - started
            )
        return outcome

    def release_gang(self, gang_id: str) -> None:
        self.state.release_gang(gang_id)

    def capacity_summary(self) -> Mapping[str, ClassCapacity]:
        summary: Mapping[str, ClassCapacity] = self.state.capacity_summary()
        return summary

    def release(self, pod_key: str) -> None:
        self.state.release(pod_key)

    def bind(
        self,
        pod_key: str,
        node: str,
        cpu_milli: int,
        memory_mib: int,
        *,
        devices: Sequence[int] | int = 0,
        milli: int = 1000,
    ) -> tuple[int, ...]:
        bound: tuple[int, ...] = self.state.bind(
            pod_key, node, cpu_milli, memory_mib, devices=devices, milli=milli
        )
        return bound


@dataclass
class JobView:
    key: str
    body: Object
    job: TrainingJob
    request: JobRequest
    pods: list[Object] = field(default_factory=list)

    @property
    def status(self) -> Mapping[str, Any]:
        return self.body.get("status") or {}

    @property
    def attempt(self) -> int:
        return int(self.status.get("restartCount") or 0)

    @property
    def namespace(self) -> str:
        return self.request.namespace

    @property
    def name(self) -> str:
        return self.request.name


def _seconds_since(stamp: str | None, now: float) -> float:
    then = epoch_seconds(stamp)
    return 0.0 if then is None else now - then


def status_differs(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    for key, value in desired.items():
        if key == "conditions":
            if not same_ignoring_time(current.get("conditions") or [], value):
                return True
        elif current.get(key) != value:
            return True
    return False


class Controller:
    """Owns the cache, the placement inventory and the loop; Kopf handlers only feed ``cache``."""

    def __init__(
        self, kube: Kube, settings: Settings | None = None, metrics: Metrics | None = None
    ) -> None:
        self.cache = Cache()
        self.metrics = metrics
        self.published = PublishedState()
        self.leading = True
        self.folded_pods: set[str] = set()
        self._live_uids: set[str] = set()
        self.fold_locks: dict[str, asyncio.Lock] = {}
        self.quota_of_namespace: dict[str, str] = {}
        self.kube = kube
        self.settings = settings or Settings()
        self.inventory = Inventory()
        self.overtaken: dict[str, int] = {}
        self.not_before: dict[str, float] = {}
        self.cycles = 0
        self.last_result: CycleResult | None = None
        self.warned: set[str] = set()

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
                log.exception("scheduling cycle failed; retrying")
                await asyncio.sleep(1.0)
                self.cache.changed.set()

    # --- one cycle -----------------------------------------------------------------------------
    async def cycle(self) -> None:
        started = time.perf_counter()
        now = time.time()
        snapshot = self.cache.snapshot()
        catalogue = self._catalogue(snapshot)
        self.inventory.set_catalogue(catalogue)
        self.inventory.sync_nodes(snapshot.of(Kind.NODE).values())
        self.inventory.sync_foreign_pods(snapshot.of(Kind.POD))
        quotas = self._quotas(snapshot)
        self.quota_of_namespace = {ns: q.name for q in quotas for ns in q.namespaces}
        # Pods already billed are recorded in the quotas' status: that record, not this
        # process's memory, is what survives a restart between billing and deletion.
        live = self._live_uids = {
            str(p["metadata"].get("uid")) for p in snapshot.of(Kind.POD).values()
        }
        recorded = {
            uid
            for body in snapshot.of(Kind.COMPUTE_QUOTA).values()
            for uid in (body.get("status") or {}).get("foldedPods") or []
        }
        self.folded_pods = (self.folded_pods | recorded) & live
        if self.metrics is not None:
            self.metrics.initialise(
                ((q.name, cls) for q in quotas for cls in q.devices), catalogue.keys()
            )
        views, invalid = self._jobs(snapshot)
        writes = 0
        for key, desired in invalid.items():
            writes += await self._write_job(snapshot.of(Kind.TRAINING_JOB)[key], desired)

        pending: list[JobRequest] = []
        admitted: list[Admission] = []
        admitted_views: dict[str, JobView] = {}
        for view in views.values():
            phase = view.status.get("phase")
            if phase in FINISHED_PHASES:
                await self._expire(view, now)
                continue
            admission = recorded_admission(view.request, view.status)
            if view.job.spec.suspend:
                writes += await self._suspend(view, admission is not None)
                continue
            if phase in ADMITTED_PHASES and admission is not None:
                admitted.append(admission)
                admitted_views[view.key] = view
            elif phase == Phase.SUSPENDED.value or phase in PENDING_PHASES:
                if self.not_before.get(view.key, 0) > now:
                    continue
                pending.append(view.request)
        for request in pending:
            self.inventory.forget_gang(request.key)
        conflicts = sync_admissions(self.inventory, admitted)
        for key in conflicts:
            log.error("job %s: recorded placement conflicts with the cluster", key)

        marks = {"snapshot": time.perf_counter()}
        result = run_cycle(
            pending,
            admitted,
            quotas,
            [entry.device_class for entry in catalogue.values()],
            TimedPlacement(self.inventory.state, self.metrics),
            overtaken=self.overtaken,
            config=CycleConfig(max_overtakes=self.settings.max_overtakes),
        )
        self.overtaken = result.overtaken
        self.last_result = result
        marks["decide"] = time.perf_counter()
        evicted: set[str] = set()
        for decision in result.decisions:
            if isinstance(decision, Admit):
                writes += await self._admit(decision, views[decision.job.key], result, catalogue)
            elif isinstance(decision, Wait):
                writes += await self._wait(decision, views[decision.job.key])
            elif isinstance(decision, Preempt):
                if self.metrics is not None:
                    self.metrics.count_preemption(
                        decision.quota, decision.job.options[decision.option_index].device_class
                    )
                for victim in decision.victims:
                    key = victim.admission.job.key
                    if key in evicted or key not in views:
                        continue
                    evicted.add(key)
                    writes += await self._evict(views[key], victim.message)
        marks["apply"] = time.perf_counter()
        for key, view in admitted_views.items():
            if key not in evicted:
                writes += await self._lifecycle(view, now, catalogue)
        marks["lifecycle"] = time.perf_counter()
        writes += await self._quota_statuses(snapshot, quotas, result)
        writes += await self._class_statuses(snapshot)
        self.published.publish(self._rows(snapshot, quotas, result, views, invalid, catalogue))
        marks["status"] = time.perf_counter()
        self.cycles += 1
        phases, previous = [], started
        for phase, mark in marks.items():
            phases.append(f"{phase} {(mark - previous) * 1000:.1f}")
            previous = mark
        log.info(
            "cycle %d: %d pending, %d admitted, %d decisions, %d writes in %.1f ms (%s ms)",
            self.cycles,
            len(pending),
            len(admitted),
            len(result.decisions),
            writes,
            (time.perf_counter() - started) * 1000,
            ", ".join(phases),
        )

    # --- reading the snapshot ---------------------------------------------------------------
    def _catalogue(self, snapshot: Snapshot) -> dict[str, CatalogueEntry]:
        entries = {}
        for name, body in snapshot.of(Kind.ACCELERATOR_CLASS).items():
            try:
                entries[name] = catalogue_entry(AcceleratorClass.model_validate(body))
            except (ValidationError, ValueError) as exc:
                self._warn_once(f"AcceleratorClass {name} ignored: {exc}")
        return entries

    def _warn_once(self, message: str) -> None:
        if message not in self.warned:
            self.warned.add(message)
            log.warning("%s", message)

    def _quotas(self, snapshot: Snapshot) -> list[QuotaSpec]:
        quotas: list[QuotaSpec] = []
        claimed: dict[str, str] = {}
        for name, body in sorted(snapshot.of(Kind.COMPUTE_QUOTA).items()):
            try:
                spec = quota_spec(ComputeQuota.model_validate(body))
            except (ValidationError, ValueError) as exc:
                self._warn_once(f"ComputeQuota {name} ignored: {exc}")
                continue
            taken = sorted(ns for ns in spec.namespaces if ns in claimed)
            if taken:
                self._warn_once(
                    f"ComputeQuota {name} ignored: namespaces {taken} are already served by "
                    f"{sorted({claimed[ns] for ns in taken})}"
                )
                continue
            claimed.update({ns: name for ns in spec.namespaces})
            quotas.append(spec)
        return quotas

    def _jobs(self, snapshot: Snapshot) -> tuple[dict[str, JobView], dict[str, dict[str, Any]]]:
        pods_by_job: dict[str, list[Object]] = {}
        for body in snapshot.of(Kind.POD).values():
            if is_suanli_pod(body):
                metadata = body["metadata"]
                job_key = f"{metadata['namespace']}/{metadata['labels'][JOB_NAME_LABEL]}"
                pods_by_job.setdefault(job_key, []).append(body)
        classes = {name: entry.device_class for name, entry in self.inventory.catalogue.items()}
        views, invalid = {}, {}
        for key, body in snapshot.of(Kind.TRAINING_JOB).items():
            if body.get("metadata", {}).get("deletionTimestamp"):
                continue
            job, problem = self._validate(body, classes)
            if problem is not None:
                invalid[key] = problem
                continue
            if job is None:
                continue
            views[key] = JobView(key, body, job, job_request(job, body), pods_by_job.get(key, []))
        return views, invalid

    def _validate(
        self, body: Object, classes: Mapping[str, Any]
    ) -> tuple[TrainingJob | None, dict[str, Any] | None]:
        """The parsed job, and the status to write when it can never run as written."""
        status: Mapping[str, Any] = body.get("status") or {}
        generation = body.get("metadata", {}).get("generation")
        conditions = list(status.get("conditions") or [])
        now = now_rfc3339()
        reason = message = None
        job: TrainingJob | None = None
        try:
            job = TrainingJob.model_validate(body)
        except ValidationError as exc:
            if status.get("phase") in FINISHED_PHASES:
                return None, None  # over and done: nothing left to say about its spec
            first = exc.errors()[0]
            field_name = ".".join(str(part) for part in first["loc"])
            reason, message = "InvalidSpec", f"spec is not valid: {field_name}: {first['msg']}"
        else:
            if status.get("phase") in FINISHED_PHASES:
                return job, None
            violations = template_violations(
                job.spec.template.model_dump(by_alias=True, exclude_none=True)
            )
            problems = option_problems(job, classes)
            if violations:
                reason, message = "ForbiddenPodField", "; ".join(violations)
            elif len(problems) == len(job.spec.accelerators):
                kinds = {p.reason for p in problems}
                reason = (
                    Reason.UNKNOWN_ACCELERATOR_CLASS.value
                    if kinds == {Reason.UNKNOWN_ACCELERATOR_CLASS}
                    else Reason.ILLEGAL_SHAPE.value
                )
                message = "no accelerator option can ever run: " + "; ".join(
                    p.message for p in problems
                )
        if reason is None or message is None:
            return job, None
        conditions = set_condition(
            conditions,
            type_=ConditionType.VALID,
            status=False,
            reason=reason,
            message=message,
            generation=generation,
            now=now,
        )
        return job, {
            "phase": Phase.QUEUED.value,
            "reason": reason,
            "message": message,
            "conditions": conditions,
            "observedGeneration": generation,
            "queuePosition": None,
        }

    # --- writing --------------------------------------------------------------------------------
    async def _write_job(self, body: Object, desired: Mapping[str, Any]) -> int:
        if not status_differs(body.get("status") or {}, desired):
            return 0
        metadata = body["metadata"]
        written = await self.kube.apatch_status(
            "trainingjobs",
            metadata["name"],
            metadata["namespace"],
            str(metadata["resourceVersion"]),
            desired,
        )
        return int(written)

    def _conditions(
        self,
        view: JobView,
        type_: str,
        status: bool,
        reason: str,
        message: str,
        extra: tuple[tuple[str, bool, str, str], ...] = (),
    ) -> list[dict[str, Any]]:
        generation = view.body.get("metadata", {}).get("generation")
        now = now_rfc3339()
        conditions = set_condition(
            view.status.get("conditions") or [],
            type_=ConditionType.VALID,
            status=True,
            reason="Valid",
            message="the job can run on at least one accelerator option",
            generation=generation,
            now=now,
        )
        conditions = set_condition(
            conditions,
            type_=type_,
            status=status,
            reason=reason,
            message=message,
            generation=generation,
            now=now,
        )
        for other_type, other_status, other_reason, other_message in extra:
            conditions = set_condition(
                conditions,
                type_=other_type,
                status=other_status,
                reason=other_reason,
                message=other_message,
                generation=generation,
                now=now,
            )
        return conditions

    async def _wait(self, wait: Wait, view: JobView) -> int:
        phase = view.status.get("phase")
        if self.metrics is not None and wait.quota and view.status.get("reason") != wait.reason:
            self.metrics.count_rejection(
                wait.quota, wait.job.options[0].device_class, wait.reason.value
            )
        desired = {
            "phase": phase if phase in (Phase.PREEMPTED.value,) else Phase.QUEUED.value,
            "reason": wait.reason.value,
            "message": wait.message,
            "queuePosition": wait.position or None,
            "quota": wait.quota,
            "observedGeneration": view.body["metadata"].get("generation"),
            "conditions": self._conditions(
                view, ConditionType.ADMITTED, False, wait.reason.value, wait.message
            ),
        }
        return await self._write_job(view.body, desired)

    async def _admit(
        self,
        admit: Admit,
        view: JobView,
        result: CycleResult,
        catalogue: Mapping[str, CatalogueEntry],
    ) -> int:
        option = view.job.spec.accelerators[admit.option_index]
        placement = admit.placement
        nodes = sorted({r.node for r in placement.replicas})
        message = (
            f"admitted to quota {admit.quota} as {len(placement.replicas)} × "
            f"{option.devices_per_replica} {option.accelerator_class} on {', '.join(nodes)}"
        )
        if admit.borrowed:
            message += " (borrowing from the cohort)"
        desired = {
            "phase": Phase.ADMITTED.value,
            "reason": Reason.ADMITTED.value,
            "message": message,
            "quota": admit.quota,
            "queuePosition": None,
            "chosenOption": {
                "index": admit.option_index,
                "acceleratorClass": option.accelerator_class,
                "devicesPerReplica": option.devices_per_replica,
                "replicas": len(placement.replicas),
            },
            "placement": placement_status(placement),
            "admittedAt": now_rfc3339(),
            "startedAt": None,
            "restartCount": view.attempt,
            "observedGeneration": view.body["metadata"].get("generation"),
            "conditions": self._conditions(
                view, ConditionType.ADMITTED, True, Reason.ADMITTED.value, message
            ),
        }
        # Record the decision first: if we crash after this write, the next operator finds the
        # placement in the status, binds it, and creates whatever pods are missing.
        if not await self._write_job(view.body, desired):
            rollback_admission(result, admit)
            return 0
        self.inventory.admissions[view.key] = admission_signature(admit.admission)
        entry = catalogue[option.accelerator_class]
        try:
            await self._create_gang(view, admit.option_index, placement_status(placement), entry)
        except Exception as exc:
            log.warning("job %s: creating its gang failed, rolling back: %s", view.key, exc)
            await self._retire_pods(view)
            rollback_admission(result, admit)
            self.inventory.admissions.pop(view.key, None)
            self.not_before[view.key] = time.time() + self.settings.requeue_backoff
            await self._requeue_after_rollback(view, f"creating pods failed: {exc}")
            return 1
        await asyncio.to_thread(self.kube.event, view.body, "Normal", "Admitted", message)
        if self.metrics is not None:
            reason = "Borrowed" if admit.borrowed else "WithinNominal"
            self.metrics.count_admission(admit.quota, option.accelerator_class, reason)
            self.metrics.observe_queue_wait(
                admit.quota, option.accelerator_class, max(0.0, time.time() - view.request.created)
            )
        return 1

    async def _requeue_after_rollback(self, view: JobView, why: str) -> None:
        latest = await asyncio.to_thread(self.kube.get_job, view.namespace, view.name)
        if latest is None:
            return
        fresh = JobView(view.key, latest, view.job, view.request)
        desired = {
            "phase": Phase.QUEUED.value,
            "reason": "ApplyFailed",
            "message": why,
            **RELEASED,
            "conditions": self._conditions(
                fresh, ConditionType.ADMITTED, False, "ApplyFailed", why
            ),
        }
        await self._write_job(latest, desired)

    def _gang_spec(self, view: JobView, option_index: int, entry: CatalogueEntry) -> GangSpec:
        option = view.job.spec.accelerators[option_index]
        return GangSpec(
            namespace=view.namespace,
            job_name=view.name,
            job_uid=str(view.body["metadata"].get("uid", "")),
            attempt=view.attempt,
            template=view.job.spec.template.model_dump(by_alias=True, exclude_none=True),
            accelerator_class=option.accelerator_class,
            vendor=entry.vendor,
            resource_name=entry.resource_name,
            devices_per_replica=option.devices_per_replica,
            image=option.image,
            extra_env=tuple(
                e.model_dump(by_alias=True, exclude_none=True) for e in option.env or []
            ),
            tolerations=(
                {"key": entry.resource_name, "operator": "Exists", "effect": "NoSchedule"},
            ),
        )

    async def _create_gang(
        self,
        view: JobView,
        option_index: int,
        placement: list[dict[str, Any]],
        entry: CatalogueEntry,
        only_missing: set[str] | None = None,
    ) -> None:
        spec = self._gang_spec(view, option_index, entry)
        slots = [
            ReplicaSlot(int(r["replica"]), str(r["node"]), tuple(r["deviceIndices"]))
            for r in placement
        ]
        objects = [build_service(spec), *build_gang(spec, slots)]
        if only_missing is not None:
            objects = [
                o for o in objects if o["kind"] != "Pod" or o["metadata"]["name"] in only_missing
            ]
        await asyncio.gather(*(asyncio.to_thread(self.kube.create, o) for o in objects))

    def _count_eviction(self, view: JobView, reason: str, restart: bool = False) -> None:
        if self.metrics is None:
            return
        quota = view.status.get("quota") or self.quota_of_namespace.get(view.namespace)
        cls = (view.status.get("chosenOption") or {}).get("acceleratorClass")
        if not quota or not cls:
            return
        self.metrics.count_eviction(str(quota), str(cls), reason)
        if restart:
            self.metrics.count_gang_restart(str(quota), str(cls))

    async def _evict(self, view: JobView, why: str) -> int:
        self._count_eviction(view, "Preempted")
        # The victim sits out one backoff so the preemptor gets the room it was made for
        # (otherwise an older victim is re-admitted first and the two thrash).
        self.not_before[view.key] = time.time() + self.settings.requeue_backoff
        await self._retire_pods(view)
        release_job(self.inventory, view.key, self.inventory.admissions.get(view.key, (0, ())))
        desired = {
            "phase": Phase.PREEMPTED.value,
            "reason": Reason.PREEMPTED.value,
            "message": why,
            **RELEASED,
            "conditions": self._conditions(
                view,
                ConditionType.ADMITTED,
                False,
                Reason.PREEMPTED.value,
                why,
                ((ConditionType.RUNNING, False, Reason.PREEMPTED.value, why),),
            ),
        }
        await asyncio.to_thread(self.kube.event, view.body, "Warning", "Preempted", why)
        return await self._write_job(view.body, desired)

    async def _suspend(self, view: JobView, had_admission: bool) -> int:
        if had_admission or view.pods:
            await self._retire_pods(view)
        message = "suspended by spec.suspend; resumes when it is set to false"
        desired = {
            "phase": Phase.SUSPENDED.value,
            "reason": Reason.SUSPENDED.value,
            "message": message,
            **RELEASED,
            "queuePosition": None,
            "conditions": self._conditions(
                view, ConditionType.ADMITTED, False, Reason.SUSPENDED.value, message
            ),
        }
        return await self._write_job(view.body, desired)

    async def _expire(self, view: JobView, now: float) -> None:
        ttl = view.job.spec.ttl_seconds_after_finished
        if ttl is None:
            return
        if _seconds_since(view.status.get("finishedAt"), now) >= ttl:
            await asyncio.to_thread(self.kube.delete_job, view.namespace, view.name)

    # --- lifecycle of an admitted job ----------------------------------------------------------
    async def _lifecycle(
        self, view: JobView, now: float, catalogue: Mapping[str, CatalogueEntry]
    ) -> int:
        status = view.status
        placement = list(status.get("placement") or [])
        option_index = int((status.get("chosenOption") or {}).get("index", 0))
        current = [
            p
            for p in view.pods
            if p["metadata"].get("labels", {}).get(ATTEMPT_LABEL) == str(view.attempt)
            and not p["metadata"].get("deletionTimestamp")
        ]
        phases = {p["metadata"]["name"]: p.get("status", {}).get("phase") for p in current}
        expected = {f"{view.name}-a{view.attempt}-{int(r['replica'])}" for r in placement}
        missing = expected - set(phases)
        started = bool(status.get("startedAt"))
        lost_nodes = sorted(
            {str(r["node"]) for r in placement}
            - {n for n, rec in self.inventory.nodes.items() if rec.schedulable}
        )
        failed = sorted(n for n, ph in phases.items() if ph == "Failed")
        if failed or lost_nodes or (started and missing):
            if failed:
                why, cause = f"pod {failed[0]} failed", "PodFailed"
            elif lost_nodes:
                why, cause = f"node {lost_nodes[0]} was lost or became unschedulable", "NodeLost"
            else:
                why, cause = f"pod {sorted(missing)[0]} disappeared", "PodLost"
            self._count_eviction(view, cause, restart=self._will_restart(view))
            return await self._restart_or_fail(view, why)
        if missing:
            if _seconds_since(status.get("admittedAt"), now) > self.settings.gang_start_timeout:
                return await self._requeue(view, "the gang did not start in time")
            entry = catalogue.get(str((status.get("chosenOption") or {}).get("acceleratorClass")))
            if entry is not None:
                # Crash recovery: the decision is recorded, some pods are not there yet.
                await self._create_gang(view, option_index, placement, entry, missing)
            return 0
        if all(ph == "Succeeded" for ph in phases.values()):
            message = f"all {len(phases)} replicas succeeded"
            desired = {
                "phase": Phase.SUCCEEDED.value,
                "reason": Reason.SUCCEEDED.value,
                "message": message,
                "finishedAt": now_rfc3339(),
                "startedAt": status.get("startedAt") or now_rfc3339(),
                "conditions": self._conditions(
                    view,
                    ConditionType.FINISHED,
                    True,
                    Reason.SUCCEEDED.value,
                    message,
                    ((ConditionType.RUNNING, False, Reason.SUCCEEDED.value, message),),
                ),
            }
            await asyncio.to_thread(self.kube.event, view.body, "Normal", "Succeeded", message)
            return await self._write_job(view.body, desired)
        max_run = view.job.spec.max_run_seconds
        if started and max_run is not None and _seconds_since(status["startedAt"], now) > max_run:
            await self._retire_pods(view)
            return await self._fail(
                view,
                Reason.MAX_RUN_TIME_EXCEEDED.value,
                f"ran longer than spec.maxRunSeconds ({max_run} s)",
            )
        running = all(ph in ("Running", "Succeeded") for ph in phases.values())
        if running and not started:
            message = f"all {len(phases)} replicas are running"
            desired = {
                "phase": Phase.RUNNING.value,
                "reason": Reason.RUNNING.value,
                "message": message,
                "startedAt": now_rfc3339(),
                "conditions": self._conditions(
                    view, ConditionType.RUNNING, True, Reason.RUNNING.value, message
                ),
            }
            return await self._write_job(view.body, desired)
        if (
            not running
            and not started
            and (_seconds_since(status.get("admittedAt"), now) > self.settings.gang_start_timeout)
        ):
            return await self._requeue(view, "the gang did not start in time")
        return 0

    async def _requeue(self, view: JobView, why: str) -> int:
        await self._retire_pods(view)
        self.not_before[view.key] = time.time() + self.settings.requeue_backoff
        message = f"{why}; released and requeued"
        desired = {
            "phase": Phase.QUEUED.value,
            "reason": "GangStartTimeout",
            "message": message,
            **RELEASED,
            "restartCount": view.attempt + 1,
            "conditions": self._conditions(
                view, ConditionType.ADMITTED, False, "GangStartTimeout", message
            ),
        }
        return await self._write_job(view.body, desired)

    @staticmethod
    def _restart_limit(view: JobView) -> int:
        limit = view.job.spec.restart_limit
        return DEFAULT_RESTART_LIMIT if limit is None else limit

    def _will_restart(self, view: JobView) -> bool:
        limit = self._restart_limit(view)
        return view.job.spec.restart_policy == "OnFailure" and view.attempt < limit

    async def _restart_or_fail(self, view: JobView, why: str) -> int:
        await self._retire_pods(view)
        limit = self._restart_limit(view)
        if self._will_restart(view):
            message = f"{why}; restarting the whole gang (restart {view.attempt + 1} of {limit})"
            desired = {
                "phase": Phase.QUEUED.value,
                "reason": "Restarting",
                "message": message,
                **RELEASED,
                "restartCount": view.attempt + 1,
                "conditions": self._conditions(
                    view,
                    ConditionType.RUNNING,
                    False,
                    "Restarting",
                    message,
                    ((ConditionType.ADMITTED, False, "Restarting", message),),
                ),
            }
            await asyncio.to_thread(self.kube.event, view.body, "Warning", "Restarting", message)
            return await self._write_job(view.body, desired)
        reason = (
            Reason.RESTART_LIMIT_EXCEEDED.value
            if view.job.spec.restart_policy == "OnFailure"
            else Reason.FAILED.value
        )
        return await self._fail(view, reason, why)

    async def _fail(self, view: JobView, reason: str, message: str) -> int:
        desired = {
            "phase": Phase.FAILED.value,
            "reason": reason,
            "message": message,
            "finishedAt": now_rfc3339(),
            "conditions": self._conditions(
                view,
                ConditionType.FINISHED,
                True,
                reason,
                message,
                ((ConditionType.RUNNING, False, reason, message),),
            ),
        }
        await asyncio.to_thread(self.kube.event, view.body, "Warning", reason, message)
        return await self._write_job(view.body, desired)

    # --- metering: fold the accelerator time of pods before they are deleted ------------------
    def _usage(self, pods: list[Object]) -> tuple[dict[str, tuple[float, float]], list[str]]:
        """Device- and PFLOP-seconds per class used by ``pods`` so far, and their uids."""
        now = time.time()
        usage: dict[str, tuple[float, float]] = {}
        uids = []
        for pod in pods:
            uid = str(pod["metadata"].get("uid", ""))
            if uid in self.folded_pods or pod["metadata"].get("deletionTimestamp"):
                continue
            cls = (pod["metadata"].get("annotations") or {}).get(ACCELERATOR_CLASS_ANNOTATION)
            entry = self.inventory.catalogue.get(str(cls))
            if entry is None:
                continue
            devices = pod_devices(pod, entry.resource_name)
            allocation = pod_allocation(pod, devices, entry.device_class.tflops)
            if allocation is None:
                continue
            end = allocation.finished_at if allocation.finished_at is not None else now
            seconds = max(0.0, end - allocation.started_at) * devices
            old = usage.get(entry.device_class.name, (0.0, 0.0))
            usage[entry.device_class.name] = (
                old[0] + seconds,
                old[1] + seconds * allocation.pflops_per_device,
            )
            uids.append(uid)
        return usage, uids

    async def fold(self, namespace: str, pods: list[Object]) -> None:
        """Add the pods' usage to their quota's ``status.metering`` before they go away, so the
        metering counters (accumulated + running) never go down."""
        quota = self.quota_of_namespace.get(namespace)
        if quota is None:
            return
        # One fold per quota at a time: concurrent folds would only fight over resourceVersion.
        async with self.fold_locks.setdefault(quota, asyncio.Lock()):
            usage, uids = self._usage(pods)
            if not usage:
                return
            await asyncio.to_thread(self.kube.add_metering, quota, usage, uids)
            self.folded_pods.update(uids)

    async def _retire_pods(self, view: JobView) -> None:
        """Fold the pods' accelerator time into the quota, then delete them. Pods that never
        started, or whose node is gone or unready, are removed at once: no kubelet will ever
        confirm their graceful end, and they would hold the job's names and the node forever."""
        await self.fold(view.namespace, view.pods)
        await asyncio.to_thread(self.kube.delete_job_pods, view.namespace, view.name)
        healthy = {name for name, node in self.inventory.nodes.items() if node.schedulable}
        for pod in view.pods:
            stuck = (pod.get("status") or {}).get("phase") in (None, "Pending")
            if stuck or pod.get("spec", {}).get("nodeName") not in healthy:
                await asyncio.to_thread(
                    self.kube.force_delete_pod, view.namespace, pod["metadata"]["name"]
                )

    # --- rows for the metrics collector ---------------------------------------------------------
    def _rows(
        self,
        snapshot: Snapshot,
        quotas: list[QuotaSpec],
        result: CycleResult,
        views: Mapping[str, JobView],
        invalid: Mapping[str, Mapping[str, Any]],
        catalogue: Mapping[str, CatalogueEntry],
    ) -> Rows:
        statuses = {q.name: result.quota_status(q.name) for q in quotas}
        phases: dict[tuple[str, str], int] = {}
        for key, body in snapshot.of(Kind.TRAINING_JOB).items():
            quota = self.quota_of_namespace.get(key.split("/", 1)[0])
            if quota is None:
                continue
            phase = (invalid.get(key) or body.get("status") or {}).get("phase")
            label = PHASE_FOR_METRICS.get(phase, "Pending")
            phases[(quota, label)] = phases.get((quota, label), 0) + 1
        queues: dict[tuple[str, str], list[float]] = {}
        for wait in result.waiting:
            if wait.quota is None:
                continue
            cls = wait.job.options[0].device_class
            queues.setdefault((wait.quota, cls), []).append(wait.job.created)
        metering: list[MeteringRow] = []
        running: dict[tuple[str, str], list[RunningAllocation]] = {}
        for view in views.values():
            quota = self.quota_of_namespace.get(view.namespace)
            if quota is None:
                continue
            for pod in view.pods:
                uid = str(pod["metadata"].get("uid", ""))
                if uid in self.folded_pods or pod["metadata"].get("deletionTimestamp"):
                    continue
                annotations = pod["metadata"].get("annotations") or {}
                entry = catalogue.get(str(annotations.get(ACCELERATOR_CLASS_ANNOTATION)))
                if entry is None:
                    continue
                allocation = pod_allocation(
                    pod, pod_devices(pod, entry.resource_name), entry.device_class.tflops
                )
                if allocation is not None:
                    running.setdefault((quota, entry.device_class.name), []).append(allocation)
        accumulated: dict[tuple[str, str], tuple[float, float]] = {}
        for spec in quotas:
            body = snapshot.of(Kind.COMPUTE_QUOTA).get(spec.name) or {}
            for row in (body.get("status") or {}).get("metering") or []:
                accumulated[(spec.name, row["acceleratorClass"])] = (
                    float(row.get("deviceSeconds", 0)),
                    float(row.get("pflopSeconds", 0)),
                )
        for quota_class in sorted(set(accumulated) | set(running)):
            device_seconds, pflop_seconds = accumulated.get(quota_class, (0.0, 0.0))
            metering.append(
                MeteringRow(
                    *quota_class,
                    device_seconds,
                    pflop_seconds,
                    tuple(running.get(quota_class, ())),
                )
            )
        return Rows(
            quotas=quota_rows(quotas, statuses, catalogue),
            phases=tuple(JobPhaseCount(q, p, n) for (q, p), n in sorted(phases.items())),
            queues=tuple(
                QueueRow(q, c, len(times), min(times)) for (q, c), times in sorted(queues.items())
            ),
            capacity=capacity_rows(
                self.inventory.state.capacity_summary(), catalogue, self.inventory.nodes.values()
            ),
            metering=tuple(metering),
        )

    # --- derived status of quotas and classes ---------------------------------------------------
    async def _quota_statuses(
        self, snapshot: Snapshot, quotas: list[QuotaSpec], result: CycleResult
    ) -> int:
        writes = 0
        pending_jobs: dict[str, int] = {}
        for decision in result.waiting:
            if decision.quota:
                pending_jobs[decision.quota] = pending_jobs.get(decision.quota, 0) + 1
        live_uids = self._live_uids
        admitted_jobs: dict[str, int] = {}
        for spec in quotas:
            admitted_jobs[spec.name] = sum(
                1 for key in self.inventory.admissions if key.split("/", 1)[0] in spec.namespaces
            )
        for spec in quotas:
            body = snapshot.of(Kind.COMPUTE_QUOTA).get(spec.name)
            if body is None:
                continue
            book = result.quota_status(spec.name)
            classes = sorted(
                {
                    c
                    for r in (*book.used, *book.borrowed, *book.lent, *book.pending)
                    if (c := class_of(r)) is not None
                }
                | set(spec.devices)
            )
            usage = []
            for cls in classes:
                resource = f"devices:{cls}"
                usage.append(
                    {
                        "acceleratorClass": cls,
                        "used": -(-book.used.get(resource, 0) // 1000),
                        "borrowed": -(-book.borrowed.get(resource, 0) // 1000),
                        "lent": -(-book.lent.get(resource, 0) // 1000),
                        "pending": -(-book.pending.get(resource, 0) // 1000),
                    }
                )
            tflops = result.book.compute_used_tflops(spec.name)
            recorded = (body.get("status") or {}).get("foldedPods") or []
            desired: dict[str, Any] = {
                "usage": usage,
                "usedPFLOPS": round(float(tflops) / 1000, 6),
                "admittedJobs": admitted_jobs.get(spec.name, 0),
                "pendingJobs": pending_jobs.get(spec.name, 0),
                "observedGeneration": body["metadata"].get("generation"),
            }
            still_there = [uid for uid in recorded if uid in live_uids]
            if len(still_there) != len(recorded):
                # Those pods are gone: their time is only in metering now, nothing to exclude.
                desired["foldedPods"] = still_there or None
            if status_differs(body.get("status") or {}, desired):
                written = await self.kube.apatch_status(
                    "computequotas",
                    spec.name,
                    None,
                    str(body["metadata"]["resourceVersion"]),
                    desired,
                )
                writes += int(written)
        return writes

    async def _class_statuses(self, snapshot: Snapshot) -> int:
        writes = 0
        summary = self.inventory.state.capacity_summary()
        for name, body in snapshot.of(Kind.ACCELERATOR_CLASS).items():
            capacity = summary.get(name)
            entry = self.inventory.catalogue.get(name)
            if capacity is None or entry is None:
                continue
            desired = {
                "nodes": capacity.nodes,
                "devices": capacity.total_devices,
                "allocatedDevices": -(-capacity.allocated_milli // 1000),
                "capacityPFLOPS": round(
                    capacity.total_devices * entry.device_class.tflops / 1000, 3
                ),
            }
            if status_differs(body.get("status") or {}, desired):
                written = await self.kube.apatch_status(
                    "acceleratorclasses",
                    name,
                    None,
                    str(body["metadata"]["resourceVersion"]),
                    desired,
                )
                writes += int(written)
        return writes
