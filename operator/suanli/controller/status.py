"""Every status the operator writes, built through the API's pydantic status models.

Why typed: a status field spelled by hand in one place and differently in another is a field
``kubectl get`` and dashboards never show. Here a TrainingJob's, ComputeQuota's and
AcceleratorClass's status is constructed as the model (so a wrong name or type fails at once,
in tests), dumped by alias, and compared with what the object already says: an unchanged
decision costs no API call. Conditions follow the API conventions (``lastTransitionTime``
changes only when ``status`` flips). Reasons come only from :class:`suanli.reasons.Reason`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from suanli.api.acceleratorclass import AcceleratorClassStatus
from suanli.api.common import Condition
from suanli.api.computequota import ClassUsage, ComputeQuotaStatus
from suanli.api.trainingjob import ConditionType, Phase, TrainingJobStatus
from suanli.controller.conditions import same_ignoring_time, set_condition
from suanli.reasons import Reason

MAX_MESSAGE = 32768
# Status fields that describe an admission; cleared whenever a job gives its admission back.
RELEASED_FIELDS = ("chosenOption", "placement", "admittedAt", "startedAt")
VALID_MESSAGE = "the job can run on at least one accelerator option"


class ConditionLike(Protocol):
    """A wanted condition (the lifecycle's ``ConditionChange`` is one)."""

    @property
    def type(self) -> ConditionType | str: ...
    @property
    def status(self) -> bool: ...
    @property
    def reason(self) -> Reason: ...
    @property
    def message(self) -> str: ...


def clip(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def stamp(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(int(seconds), UTC)


def merged_conditions(
    current: Sequence[Mapping[str, Any]],
    wanted: Iterable[ConditionLike],
    *,
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """``current`` with every wanted condition set; each checked against the Condition model."""
    when = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = [dict(c) for c in current]
    for change in wanted:
        conditions = set_condition(
            conditions,
            type_=str(change.type),
            status=change.status,
            reason=change.reason.value,
            message=clip(change.message),
            generation=generation,
            now=when,
        )
    return [
        Condition.model_validate(c).model_dump(by_alias=True, exclude_none=True, mode="json")
        for c in conditions
    ]


def differs(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Would writing ``desired`` change ``current``? (Condition times are not a change.)"""
    for key, value in desired.items():
        if key == "conditions":
            if not same_ignoring_time(current.get("conditions") or [], value):
                return True
        elif current.get(key) != value:
            return True
    return False


class _Valid:
    """The Valid=True condition every job that reaches scheduling carries."""

    type = ConditionType.VALID
    status = True
    reason = Reason.VALID
    message = VALID_MESSAGE


def job_status(
    current: Mapping[str, Any],
    *,
    phase: Phase,
    reason: Reason,
    message: str,
    conditions: Iterable[ConditionLike],
    generation: int | None,
    now: datetime,
    release: bool = False,
    valid: bool = True,
    **fields: Any,
) -> dict[str, Any]:
    """A TrainingJob's desired status as a merge patch: the given fields (python names of
    :class:`TrainingJobStatus`, explicit ``None`` clears), conditions merged, and with
    ``release`` the admission's fields cleared."""
    model = TrainingJobStatus(
        phase=phase,
        reason=reason.value,
        message=clip(message),
        observed_generation=generation,
        **fields,
    )
    patch = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    if release:
        for key in RELEASED_FIELDS:
            patch.setdefault(key, None)
    wanted: list[ConditionLike] = [_Valid()] if valid else []
    patch["conditions"] = merged_conditions(
        current.get("conditions") or [],
        [*wanted, *conditions],
        generation=generation,
        now=now,
    )
    return patch


class Wanted:
    """A condition to set, for callers that are not the lifecycle."""

    def __init__(self, type_: ConditionType | str, status: bool, reason: Reason, message: str):
        self.type = type_
        self.status = status
        self.reason = reason
        self.message = message


def invalid_job_status(
    current: Mapping[str, Any],
    *,
    reason: Reason,
    message: str,
    generation: int | None,
    now: datetime,
) -> dict[str, Any]:
    """A job that can never run as written: Valid=False naming the field, left out of every
    cycle until its spec changes (a new generation is checked again)."""
    return job_status(
        current,
        phase=Phase.QUEUED,
        reason=reason,
        message=message,
        conditions=[Wanted(ConditionType.VALID, False, reason, message)],
        generation=generation,
        now=now,
        valid=False,
        queue_position=None,
    )


def devices(milli: int) -> int:
    """Whole devices covering ``milli`` thousandths (a share of a device counts as one)."""
    return -(-milli // 1000)


def quota_status(
    current: Mapping[str, Any],
    *,
    usage: Sequence[ClassUsage],
    used_pflops: float,
    admitted_jobs: int,
    pending_jobs: int,
    folded_pods: Sequence[str] | None,
    conflict: str | None,
    served: Iterable[str],
    generation: int | None,
    now: datetime,
) -> dict[str, Any]:
    """A ComputeQuota's derived status; ``conflict`` names the namespaces another, older quota
    keeps (Conflict condition True), None when it serves all it lists; ``served``: the
    namespaces it does serve (read back after a restart, so ownership never flips)."""
    fields: dict[str, Any] = {
        "served_namespaces": sorted(served),
        "usage": list(usage),
        "used_pflops": round(used_pflops, 6),
        "admitted_jobs": admitted_jobs,
        "pending_jobs": pending_jobs,
        "observed_generation": generation,
    }
    if folded_pods is not None:
        fields["folded_pods"] = list(folded_pods) or None
    patch = ComputeQuotaStatus(**fields).model_dump(by_alias=True, exclude_unset=True, mode="json")
    condition = (
        Wanted("Conflict", True, Reason.CONFLICT, conflict)
        if conflict
        else Wanted("Conflict", False, Reason.ACTIVE, "serves every namespace it lists")
    )
    patch["conditions"] = merged_conditions(
        current.get("conditions") or [],
        [Wanted("Valid", True, Reason.VALID, "the quota is valid"), condition],
        generation=generation,
        now=now,
    )
    return patch


def invalid_status(
    current: Mapping[str, Any], *, message: str, generation: int | None, now: datetime
) -> dict[str, Any]:
    """A ComputeQuota or AcceleratorClass the operator cannot use: Valid=False naming the field."""
    return {
        "conditions": merged_conditions(
            current.get("conditions") or [],
            [Wanted("Valid", False, Reason.INVALID, message)],
            generation=generation,
            now=now,
        ),
        "observedGeneration": generation,
    }


def class_status(
    current: Mapping[str, Any],
    *,
    nodes: int,
    total_devices: int,
    allocated_milli: int,
    tflops: float,
    generation: int | None,
    now: datetime,
) -> dict[str, Any]:
    patch = AcceleratorClassStatus(
        nodes=nodes,
        devices=total_devices,
        allocated_devices=devices(allocated_milli),
        capacity_pflops=round(total_devices * tflops / 1000, 3),
        observed_generation=generation,
    ).model_dump(by_alias=True, exclude_unset=True, mode="json")
    patch["conditions"] = merged_conditions(
        current.get("conditions") or [],
        [Wanted("Valid", True, Reason.VALID, "the class is valid")],
        generation=generation,
        now=now,
    )
    return patch
