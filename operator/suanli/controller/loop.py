"""The single decision loop: wait for a change, snapshot the cache, decide, write the differences.

Writes are computed as the *difference* between the status the decision implies and the status
the object already carries, so an unchanged world costs no API calls, and re-running a cycle
after a restart converges to the same statuses (level-triggered, idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from suanli.api.acceleratorclass import AcceleratorClass
from suanli.api.trainingjob import ConditionType, Phase, Reason, TrainingJob
from suanli.controller.cache import Cache, Kind, Object, Snapshot
from suanli.controller.conditions import now_rfc3339, same_ignoring_time, set_condition
from suanli.controller.convert import device_class, option_problems
from suanli.controller.kube import Kube
from suanli.placement.model import DeviceClass

log = logging.getLogger("suanli.loop")

DEBOUNCE_SECONDS = 0.2


def catalogue(snapshot: Snapshot) -> dict[str, DeviceClass]:
    classes = {}
    for name, body in snapshot.of(Kind.ACCELERATOR_CLASS).items():
        try:
            classes[name] = device_class(AcceleratorClass.model_validate(body))
        except (ValidationError, ValueError) as exc:
            log.warning("AcceleratorClass %s ignored: %s", name, exc)
    return classes


def desired_job_status(body: Object, classes: Mapping[str, DeviceClass]) -> dict[str, Any]:
    """The status fields this loop owns for one TrainingJob, given the catalogue."""
    current: dict[str, Any] = dict(body.get("status") or {})
    generation = body.get("metadata", {}).get("generation")
    conditions = current.get("conditions") or []
    now = now_rfc3339()
    try:
        job = TrainingJob.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        message = f"spec is not valid: {field}: {first['msg']}"
        conditions = set_condition(
            conditions, type_=ConditionType.VALID, status=False, reason="InvalidSpec",
            message=message, generation=generation, now=now,
        )
        return {"phase": Phase.QUEUED.value, "reason": "InvalidSpec", "message": message,
                "conditions": conditions}
    problems = option_problems(job, classes)
    usable = len(job.spec.accelerators) - len(problems)
    if usable == 0:
        reasons = {p.reason for p in problems}
        reason = (
            Reason.UNKNOWN_ACCELERATOR_CLASS
            if reasons == {Reason.UNKNOWN_ACCELERATOR_CLASS}
            else Reason.ILLEGAL_SHAPE
        )
        message = "no accelerator option can ever run: " + "; ".join(p.message for p in problems)
        conditions = set_condition(
            conditions, type_=ConditionType.VALID, status=False, reason=reason.value,
            message=message, generation=generation, now=now,
        )
        return {"phase": Phase.QUEUED.value, "reason": reason.value, "message": message,
                "conditions": conditions}
    note = "" if not problems else " (skipping " + "; ".join(p.message for p in problems) + ")"
    conditions = set_condition(
        conditions, type_=ConditionType.VALID, status=True, reason="Valid",
        message=f"{usable} of {len(job.spec.accelerators)} accelerator options can run{note}",
        generation=generation, now=now,
    )
    return {
        "phase": current.get("phase") or Phase.QUEUED.value,
        "conditions": conditions,
        "observedGeneration": generation,
    }


def status_differs(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    for key, value in desired.items():
        if key == "conditions":
            if not same_ignoring_time(current.get("conditions") or [], value):
                return True
        elif current.get(key) != value:
            return True
    return False


class Controller:
    """Owns the cache and the loop; Kopf handlers only feed ``cache``."""

    def __init__(self, kube: Kube) -> None:
        self.cache = Cache()
        self.kube = kube
        self.cycles = 0

    async def run(self) -> None:
        while True:
            await self.cache.changed.wait()
            await asyncio.sleep(DEBOUNCE_SECONDS)
            self.cache.changed.clear()
            try:
                await self.cycle()
            except Exception:
                log.exception("scheduling cycle failed; retrying on the next change")
                await asyncio.sleep(1.0)
                self.cache.changed.set()

    async def cycle(self) -> None:
        started = time.perf_counter()
        snapshot = self.cache.snapshot()
        classes = catalogue(snapshot)
        writes = 0
        for key, body in snapshot.of(Kind.TRAINING_JOB).items():
            desired = desired_job_status(body, classes)
            if not status_differs(body.get("status") or {}, desired):
                continue
            namespace, name = key.split("/", 1)
            version = str(body["metadata"]["resourceVersion"])
            if await self.kube.apatch_status("trainingjobs", name, namespace, version, desired):
                writes += 1
        self.cycles += 1
        log.info(
            "cycle %d: %d jobs, %d classes, %d status writes in %.1f ms",
            self.cycles, len(snapshot.of(Kind.TRAINING_JOB)), len(classes), writes,
            (time.perf_counter() - started) * 1000,
        )
