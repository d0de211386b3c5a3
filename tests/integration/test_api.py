"""The CRDs as the real API server enforces them, and the operator's first verdict on a job.

These are the foundation's acceptance checks: schema errors are refused by kube-apiserver itself
(naming the field), and a shape the catalogue forbids is reported by the running operator.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from suanli.localcluster import LocalCluster
from tests.integration.conftest import Kubectl, wait_for

pytestmark = pytest.mark.integration

NAMESPACE = "api-checks"


def training_job(name: str, **spec_overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": 1,
        "template": {
            "spec": {"containers": [{"name": "trainer", "image": "example.invalid/train:1"}]}
        },
        "accelerators": [{"acceleratorClass": "ascend-910b", "devicesPerReplica": 8}],
    }
    spec.update(spec_overrides)
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


@pytest.fixture(scope="module")
def namespace(cluster: LocalCluster) -> str:
    cluster.kubectl("create", "namespace", NAMESPACE)
    return NAMESPACE


def test_a_valid_job_is_accepted(kubectl: Kubectl, namespace: str) -> None:
    code, output = kubectl.apply(training_job("valid"))
    assert code == 0, output


@pytest.mark.parametrize(
    ("case", "mutate", "field", "words"),
    [
        (
            "zero-replicas",
            lambda s: s.update(replicas=0),
            "spec.replicas",
            "greater than or equal to 1",
        ),
        (
            "negative-devices",
            lambda s: s["accelerators"][0].update(devicesPerReplica=-2),
            "spec.accelerators[0].devicesPerReplica",
            "greater than or equal to 1",
        ),
        ("unknown-field", lambda s: s.update(replicaz=3), "spec.replicaz", "unknown field"),
        ("no-options", lambda s: s.update(accelerators=[]), "spec.accelerators", "at least 1"),
        (
            "min-above-replicas",
            lambda s: s.update(replicas=2, minReplicas=3),
            "spec.minReplicas",
            "minReplicas",
        ),
    ],
)
def test_the_api_server_refuses_bad_jobs_naming_the_field(
    kubectl: Kubectl, namespace: str, case: str, mutate: Any, field: str, words: str
) -> None:
    job = training_job(f"bad-{case}")
    spec = copy.deepcopy(job["spec"])
    mutate(spec)
    job["spec"] = spec
    code, output = kubectl.apply(job)
    assert code != 0, f"{case} was accepted:\n{output}"
    assert field in output, f"{field!r} not named in:\n{output}"
    assert words.lower() in output.lower(), f"{words!r} not in:\n{output}"


def test_the_catalogue_is_installed(kubectl: Kubectl) -> None:
    names = {c["metadata"]["name"] for c in kubectl.get("acceleratorclasses")["items"]}
    assert {"ascend-910a", "ascend-910b", "nvidia-h100", "nvidia-a100"} <= names


@pytest.mark.usefixtures("operator")
def test_illegal_chip_count_gets_an_illegal_shape_condition(
    kubectl: Kubectl, namespace: str
) -> None:
    job = training_job(
        "three-chips", accelerators=[{"acceleratorClass": "ascend-910a", "devicesPerReplica": 3}]
    )
    code, output = kubectl.apply(job)
    assert code == 0, output  # legal to the schema: only the catalogue knows 3 is wrong

    def illegal_shape_condition() -> dict[str, Any] | None:
        status = kubectl.get("trainingjob", "three-chips", "-n", namespace).get("status") or {}
        for condition in status.get("conditions") or []:
            if condition.get("reason") == "IllegalShape":
                return dict(condition)
        return None

    condition = wait_for("an IllegalShape condition", illegal_shape_condition, timeout=60)
    assert condition["status"] == "False"
    assert "1, 2, 4 or 8" in condition["message"], condition["message"]
    assert "3 devices per replica" in condition["message"], condition["message"]


@pytest.mark.usefixtures("operator")
def test_unknown_class_is_reported(kubectl: Kubectl, namespace: str) -> None:
    job = training_job(
        "unknown-class",
        accelerators=[{"acceleratorClass": "tpu-v5", "devicesPerReplica": 4}],
    )
    assert kubectl.apply(job)[0] == 0

    def reason() -> str | None:
        status = kubectl.get("trainingjob", "unknown-class", "-n", namespace).get("status") or {}
        reasons = [c.get("reason") for c in status.get("conditions") or []]
        return "UnknownAcceleratorClass" if "UnknownAcceleratorClass" in reasons else None

    wait_for("an UnknownAcceleratorClass condition", reason, timeout=60)
