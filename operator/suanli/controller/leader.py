"""Leader election with a coordination.k8s.io Lease, so exactly one replica schedules.

Every replica watches and keeps a warm cache (failover needs no relist); only the holder of the
Lease runs scheduling cycles and writes. The Lease is taken when absent or expired and renewed
well inside its duration, always with the resourceVersion read just before, so two replicas can
never both believe they hold it. A replica that cannot renew in time stops scheduling before its
lease could be taken over by another (renew deadline < lease duration).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from suanli.controller.kube import Kube

log = logging.getLogger("suanli.leader")


def _now() -> datetime:
    return datetime.now(UTC)


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        identity: str,
        name: str = "suanli-scheduler",
        lease_seconds: int = 15,
    ) -> None:
        self.coordination = client.CoordinationV1Api(kube.api_client)
        self.namespace = namespace
        self.identity = identity
        self.name = name
        self.lease_seconds = lease_seconds
        self.renew_seconds = max(1.0, lease_seconds / 3)
        self.leading = False
        self._last_renew = 0.0

    def try_acquire_or_renew(self) -> bool:
        now = _now()
        try:
            lease = self.coordination.read_namespaced_lease(self.name, self.namespace)
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
                self.coordination.create_namespaced_lease(self.namespace, body)
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
            self.coordination.replace_namespaced_lease(self.name, self.namespace, lease)
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

    async def run(self, on_change: Callable[[bool], None]) -> None:
        while True:
            try:
                # a renewal that hangs is a renewal that failed: this replica may be cut off
                held = await asyncio.wait_for(
                    asyncio.to_thread(self.try_acquire_or_renew), timeout=self.renew_seconds
                )
            except Exception as exc:  # network trouble: keep leading only inside the deadline
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
                held = self.leading and (
                    time.monotonic() - self._last_renew < self.lease_seconds * 2 / 3
                )
            if held:
                self._last_renew = time.monotonic()
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
