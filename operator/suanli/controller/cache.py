"""The operator's in-memory view of the cluster, fed by Kopf watch events.

Level-triggered: every event replaces the whole stored object (or removes it), so replaying the
initial LIST after a restart rebuilds exactly the same view. Readers take a snapshot (shallow
copies of the dicts) so a scheduling cycle sees one consistent moment while events keep arriving.

Before the first cycle the operator seeds the cache with one LIST of every kind: a cycle
that ran on a half-listed cache would see admitted gangs on nodes it has not heard of yet and
take them for lost. Watch events that arrive later and carry an older resourceVersion than the
seeded object are ignored.

What no decision reads is not kept: ``metadata.managedFields`` and kubectl's
``last-applied-configuration`` annotation (a second copy of the spec) are dropped on the way in.
They are a large share of every pod and job, and the cache holds every pod of the centre.

Every object is checked completely when it enters the cache (the ``checkers``, pure functions of
one object): the verdict is kept beside it, so a malformed object is known as such before any
cycle looks at it, and is checked once per change rather than once per cycle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Object = Mapping[str, Any]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class Kind(StrEnum):
    ACCELERATOR_CLASS = "acceleratorclasses"
    COMPUTE_QUOTA = "computequotas"
    TRAINING_JOB = "trainingjobs"
    NODE = "nodes"
    POD = "pods"
    PRIORITY_CLASS = "priorityclasses"


def object_key(body: Object) -> str:
    metadata = body.get("metadata", {})
    namespace = metadata.get("namespace")
    name = str(metadata.get("name", ""))
    return f"{namespace}/{name}" if namespace else name


@dataclass(frozen=True)
class Snapshot:
    """One consistent moment of the cache; never mutated after it is taken."""

    revision: int
    objects: Mapping[Kind, Mapping[str, Object]]
    verdicts: Mapping[Kind, Mapping[str, Any]] = field(default_factory=dict)

    def of(self, kind: Kind) -> Mapping[str, Object]:
        return self.objects[kind]

    def verdict(self, kind: Kind, key: str) -> Any:
        """The checker's verdict on the object (None for kinds without a checker)."""
        return self.verdicts.get(kind, {}).get(key)


@dataclass
class Cache:
    objects: dict[Kind, dict[str, Object]] = field(
        default_factory=lambda: {kind: {} for kind in Kind}
    )
    revision: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    checkers: Mapping[Kind, Callable[[Object], Any]] = field(default_factory=dict)
    verdicts: dict[Kind, dict[str, Any]] = field(
        default_factory=lambda: {kind: {} for kind in Kind}
    )

    def apply_event(self, kind: Kind, event_type: str | None, body: Object) -> None:
        key = object_key(body)
        store = self.objects[kind]
        if _older(body, store.get(key)):
            return  # the seeding LIST already gave a newer version than this (late) event
        if event_type == "DELETED":
            self.verdicts[kind].pop(key, None)
            if store.pop(key, None) is None:
                return
        else:
            previous = store.get(key)
            version = body.get("metadata", {}).get("resourceVersion")
            if (
                previous is not None
                and previous.get("metadata", {}).get("resourceVersion") == version
            ):
                return
            body = trimmed(body)
            checker = self.checkers.get(kind)
            if checker is not None and not _same_spec(previous, body):
                self.verdicts[kind][key] = checker(body)
            store[key] = body
        self.revision += 1
        self.changed.set()

    def snapshot(self) -> Snapshot:
        return Snapshot(
            revision=self.revision,
            objects={kind: dict(store) for kind, store in self.objects.items()},
            verdicts={kind: dict(found) for kind, found in self.verdicts.items()},
        )


def trimmed(body: Object) -> Object:
    """``body`` without what no decision reads (a copy; the event's own body is not changed)."""
    metadata = body.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    if "managedFields" not in metadata and LAST_APPLIED not in annotations:
        return body
    kept = {k: v for k, v in metadata.items() if k != "managedFields"}
    if LAST_APPLIED in annotations:
        kept["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return {**body, "metadata": kept}


def _version(body: Object | None) -> int | None:
    version = (body or {}).get("metadata", {}).get("resourceVersion")
    return int(version) if isinstance(version, str) and version.isdigit() else None


def _older(body: Object, stored: Object | None) -> bool:
    """Is ``body`` an older version of the stored object? (The API server's resourceVersions
    are etcd revisions; where one is not a number, nothing is judged older.)"""
    new, old = _version(body), _version(stored)
    return new is not None and old is not None and new < old


def _same_spec(previous: Object | None, body: Object) -> bool:
    """A status-only change (same generation, same labels and names) needs no new check."""
    if previous is None:
        return False
    old, new = previous.get("metadata", {}), body.get("metadata", {})
    return (
        old.get("generation") is not None
        and old.get("generation") == new.get("generation")
        and old.get("labels") == new.get("labels")
        and old.get("annotations") == new.get("annotations")
    )
