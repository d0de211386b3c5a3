"""The hub's check of a hub job before dispatch (check_hub_job): table tests. The member refuses
the same jobs with the same reasons; the hub must not send it a copy it will refuse."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from suanli.constants import HUB_JOB_UID_LABEL
from suanli.controller.validate import check_hub_job, check_training_job
from suanli.reasons import Reason
from tests.unit.controller import corpus

HUB_UID = "9f8e7d6c-0000-4000-8000-000000000001"
ASCEND = {"acceleratorClass": "ascend-910b", "devicesPerReplica": 8}
H100 = {"acceleratorClass": "nvidia-h100", "devicesPerReplica": 8}
NFS = [{"name": "data", "nfs": {"server": "nfs.example", "path": "/data"}}]


def job(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(corpus.bases()["job"])
    for pointer, value in changes.items():
        corpus.set_pointer(body, pointer, value)
    return body


def hub_quota(allowed: list[str] | None = None, namespace: str = "corpus") -> dict[str, Any]:
    quota = copy.deepcopy(corpus.bases()["quota"])
    quota["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z"
    quota["spec"]["namespaces"] = [namespace]
    if allowed is not None:
        quota["spec"]["allowedVolumeKinds"] = allowed
    return quota


# (case, changes to the base job, hub classes, hub quota, reason, field named, usable options)
CASES: list[tuple[str, dict[str, Any], list[str] | None, Any, Reason | None, str, set[int]]] = [
    ("valid", {}, None, hub_quota(), None, "", {0}),
    (
        "hostNetwork",
        {"/spec/template/spec/hostNetwork": True},
        None,
        hub_quota(),
        Reason.FORBIDDEN_POD_FIELD,
        "spec.template.spec.hostNetwork",
        set(),
    ),
    (
        "a schema error",
        {"/spec/replicas": 0},
        None,
        hub_quota(),
        Reason.INVALID,
        "spec.replicas",
        set(),
    ),
    (
        "a name no pod hostname can carry",
        {"/metadata/name": "Big_Name"},
        None,
        hub_quota(),
        Reason.INVALID,
        "metadata.name",
        set(),
    ),
    (
        "a class the hub does not know",
        {"/spec/accelerators/0/acceleratorClass": "nvidia-b900"},
        None,
        hub_quota(),
        Reason.UNKNOWN_ACCELERATOR_CLASS,
        "spec.accelerators[0].acceleratorClass",
        set(),
    ),
    (
        "no classes at the hub at all",
        {},
        [],
        hub_quota(),
        Reason.UNKNOWN_ACCELERATOR_CLASS,
        "spec.accelerators[0].acceleratorClass",
        set(),
    ),
    (
        "an illegal count",
        {"/spec/accelerators/0/devicesPerReplica": 3},
        None,
        hub_quota(),
        Reason.ILLEGAL_SHAPE,
        "spec.accelerators[0].devicesPerReplica",
        set(),
    ),
    (
        "one unknown class, one illegal count",
        {
            "/spec/accelerators": [
                {"acceleratorClass": "nvidia-b900", "devicesPerReplica": 8},
                {"acceleratorClass": "nvidia-h100", "devicesPerReplica": 9},
            ]
        },
        None,
        hub_quota(),
        Reason.ILLEGAL_SHAPE,
        "spec.accelerators[1].devicesPerReplica",
        set(),
    ),
    (
        "the second option unusable: only the first is offered",
        {"/spec/accelerators": [ASCEND, {**H100, "devicesPerReplica": 9}]},
        None,
        hub_quota(),
        None,
        "",
        {0},
    ),
    (
        "the first option unknown: only the second is offered",
        {"/spec/accelerators": [{**ASCEND, "acceleratorClass": "nvidia-b900"}, H100]},
        None,
        hub_quota(),
        None,
        "",
        {1},
    ),
    (
        "both options usable",
        {"/spec/accelerators": [ASCEND, H100]},
        None,
        hub_quota(),
        None,
        "",
        {0, 1},
    ),
    (
        "nfs without the hub quota's permission",
        {"/spec/template/spec/volumes": NFS},
        None,
        hub_quota(),
        Reason.FORBIDDEN_POD_FIELD,
        "spec.template.spec.volumes[0].nfs",
        set(),
    ),
    (
        "nfs with no hub quota serving the namespace",
        {"/spec/template/spec/volumes": NFS},
        None,
        hub_quota(["nfs"], namespace="elsewhere"),
        Reason.FORBIDDEN_POD_FIELD,
        "spec.template.spec.volumes[0].nfs",
        set(),
    ),
    (
        "nfs the hub quota allows",
        {"/spec/template/spec/volumes": NFS},
        None,
        hub_quota(["nfs"]),
        None,
        "",
        {0},
    ),
    (
        "a hub-job-uid label that is not a uid",
        {"/metadata/labels": {HUB_JOB_UID_LABEL: "not-a-uid"}},
        None,
        hub_quota(),
        Reason.INVALID,
        f"metadata.labels.{HUB_JOB_UID_LABEL}",
        set(),
    ),
    (
        "a hub-job-uid label holding a uid",
        {"/metadata/labels": {HUB_JOB_UID_LABEL: HUB_UID}},
        None,
        hub_quota(),
        None,
        "",
        {0},
    ),
    (
        "an unknown PriorityClass: the members' to judge",
        {"/spec/priorityClassName": "no-such-priority"},
        None,
        hub_quota(),
        None,
        "",
        {0},
    ),
]


@pytest.mark.parametrize(
    ("changes", "class_names", "quota", "reason", "field", "usable"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_check_hub_job(
    changes: dict[str, Any],
    class_names: list[str] | None,
    quota: dict[str, Any],
    reason: Reason | None,
    field: str,
    usable: set[int],
) -> None:
    classes = corpus.catalogue()
    if class_names is not None:
        classes = {n: classes[n] for n in class_names}
    check = check_hub_job(job(**changes), classes, {"corpus-quota": quota})
    assert check.reason == reason, check.message
    assert check.ok is (reason is None)
    assert check.usable == usable
    if reason is None:
        assert check.message == ""
    else:
        assert field in check.message  # the message names the field


def test_the_job_alone_gives_the_member_s_reason_and_message() -> None:
    body = job(**{"/spec/template/spec/hostNetwork": True, "/spec/replicas": 0})
    verdict = check_training_job(body)
    check = check_hub_job(body, corpus.catalogue(), {})
    assert (check.reason, check.message) == (verdict.reason, verdict.message())
    assert check.reason is Reason.INVALID  # not every problem is a forbidden field


def test_a_refused_option_message_says_no_option_can_run() -> None:
    body = job(**{"/spec/accelerators/0/acceleratorClass": "nvidia-b900"})
    check = check_hub_job(body, corpus.catalogue(), {})
    assert check.message.startswith(
        "no accelerator option can ever run: spec.accelerators[0].acceleratorClass: "
        "no AcceleratorClass named 'nvidia-b900' (known: "
    )


def test_an_invalid_class_at_the_hub_counts_as_absent() -> None:
    classes = corpus.catalogue()
    del classes["ascend-910b"]["spec"]["vendor"]
    check = check_hub_job(job(), classes, {})
    assert check.reason is Reason.UNKNOWN_ACCELERATOR_CLASS
