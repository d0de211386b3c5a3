"""API objects become the pure core's types exactly, for every class the catalogue ships."""

from __future__ import annotations

from typing import Any

import pytest

from suanli.api.computequota import ComputeQuota
from suanli.api.trainingjob import TrainingJob
from suanli.catalogue import DEFAULT_CATALOGUE
from suanli.controller.inventory import class_of_node, node_record
from suanli.controller.translate import (
    catalogue_entry,
    job_request,
    option_problems,
    placement_status,
    quota_spec,
    recorded_admission,
)
from suanli.localcluster.fakenodes import default_nodes
from suanli.placement.reference import ClusterState
from suanli.scheduling.gangs import gang_for


@pytest.mark.parametrize("cls", DEFAULT_CATALOGUE, ids=lambda c: c.metadata.name or "")
def test_every_catalogue_class_is_a_valid_device_class(cls: Any) -> None:
    entry = catalogue_entry(cls)
    assert entry.device_class.name == cls.metadata.name
    assert entry.device_class.allowed_counts == tuple(
        sorted(cls.spec.topology.allowed_device_counts)
    )
    ClusterState([entry.device_class])  # the core accepts it


def catalogue() -> dict[str, Any]:
    return {c.metadata.name or "": catalogue_entry(c) for c in DEFAULT_CATALOGUE}


def test_every_fake_node_maps_to_a_class_with_its_devices() -> None:
    for node in default_nodes():
        node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
        record = node_record(node, catalogue())
        assert record.device_class is not None, node["metadata"]["name"]
        assert record.devices == 8 and record.schedulable


def test_not_ready_or_cordoned_nodes_are_not_schedulable() -> None:
    node = default_nodes()[0]
    assert not node_record(node, catalogue()).schedulable  # no Ready condition yet
    node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    node["spec"] = {"unschedulable": True}
    assert not node_record(node, catalogue()).schedulable
    node["spec"] = {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]}
    assert node_record(node, catalogue()).schedulable  # mirrors Ready, which is True
    node["spec"] = {"taints": [{"key": "maintenance", "effect": "NoSchedule"}]}
    assert not node_record(node, catalogue()).schedulable


def test_the_most_specific_class_wins() -> None:
    labels = {"accelerator": "huawei-Ascend910", "accelerator-type": "module-910b-8"}
    assert class_of_node(labels, catalogue()) == "ascend-910b"
    assert class_of_node({"accelerator": "huawei-Ascend910"}, catalogue()) is None


def job_body(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "j", "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "replicas": 2,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "i",
                            "resources": {"requests": {"cpu": "4", "memory": "1Gi"}},
                        }
                    ]
                }
            },
            "accelerators": [
                {"acceleratorClass": "nvidia-h100", "devicesPerReplica": 8},
                {"acceleratorClass": "ascend-910b", "devicesPerReplica": 4, "replicas": 4},
            ],
            **spec,
        },
    }


def test_a_job_becomes_a_request_with_ordered_options() -> None:
    body = job_body(priority=7)
    request = job_request(TrainingJob.model_validate(body), body)
    assert request.key == "ns/j" and request.priority == 7
    assert [(o.device_class, o.devices_per_replica, o.replicas) for o in request.options] == [
        ("nvidia-h100", 8, 2),
        ("ascend-910b", 4, 4),
    ]
    assert request.options[0].cpu_milli_per_replica == 4000
    assert request.options[0].memory_bytes_per_replica == 2**30


def test_a_recorded_placement_round_trips() -> None:
    body = job_body()
    request = job_request(TrainingJob.model_validate(body), body)
    state = ClusterState([e.device_class for e in catalogue().values()])
    for node in default_nodes():
        node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
        r = node_record(node, catalogue())
        state.add_node(r.name, r.device_class, r.cpu_milli, r.memory_mib, r.pods, devices=r.devices)
    placement = state.place(gang_for(request, request.options[1]))
    status = {
        "chosenOption": {"index": 1, "acceleratorClass": "ascend-910b"},
        "placement": placement_status(placement),  # type: ignore[arg-type]
    }
    admission = recorded_admission(request, status)
    assert admission is not None
    assert admission.placement.replicas == placement.replicas  # type: ignore[union-attr]
    assert recorded_admission(request, {"phase": "Queued"}) is None


def test_illegal_shapes_and_unknown_classes_are_named() -> None:
    body = job_body(
        accelerators=[
            {"acceleratorClass": "ascend-910a", "devicesPerReplica": 3},
            {"acceleratorClass": "tpu", "devicesPerReplica": 1},
        ]
    )
    classes = {name: e.device_class for name, e in catalogue().items()}
    problems = option_problems(TrainingJob.model_validate(body), classes)
    assert [p.reason for p in problems] == ["IllegalShape", "UnknownAcceleratorClass"]
    assert "1, 2, 4 or 8" in problems[0].message
    assert "'tpu'" in problems[1].message


def test_quota_spec_keeps_limits_and_weights() -> None:
    quota = ComputeQuota.model_validate(
        {
            "apiVersion": "suanli.io/v1alpha1",
            "kind": "ComputeQuota",
            "metadata": {"name": "q"},
            "spec": {
                "namespaces": ["a", "b"],
                "cohort": "c",
                "fairShareWeight": 0,
                "resources": [
                    {
                        "acceleratorClass": "nvidia-h100",
                        "nominal": 8,
                        "borrowingLimit": 4,
                        "lendingLimit": 2,
                    }
                ],
                "cpu": "64",
                "memory": "256Gi",
            },
        }
    )
    spec = quota_spec(quota)
    assert spec.namespaces == frozenset({"a", "b"})
    share = spec.devices["nvidia-h100"]
    assert (share.nominal, share.borrowing_limit, share.lending_limit) == (8, 4, 2)
    assert spec.cpu_milli is not None and spec.cpu_milli.nominal == 64000
    assert spec.weight > 0  # a zero weight still orders, it never divides by zero
