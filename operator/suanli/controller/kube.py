"""Thin, blocking Kubernetes API calls, always run off the event loop (``asyncio.to_thread``).

Status is written as a JSON merge patch that carries ``metadata.resourceVersion``: the API server
then refuses it with 409 Conflict when the object changed since we read it, and the next watch
event triggers a fresh decision. No blind overwrites.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from suanli.api import GROUP, VERSION
from suanli.metrics import Metrics

ERROR_REASONS = {409: "Conflict", 404: "NotFound", 403: "Forbidden", 422: "Invalid"}


def error_reason(exc: ApiException) -> str:
    status = int(exc.status or 0)
    return ERROR_REASONS.get(status, "ServerError" if status >= 500 else "Other")


log = logging.getLogger("suanli.kube")


class Kube:
    """The operator's own API client (Kopf has its own for watches and handler patches)."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        self.api_client = client.ApiClient()
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)

    def patch_status(
        self,
        plural: str,
        name: str,
        namespace: str | None,
        resource_version: str,
        status: Mapping[str, Any],
    ) -> bool:
        """Merge ``status`` in, only if the object is still at ``resource_version``.

        Returns False on a conflict or when the object is gone (both are normal races).
        """
        body = {"metadata": {"resourceVersion": resource_version}, "status": dict(status)}
        try:
            if namespace:
                self.custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, namespace, plural, name, body
                )
            else:
                self.custom.patch_cluster_custom_object_status(GROUP, VERSION, plural, name, body)
        except ApiException as exc:
            self.count_error(plural, exc)
            if exc.status in (404, 409):
                log.debug("status of %s %s/%s not written: %s", plural, namespace, name, exc.reason)
                return False
            raise
        return True

    async def apatch_status(
        self,
        plural: str,
        name: str,
        namespace: str | None,
        resource_version: str,
        status: Mapping[str, Any],
    ) -> bool:
        return await asyncio.to_thread(
            self.patch_status, plural, name, namespace, resource_version, status
        )

    # --- objects of a gang ----------------------------------------------------------------------
    def create(self, manifest: Mapping[str, Any]) -> bool:
        """Create a Pod, Service or ConfigMap; an existing one with that name counts as done
        (names are deterministic per job attempt, so a retry after a crash is idempotent)."""
        kind = manifest["kind"]
        namespace = manifest["metadata"]["namespace"]
        creators: dict[str, Callable[..., Any]] = {
            "Pod": self.core.create_namespaced_pod,
            "Service": self.core.create_namespaced_service,
            "ConfigMap": self.core.create_namespaced_config_map,
        }
        try:
            creators[kind](namespace, dict(manifest))
        except ApiException as exc:
            if exc.status == 409:
                return False
            self.count_error(f"{kind.lower()}s", exc)
            raise
        return True

    def count_error(self, resource: str, exc: ApiException) -> None:
        if self.metrics is not None:
            self.metrics.count_api_error(resource, error_reason(exc))

    def delete_job_pods(self, namespace: str, job_name: str) -> None:
        from suanli.constants import JOB_NAME_LABEL

        self.core.delete_collection_namespaced_pod(
            namespace, label_selector=f"{JOB_NAME_LABEL}={job_name}", grace_period_seconds=30
        )

    def force_delete_pod(self, namespace: str, name: str) -> None:
        try:
            self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                self.count_error("pods", exc)
                raise

    def delete_job(self, namespace: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, "trainingjobs", name
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            body = cast(
                dict[str, Any],
                self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, "trainingjobs", name
                ),
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return body

    def event(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Post a Kubernetes Event on the object (best effort: events are not state)."""
        import datetime as dt

        metadata = body["metadata"]
        now = dt.datetime.now(dt.UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                generate_name=f"{metadata['name']}.", namespace=metadata.get("namespace")
            ),
            involved_object=client.V1ObjectReference(
                api_version=body.get("apiVersion"),
                kind=body.get("kind"),
                name=metadata["name"],
                namespace=metadata.get("namespace"),
                uid=metadata.get("uid"),
                resource_version=metadata.get("resourceVersion"),
            ),
            reason=reason,
            message=message[:1024],
            type=type_,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component="suanli"),
            reporting_component="suanli.io/operator",
            reporting_instance="suanli",
        )
        try:
            self.core.create_namespaced_event(metadata.get("namespace") or "default", event)
        except ApiException as exc:
            log.debug("event %s on %s not posted: %s", reason, metadata["name"], exc.reason)

    def add_metering(
        self, quota: str, usage: Mapping[str, tuple[float, float]], pod_uids: Sequence[str]
    ) -> None:
        """Add device- and PFLOP-seconds to a ComputeQuota's ``status.metering`` and record the
        pods they came from in ``status.foldedPods``, in one write (read, add, write with the
        read resourceVersion; retried on conflicts). A pod already recorded is not added again."""
        for _ in range(50):
            body = cast(
                dict[str, Any],
                self.custom.get_cluster_custom_object(GROUP, VERSION, "computequotas", quota),
            )
            status = body.get("status") or {}
            folded = list(status.get("foldedPods") or [])
            if set(pod_uids) <= set(folded):
                return  # an earlier attempt got through
            rows = {r["acceleratorClass"]: dict(r) for r in status.get("metering") or []}
            for cls, (device_seconds, pflop_seconds) in usage.items():
                row = rows.setdefault(
                    cls, {"acceleratorClass": cls, "deviceSeconds": 0.0, "pflopSeconds": 0.0}
                )
                row["deviceSeconds"] = round(float(row["deviceSeconds"]) + device_seconds, 3)
                row["pflopSeconds"] = round(float(row["pflopSeconds"]) + pflop_seconds, 3)
            if self.patch_status(
                "computequotas",
                quota,
                None,
                body["metadata"]["resourceVersion"],
                {
                    "metering": [rows[c] for c in sorted(rows)],
                    "foldedPods": sorted(set(folded) | set(pod_uids)),
                },
            ):
                return
        raise RuntimeError(f"could not add metering to ComputeQuota {quota}: too many conflicts")
