"""Rows for ``queue``, ``quota`` and ``top`` (computed from a :class:`~suanli.cli.plan.Plan`)
and ``centres`` (read from a hub's ComputeCentres and hub jobs).

Kept apart from rendering so that the numbers can be tested on a synthetic snapshot and the same
rows serve the table, ``-o wide``, ``-o json`` and ``-o yaml``. Each view is a list of columns
(some only shown with ``-o wide``) and a list of rows keyed by column.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from suanli.cli.explain import duration, free_groups
from suanli.cli.plan import ADMITTED_PHASES, Plan, option_problems
from suanli.controller.conditions import epoch_seconds
from suanli.network.queue import hub_queue
from suanli.scheduling.cycle import Admit, Wait
from suanli.scheduling.model import WHOLE_DEVICE_MILLI, JobRequest
from suanli.scheduling.quota import class_of, device_resource

TFLOPS_PER_PFLOPS = 1000


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    wide_only: bool = False
    numeric: bool = False


@dataclass(frozen=True)
class View:
    kind: str
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]


def _devices(milli: int) -> float:
    return milli / WHOLE_DEVICE_MILLI


def pflops(devices: float, tflops: float) -> float:
    return round(devices * tflops / TFLOPS_PER_PFLOPS, 3)


def age(created: float, now: float) -> str:
    return duration(now - created) if created else "<unknown>"


def describe_option(replicas: int, devices: int, device_class: str) -> str:
    return f"{replicas}×{devices} {device_class}"


def _tried_option(plan: Plan, request: JobRequest, decision: Admit | Wait | None) -> str:
    if isinstance(decision, Admit):
        option = request.options[decision.option_index]
        return describe_option(
            len(decision.placement.replicas), option.devices_per_replica, option.device_class
        )
    entry = plan.jobs.get(request.key)
    legal = set(range(len(request.options)))
    if entry is not None and entry.job is not None:
        legal -= {p.index for p in option_problems(entry.job, plan.classes)}
    for index, option in enumerate(request.options):
        if index in legal:
            return describe_option(option.replicas, option.devices_per_replica, option.device_class)
    option = request.options[0]
    return describe_option(option.replicas, option.devices_per_replica, option.device_class)


QUEUE_COLUMNS = (
    Column("quota", "QUOTA"),
    Column("position", "POSITION", numeric=True),
    Column("namespace", "NAMESPACE"),
    Column("name", "NAME"),
    Column("priority", "PRIORITY", numeric=True),
    Column("option", "OPTION"),
    Column("reason", "REASON"),
    Column("age", "AGE"),
    Column("recordedReason", "RECORDED-REASON", wide_only=True),
    Column("message", "MESSAGE", wide_only=True),
)


def queue_view(plan: Plan, namespace: str | None, now: float | None = None) -> View:
    """Jobs waiting for admission, per quota in queue order, with the reason computed now."""
    now = time.time() if now is None else now
    rows = []
    for key, entry in plan.jobs.items():
        if namespace is not None and not key.startswith(f"{namespace}/"):
            continue
        status = entry.status
        if entry.phase in (*ADMITTED_PHASES, "Succeeded", "Failed"):
            continue
        if entry.job is not None and entry.job.spec.suspend:
            continue
        metadata = entry.body.get("metadata", {})
        created = epoch_seconds(metadata.get("creationTimestamp")) or 0.0
        row: dict[str, Any] = {
            "namespace": metadata.get("namespace"),
            "name": metadata.get("name"),
            "age": age(created, now),
            "recordedReason": status.get("reason"),
            "priority": entry.request.priority if entry.request else None,
        }
        if entry.request is None or entry.problem is not None:
            quota = plan.quota_of(str(metadata.get("namespace")))
            row |= {
                "quota": quota.name if quota else None,
                "position": None,
                "option": "-",
                "reason": status.get("reason") or "InvalidSpec",
                "message": entry.problem,
            }
        else:
            decision = plan.decision(key)
            row |= {
                "option": _tried_option(plan, entry.request, decision),
                "quota": decision.quota if decision is not None else None,
            }
            if isinstance(decision, Wait):
                row |= {
                    "position": decision.position or None,
                    "reason": decision.reason.value,
                    "message": decision.message,
                }
            else:
                row |= {
                    "position": plan.result.positions.get(key),
                    "reason": "Admissible",
                    "message": "fits now: the next cycle admits it",
                }
        rows.append(row)
    rows.sort(key=lambda r: (str(r["quota"] or "~"), r["position"] or 1 << 30, r["name"]))
    return View("Queue", QUEUE_COLUMNS, rows)


QUOTA_COLUMNS = (
    Column("quota", "QUOTA"),
    Column("cohort", "COHORT", wide_only=True),
    Column("class", "CLASS"),
    Column("nominal", "NOMINAL", numeric=True),
    Column("used", "USED", numeric=True),
    Column("borrowed", "BORROWED", numeric=True),
    Column("lent", "LENT", numeric=True),
    Column("pending", "PENDING", numeric=True),
    Column("nominalPFLOPS", "NOMINAL-PFLOPS", numeric=True),
    Column("usedPFLOPS", "USED-PFLOPS", numeric=True),
    Column("borrowedPFLOPS", "BORROWED-PFLOPS", wide_only=True, numeric=True),
    Column("lentPFLOPS", "LENT-PFLOPS", wide_only=True, numeric=True),
    Column("pendingPFLOPS", "PENDING-PFLOPS", wide_only=True, numeric=True),
)


def pending_demand(plan: Plan) -> dict[str, list[Mapping[str, int]]]:
    """Per quota, the demand of each pending job's first known option (as the operator counts)."""
    demands: dict[str, list[Mapping[str, int]]] = {}
    for request in plan.pending:
        spec = plan.quota_of(request.namespace)
        if spec is None:
            continue
        for option in request.options:
            if option.device_class in plan.catalogue:
                demands.setdefault(spec.name, []).append(plan.book_now.demand(option))
                break
    return demands


def quota_view(plan: Plan, namespace: str | None) -> View:
    """Per tenant and class: nominal, used, borrowed, lent, pending, in devices and PFLOPS."""
    book = plan.book_now
    demands = pending_demand(plan)
    rows = []
    for spec in plan.quotas:
        if namespace is not None and namespace not in spec.namespaces:
            continue
        status = book.status(spec.name, demands.get(spec.name, ()))
        classes = sorted(
            set(spec.devices)
            | {c for c in (class_of(r) for r in status.used) if c}
            | {c for c in (class_of(r) for r in status.pending) if c}
        )
        for cls in classes:
            resource = device_resource(cls)
            tflops = plan.classes[cls].tflops if cls in plan.classes else 0.0
            share = spec.devices.get(cls)
            values = {
                "nominal": float(share.nominal) if share else 0.0,
                "used": _devices(status.used.get(resource, 0)),
                "borrowed": _devices(status.borrowed.get(resource, 0)),
                "lent": _devices(status.lent.get(resource, 0)),
                "pending": _devices(status.pending.get(resource, 0)),
            }
            row: dict[str, Any] = {"quota": spec.name, "cohort": spec.cohort, "class": cls}
            row |= values
            row |= {f"{k}PFLOPS": pflops(v, tflops) for k, v in values.items()}
            rows.append(row)
    return View("Quota", QUOTA_COLUMNS, rows)


CLASS_COLUMNS = (
    Column("class", "CLASS"),
    Column("vendor", "VENDOR", wide_only=True),
    Column("nodes", "NODES", numeric=True),
    Column("total", "DEVICES", numeric=True),
    Column("allocated", "ALLOCATED", numeric=True),
    Column("free", "FREE", numeric=True),
    Column("fragmented", "FRAGMENTED", numeric=True),
    Column("allocatedPercent", "ALLOC%", numeric=True),
    Column("totalPFLOPS", "PFLOPS", numeric=True),
    Column("allocatedPFLOPS", "ALLOC-PFLOPS", numeric=True),
    Column("freePFLOPS", "FREE-PFLOPS", wide_only=True, numeric=True),
    Column("fragmentedPFLOPS", "FRAG-PFLOPS", wide_only=True, numeric=True),
)


def top_classes(plan: Plan) -> View:
    """Capacity, allocation and fragmentation per class with nodes, before the recomputed
    cycle."""
    rows = []
    for name, capacity in sorted(plan.capacity.items()):
        if not capacity.nodes:
            continue
        tflops = plan.classes[name].tflops
        values = {
            "total": float(capacity.total_devices),
            "allocated": _devices(capacity.allocated_milli),
            "free": _devices(capacity.free_milli),
            "fragmented": _devices(capacity.fragmented_milli),
        }
        row: dict[str, Any] = {
            "class": name,
            "vendor": plan.catalogue[name].vendor,
            "nodes": capacity.nodes,
            "allocatedPercent": round(100 * values["allocated"] / values["total"], 1)
            if values["total"]
            else 0.0,
        }
        row |= values
        row |= {f"{k}PFLOPS": pflops(v, tflops) for k, v in values.items()}
        rows.append(row)
    return View("ClassUsage", CLASS_COLUMNS, rows)


NODE_COLUMNS = (
    Column("node", "NODE"),
    Column("class", "CLASS"),
    Column("status", "STATUS"),
    Column("devices", "DEVICES", numeric=True),
    Column("allocated", "ALLOCATED", numeric=True),
    Column("free", "FREE", numeric=True),
    Column("freeGroups", "FREE-PER-GROUP"),
    Column("cpuFree", "CPU-FREE", numeric=True),
    Column("memoryFreeGiB", "MEM-FREE-GIB", numeric=True),
    Column("allocatedPFLOPS", "ALLOC-PFLOPS", wide_only=True, numeric=True),
    Column("rack", "RACK", wide_only=True),
    Column("podsFree", "PODS-FREE", wide_only=True, numeric=True),
)


def top_nodes(plan: Plan) -> View:
    rows = []
    for name, record in sorted(plan.inventory.nodes.items()):
        cpu, memory_mib, pods, device_milli = plan.node_free[name]
        cls = plan.classes.get(record.device_class or "")
        free = sum(1 for milli in device_milli if milli >= WHOLE_DEVICE_MILLI)
        allocated = _devices(sum(WHOLE_DEVICE_MILLI - milli for milli in device_milli))
        groups = free_groups(cls, device_milli) if cls is not None else []
        rows.append(
            {
                "node": name,
                "class": record.device_class or "<none>",
                "status": "Ready" if record.schedulable else "NotSchedulable",
                "devices": record.devices,
                "allocated": allocated,
                "free": free,
                "freeGroups": "/".join(str(g) for g in groups) or "-",
                "cpuFree": round(cpu / 1000, 1),
                "memoryFreeGiB": round(memory_mib / 1024, 1),
                "allocatedPFLOPS": pflops(allocated, cls.tflops) if cls else 0.0,
                "rack": record.rack or "-",
                "podsFree": pods,
            }
        )
    return View("NodeUsage", NODE_COLUMNS, rows)


TENANT_COLUMNS = (
    Column("quota", "QUOTA"),
    Column("cohort", "COHORT", wide_only=True),
    Column("devices", "DEVICES-USED"),
    Column("usedPFLOPS", "USED-PFLOPS", numeric=True),
    Column("nominalPFLOPS", "NOMINAL-PFLOPS", numeric=True),
    Column("sharePercent", "CENTRE%", numeric=True),
    Column("dominantShare", "DRF-SHARE", wide_only=True, numeric=True),
    Column("running", "RUNNING", numeric=True),
    Column("pending", "PENDING", numeric=True),
)


def top_tenants(plan: Plan) -> View:
    """Per quota: what it holds now, its share of the centre's PFLOPS, jobs running and waiting."""
    book = plan.book_now
    centre = sum(
        c.total_devices * plan.classes[n].tflops / TFLOPS_PER_PFLOPS
        for n, c in plan.capacity.items()
    )
    running: dict[str, int] = {}
    for admission in plan.admitted:
        spec = plan.quota_of(admission.job.namespace)
        if spec is not None:
            running[spec.name] = running.get(spec.name, 0) + 1
    waiting: dict[str, int] = {}
    for request in plan.pending:
        spec = plan.quota_of(request.namespace)
        if spec is not None:
            waiting[spec.name] = waiting.get(spec.name, 0) + 1
    rows = []
    for spec in plan.quotas:
        usage = book.usage(spec.name)
        parts, used = [], 0.0
        for resource, milli in sorted(usage.items()):
            cls = class_of(resource)
            if cls is None or cls not in plan.classes:
                continue
            parts.append(f"{_devices(milli):g} {cls}")
            used += pflops(_devices(milli), plan.classes[cls].tflops)
        nominal = sum(
            pflops(float(share.nominal), plan.classes[cls].tflops)
            for cls, share in spec.devices.items()
            if cls in plan.classes
        )
        rows.append(
            {
                "quota": spec.name,
                "cohort": spec.cohort,
                "devices": ", ".join(parts) or "0",
                "usedPFLOPS": round(used, 3),
                "nominalPFLOPS": round(nominal, 3),
                "sharePercent": round(100 * used / centre, 1) if centre else 0.0,
                "dominantShare": round(float(book.dominant_share(spec.name)), 3),
                "running": running.get(spec.name, 0),
                "pending": waiting.get(spec.name, 0),
            }
        )
    return View("TenantUsage", TENANT_COLUMNS, rows)


CENTRE_COLUMNS = (
    Column("centre", "CENTRE"),
    Column("region", "REGION"),
    Column("state", "STATE"),
    Column("lastContact", "LAST-CONTACT"),
    Column("class", "CLASS"),
    Column("devices", "DEVICES", numeric=True),
    Column("free", "FREE", numeric=True),
    Column("pflops", "PFLOPS", numeric=True),
    Column("freePFLOPS", "FREE-PFLOPS", numeric=True),
    Column("price", "PRICE", numeric=True),
    Column("jobs", "JOBS", numeric=True),
    Column("outOfService", "OUT-OF-SERVICE", wide_only=True),
    Column("labels", "LABELS", wide_only=True),
    Column("message", "MESSAGE", wide_only=True),
)


def centres_view(centres: list[dict[str, Any]], now: float | None = None) -> View:
    """One row per member centre and accelerator class, as the hub last polled it (a centre
    the hub has not reached yet has one row with no class). ``lastContact`` is how long ago."""
    now = time.time() if now is None else now
    rows = []
    for centre in sorted(centres, key=lambda c: str(c["metadata"]["name"])):
        spec, status = centre.get("spec") or {}, centre.get("status") or {}
        contact = epoch_seconds(status.get("lastContact"))
        labels = spec.get("labels") or {}
        common: dict[str, Any] = {
            "centre": centre["metadata"]["name"],
            "region": spec.get("region"),
            "state": status.get("state") or "Unknown",
            "lastContact": f"{duration(max(now - contact, 0))} ago" if contact else "never",
            "price": spec.get("pricePerPFLOPHour"),
            "jobs": status.get("jobs") or 0,
            "outOfService": bool(spec.get("outOfService")),
            "labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            "message": status.get("message"),
        }
        classes = status.get("classes") or []
        if not classes:
            rows.append(
                common | {"class": None, "devices": 0, "free": 0, "pflops": 0.0, "freePFLOPS": 0.0}
            )
        for entry in classes:
            rows.append(
                common
                | {
                    "class": entry.get("acceleratorClass"),
                    "devices": int(entry.get("devices") or 0),
                    "free": int(entry.get("freeDevices") or 0),
                    "pflops": round(float(entry.get("capacityPFLOPS") or 0), 3),
                    "freePFLOPS": round(float(entry.get("freePFLOPS") or 0), 3),
                }
            )
    return View("CentreCapacity", CENTRE_COLUMNS, rows)


HUB_QUEUE_COLUMNS = (
    Column("namespace", "NAMESPACE"),
    Column("name", "NAME"),
    Column("quota", "HUB-QUOTA"),
    Column("options", "OPTIONS"),
    Column("reason", "REASON"),
    Column("age", "AGE"),
    Column("message", "MESSAGE", wide_only=True),
)


def hub_queue_view(jobs: list[dict[str, Any]], now: float | None = None) -> View:
    """Hub jobs not dispatched to a centre yet, oldest first, with the hub's recorded reason
    (``Pending``: the hub has not handled the job yet)."""
    now = time.time() if now is None else now
    rows = [
        {
            "namespace": q.namespace,
            "name": q.name,
            "quota": q.quota,
            "options": ", ".join(q.options) or "-",
            "reason": q.reason or "Pending",
            "age": age(epoch_seconds(q.created) or 0.0, now),
            "message": q.message,
        }
        for q in hub_queue(jobs)
    ]
    return View("HubQueueEntry", HUB_QUEUE_COLUMNS, rows)
