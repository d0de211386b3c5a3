"""Thin, blocking Kubernetes API calls, always run off the event loop (``asyncio.to_thread``).

Status is written as a JSON merge patch that carries ``metadata.resourceVersion``: the API server
then refuses it with 409 Conflict when the object changed since we read it, and the next watch
event triggers a fresh decision. No blind overwrites.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from suanli.api import GROUP, VERSION

log = logging.getLogger("suanli.kube")


class Kube:
    """The operator's own API client (Kopf has its own for watches and handler patches)."""

    def __init__(self) -> None:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
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
