"""A small centre as API dictionaries: two H100 and two Ascend 910B nodes, two tenants."""

from __future__ import annotations

import time
from typing import Any

import pytest

from suanli.catalogue import DEFAULT_CATALOGUE
from suanli.cli.plan import ClusterObjects
from suanli.localcluster.fakenodes import MODELS, node_manifest

NOW = time.time()


def stamp(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - seconds_ago))


def ready_node(name: str, kind: str, rack: str) -> dict[str, Any]:
    node = node_manifest(name, MODELS[kind], rack)
    node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    return node


def quota(name: str, resources: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "ComputeQuota",
        "metadata": {"name": name},
        "spec": {"namespaces": [name], "resources": resources, **spec},
    }


def job(
    name: str,
    namespace: str,
    options: list[dict[str, Any]],
    replicas: int = 1,
    age: float = 60,
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": stamp(age)},
        "spec": {
            "replicas": replicas,
            "accelerators": options,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "trainer",
                            "image": "example.invalid/train:1",
                            "resources": {"requests": {"cpu": "8", "memory": "64Gi"}},
                        }
                    ]
                }
            },
            **spec,
        },
    }
    if status is not None:
        body["status"] = status
    return body


H100_8 = [{"acceleratorClass": "nvidia-h100", "devicesPerReplica": 8}]


def running(node: str, started_ago: float, devices: int = 8) -> dict[str, Any]:
    return {
        "phase": "Running",
        "chosenOption": {"index": 0, "acceleratorClass": "nvidia-h100"},
        "placement": [{"replica": 0, "node": node, "deviceIndices": list(range(devices))}],
        "admittedAt": stamp(started_ago + 5),
        "startedAt": stamp(started_ago),
    }


def centre(*jobs: dict[str, Any]) -> ClusterObjects:
    """team-a: 24 H100 and 16 910B nominal; team-b: 8 H100; no cohort. One H100 node is full."""
    return ClusterObjects(
        classes=[c.model_dump(by_alias=True, exclude_none=True) for c in DEFAULT_CATALOGUE],
        quotas=[
            quota(
                "team-a",
                [
                    {"acceleratorClass": "nvidia-h100", "nominal": 24},
                    {"acceleratorClass": "ascend-910b", "nominal": 16},
                ],
            ),
            quota("team-b", [{"acceleratorClass": "nvidia-h100", "nominal": 8}]),
        ],
        jobs=list(jobs),
        nodes=[
            ready_node("h100-1", "nvidia-h100", "rack-h1"),
            ready_node("h100-2", "nvidia-h100", "rack-h1"),
            ready_node("npu-1", "ascend-910b", "rack-a1"),
            ready_node("npu-2", "ascend-910b", "rack-a1"),
        ],
        pods=[],
    )


@pytest.fixture
def busy_centre() -> ClusterObjects:
    """A running 8-H100 job (max 1 h, 10 min in) on h100-1; a 2 × 8 H100 job waiting in team-a,
    an over-quota job in team-b, and a job falling back from H100 to Ascend."""
    return centre(
        job(
            "trainer",
            "team-a",
            H100_8,
            status=running("h100-1", 600),
            maxRunSeconds=3600,
            age=700,
        ),
        job("big", "team-a", H100_8, replicas=2, age=300),
        job("greedy", "team-b", H100_8, replicas=2, age=200),
        job(
            "fallback",
            "team-a",
            [
                {"acceleratorClass": "nvidia-h100", "devicesPerReplica": 8, "replicas": 4},
                {"acceleratorClass": "ascend-910b", "devicesPerReplica": 8},
            ],
            replicas=2,
            age=100,
        ),
    )
