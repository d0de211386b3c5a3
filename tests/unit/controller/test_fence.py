"""The write fence: a replica that can no longer be sure it holds the Lease sends no write.

The two-replica reliability item found a replaced leader still sending writes after its
successor's first one: a cycle that was running when its renewals began to fail went on
writing, because only the next cycle looked at ``leading``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from suanli.controller.kube import Kube, NotLeading
from suanli.controller.leader import LeaderElector


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ExplodingClient:
    """An API client that must not be used: the fence refuses before any request."""

    def param_serialize(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a fenced write reached the API client")

    call_api = param_serialize


def fenced_kube(may_write: bool) -> Kube:
    kube = Kube.__new__(Kube)  # no kubeconfig needed: only the fence is exercised
    kube.metrics = None
    kube.identity = "test"
    kube.api_client = ExplodingClient()  # type: ignore[assignment]
    kube.may_write = lambda: may_write
    return kube


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT", "DELETE"])
def test_a_write_is_refused_before_it_is_sent(method: str) -> None:
    with pytest.raises(NotLeading, match=f"not leading: {method} /api/v1/x not sent"):
        fenced_kube(may_write=False).send(method, "/api/v1/x", {})


def test_the_gang_helpers_are_fenced_too() -> None:
    kube = fenced_kube(may_write=False)
    pod = {"kind": "Pod", "metadata": {"namespace": "t", "name": "p"}}
    for call in (
        lambda: kube.create(pod),
        lambda: kube.delete(pod),
        lambda: kube.delete_pod("t", "p"),
        lambda: kube.delete_stale_rank_tables("t", "j", 2),
        lambda: kube.delete_job("t", "j"),
        lambda: kube.patch_status("trainingjobs", "j", "t", "7", {"phase": "Admitted"}),
    ):
        with pytest.raises(NotLeading):
            call()


def test_reads_pass_the_fence() -> None:
    kube = fenced_kube(may_write=False)
    with pytest.raises(AssertionError, match="reached the API client"):
        kube.send("GET", "/api/v1/pods")


def test_without_election_every_write_may_go() -> None:
    kube = fenced_kube(may_write=True)
    kube.may_write = None
    with pytest.raises(AssertionError, match="reached the API client"):
        kube.send("POST", "/api/v1/x", {})


def elector(clock: Clock, lease_seconds: int) -> LeaderElector:
    return LeaderElector(
        None,  # type: ignore[arg-type]  # no requests: renewals are replaced below
        "suanli-system",
        "me",
        lease_seconds=lease_seconds,
        clock=clock,
    )


def test_the_fence_closes_two_thirds_of_a_lease_after_the_renewal_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    election = elector(clock, lease_seconds=15)
    renewals: list[bool | Exception] = [True, OSError("connection reset")]

    def renew() -> bool:
        outcome = renewals.pop(0) if renewals else OSError("still cut off")
        clock.now += 1.0  # the renewal itself took a second
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(election, "try_acquire_or_renew", renew)
    changes: list[bool] = []

    async def one_round() -> None:
        task = asyncio.create_task(election.run(changes.append))
        await asyncio.sleep(0.01)
        task.cancel()

    started = clock.now
    asyncio.run(one_round())
    assert changes == [True] and election.may_write()
    # the loop has not run again, yet the fence closes on time: 10 s after the renewal *began*
    clock.now = started + 9.9
    assert election.may_write()
    clock.now = started + 10.0
    assert not election.may_write()
    assert election.leading  # the loop would notice only at its next round


def test_a_replica_that_never_led_may_not_write() -> None:
    election = elector(Clock(), lease_seconds=15)
    assert not election.may_write()


def test_a_renewal_never_queues_behind_a_full_api_thread_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A burst of admissions fills the default executor (the API pool) with slow writes; the
    renewal runs on the elector's own threads, so the leader keeps its Lease and its fence open."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    election = elector(Clock(), lease_seconds=3)  # renewal timeout: 1 s
    monkeypatch.setattr(election, "try_acquire_or_renew", lambda: True)
    release = threading.Event()
    changes: list[bool] = []

    async def busy_round() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=2))
        writes = [loop.run_in_executor(None, release.wait, 5.0) for _ in range(4)]
        await asyncio.sleep(0.05)  # every API thread is now blocked in a "write"
        task = asyncio.create_task(election.run(changes.append))
        await asyncio.sleep(0.3)
        task.cancel()
        release.set()
        await asyncio.gather(*writes)

    asyncio.run(busy_round())
    assert changes == [True] and election.may_write()


def test_the_hubs_clients_refuse_writes_before_sending_them() -> None:
    """The hub writes through the generated client (to itself and to every member): the
    fence sits in the client, so no call site can forget it."""
    from kubernetes import client

    from suanli.controller.kube import FencedApiClient

    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # discard port: a request sent would fail
    api = FencedApiClient(configuration)
    api.may_write = lambda: False
    custom = client.CustomObjectsApi(api)
    with pytest.raises(NotLeading, match=r"not leading: POST .*trainingjobs not sent"):
        custom.create_namespaced_custom_object("suanli.io", "v1alpha1", "t", "trainingjobs", {})
    with pytest.raises(NotLeading, match="not leading: DELETE"):
        custom.delete_namespaced_custom_object("suanli.io", "v1alpha1", "t", "trainingjobs", "j")
    # a read is sent (and fails on the closed port, not on the fence)
    with pytest.raises(Exception) as read:
        custom.list_cluster_custom_object(
            "suanli.io", "v1alpha1", "trainingjobs", _request_timeout=(1, 1)
        )
    assert not isinstance(read.value, NotLeading)
    api.may_write = lambda: True
    with pytest.raises(Exception) as write:
        custom.create_namespaced_custom_object(
            "suanli.io", "v1alpha1", "t", "trainingjobs", {}, _request_timeout=(1, 1)
        )
    assert not isinstance(write.value, NotLeading)
