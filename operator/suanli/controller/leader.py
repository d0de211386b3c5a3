"""Leader election with a coordination.k8s.io Lease, so exactly one replica schedules.

Every replica watches and keeps a warm cache (failover needs no relist); only the holder of the
Lease runs scheduling cycles and writes. The Lease is taken when absent or expired and renewed
well inside its duration, always with the resourceVersion read just before, so two replicas can
never both believe they hold it. A replica that cannot renew in time stops scheduling before its
lease could be taken over by another (renew deadline < lease duration).

Stopping the next cycle is not enough: a cycle already running when the renewals start failing
would go on writing. So every write asks :meth:`LeaderElector.may_write` first (``Kube.fence``):
a write is sent only within two thirds of the Lease since the start of the last successful
renewal. Another replica can take the Lease only once a whole Lease has passed since that
renewal's ``renewTime``, so a write refused by the fence is one that could have raced a
successor. A request already sent can still arrive later than that, if the network holds it
for more than a third of the Lease (5 s of the default 15 s). The API server has no fencing
tokens that would close that gap. What remains there is what every write carries anyway: the
resourceVersion precondition of status writes, and attempt numbers in object names.

Renewals run on threads of their own, with a read timeout of one renewal period: a burst of
admissions that fills the API thread pool must never queue the renewal behind it (the leader
would fence itself off and stop writing while nothing is wrong), and a renewal that hangs frees
its thread by the next period.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("suanli.leader")


def _now() -> datetime:
    return datetime.now(UTC)


class LeaderElector:
    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        identity: str,
        name: str = "suanli-scheduler",
        lease_seconds: int = 15,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.coordination = client.CoordinationV1Api(api_client)
        self.namespace = namespace
        self.identity = identity
        self.name = name
        self.lease_seconds = lease_seconds
        self.renew_seconds = max(1.0, lease_seconds / 3)
        self.leading = False
        self.clock = clock
        self._last_renew = -float(lease_seconds)  # clock at the start of the last renewal
        # never shared with the API pool; two threads, so one hung renewal cannot block the next
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="suanli-lease")
        self.timeout = (min(5.0, self.renew_seconds), self.renew_seconds)

    def try_acquire_or_renew(self) -> bool:
        now = _now()
        try:
            lease = self.coordination.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self.timeout
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
                spec=client.V1LeaseSpec(
                    holder_identity=self.identity,
                    lease_duration_seconds=self.lease_seconds,
                    acquire_time=now,
                    renew_time=now,
                    lease_transitions=0,
                ),
            )
            try:
                self.coordination.create_namespaced_lease(
                    self.namespace, body, _request_timeout=self.timeout
                )
            except ApiException as create_error:
                if create_error.status == 409:
                    return False
                raise
            return True
        spec = lease.spec
        if spec is None:
            spec = lease.spec = client.V1LeaseSpec()
        holder = spec.holder_identity
        renewed = spec.renew_time or spec.acquire_time
        duration = spec.lease_duration_seconds or self.lease_seconds
        expired = renewed is None or (now - renewed).total_seconds() > duration
        if holder not in (self.identity, None, "") and not expired:
            return False
        if holder != self.identity:
            spec.acquire_time = now
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
        spec.holder_identity = self.identity
        spec.renew_time = now
        spec.lease_duration_seconds = self.lease_seconds
        try:
            self.coordination.replace_namespaced_lease(
                self.name, self.namespace, lease, _request_timeout=self.timeout
            )
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def release(self) -> None:
        """Give the Lease up on a clean shutdown so a standby takes over at once."""
        if not self.leading:
            return
        try:
            lease = self.coordination.read_namespaced_lease(self.name, self.namespace)
            if lease.spec is not None and lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = ""
                lease.spec.renew_time = None
                self.coordination.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as exc:
            log.warning("could not release the lease: %s", exc.reason)
        self.leading = False

    def may_write(self) -> bool:
        """Whether a write may be sent now: leading, and inside the renew deadline."""
        return self.leading and self._within_deadline()

    def _within_deadline(self) -> bool:
        return self.clock() - self._last_renew < self.lease_seconds * 2 / 3

    async def run(self, on_change: Callable[[bool], None]) -> None:
        while True:
            started = self.clock()
            try:
                # a renewal that hangs is a renewal that failed: this replica may be cut off
                held = await asyncio.wait_for(
                    asyncio.get_running_loop().run_in_executor(
                        self.executor, self.try_acquire_or_renew
                    ),
                    timeout=self.renew_seconds,
                )
            except Exception as exc:  # network trouble: keep leading only inside the deadline
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
                held = self.leading and self._within_deadline()
            else:
                if held:
                    self._last_renew = started
            if held != self.leading:
                self.leading = held
                log.info(
                    "%s leadership of %s/%s",
                    "acquired" if held else "lost",
                    self.namespace,
                    self.name,
                )
                on_change(held)
            await asyncio.sleep(self.renew_seconds)
