"""Bill every pod's accelerator time exactly once, whoever deletes the pod.

Why a finalizer: a pod that leaves the API server takes its start and finish times with it.
Every pod suanli creates carries ``suanli.io/metering``, so a deleted pod — by suanli, by a
tenant, by the garbage collector after its job was deleted, by a namespace deletion — stays
until its time is added to its quota's ``status.metering``; only then is the finalizer removed.
Billing and the record that the pod was billed (``status.foldedPods``) are one write with a
resourceVersion precondition, so a crash between billing and releasing the pod can never bill
it twice: after a restart the uid is in ``foldedPods`` and the pod is only released.

What a pod is billed: devices × (end − start), start being ``status.startTime``, end the last
container's ``finishedAt`` when it terminated, else the moment deletion was asked for
(``deletionTimestamp``, which the API server moves forward to the actual removal when the grace
period is cut short). A pod is billed once it is done: terminated, or past its deletion time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from suanli.constants import ACCELERATOR_CLASS_ANNOTATION
from suanli.controller.cache import Object
from suanli.controller.conditions import epoch_seconds
from suanli.controller.faults import crash_point
from suanli.controller.inventory import CatalogueEntry
from suanli.controller.kube import Kube
from suanli.controller.observed import pod_allocation, pod_devices
from suanli.metrics.metering import folded_usage
from suanli.workload.pods import METERING_FINALIZER

log = logging.getLogger("suanli.metering")

Usage = dict[str, tuple[float, float]]  # class -> (device-seconds, PFLOP-seconds)


def uid_of(pod: Object) -> str:
    return str(pod["metadata"].get("uid", ""))


def holds_finalizer(pod: Object) -> bool:
    return METERING_FINALIZER in (pod["metadata"].get("finalizers") or [])


def billable(pod: Object, now: float) -> bool:
    """Is a deleted pod done, so that its time is final?"""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed") or not status.get("startTime"):
        return True
    containers = status.get("containerStatuses") or []
    if containers and all((c.get("state") or {}).get("terminated") for c in containers):
        return True
    deadline = epoch_seconds(pod["metadata"].get("deletionTimestamp"))
    return deadline is not None and now >= deadline


def pod_usage(
    pod: Object, catalogue: Mapping[str, CatalogueEntry], now: float
) -> tuple[str, float, float] | None:
    """(class, device-seconds, PFLOP-seconds) the pod has used by ``now`` (None: nothing) —
    exactly what the exported counter counted for it, so billing never moves the total."""
    annotations = pod["metadata"].get("annotations") or {}
    entry = catalogue.get(str(annotations.get(ACCELERATOR_CLASS_ANNOTATION)))
    if entry is None:
        return None
    count = pod_devices(pod, entry.resource_name)
    allocation = pod_allocation(pod, count, entry.device_class.tflops)
    if allocation is None:
        return None
    end = now if allocation.finished_at is None else min(now, allocation.finished_at)
    device_seconds, pflop_seconds = folded_usage(replace(allocation, finished_at=end))
    return entry.device_class.name, device_seconds, pflop_seconds


def total_usage(
    pods: Iterable[Object], catalogue: Mapping[str, CatalogueEntry], now: float
) -> tuple[Usage, list[str]]:
    usage: Usage = {}
    uids = []
    for pod in pods:
        used = pod_usage(pod, catalogue, now)
        if used is None:
            continue
        name, device_seconds, pflop_seconds = used
        old = usage.get(name, (0.0, 0.0))
        usage[name] = (old[0] + device_seconds, old[1] + pflop_seconds)
        uids.append(uid_of(pod))
    return usage, uids


@dataclass
class Meter:
    """The one writer of ``status.metering`` and ``status.foldedPods``."""

    kube: Kube
    folded: set[str] = field(default_factory=set)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def level_with(self, recorded: Iterable[str], live: set[str]) -> None:
        """Billed pods are recorded in the quotas' status; that record, not this process's
        memory, is what survives a restart between billing and releasing a pod."""
        self.folded = (self.folded | set(recorded)) & live

    def unbilled(self, pod: Object) -> bool:
        return uid_of(pod) not in self.folded

    async def bill(
        self,
        quota: str | None,
        pods: list[Object],
        catalogue: Mapping[str, CatalogueEntry],
        now: float,
    ) -> None:
        """Add the pods' time to ``quota``'s metering, once (one quota's bills one at a time:
        concurrent ones would only fight over the resourceVersion)."""
        pods = [p for p in pods if self.unbilled(p)]
        if quota is None or not pods:
            return
        async with self.locks.setdefault(quota, asyncio.Lock()):
            usage, uids = total_usage(pods, catalogue, now)
            if usage:
                await asyncio.to_thread(self.kube.add_metering, quota, usage, uids)
                crash_point("after-bill")
            self.folded.update(uids)

    async def _release_one(self, pod: Object) -> None:
        await asyncio.to_thread(self.kube.remove_finalizer, pod)
        crash_point("between-finalizer-releases")

    async def release(
        self,
        deleted: Iterable[Object],
        quota_of_namespace: Mapping[str, str],
        catalogue: Mapping[str, CatalogueEntry],
        now: float,
    ) -> int:
        """Bill the deleted pods that are done, then let them go; returns the pods released."""
        by_quota: dict[str | None, list[Object]] = {}
        for pod in deleted:
            if holds_finalizer(pod) and billable(pod, now):
                namespace = pod["metadata"].get("namespace", "")
                by_quota.setdefault(quota_of_namespace.get(namespace), []).append(pod)
        released = 0
        for quota, pods in by_quota.items():
            try:
                await self.bill(quota, pods, catalogue, now)
            except Exception as exc:  # keep the finalizers: the next cycle bills them
                log.warning("metering of %d pods for quota %s failed: %s", len(pods), quota, exc)
                continue
            results = await asyncio.gather(
                *(self._release_one(pod) for pod in pods), return_exceptions=True
            )
            released += sum(1 for r in results if not isinstance(r, BaseException))
        return released
