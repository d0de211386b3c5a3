"""Billing a pod: when its time is final, and how much it is (to the second)."""

from __future__ import annotations

from typing import Any

import pytest

from suanli.controller.inventory import CatalogueEntry
from suanli.controller.metering import billable, holds_finalizer, pod_usage, total_usage
from suanli.placement.model import DeviceClass

ASCEND = CatalogueEntry(
    DeviceClass("ascend-910b", 8, 8, (1, 2, 4, 8), multi_replica_count=8, tflops=376.0),
    "huawei",
    "huawei.com/Ascend910",
    (),
)
CATALOGUE = {"ascend-910b": ASCEND}
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(
    *,
    start: float | None = T0,
    finished: float | None = None,
    deleted: float | None = None,
    phase: str = "Running",
    devices: int = 4,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if start is not None:
        status["startTime"] = iso(start)
    if finished is not None:
        status["containerStatuses"] = [{"state": {"terminated": {"finishedAt": iso(finished)}}}]
    metadata: dict[str, Any] = {
        "name": "j-a0-0",
        "namespace": "team",
        "uid": "u1",
        "finalizers": ["suanli.io/metering"],
        "annotations": {"suanli.io/accelerator-class": "ascend-910b"},
    }
    if deleted is not None:
        metadata["deletionTimestamp"] = iso(deleted)
    return {
        "metadata": metadata,
        "spec": {"containers": [{"resources": {"limits": {"huawei.com/Ascend910": str(devices)}}}]},
        "status": status,
    }


@pytest.mark.parametrize(
    ("case", "body", "now", "expected"),
    [
        ("running, deletion asked, grace not over", pod(deleted=T0 + 130), T0 + 100, False),
        ("running, past its deletion time", pod(deleted=T0 + 130), T0 + 131, True),
        ("containers terminated", pod(finished=T0 + 90, deleted=T0 + 130), T0 + 100, True),
        ("finished", pod(phase="Succeeded", finished=T0 + 50, deleted=T0 + 200), T0 + 60, True),
        ("never started", pod(start=None, phase="Pending", deleted=T0 + 30), T0 + 1, True),
    ],
)
def test_a_deleted_pod_is_billed_once_its_time_is_final(
    case: str, body: dict[str, Any], now: float, expected: bool
) -> None:
    assert billable(body, now) is expected, case


@pytest.mark.parametrize(
    ("case", "body", "now", "device_seconds"),
    [
        ("terminated: until finishedAt", pod(finished=T0 + 90, deleted=T0 + 130), T0 + 500, 360),
        ("deleted while running: until deletion", pod(deleted=T0 + 30), T0 + 500, 120),
        ("still running: until now", pod(), T0 + 10, 40),
        ("never started: nothing", pod(start=None, phase="Pending"), T0 + 10, None),
    ],
)
def test_what_a_pod_is_billed(
    case: str, body: dict[str, Any], now: float, device_seconds: float | None
) -> None:
    used = pod_usage(body, CATALOGUE, now)
    if device_seconds is None:
        assert used is None, case
        return
    assert used is not None, case
    name, seconds, pflop_seconds = used
    assert (name, seconds) == ("ascend-910b", device_seconds), case
    assert pflop_seconds == pytest.approx(device_seconds * 0.376), case


def test_usage_is_summed_per_class_and_names_the_pods_billed() -> None:
    pods = [pod(finished=T0 + 10), pod(start=None, phase="Pending")]
    pods[1]["metadata"]["uid"] = "u2"
    usage, uids = total_usage(pods, CATALOGUE, T0 + 100)
    assert usage == {"ascend-910b": (40.0, pytest.approx(40 * 0.376))}
    assert uids == ["u1"]  # a pod that never started costs nothing and is not recorded
    assert holds_finalizer(pods[0])
    assert (
        pod_usage(
            {**pods[0], "metadata": {**pods[0]["metadata"], "annotations": {}}}, CATALOGUE, T0
        )
        is None
    )
