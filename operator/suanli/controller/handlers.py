"""Kopf registrations: one startup handler for all settings, and watch events into the cache.

Handlers do no API calls and no decisions: they record what they saw and wake the loop (the
startup handler alone lists every kind once, to seed the cache before the first cycle). That
keeps them idempotent and level-triggered — a missed or repeated event changes nothing but timing.
Settings, metrics and the Lease arrive in Kopf's ``memo`` (filled by ``__main__``), never in
module globals. There is no Kopf change handler and so no Kopf finalizer or annotation on any
object: a TrainingJob is deleted at once, and its pods' metering finalizer (see
:mod:`.metering`) keeps their time from being lost with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from suanli.api import GROUP, VERSION
from suanli.controller.cache import Kind
from suanli.controller.kube import API_THREADS, Kube
from suanli.controller.leader import LeaderElector
from suanli.controller.loop import Controller, Settings
from suanli.metrics import Metrics

log = logging.getLogger("suanli.handlers")


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Kopf >= 1.44 asks for bookmarks; a stream silent for this long is dropped and re-opened.
    settings.watching.inactivity_timeout = 120
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # Kopf's other requests (the LIST before a watch, after a 410) give up as well: its default
    # is 5 minutes, longer than a LIST of every pod takes on a busy apiserver by far
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    settings.posting.level = logging.WARNING
    # every blocking API call runs in a thread: enough of them for a burst of admissions
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="suanli-api")
    )
    metrics = memo.get("metrics")
    metrics = metrics if isinstance(metrics, Metrics) else None
    identity = str(memo.get("identity") or "suanli")
    kube = await asyncio.to_thread(Kube, metrics, identity)
    configured = memo.get("settings")
    controller = Controller(
        kube, configured if isinstance(configured, Settings) else Settings(), metrics
    )
    if metrics is not None:
        metrics.attach_state(controller.published)
    memo["controller"] = controller
    # one consistent LIST of every kind before the first cycle (see cache.py)
    for kind in Kind:
        for body in await asyncio.to_thread(kube.list_all, kind.value):
            controller.cache.apply_event(kind, None, body)
    memo["loop"] = asyncio.create_task(controller.run(), name="suanli-loop")
    lease = memo.get("lease")
    if isinstance(lease, dict) and lease:
        elector = LeaderElector(
            kube.api_client, lease["namespace"], identity, lease_seconds=lease["seconds"]
        )
        controller.leading = False
        kube.may_write = elector.may_write
        memo["elector"] = elector

        def on_change(leading: bool) -> None:
            controller.leading = leading
            if metrics is not None:
                metrics.set_leader(leading)
            if leading:
                controller.cache.changed.set()

        memo["election"] = asyncio.create_task(elector.run(on_change), name="suanli-election")
    elif metrics is not None:
        metrics.set_leader(True)
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


@kopf.on.event("scheduling.k8s.io", "v1", "priorityclasses")
async def priority_class_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    _feed(Kind.PRIORITY_CLASS, event, memo)
