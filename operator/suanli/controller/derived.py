"""What is derived from a cycle rather than decided: quota and class status, and metric rows.

Both are computed from the same snapshot and cycle result the decisions came from, so a
``kubectl get cq`` and a Prometheus scrape agree with what the scheduler just did. Statuses are
written only when they change, always with the resourceVersion read in the snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from suanli.api.computequota import ClassUsage
from suanli.constants import ACCELERATOR_CLASS_ANNOTATION
from suanli.controller import status
from suanli.controller.apply import utcnow
from suanli.controller.cache import Kind, Snapshot
from suanli.controller.faults import crash_point
from suanli.controller.inventory import CatalogueEntry, Inventory, is_suanli_pod
from suanli.controller.kube import Kube, NotLeading
from suanli.controller.observed import (
    PHASE_FOR_METRICS,
    Rows,
    capacity_rows,
    pod_allocation,
    pod_devices,
    quota_rows,
)
from suanli.controller.world import World
from suanli.metrics.source import JobPhaseCount, MeteringRow, QueueRow, RunningAllocation
from suanli.scheduling.cycle import CycleResult
from suanli.scheduling.model import QuotaSpec
from suanli.scheduling.quota import class_of, device_resource

log = logging.getLogger("suanli.status")


async def guarded_write(write: Awaitable[bool], what: str) -> bool:
    """One status write; a failure is logged and skipped, never raised: one object's write
    (a timeout, a refusal) must not stop the other statuses nor the rest of the cycle. Its
    status is still stale, so the next cycle writes it again."""
    try:
        return await write
    except NotLeading:
        return False  # this replica lost the lease; the leader writes it
    except Exception as exc:
        log.warning("status of %s not written (the next cycle tries again): %s", what, exc)
        return False


async def write_statuses(
    kube: Kube, snapshot: Snapshot, world: World, result: CycleResult, inventory: Inventory
) -> int:
    """Every derived status of this cycle: quotas, classes, and the unusable ones."""
    now = utcnow()
    return (
        await write_quota_statuses(
            kube, snapshot, world.quotas, result, inventory, world.conflicts, world.live_uids, now
        )
        + await write_class_statuses(kube, snapshot, inventory, now)
        + await write_invalid_statuses(kube, snapshot, world.invalid_objects, now)
    )


async def write_quota_statuses(
    kube: Kube,
    snapshot: Snapshot,
    quotas: Iterable[QuotaSpec],
    result: CycleResult,
    inventory: Inventory,
    conflicts: Mapping[str, str],
    live_uids: Collection[str],
    now: datetime,
) -> int:
    pending: dict[str, int] = {}
    for wait in result.waiting:
        if wait.quota:
            pending[wait.quota] = pending.get(wait.quota, 0) + 1
    writes: list[Awaitable[bool]] = []
    for spec in quotas:
        body = snapshot.of(Kind.COMPUTE_QUOTA).get(spec.name)
        if body is None:
            continue
        current = body.get("status") or {}
        book = result.quota_status(spec.name)
        classes = sorted(
            {
                c
                for r in (*book.used, *book.borrowed, *book.lent, *book.pending)
                if (c := class_of(r)) is not None
            }
            | set(spec.devices)
        )
        usage = [
            ClassUsage(
                accelerator_class=cls,
                used=status.devices(book.used.get(device_resource(cls), 0)),
                borrowed=status.devices(book.borrowed.get(device_resource(cls), 0)),
                lent=status.devices(book.lent.get(device_resource(cls), 0)),
                pending=status.devices(book.pending.get(device_resource(cls), 0)),
            )
            for cls in classes
        ]
        recorded = current.get("foldedPods") or []
        still_there = [uid for uid in recorded if uid in live_uids]
        desired = status.quota_status(
            current,
            usage=usage,
            used_pflops=float(result.book.compute_used_tflops(spec.name)) / 1000,
            admitted_jobs=sum(
                1 for key in inventory.admissions if key.split("/", 1)[0] in spec.namespaces
            ),
            pending_jobs=pending.get(spec.name, 0),
            # billed pods that are gone need no exclusion any more: their time is in metering
            folded_pods=still_there if len(still_there) != len(recorded) else None,
            conflict=conflicts.get(spec.name),
            served=spec.namespaces,
            generation=body["metadata"].get("generation"),
            now=now,
        )
        if status.differs(current, desired):
            crash_point("between-quota-statuses")
            writes.append(
                guarded_write(
                    kube.apatch_status(
                        "computequotas",
                        spec.name,
                        None,
                        str(body["metadata"]["resourceVersion"]),
                        desired,
                    ),
                    f"ComputeQuota {spec.name}",
                )
            )
    written = sum(await asyncio.gather(*writes))  # quotas are independent: at once
    crash_point("after-quota-statuses")
    return written


async def write_invalid_statuses(
    kube: Kube,
    snapshot: Snapshot,
    invalid: Mapping[Kind, Mapping[str, str]],
    now: datetime,
) -> int:
    """Quotas and classes the operator cannot use get Valid=False naming the field."""
    writes = 0
    for kind, problems in invalid.items():
        for name, message in sorted(problems.items()):
            body = snapshot.of(kind).get(name)
            if body is None:
                continue
            current = body.get("status") or {}
            desired = status.invalid_status(
                current, message=message, generation=body["metadata"].get("generation"), now=now
            )
            if status.differs(current, desired):
                version = str(body["metadata"]["resourceVersion"])
                writes += int(
                    await guarded_write(
                        kube.apatch_status(kind.value, name, None, version, desired),
                        f"{kind.value} {name}",
                    )
                )
    return writes


async def write_class_statuses(
    kube: Kube, snapshot: Snapshot, inventory: Inventory, now: datetime
) -> int:
    writes: list[Awaitable[bool]] = []
    summary = inventory.state.capacity_summary()
    for name, body in snapshot.of(Kind.ACCELERATOR_CLASS).items():
        capacity = summary.get(name)
        entry = inventory.catalogue.get(name)
        if capacity is None or entry is None:
            continue
        desired = status.class_status(
            body.get("status") or {},
            nodes=capacity.nodes,
            total_devices=capacity.total_devices,
            allocated_milli=capacity.allocated_milli,
            tflops=entry.device_class.tflops,
            generation=body["metadata"].get("generation"),
            now=now,
        )
        if status.differs(body.get("status") or {}, desired):
            writes.append(
                guarded_write(
                    kube.apatch_status(
                        "acceleratorclasses",
                        name,
                        None,
                        str(body["metadata"]["resourceVersion"]),
                        desired,
                    ),
                    f"AcceleratorClass {name}",
                )
            )
    return sum(await asyncio.gather(*writes))


def metric_rows(
    snapshot: Snapshot,
    quotas: list[QuotaSpec],
    result: CycleResult,
    phases_of_invalid: Mapping[str, str],
    catalogue: Mapping[str, CatalogueEntry],
    quota_of_namespace: Mapping[str, str],
    folded: Collection[str],
    inventory: Inventory,
) -> Rows:
    """The rows ``suanli.metrics`` exports, from this cycle's snapshot and result."""
    phases: dict[tuple[str, str], int] = {}
    for key, body in snapshot.of(Kind.TRAINING_JOB).items():
        quota = quota_of_namespace.get(key.split("/", 1)[0])
        if quota is None:
            continue
        phase = phases_of_invalid.get(key) or (body.get("status") or {}).get("phase")
        label = PHASE_FOR_METRICS.get(phase, "Pending")
        phases[(quota, label)] = phases.get((quota, label), 0) + 1
    queues: dict[tuple[str, str], list[float]] = {}
    for wait in result.waiting:
        if wait.quota is not None:
            cls = wait.job.options[0].device_class
            queues.setdefault((wait.quota, cls), []).append(wait.job.created)
    # every pod not billed yet counts, its job deleted or not: a counter never goes down
    running: dict[tuple[str, str], list[RunningAllocation]] = {}
    for pod in snapshot.of(Kind.POD).values():
        metadata = pod["metadata"]
        quota = quota_of_namespace.get(str(metadata.get("namespace")))
        if quota is None or not is_suanli_pod(pod) or str(metadata.get("uid", "")) in folded:
            continue
        annotations = metadata.get("annotations") or {}
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
        quota_body: Mapping[str, Any] = snapshot.of(Kind.COMPUTE_QUOTA).get(spec.name) or {}
        for row in (quota_body.get("status") or {}).get("metering") or []:
            accumulated[(spec.name, row["acceleratorClass"])] = (
                float(row.get("deviceSeconds", 0)),
                float(row.get("pflopSeconds", 0)),
            )
    metering = tuple(
        MeteringRow(*key, *accumulated.get(key, (0.0, 0.0)), tuple(running.get(key, ())))
        for key in sorted(set(accumulated) | set(running))
    )
    statuses = {q.name: result.quota_status(q.name) for q in quotas}
    return Rows(
        quotas=quota_rows(quotas, statuses, catalogue),
        phases=tuple(JobPhaseCount(q, p, n) for (q, p), n in sorted(phases.items())),
        queues=tuple(
            QueueRow(q, c, len(times), min(times)) for (q, c), times in sorted(queues.items())
        ),
        capacity=capacity_rows(
            inventory.state.capacity_summary(), catalogue, inventory.nodes.values()
        ),
        metering=metering,
    )
