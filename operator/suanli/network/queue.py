"""The hub queue: hub jobs not dispatched to any centre yet, with the reason the hub recorded.

Read by the hub's metrics (queue length per quota and reason) and by ``kubectl suanli centres``
(one row per job), so both say the same thing. Pure: it reads TrainingJob bodies as plain
mappings, exactly as the hub's API returns them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

FINISHED = ("Succeeded", "Failed")


@dataclass(frozen=True)
class QueuedJob:
    """A hub job with no centre: ``reason``/``message`` as the hub last wrote them (None: the
    hub has not handled it yet); ``options``: the job's options as ``replicas×devices class``."""

    namespace: str
    name: str
    quota: str | None
    reason: str | None
    message: str | None
    created: str | None
    options: tuple[str, ...]


def _options(spec: Mapping[str, Any]) -> tuple[str, ...]:
    replicas = int(spec.get("replicas", 1))
    return tuple(
        f"{int(o.get('replicas') or replicas)}×{int(o.get('devicesPerReplica') or 1)} "
        f"{o.get('acceleratorClass')}"
        for o in spec.get("accelerators") or []
    )


def hub_queue(jobs: Iterable[Mapping[str, Any]]) -> list[QueuedJob]:
    """Hub jobs that are neither dispatched (``status.centre``), finished nor being deleted,
    oldest first (the order the hub dispatches in)."""
    queued = []
    for job in jobs:
        metadata = job.get("metadata") or {}
        status = job.get("status") or {}
        if status.get("centre") or status.get("phase") in FINISHED:
            continue
        if metadata.get("deletionTimestamp"):
            continue
        queued.append(
            QueuedJob(
                namespace=str(metadata.get("namespace", "")),
                name=str(metadata.get("name", "")),
                quota=status.get("quota"),
                reason=status.get("reason"),
                message=status.get("message"),
                created=metadata.get("creationTimestamp"),
                options=_options(job.get("spec") or {}),
            )
        )
    return sorted(queued, key=lambda q: (q.created or "", q.namespace, q.name))


def queue_lengths(queued: Iterable[QueuedJob]) -> dict[tuple[str, str], int]:
    """(quota, reason) → jobs; an unknown quota or reason is the empty string."""
    counts: dict[tuple[str, str], int] = {}
    for job in queued:
        key = (job.quota or "", job.reason or "")
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
