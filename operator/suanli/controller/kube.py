"""Thin, blocking Kubernetes API calls, always run off the event loop (``asyncio.to_thread``).

Status is written as a JSON merge patch that carries ``metadata.resourceVersion``: the API server
then refuses it with 409 Conflict when the object changed since we read it, and the next watch
event triggers a fresh decision. No blind overwrites.

The writes of a burst (status patches, pods, Services, rank tables, Events, finalizer patches,
deletions) go out as plain JSON through :meth:`Kube.send`: the generated client would validate
every body into its pydantic models and decode every answer back into them: CPU spent on
every request for answers the operator never reads (see docs/performance.md). Errors are the same
``ApiException`` either way.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from suanli.api import GROUP, VERSION
from suanli.constants import ATTEMPT_LABEL, JOB_NAME_LABEL
from suanli.metrics import Metrics
from suanli.reasons import Reason
from suanli.workload.pods import METERING_FINALIZER

ERROR_REASONS = {
    409: Reason.API_CONFLICT,
    404: Reason.API_NOT_FOUND,
    403: Reason.API_FORBIDDEN,
    422: Reason.API_INVALID,
    400: Reason.API_BAD_REQUEST,
}
# The API server refused the object itself: retrying the same object can never succeed.
TERMINAL_STATUSES = frozenset({400, 422})
# Blocking calls run in threads; enough of them that a burst of admissions is written at once.
API_THREADS = 64
# Every call gives up: (seconds to connect, seconds without a byte). Without it a connection that
# goes silent without closing would hold its thread, and the cycle waiting on it, for ever.
REQUEST_TIMEOUT = (5.0, 30.0)


class NotLeading(ApiException):
    """A write refused before it was sent: this replica can no longer be sure it holds the
    Lease, so another may be leading already. Handled like a failed request (nothing written,
    the next leader decides from what the API server holds)."""

    def __init__(self, method: str, path: str) -> None:
        super().__init__(status=0, reason=f"not leading: {method} {path} not sent")


class _BoundedApiClient(client.ApiClient):
    """The client with a default timeout on every request (the generated client has none).

    A request that times out drops every idle pooled connection. urllib3 keeps idle connections
    without an age limit and reuses one only checking that it was not closed, so after the path
    to the API server went silent (a NAT or load balancer forgetting its state) each idle
    connection would cost one full read timeout to discover, one request after another; up to
    ``API_THREADS`` of them. The first timeout stands for all of them: reconnecting is cheap.
    """

    def call_api(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("_request_timeout") is None:
            kwargs["_request_timeout"] = REQUEST_TIMEOUT
        try:
            return super().call_api(*args, **kwargs)
        except (urllib3.exceptions.TimeoutError, urllib3.exceptions.MaxRetryError) as exc:
            if _went_silent(exc):
                log.warning("API request timed out (%s): dropping idle pooled connections", exc)
                self.rest_client.pool_manager.clear()
            raise


class FencedApiClient(_BoundedApiClient):
    """A client whose every write first asks ``may_write`` (the hub's clients: the hub's own
    and one per member centre, whose writes go through the generated methods, not
    :meth:`Kube.send`). A refused write raises :class:`NotLeading` before anything is sent;
    reads always pass."""

    may_write: Callable[[], bool] | None = None

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if method != "GET" and self.may_write is not None and not self.may_write():
            raise NotLeading(method, url)
        return super().call_api(method, url, *args, **kwargs)


def _went_silent(exc: Exception) -> bool:
    """A read or connect timeout, not a refused connection (urllib3 derives that from the
    connect timeout, but a refusing server answered: the pool's connections say nothing)."""
    cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    return isinstance(cause, urllib3.exceptions.TimeoutError) and not isinstance(
        cause, urllib3.exceptions.NewConnectionError
    )


MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
CORE_KINDS = {"Pod": "pods", "Service": "services", "ConfigMap": "configmaps"}


def error_reason(exc: ApiException) -> Reason:
    status = int(exc.status or 0)
    return ERROR_REASONS.get(status, Reason.API_SERVER_ERROR if status >= 500 else Reason.API_OTHER)


def is_terminal(exc: BaseException) -> bool:
    """True when the API server refused an object for a reason that will not change by itself."""
    return isinstance(exc, ApiException) and int(exc.status or 0) in TERMINAL_STATUSES


def api_message(exc: BaseException) -> str:
    """The API server's own explanation of a refusal (its Status message), else the error."""
    if isinstance(exc, ApiException):
        try:
            status = json.loads(exc.body or "{}")
        except (TypeError, ValueError):
            status = {}
        message = status.get("message") if isinstance(status, dict) else None
        return str(message or f"{exc.status} {exc.reason}")
    return str(exc)


log = logging.getLogger("suanli.kube")


class Kube:
    """The operator's own API client (Kopf has its own for watches and handler patches)."""

    def __init__(self, metrics: Metrics | None = None, identity: str = "suanli") -> None:
        self.metrics = metrics
        self.identity = identity
        # set by leader election: every write first asks it (a fence, see fence_writes)
        self.may_write: Callable[[], bool] | None = None
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        configuration = client.Configuration.get_default_copy()
        configuration.connection_pool_maxsize = API_THREADS
        self.api_client = _BoundedApiClient(configuration)
        # the API server's audit log then says which replica made every write
        self.api_client.user_agent = f"suanli-operator/{identity}"
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)

    def send(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> bytes:
        """One request with a plain JSON body, no model classes either way; the answer's bytes.
        A status outside 2xx raises the same ``ApiException`` the generated methods raise."""
        if method != "GET":
            self.fence(method, path)
        _, url, headers, payload, _ = self.api_client.param_serialize(
            method,
            path,
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(method, url, header_params=headers, body=payload)
        data = cast(bytes, response.read())
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(
                http_resp=response, body=data.decode(errors="replace"), data=None
            )
        return data

    def fence(self, method: str, path: str) -> None:
        """Raise :class:`NotLeading` unless this replica may write now."""
        if self.may_write is not None and not self.may_write():
            raise NotLeading(method, path)

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
        scope = f"namespaces/{namespace}/" if namespace else ""
        try:
            self.send(
                "PATCH", f"/apis/{GROUP}/{VERSION}/{scope}{plural}/{name}/status", body, MERGE_PATCH
            )
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
        """Create a Pod, Service or ConfigMap; False when one of that name exists already.

        Names carry the admission's attempt number, so an existing object is this very
        admission's (a retry after a crash), never an earlier admission's."""
        kind = manifest["kind"]
        namespace = manifest["metadata"]["namespace"]
        try:
            self.send("POST", f"/api/v1/namespaces/{namespace}/{CORE_KINDS[kind]}", manifest)
        except ApiException as exc:
            if exc.status == 409:
                return False
            self.count_error(f"{kind.lower()}s", exc)
            raise
        return True

    def count_error(self, resource: str, exc: ApiException) -> None:
        if self.metrics is not None and not isinstance(exc, NotLeading):
            self.metrics.count_api_error(resource, error_reason(exc))

    def delete(self, manifest: Mapping[str, Any]) -> None:
        """Delete a Pod, Service or ConfigMap built for an admission (gone already is fine)."""
        kind = manifest["kind"]
        metadata = manifest["metadata"]
        options = {"gracePeriodSeconds": 0} if kind == "Pod" else {}
        path = f"/api/v1/namespaces/{metadata['namespace']}/{CORE_KINDS[kind]}/{metadata['name']}"
        try:
            self.send("DELETE", path, options or None)
        except ApiException as exc:
            if exc.status != 404:
                self.count_error(f"{kind.lower()}s", exc)
                raise

    def delete_pod(self, namespace: str, name: str, *, force: bool = False) -> None:
        """Delete one pod (grace 0 when ``force``); its metering finalizer holds it until billed."""
        try:
            self.send(
                "DELETE",
                f"/api/v1/namespaces/{namespace}/pods/{name}",
                {"gracePeriodSeconds": 0 if force else 30},
            )
        except ApiException as exc:
            if exc.status != 404:
                self.count_error("pods", exc)
                raise

    def delete_stale_rank_tables(self, namespace: str, job_name: str, attempt: int) -> None:
        """Remove the rank-table ConfigMaps of the job's earlier admissions."""
        self.fence("DELETE", f"/api/v1/namespaces/{namespace}/configmaps")
        self.core.delete_collection_namespaced_config_map(
            namespace, label_selector=f"{JOB_NAME_LABEL}={job_name},{ATTEMPT_LABEL}!={attempt}"
        )

    def remove_finalizer(
        self, body: Mapping[str, Any], finalizer: str = METERING_FINALIZER
    ) -> None:
        """Drop ``finalizer`` from a pod (or a TrainingJob), only if its list is unchanged."""
        metadata = body["metadata"]
        finalizers = list(metadata.get("finalizers") or [])
        if finalizer not in finalizers:
            return
        patch = [
            {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
            {
                "op": "replace",
                "path": "/metadata/finalizers",
                "value": [f for f in finalizers if f != finalizer],
            },
        ]
        namespace, name = metadata["namespace"], metadata["name"]
        path = (
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/trainingjobs/{name}"
            if body.get("kind") == "TrainingJob"
            else f"/api/v1/namespaces/{namespace}/pods/{name}"
        )
        try:
            self.send("PATCH", path, patch, JSON_PATCH)
        except ApiException as exc:
            # 404: gone; 422: the test op failed (the list changed), the next event retries
            if exc.status not in (404, 422):
                self.count_error("pods", exc)
                raise

    def delete_job(self, namespace: str, name: str) -> None:
        self.fence("DELETE", f"trainingjobs {namespace}/{name}")
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, "trainingjobs", name
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def list_all(self, kind: str) -> list[dict[str, Any]]:
        """Every object of one watched kind, as the plain dicts watch events carry."""
        if kind in ("acceleratorclasses", "computequotas", "trainingjobs"):
            listed = cast(
                dict[str, Any], self.custom.list_cluster_custom_object(GROUP, VERSION, kind)
            )
            return cast(list[dict[str, Any]], listed.get("items") or [])
        calls: dict[str, tuple[Callable[..., Any], str, str]] = {
            "nodes": (self.core.list_node, "v1", "Node"),
            "pods": (self.core.list_pod_for_all_namespaces, "v1", "Pod"),
            "priorityclasses": (
                client.SchedulingV1Api(self.api_client).list_priority_class,
                "scheduling.k8s.io/v1",
                "PriorityClass",
            ),
        }
        call, api_version, object_kind = calls[kind]
        response = call(_preload_content=False)
        items = cast(list[dict[str, Any]], json.loads(response.data).get("items") or [])
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", object_kind)
        return items

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
        namespace = metadata.get("namespace") or "default"
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{metadata['name']}.", "namespace": namespace},
            "involvedObject": {
                key: value
                for key, value in (
                    ("apiVersion", body.get("apiVersion")),
                    ("kind", body.get("kind")),
                    ("name", metadata["name"]),
                    ("namespace", metadata.get("namespace")),
                    ("uid", metadata.get("uid")),
                    ("resourceVersion", metadata.get("resourceVersion")),
                )
                if value is not None
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": "suanli"},
            "reportingComponent": "suanli.io/operator",
            "reportingInstance": self.identity[:128],
        }
        try:
            self.send("POST", f"/api/v1/namespaces/{namespace}/events", event)
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
