"""Validation at its exact limits, and the words of messages a tenant reads.

Found by the seed-19 mutation sample (docs/testing.md): a bound moved by one (``>`` into ``>=``)
or a message and a field name changed, and no test noticed. Each limit is checked at the limit
(accepted) and one past it (refused, with the exact field and message).
"""

from __future__ import annotations

import copy

from suanli.controller.validate import (
    ANNOTATIONS_RESERVED_BYTES,
    MAX_ANNOTATIONS_BYTES,
    MAX_DEVICE_MEMORY_GIB,
    MAX_IMAGE_LENGTH,
    check_accelerator_class,
)
from tests.unit.controller import corpus
from tests.unit.controller.test_validate import job
from tests.unit.controller.test_validate_details import CONTAINER, messages

ANNOTATIONS = "spec.template.metadata.annotations"


def test_annotations_may_fill_their_budget_exactly() -> None:
    limit = MAX_ANNOTATIONS_BYTES - ANNOTATIONS_RESERVED_BYTES
    at_limit = {"note": "x" * (limit - len("note"))}
    assert messages(job(**{"/spec/template/metadata/annotations": at_limit})) == []
    over = {"note": "x" * (limit - len("note") + 1)}
    assert messages(job(**{"/spec/template/metadata/annotations": over})) == [
        (
            ANNOTATIONS,
            f"{ANNOTATIONS}: annotations total {limit + 1} bytes; at most {limit} (Kubernetes "
            "allows 256 KiB per object and suanli adds up to 4 KiB to every pod)",
        )
    ]


def test_an_image_reference_may_be_exactly_as_long_as_allowed() -> None:
    image = "example.invalid/" + "a" * (MAX_IMAGE_LENGTH - len("example.invalid/"))
    assert messages(job(**{"/spec/template/spec/containers/0/image": image})) == []
    field = f"{CONTAINER}.image"
    assert messages(job(**{"/spec/template/spec/containers/0/image": image + "b"})) == [
        (field, f"{field}: {MAX_IMAGE_LENGTH + 1} characters; at most {MAX_IMAGE_LENGTH}")
    ]


def test_an_environment_name_may_hold_a_space_but_not_a_control_character() -> None:
    """Kubernetes allows any printable ASCII but '=' in an environment variable's name."""
    env = "/spec/template/spec/containers/0/env"
    assert messages(job(**{env: [{"name": "MY VAR", "value": "1"}]})) == []
    field = f"{CONTAINER}.env[0].name"
    ((named, message),) = messages(job(**{env: [{"name": "TAB\tVAR", "value": "1"}]}))
    assert named == field
    assert message.endswith(
        "is not an environment variable name: printable ASCII characters except '='"
    )


def test_a_sub_path_out_of_its_volume_says_what_a_sub_path_must_be() -> None:
    body = job()
    spec = body["spec"]["template"]["spec"]
    spec["volumes"] = [{"name": "data", "emptyDir": {}}]
    spec["containers"][0]["volumeMounts"] = [
        {"name": "data", "mountPath": "/d", "subPath": "../etc"}
    ]
    field = f"{CONTAINER}.volumeMounts[0].subPath"
    assert messages(body) == [(field, f"{field}: must be a relative path without '..'")]


def test_a_label_key_with_a_bad_prefix_says_what_a_prefix_must_be() -> None:
    key = "Not_A_Domain/app"
    field = f"spec.template.metadata.labels.{key}"
    assert messages(job(**{"/spec/template/metadata/labels": {key: "x"}})) == [
        (
            field,
            f"{field}: invalid label key: the prefix must be a DNS subdomain of at most 253 "
            "characters (example.com)",
        )
    ]


def test_a_class_with_more_device_memory_than_possible_names_that_field() -> None:
    body = copy.deepcopy(corpus.catalogue()["ascend-910b"])
    body["spec"]["deviceMemoryGiB"] = MAX_DEVICE_MEMORY_GIB * 2
    (problem,) = check_accelerator_class(body).problems
    assert problem.field == "spec.deviceMemoryGiB"
    assert "more than this centre could ever have" in problem.message


def test_a_hub_job_uid_label_that_is_no_uid_says_what_the_label_is_for() -> None:
    field = "metadata.labels.suanli.io/hub-job-uid"
    assert messages(job(**{"/metadata/labels": {"suanli.io/hub-job-uid": "anything"}})) == [
        (
            field,
            f"{field}: 'anything' (8 characters) is not a uid (the hub sets this label on its "
            "copies to the hub job's uid, and it names SUANLI_CHECKPOINT_DIR)",
        )
    ]
