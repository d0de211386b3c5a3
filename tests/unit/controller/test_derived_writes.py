"""Derived status writes: one object's failed write never stops the others'.

The quota and class statuses of a cycle are written together. A write the API server refuses
or that times out (a 500, a 422 on one object, a read timeout) is logged and left for the next
cycle; the other quotas' statuses — a Conflict a tenant is waiting to read — are still written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

import pytest
from kubernetes.client.exceptions import ApiException

from suanli.controller import derived
from suanli.controller.cache import Kind
from suanli.controller.inventory import Inventory
from suanli.controller.kube import Kube, NotLeading
from suanli.controller.world import observe
from suanli.scheduling.cycle import run_cycle
from tests.unit.controller.test_world import cache_with, quota


class StatusWriter:
    """A Kube stand-in recording status patches; names in ``failing`` raise ``error``."""

    def __init__(self, failing: Mapping[str, Exception]) -> None:
        self.failing = failing
        self.written: dict[str, dict[str, Any]] = {}

    async def apatch_status(
        self,
        plural: str,
        name: str,
        namespace: str | None,
        resource_version: str,
        status: Mapping[str, Any],
    ) -> bool:
        if name in self.failing:
            raise self.failing[name]
        self.written[name] = dict(status)
        return True


@pytest.mark.parametrize(
    "error",
    [
        ApiException(status=500, reason="Internal Server Error"),
        ApiException(status=422, reason="Unprocessable Entity"),
        TimeoutError("read timed out"),
        NotLeading("PATCH", "/apis/suanli.io/v1alpha1/computequotas/a-broken/status"),
    ],
    ids=["500", "422", "timeout", "not-leading"],
)
def test_a_failed_quota_status_write_leaves_the_others_written(error: Exception) -> None:
    cache = cache_with(
        (Kind.COMPUTE_QUOTA, quota("a-broken", "2026-01-01T00:00:00Z", "a")),
        (Kind.COMPUTE_QUOTA, quota("b-owner", "2026-01-02T00:00:00Z", "shared")),
        (Kind.COMPUTE_QUOTA, quota("c-intruder", "2026-01-03T00:00:00Z", "shared", "c")),
    )
    snapshot = cache.snapshot()
    world = observe(snapshot, {}, 0.0)
    inventory = Inventory()
    result = run_cycle([], [], world.quotas, [], inventory.state)
    kube = StatusWriter({"a-broken": error})
    written = asyncio.run(
        derived.write_statuses(cast(Kube, kube), snapshot, world, result, inventory)
    )
    assert written == 2
    assert set(kube.written) == {"b-owner", "c-intruder"}
    conflict = {c["type"]: c for c in kube.written["c-intruder"]["conditions"]}["Conflict"]
    assert conflict["status"] == "True" and "ComputeQuota b-owner" in conflict["message"]
    assert kube.written["c-intruder"]["servedNamespaces"] == ["c"]
    assert kube.written["b-owner"]["servedNamespaces"] == ["shared"]


def test_a_cancellation_is_not_swallowed_as_a_failed_write() -> None:
    """Only Exceptions are skipped; a cancellation (the operator stopping) still ends the cycle."""
    cache = cache_with((Kind.COMPUTE_QUOTA, quota("q", "2026-01-01T00:00:00Z", "a")))
    snapshot = cache.snapshot()
    world = observe(snapshot, {}, 0.0)
    inventory = Inventory()
    result = run_cycle([], [], world.quotas, [], inventory.state)
    kube = StatusWriter({"q": asyncio.CancelledError()})  # type: ignore[dict-item]
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(derived.write_statuses(cast(Kube, kube), snapshot, world, result, inventory))
