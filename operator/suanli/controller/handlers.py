"""Kopf registrations: one startup handler for all settings, and watch events into the cache.

Handlers do no API calls and no decisions: they record what they saw and wake the loop. That
keeps them idempotent and level-triggered — a missed or repeated event changes nothing but timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from suanli.api import GROUP, VERSION
from suanli.constants import JOB_NAME_LABEL, KOPF_PREFIX
from suanli.controller.cache import Kind
from suanli.controller.kube import Kube
from suanli.controller.leader import LeaderElector
from suanli.controller.loop import Controller, Settings
from suanli.metrics import Metrics

log = logging.getLogger("suanli.handlers")

FINALIZER = "suanli.io/finalizer"
SETTINGS = Settings()  # replaced from the command line before Kopf starts
METRICS: Metrics | None = None  # likewise
LEASE: dict[str, Any] = {}  # namespace, identity, seconds; empty: no leader election


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Kopf >= 1.44 asks for bookmarks; a stream silent for this long is dropped and re-opened.
    settings.watching.inactivity_timeout = 120
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    kube = await asyncio.to_thread(Kube, METRICS)
    controller = Controller(kube, SETTINGS, METRICS)
    if METRICS is not None:
        METRICS.attach_state(controller.published)
    memo["controller"] = controller
    memo["loop"] = asyncio.create_task(controller.run(), name="suanli-loop")
    if LEASE:
        elector = LeaderElector(
            kube, LEASE["namespace"], LEASE["identity"], lease_seconds=LEASE["seconds"]
        )
        controller.leading = False
        memo["elector"] = elector

        def on_change(leading: bool) -> None:
            controller.leading = leading
            if METRICS is not None:
                METRICS.set_leader(leading)
            if leading:
                controller.cache.changed.set()

        memo["election"] = asyncio.create_task(elector.run(on_change), name="suanli-election")
    elif METRICS is not None:
        METRICS.set_leader(True)
    log.info("suanli operator configured")


@kopf.on.cleanup()
async def stop_loop(memo: kopf.Memo, **_: Any) -> None:
    for name in ("election", "loop"):
        task = memo.get(name)
        if isinstance(task, asyncio.Task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    elector = memo.get("elector")
    if isinstance(elector, LeaderElector):
        await asyncio.to_thread(elector.release)


@kopf.on.probe(id="cycles")
def cycles(memo: kopf.Memo, **_: Any) -> int:
    controller = memo.get("controller")
    return controller.cycles if isinstance(controller, Controller) else -1


def _feed(kind: Kind, event: kopf.RawEvent, memo: kopf.Memo) -> None:
    controller = memo.get("controller")
    if isinstance(controller, Controller):
        controller.cache.apply_event(kind, event.get("type"), event["object"])


@kopf.on.event(GROUP, VERSION, "acceleratorclasses")
async def accelerator_class_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    _feed(Kind.ACCELERATOR_CLASS, event, memo)


@kopf.on.event(GROUP, VERSION, "computequotas")
async def compute_quota_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    _feed(Kind.COMPUTE_QUOTA, event, memo)


@kopf.on.event(GROUP, VERSION, "trainingjobs")
async def training_job_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    _feed(Kind.TRAINING_JOB, event, memo)


@kopf.on.event("", "v1", "nodes")
async def node_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    _feed(Kind.NODE, event, memo)


@kopf.on.event("", "v1", "pods")
async def pod_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    _feed(Kind.POD, event, memo)


@kopf.on.delete(GROUP, VERSION, "trainingjobs")
async def training_job_deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Before a job (and with it its pods) goes away, add its pods' accelerator time to its
    quota's metering, so consumed device-seconds are never lost with the job."""
    controller = memo.get("controller")
    if not isinstance(controller, Controller) or not controller.leading:
        raise kopf.TemporaryError("not the leader: metering is folded by the leader", delay=5)
    namespace = body.metadata.namespace or ""
    pods = [
        pod
        for pod in controller.cache.snapshot().of(Kind.POD).values()
        if pod["metadata"].get("namespace") == namespace
        and (pod["metadata"].get("labels") or {}).get(JOB_NAME_LABEL) == body.metadata.name
    ]
    try:
        await controller.fold(namespace, pods)
    except Exception as exc:  # keep the finalizer and retry soon; never lose the usage
        raise kopf.TemporaryError(f"metering not folded yet: {exc}", delay=1) from exc
