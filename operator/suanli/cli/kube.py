"""The CLI's connection to the API server: kubeconfig and context as kubectl resolves them.

Why not the controller's client: the operator's client is built for a long-lived watcher with
leader election; the CLI makes a handful of list calls and one create, and must report failures
the way kubectl does (``Error from server (NotFound): ...``), naming what was wrong.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from suanli.api.common import API_VERSION, GROUP
from suanli.cli.plan import ClusterObjects
from suanli.constants import JOB_NAME_LABEL

VERSION = API_VERSION.split("/")[1]


class CliError(Exception):
    """A failure to report as ``error: ...`` with exit code 1, as kubectl does."""


@dataclass(frozen=True)
class Target:
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    all_namespaces: bool = False


def _api_error(exc: ApiException, what: str) -> CliError:
    if exc.status == 404:
        return CliError(f"Error from server (NotFound): {what} not found")
    if exc.status == 403:
        return CliError(f"Error from server (Forbidden): {what}: {exc.reason}")
    body = exc.body.decode() if isinstance(exc.body, bytes) else str(exc.body or exc.reason)
    return CliError(f"Error from server ({exc.reason}): {what}: {body}")


class Kube:
    """Lists, gets, creates and watches the objects the CLI needs."""

    def __init__(self, target: Target) -> None:
        path = target.kubeconfig or os.environ.get("KUBECONFIG") or None
        if path is not None:
            missing = [p for p in path.split(os.pathsep) if p and not Path(p).exists()]
            if missing:
                raise CliError(f"stat {missing[0]}: no such file or directory (--kubeconfig)")
        try:
            contexts, current = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=path
            )
            chosen = current
            if target.context is not None:
                found = [c for c in contexts if c["name"] == target.context]
                if not found:
                    names = ", ".join(sorted(c["name"] for c in contexts)) or "none"
                    raise CliError(
                        f'context "{target.context}" does not exist (--context; known: {names})'
                    )
                chosen = found[0]
            self.api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=path, context=target.context
            )
        except ConfigException as exc:
            raise CliError(f"invalid kubeconfig: {exc}") from None
        default_namespace = (chosen or {}).get("context", {}).get("namespace") or "default"
        self.namespace = target.namespace or default_namespace
        self.all_namespaces = target.all_namespaces
        self.core = client.CoreV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.server = str(self.api_client.configuration.host)
        # one attempt, as kubectl makes: an unreachable server is reported at once
        self.api_client.rest_client.pool_manager.connection_pool_kw["retries"] = False

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except ApiException as exc:
            raise _api_error(exc, what) from None
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise CliError(
                f"Unable to connect to the server {self.server}: {exc} "
                "(check --kubeconfig and --context)"
            ) from None

    def _list(self, plural: str, function: Any, *args: Any) -> Any:
        """A list call; a 404 means the CRD is not installed, worded as kubectl words it."""
        try:
            return function(*args)
        except ApiException as exc:
            if exc.status == 404:
                raise CliError(
                    f'the server doesn\'t have a resource type "{plural}" (is suanli installed? '
                    f"kubectl get crd {plural}.{GROUP})"
                ) from None
            raise _api_error(exc, f"{plural}.{GROUP}") from None
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise CliError(
                f"Unable to connect to the server {self.server}: {exc} "
                "(check --kubeconfig and --context)"
            ) from None

    def list_cluster(self, plural: str) -> list[dict[str, Any]]:
        result = self._list(plural, self.custom.list_cluster_custom_object, GROUP, VERSION, plural)
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    def list_jobs(self, namespace: str | None = None) -> list[dict[str, Any]]:
        if namespace is None:
            return self.list_cluster("trainingjobs")
        result = self._list(
            "trainingjobs",
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            "trainingjobs",
        )
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    def get_job(self, namespace: str, name: str) -> dict[str, Any]:
        job: dict[str, Any] = self._call(
            f'trainingjobs.{GROUP} "{name}" (namespace {namespace})',
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            "trainingjobs",
            name,
        )
        return job

    def create_job(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        name = body.get("metadata", {}).get("name", "")
        created: dict[str, Any] = self._call(
            f'trainingjobs.{GROUP} "{name}"',
            self.custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            "trainingjobs",
            body,
            field_validation="Strict",
        )
        return created

    def job_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        result = self._call(
            "pods",
            self.core.list_namespaced_pod,
            namespace,
            label_selector=f"{JOB_NAME_LABEL}={name}",
        )
        return [self.api_client.sanitize_for_serialization(p) for p in result.items]

    def snapshot(self) -> ClusterObjects:
        """Everything the scheduling cycle reads, listed now (nodes and pods as plain dicts)."""
        nodes = self._call("nodes", self.core.list_node).items
        pods = self._call("pods", self.core.list_pod_for_all_namespaces).items
        serialise = self.api_client.sanitize_for_serialization
        return ClusterObjects(
            classes=self.list_cluster("acceleratorclasses"),
            quotas=self.list_cluster("computequotas"),
            jobs=self.list_cluster("trainingjobs"),
            nodes=[serialise(n) for n in nodes],
            pods=[serialise(p) for p in pods],
        )
