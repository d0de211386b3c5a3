"""Carry out the cycle's decisions: admissions created as one or rolled back, transitions applied.

An admission is applied in this order, and either all of it stands or none of it does:

1. the decision is written into the job's status (phase Admitted, the chosen option, the
   placement, the next ``attempt`` number) with the snapshot's resourceVersion as precondition —
   if the operator dies after this write, the next one finds the placement and creates what is
   missing; if the write conflicts, the assumption is discarded and nothing was created;
2. the rank-table ConfigMap (Ascend), then the headless Service, then all pods (concurrently,
   except that the Ascend pods of one node are created one after another, each stamped with
   ``suanli.io/bind-sequence``: kubelet admits a node's pods in the order they were created,
   and the device plugin, which is not told which pod an ``Allocate`` is for, serves the
   lowest sequence first — created together, two ranks of one node could swap chips).
   Names carry the attempt, so nothing of an earlier admission is ever reused;
3. if any creation fails, everything this admission created is deleted, the cycle's assumption
   for the job (quota charge, assumed gang) is discarded through the statement, and the job is
   requeued with ``ApplyFailed`` — or, when the API server refused the object for a reason that
   will not change by itself (422 Invalid, 400), it fails with ``CreateRefused`` and the server's
   message instead of retrying for ever.

Admissions of different jobs are applied concurrently: the API calls of one cycle overlap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from suanli.api.trainingjob import ConditionType, Phase
from suanli.constants import BIND_SEQUENCE_ANNOTATION
from suanli.controller import lifecycle, status
from suanli.controller.facts import JobView, job_facts
from suanli.controller.faults import crash_point
from suanli.controller.inventory import CatalogueEntry, Inventory, admission_signature
from suanli.controller.kube import Kube, api_message, is_terminal
from suanli.controller.lifecycle import LifecycleSettings, NodeFacts, Transition
from suanli.controller.translate import placement_status
from suanli.metrics import Metrics
from suanli.reasons import Reason
from suanli.scheduling.cycle import Admit, CycleResult, rollback_admission
from suanli.workload.pods import (
    GangSpec,
    ReplicaSlot,
    build_gang,
    build_pod,
    build_rank_table,
    build_service,
    checkpoint_id,
)

log = logging.getLogger("suanli.apply")

CONCURRENT_JOBS = 32
# How long objects this process created are taken as there though the watch has not shown them.
UNSEEN_SECONDS = 30.0


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Applier:
    """The loop's hands: every write of a job's status, pods, Service and rank table."""

    kube: Kube
    inventory: Inventory
    settings: LifecycleSettings
    metrics: Metrics | None = None
    not_before: dict[str, float] = field(default_factory=dict)
    writes: int = 0
    _slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(CONCURRENT_JOBS))
    _posting: set[asyncio.Task[None]] = field(default_factory=set)
    # job key -> (attempt, names of the pods created for it, when): in the cycle after an
    # admission the cache often holds the new status but not yet every new pod; without this
    # the lifecycle's "recorded admission with pods missing" step would create them again (409)
    created: dict[str, tuple[int, frozenset[str], float]] = field(default_factory=dict)
    _node_order: dict[str, asyncio.Lock] = field(default_factory=dict)
    _last_sequence: int = 0

    async def together(self, work: Iterable[Awaitable[Any]]) -> list[Any]:
        """Run jobs' work concurrently (bounded), each failure confined to its own job."""

        async def bounded(step: Awaitable[Any]) -> Any:
            async with self._slots:
                return await step

        return await asyncio.gather(*(bounded(w) for w in work), return_exceptions=True)

    # --- status ------------------------------------------------------------------------------
    async def write(self, body: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
        """Write ``desired`` into the object's status if it changes anything (precondition:
        the resourceVersion it was read at). False on a conflict: the next cycle decides anew."""
        if not status.differs(body.get("status") or {}, desired):
            return True
        metadata = body["metadata"]
        written = await self.kube.apatch_status(
            "trainingjobs",
            metadata["name"],
            metadata["namespace"],
            str(metadata["resourceVersion"]),
            desired,
        )
        self.writes += int(written)
        return written

    async def event(self, body: Mapping[str, Any], type_: str, reason: Reason, msg: str) -> None:
        """Post an Event beside the rest of the work, not before it: Events are best effort
        and not state, so a job's slot is not held for one more round trip."""
        task = asyncio.create_task(
            asyncio.to_thread(self.kube.event, body, type_, reason.value, msg)
        )
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    # --- admissions --------------------------------------------------------------------------
    def gang_spec(
        self,
        view: JobView,
        option_index: int,
        entry: CatalogueEntry,
        attempt: int,
        allowed_volume_kinds: frozenset[str],
    ) -> GangSpec:
        option = view.job.spec.accelerators[option_index]
        return GangSpec(
            namespace=view.namespace,
            job_name=view.name,
            job_uid=str(view.body["metadata"].get("uid", "")),
            checkpoint_id=checkpoint_id(
                str(view.body["metadata"].get("uid", "")), view.body["metadata"].get("labels")
            ),
            attempt=attempt,
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
            allowed_volume_kinds=allowed_volume_kinds,
        )

    async def admit(
        self,
        admit: Admit,
        view: JobView,
        result: CycleResult,
        entry: CatalogueEntry,
        allowed_volume_kinds: frozenset[str],
        nodes: Mapping[str, NodeFacts],
    ) -> bool:
        option = view.job.spec.accelerators[admit.option_index]
        placement = placement_status(admit.placement)
        attempt = view.next_attempt
        hosts = sorted({r.node for r in admit.placement.replicas})
        message = (
            f"admitted to quota {admit.quota} as {len(placement)} × "
            f"{option.devices_per_replica} {option.accelerator_class} on {', '.join(hosts)}"
            + (" (borrowing from the cohort)" if admit.borrowed else "")
        )
        desired = status.job_status(
            view.status,
            phase=Phase.ADMITTED,
            reason=Reason.ADMITTED,
            message=message,
            conditions=[status.Wanted(ConditionType.ADMITTED, True, Reason.ADMITTED, message)],
            generation=view.generation,
            now=utcnow(),
            quota=admit.quota,
            queue_position=None,
            chosen_option={
                "index": admit.option_index,
                "accelerator_class": option.accelerator_class,
                "devices_per_replica": option.devices_per_replica,
                "replicas": len(placement),
            },
            placement=[
                {"replica": r["replica"], "node": r["node"], "device_indices": r["deviceIndices"]}
                for r in placement
            ],
            admitted_at=utcnow(),
            started_at=None,
            attempt=attempt,
        )
        # 1. the decision first: a crash after this write is finished by the next operator
        if not await self.write(view.body, desired):
            rollback_admission(result, admit)
            return False
        crash_point("after-admission-status")
        self.inventory.admissions[view.key] = admission_signature(admit.admission)
        spec = self.gang_spec(view, admit.option_index, entry, attempt, allowed_volume_kinds)
        slots = [
            ReplicaSlot(
                int(r["replica"]),
                str(r["node"]),
                tuple(r["deviceIndices"]),
                _published_ips(nodes.get(str(r["node"]))),
            )
            for r in placement
        ]
        ours = build_gang(spec, slots)  # rank table, pods: this attempt's own names
        service = build_service(spec)
        created_service = False
        try:
            if spec.vendor == "huawei" and attempt > 0:
                await asyncio.to_thread(
                    self.kube.delete_stale_rank_tables, view.namespace, view.name, attempt
                )
            for manifest in [o for o in ours if o["kind"] == "ConfigMap"]:
                await asyncio.to_thread(self.kube.create, manifest)
                crash_point("after-rank-table")
            created_service = await asyncio.to_thread(self.kube.create, service)
            crash_point("after-service")
            pods = [o for o in ours if o["kind"] == "Pod"]
            outcomes = await asyncio.gather(
                *(self._create_pod(p) for p in pods), return_exceptions=True
            )
            failures = [o for o in outcomes if isinstance(o, BaseException)]
            if failures:
                raise failures[0]
        except Exception as exc:
            await self._roll_back(
                admit, view, result, ours, service if created_service else None, exc, nodes
            )
            return False
        crash_point("after-pods")
        self.created[view.key] = (
            attempt,
            frozenset(p["metadata"]["name"] for p in pods),
            time.time(),
        )
        if result.statement is not None:
            result.statement.commit(view.key)
        self.writes += len(ours) + int(created_service)
        await self.event(view.body, "Normal", Reason.ADMITTED, message)
        if self.metrics is not None:
            why = Reason.BORROWED if admit.borrowed else Reason.WITHIN_NOMINAL
            self.metrics.count_admission(admit.quota, option.accelerator_class, why.value)
            self.metrics.observe_queue_wait(
                admit.quota, option.accelerator_class, max(0.0, time.time() - view.request.created)
            )
        return True

    async def _create_pod(self, manifest: dict[str, Any]) -> bool:
        created = await self.create_in_node_order(manifest)
        crash_point("between-pod-creations")
        return created

    async def create_in_node_order(self, manifest: dict[str, Any]) -> bool:
        """Create one pod; a pod with chips named in an annotation (Ascend) waits for the
        node's previous one and is stamped with the next bind sequence first."""
        annotations = manifest["metadata"].setdefault("annotations", {})
        node = str(manifest["spec"].get("nodeName") or "")
        if not node or not _chips_annotated(manifest):
            return await asyncio.to_thread(self.kube.create, manifest)
        async with self._node_order.setdefault(node, asyncio.Lock()):
            self._last_sequence = max(self._last_sequence + 1, time.time_ns())
            annotations[BIND_SEQUENCE_ANNOTATION] = str(self._last_sequence)
            return await asyncio.to_thread(self.kube.create, manifest)

    async def _roll_back(
        self,
        admit: Admit,
        view: JobView,
        result: CycleResult,
        ours: list[dict[str, Any]],
        service: dict[str, Any] | None,
        exc: BaseException,
        nodes: Mapping[str, NodeFacts],
    ) -> None:
        why = api_message(exc)
        terminal = is_terminal(exc)
        log.warning("job %s: creating its objects failed, rolling back: %s", view.key, why)
        doomed = [*reversed(ours), *([service] if service is not None else [])]
        crash_point("before-rollback-deletes")
        outcomes = await asyncio.gather(
            *(asyncio.to_thread(self.kube.delete, o) for o in doomed), return_exceptions=True
        )
        crash_point("after-rollback-deletes")
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                log.warning("job %s: rollback could not delete an object: %s", view.key, outcome)
        rollback_admission(result, admit)
        self.inventory.admissions.pop(view.key, None)
        latest = await asyncio.to_thread(self.kube.get_job, view.namespace, view.name)
        if latest is None:
            return
        fresh = JobView(view.key, latest, view.job, view.request, [], view.quota)
        transition = lifecycle.apply_failed(
            job_facts(fresh),
            [],
            why,
            terminal=terminal,
            nodes=nodes,
            settings=self.settings,
            now=time.time(),
        )
        await self.carry_out(fresh, transition, {})

    # --- lifecycle transitions ---------------------------------------------------------------
    async def carry_out(
        self,
        view: JobView,
        transition: Transition,
        catalogue: Mapping[str, CatalogueEntry],
        allowed_volume_kinds: frozenset[str] = frozenset(),
    ) -> None:
        """Do what the lifecycle decided for one job: status written (with the resourceVersion
        precondition: if the job changed meanwhile nothing else is done, the next cycle decides
        again), then pods deleted (their metering finalizer bills them before they go), missing
        pods created, the Event posted."""
        if transition.status is not None:
            update = transition.status
            desired = status.job_status(
                view.status,
                phase=update.phase,
                reason=update.reason,
                message=update.message,
                conditions=update.conditions,
                generation=view.generation,
                now=utcnow(),
                release=update.release,
                **_timed_fields(update),
            )
            if not await self.write(view.body, desired):
                return
            crash_point("after-lifecycle-status")
        if transition.retire:
            force = set(transition.force)
            await asyncio.gather(
                *(
                    asyncio.to_thread(
                        self.kube.delete_pod, view.namespace, name, force=name in force
                    )
                    for name in transition.retire
                )
            )
            self.writes += len(transition.retire)
            crash_point("after-retire")
        if transition.create:
            await self._recreate(view, transition.create, catalogue, allowed_volume_kinds)
        if transition.requeue_after is not None:
            self.not_before[view.key] = time.time() + transition.requeue_after
        if transition.event is not None:
            event = transition.event
            await self.event(view.body, event.type, event.reason, event.message)
        if transition.delete_job:
            await asyncio.to_thread(self.kube.delete_job, view.namespace, view.name)
        if self.metrics is not None and transition.eviction is not None and view.quota:
            cls = str((view.status.get("chosenOption") or {}).get("acceleratorClass") or "")
            if cls:
                self.metrics.count_eviction(view.quota, cls, transition.eviction.value)
                if transition.gang_restart:
                    self.metrics.count_gang_restart(view.quota, cls)

    def _unseen(self, view: JobView) -> frozenset[str]:
        """Pods this process created for the job's current attempt that the cache has not
        shown yet (forgotten once seen, or after UNSEEN_SECONDS)."""
        entry = self.created.get(view.key)
        if entry is None:
            return frozenset()
        attempt, names, when = entry
        unseen = names - _pod_names(view)
        if attempt != view.attempt or not unseen or time.time() - when > UNSEEN_SECONDS:
            del self.created[view.key]
            return frozenset()
        return unseen

    async def _recreate(
        self,
        view: JobView,
        replicas: tuple[int, ...],
        catalogue: Mapping[str, CatalogueEntry],
        allowed_volume_kinds: frozenset[str],
    ) -> None:
        """Crash recovery: the admission is recorded, some of its objects are not there."""
        chosen = view.status.get("chosenOption") or {}
        entry = catalogue.get(str(chosen.get("acceleratorClass")))
        if entry is None:
            return
        placement = sorted(view.status.get("placement") or [], key=lambda r: int(r["replica"]))
        slots = [
            ReplicaSlot(int(r["replica"]), str(r["node"]), tuple(r["deviceIndices"]))
            for r in placement
        ]
        spec = self.gang_spec(
            view, int(chosen.get("index", 0)), entry, view.attempt, allowed_volume_kinds
        )
        wanted = [build_pod(spec, slots[r], len(slots)) for r in replicas if r < len(slots)]
        unseen = self._unseen(view)
        wanted = [p for p in wanted if p["metadata"]["name"] not in unseen]
        if not wanted:
            return  # created by this process a moment ago; the watch has not shown them yet
        manifests: list[dict[str, Any]] = [build_service(spec)]
        if spec.vendor == "huawei":
            manifests.append(build_rank_table(spec, slots))
        for manifest in manifests:  # already there after most crashes: 409, nothing done
            await asyncio.to_thread(self.kube.create, manifest)
        await asyncio.gather(*(self.create_in_node_order(p) for p in wanted))
        self.writes += len(wanted)


def _published_ips(node: NodeFacts | None) -> tuple[tuple[int, str], ...]:
    return node.device_ips if node is not None else ()


def _chips_annotated(pod: Mapping[str, Any]) -> bool:
    """Whether the pod names its chips in an annotation of the resource it asks for (Ascend)."""
    annotations = pod["metadata"].get("annotations") or {}
    return any(
        resource in annotations
        for container in pod["spec"].get("containers") or []
        for resource in ((container.get("resources") or {}).get("limits") or {})
    )


def _pod_names(view: JobView) -> set[str]:
    return {str(p["metadata"]["name"]) for p in view.pods}


def _timed_fields(update: lifecycle.StatusUpdate) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if update.started_at is not None:
        fields["started_at"] = status.stamp(update.started_at)
    if update.finished_at is not None:
        fields["finished_at"] = status.stamp(update.finished_at)
    if update.restart_count is not None:
        fields["restart_count"] = update.restart_count
    if update.start_timeouts is not None:
        fields["start_timeouts"] = update.start_timeouts
    if update.release or update.phase in (Phase.QUEUED, Phase.PREEMPTED, Phase.SUSPENDED):
        fields["queue_position"] = None
    return fields
