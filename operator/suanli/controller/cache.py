"""The operator's in-memory view of the cluster, fed by Kopf watch events.

Level-triggered: every event replaces the whole stored object (or removes it), so replaying the
initial LIST after a restart rebuilds exactly the same view. Readers take a snapshot (shallow
copies of the dicts) so a scheduling cycle sees one consistent moment while events keep arriving.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Object = Mapping[str, Any]


class Kind(StrEnum):
    ACCELERATOR_CLASS = "acceleratorclasses"
    COMPUTE_QUOTA = "computequotas"
    TRAINING_JOB = "trainingjobs"
    NODE = "nodes"
    POD = "pods"


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

    def of(self, kind: Kind) -> Mapping[str, Object]:
        return self.objects[kind]


@dataclass
class Cache:
    objects: dict[Kind, dict[str, Object]] = field(
        default_factory=lambda: {kind: {} for kind in Kind}
    )
    revision: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def apply_event(self, kind: Kind, event_type: str | None, body: Object) -> None:
        key = object_key(body)
        store = self.objects[kind]
        if event_type == "DELETED":
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
            store[key] = body
        self.revision += 1
        self.changed.set()

    def snapshot(self) -> Snapshot:
        return Snapshot(
            revision=self.revision,
            objects={kind: dict(store) for kind, store in self.objects.items()},
        )
