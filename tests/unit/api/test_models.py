"""The models accept what the API server accepts, refuse the rest naming the field, and
round-trip raw API objects without losing or inventing anything."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from suanli.api import (
    AcceleratorClass,
    ComputeQuota,
    Condition,
    Phase,
    Reason,
    TrainingJob,
    TrainingJobStatus,
)


def job_dict(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "replicas": 2,
        "template": {"spec": {"containers": [{"name": "trainer", "image": "train:1"}]}},
        "accelerators": [{"acceleratorClass": "ascend-910b", "devicesPerReplica": 8}],
    }
    body.update(spec)
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "j", "namespace": "team"},
        "spec": body,
    }


def error_locations(exc: ValidationError) -> list[str]:
    return [".".join(str(part) for part in error["loc"]) for error in exc.errors()]


def test_a_raw_api_object_round_trips_exactly() -> None:
    raw = job_dict(minReplicas=1, suspend=False)
    raw["metadata"].update(
        uid="1234",
        resourceVersion="7",
        generation=3,
        managedFields=[{"manager": "kubectl", "operation": "Apply"}],
        finalizers=["kopf.suanli.io/finalizer"],
    )
    raw["spec"]["template"]["spec"]["volumes"] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "corpus"}}
    ]
    raw["status"] = {
        "phase": "Running",
        "conditions": [
            {
                "type": "Admitted",
                "status": "True",
                "reason": "Admitted",
                "message": "admitted on option 1",
                "lastTransitionTime": "2026-11-23T12:00:00Z",
                "observedGeneration": 3,
            }
        ],
        "chosenOption": {"index": 0, "acceleratorClass": "ascend-910b"},
        "placement": [{"replica": 0, "node": "n1", "deviceIndices": [0, 1, 2, 3, 4, 5, 6, 7]}],
        "startedAt": "2026-11-23T12:00:05Z",
        "restartCount": 0,
    }
    job = TrainingJob.model_validate(copy.deepcopy(raw))
    assert job.spec.min_replicas == 1
    assert job.status is not None and job.status.phase == Phase.RUNNING
    assert job.metadata.model_extra is not None and "managedFields" in job.metadata.model_extra
    dumped = job.model_dump(by_alias=True, exclude_none=True)
    # Defaults the API server would also fill in appear; nothing else changes.
    raw["spec"]["restartPolicy"] = "Never"
    raw["spec"]["template"]["spec"]["containers"][0]  # unchanged
    for condition in raw["status"]["conditions"]:
        assert isinstance(condition["lastTransitionTime"], str)
    assert dumped == raw


def test_timestamps_serialise_as_the_api_server_writes_them() -> None:
    status = TrainingJobStatus(
        admitted_at=datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
        conditions=[
            Condition(
                type="Admitted",
                status="False",
                reason=Reason.QUOTA_EXCEEDED,
                message="team-llm has 0 of 16 ascend-910b left",
                last_transition_time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            )
        ],
    )
    dumped = status.model_dump(by_alias=True, exclude_none=True)
    assert dumped["admittedAt"] == "2026-01-02T03:04:05Z"
    assert dumped["conditions"][0]["lastTransitionTime"] == "2026-01-02T03:04:05Z"
    assert dumped["conditions"][0]["reason"] == "QuotaExceeded"


@pytest.mark.parametrize(
    ("mutate", "location"),
    [
        (lambda s: s.update(replicas=0), "spec.replicas"),
        (
            lambda s: s["accelerators"][0].update(devicesPerReplica=-2),
            "spec.accelerators.0.devicesPerReplica",
        ),
        (lambda s: s.update(accelerators=[]), "spec.accelerators"),
        (lambda s: s.update(replicaz=3), "spec.replicaz"),
        (lambda s: s["template"]["spec"].update(containers=[]), "spec.template.spec.containers"),
        (lambda s: s.update(restartPolicy="Always"), "spec.restartPolicy"),
        (lambda s: s.update(topology={"mode": "Sometimes"}), "spec.topology.mode"),
        (
            lambda s: s["template"]["spec"]["containers"][0].update(
                resources={"requests": {"cpu": "lots"}}
            ),
            "spec.template.spec.containers.0.resources.requests.cpu",
        ),
    ],
)
def test_field_errors_name_the_field(mutate: Any, location: str) -> None:
    raw = job_dict()
    mutate(raw["spec"])
    with pytest.raises(ValidationError) as caught:
        TrainingJob.model_validate(raw)
    assert any(loc.startswith(location) for loc in error_locations(caught.value)), error_locations(
        caught.value
    )


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"replicas": 2, "minReplicas": 3}, "minReplicas must not exceed replicas"),
        (
            {
                "replicas": 4,
                "minReplicas": 3,
                "accelerators": [
                    {"acceleratorClass": "nvidia-h100", "devicesPerReplica": 8, "replicas": 2}
                ],
            },
            "accelerators[0].replicas",
        ),
        ({"priority": 5, "priorityClassName": "high"}, "not both"),
        ({"restartLimit": 3}, "restartLimit needs restartPolicy OnFailure"),
        ({"topology": {"mode": "Require"}}, "topology.level is required"),
    ],
)
def test_cross_field_rules_mirror_the_cel_rules(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words.replace("[", r"\[").replace("]", r"\]")):
        TrainingJob.model_validate(job_dict(**spec))


def test_option_replicas_override_spec_replicas() -> None:
    job = TrainingJob.model_validate(
        job_dict(
            accelerators=[
                {"acceleratorClass": "nvidia-h100", "devicesPerReplica": 8},
                {"acceleratorClass": "ascend-910b", "devicesPerReplica": 8, "replicas": 4},
            ]
        )
    )
    assert [job.spec.replicas_for(i) for i in range(2)] == [2, 4]


def quota_dict(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "namespaces": ["team-a"],
        "resources": [{"acceleratorClass": "nvidia-h100", "nominal": 8}],
    }
    body.update(spec)
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "ComputeQuota",
        "metadata": {"name": "q"},
        "spec": body,
    }


def test_quota_defaults_and_quantities() -> None:
    quota = ComputeQuota.model_validate(quota_dict(cpu=512, memory="4Ti"))
    assert quota.spec.fair_share_weight == 1
    assert quota.spec.preemption.within_quota == "Never"
    assert quota.spec.cpu == "512" and quota.spec.memory == "4Ti"


def test_quantities_become_strings_so_pods_built_from_them_are_valid() -> None:
    raw = job_dict()
    raw["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": 64, "memory": "512Gi"},
        "limits": {"cpu": 64.0},
    }
    resources = TrainingJob.model_validate(raw).spec.template.spec.containers[0].resources
    assert resources is not None
    assert resources.requests == {"cpu": "64", "memory": "512Gi"}
    assert resources.limits == {"cpu": "64"}


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (
            {"resources": [{"acceleratorClass": "nvidia-h100", "nominal": 8, "borrowingLimit": 4}]},
            "need a cohort",
        ),
        (
            {
                "cohort": "c",
                "resources": [{"acceleratorClass": "nvidia-h100", "nominal": 4, "lendingLimit": 8}],
            },
            "lendingLimit must not exceed nominal",
        ),
        (
            {
                "resources": [
                    {"acceleratorClass": "nvidia-h100", "nominal": 4},
                    {"acceleratorClass": "nvidia-h100", "nominal": 8},
                ]
            },
            "listed more than once",
        ),
        ({"namespaces": []}, "namespaces"),
        ({"namespaces": ["Team_A"]}, "namespaces"),
        ({"cpu": "many"}, "cpu"),
    ],
)
def test_quota_refusals_name_the_field(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        ComputeQuota.model_validate(quota_dict(**spec))


def accelerator_dict(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "vendor": "huawei",
        "resourceName": "huawei.com/Ascend910",
        "nodeLabels": {"accelerator-type": "module"},
        "devicesPerNode": 8,
        "deviceMemoryGiB": 32,
        "computeTFLOPS": 256,
        "topology": {
            "groupSize": 4,
            "allowedDeviceCounts": [1, 2, 4, 8],
            "multiReplicaDeviceCount": 8,
        },
    }
    body.update(spec)
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "AcceleratorClass",
        "metadata": {"name": "a"},
        "spec": body,
    }


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"vendor": "amd"}, "vendor"),
        ({"resourceName": "gpu"}, "resourceName"),
        ({"nodeLabels": {}}, "nodeLabels"),
        ({"computeTFLOPS": 0}, "computeTFLOPS"),
        ({"devicesPerNode": 4}, "exceed devicesPerNode"),
        (
            {
                "topology": {
                    "groupSize": 4,
                    "allowedDeviceCounts": [1, 2, 4],
                    "multiReplicaDeviceCount": 8,
                }
            },
            "multiReplicaDeviceCount must be one of",
        ),
        ({"topology": {"groupSize": 4, "allowedDeviceCounts": [1, 1]}}, "must not repeat"),
        (
            {"topology": {"groupSize": 4, "allowedDeviceCounts": [1, 2, 4, 6]}},
            "whole number of groups",
        ),
        ({"topology": {"groupSize": 3, "allowedDeviceCounts": [1, 3]}}, "must divide"),
        ({"topology": {"groupSize": 4, "allowedDeviceCounts": [0, 1]}}, "allowedDeviceCounts"),
    ],
)
def test_accelerator_class_refusals_name_the_field(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        AcceleratorClass.model_validate(accelerator_dict(**spec))


def test_wrong_kind_or_api_version_is_refused() -> None:
    raw = accelerator_dict()
    raw["kind"] = "TrainingJob"
    with pytest.raises(ValidationError, match="kind"):
        AcceleratorClass.model_validate(raw)
    raw = accelerator_dict()
    raw["apiVersion"] = "suanli.io/v1"
    with pytest.raises(ValidationError, match="apiVersion"):
        AcceleratorClass.model_validate(raw)


def test_template_descriptions_state_the_pod_builders_allow_lists() -> None:
    """What `kubectl explain` tells tenants is what the pod builder actually lets through."""
    from suanli.api import podtemplate
    from suanli.workload import pods

    assert set(podtemplate.ALLOWED_VOLUME_SOURCES) == set(pods.SAFE_VOLUME_SOURCES)
    assert set(podtemplate.ALLOWED_POD_SECURITY) == set(pods.SAFE_POD_SECURITY)
    assert set(podtemplate.ALLOWED_CONTAINER_SECURITY) == set(pods.SAFE_CONTAINER_SECURITY)
    container_fields = {field.alias for field in podtemplate.Container.model_fields.values()} - {
        "securityContext",
        "resources",
    }
    assert container_fields == set(pods.CONTAINER_FIELDS)


def test_template_fields_suanli_would_ignore_are_refused() -> None:
    for field, value in (
        ("nodeSelector", {"a": "b"}),
        ("affinity", {}),
        ("schedulerName", "x"),
        ("hostPID", True),
    ):
        raw = job_dict()
        raw["spec"]["template"]["spec"][field] = value
        with pytest.raises(ValidationError) as caught:
            TrainingJob.model_validate(raw)
        assert f"spec.template.spec.{field}" in error_locations(caught.value)


def test_forbidden_but_explained_fields_reach_the_operator() -> None:
    """hostNetwork and hostPath pass the schema so the operator can name them in its verdict."""
    raw = job_dict()
    raw["spec"]["template"]["spec"]["hostNetwork"] = True
    raw["spec"]["template"]["spec"]["volumes"] = [{"name": "root", "hostPath": {"path": "/"}}]
    dumped = TrainingJob.model_validate(raw).model_dump(by_alias=True, exclude_none=True)
    assert dumped["spec"]["template"]["spec"]["volumes"][0]["hostPath"] == {"path": "/"}
    assert dumped["spec"]["template"]["spec"]["hostNetwork"] is True
