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
from suanli.constants import KOPF_PREFIX
from suanli.controller.cache import Kind
from suanli.controller.kube import Kube
from suanli.controller.loop import Controller, Settings

log = logging.getLogger("suanli.handlers")

FINALIZER = "suanli.io/finalizer"
SETTINGS = Settings()  # replaced from the command line before Kopf starts


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
    controller = Controller(await asyncio.to_thread(Kube), SETTINGS)
    memo["controller"] = controller
    memo["loop"] = asyncio.create_task(controller.run(), name="suanli-loop")
    log.info("suanli operator configured")


@kopf.on.cleanup()
async def stop_loop(memo: kopf.Memo, **_: Any) -> None:
    task = memo.get("loop")
    if isinstance(task, asyncio.Task):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


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
