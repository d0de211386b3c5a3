"""Validation details the corpus and the main table only sample: exact messages tenants read,
and the loops that must look at every entry (found missing by mutation testing: a ``continue``
turned into ``break``, a field name misspelt, a message replaced).

Every case is an object in, the exact problems (field and message) out.
"""

from __future__ import annotations

import copy
from typing import Any

from suanli.api import AcceleratorClass
from suanli.controller.validate import (
    check_accelerator_class,
    check_class_against,
    check_compute_quota,
    check_job_against,
    check_quota_against,
    check_training_job,
)
from tests.unit.controller import corpus
from tests.unit.controller.test_validate import (
    accelerator_class,
    admitted,
    catalogue,
    job,
    problems_of,
    quota,
)

CONTAINER = "spec.template.spec.containers[0]"


def messages(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p.field, p.message) for p in problems_of(manifest)]


# --- TrainingJob ---------------------------------------------------------------------------------
def test_an_unknown_field_is_named_as_such() -> None:
    assert messages(job(**{"/spec/bogus": 1})) == [("spec.bogus", "spec.bogus: unknown field")]


def test_a_bad_label_key_says_what_a_key_name_may_hold() -> None:
    field = "spec.template.metadata.labels.-bad"
    assert messages(job(**{"/spec/template/metadata/labels": {"-bad": "x"}})) == [
        (
            field,
            f"{field}: invalid label key: the name must be 1-63 characters of letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit",
        )
    ]


def test_a_too_long_environment_value_says_why() -> None:
    body = job(**{"/spec/template/spec/containers/0/env": [{"name": "A", "value": "x" * 131073}]})
    field = f"{CONTAINER}.env[0].value"
    assert messages(body) == [
        (
            field,
            f"{field}: 131073 bytes; at most 131072 (Linux refuses to start a process with a "
            "longer environment string)",
        )
    ]


def test_the_environment_counts_towards_the_exec_total() -> None:
    """Eleven 100 KiB variables: each is legal alone, together they pass the 1 MiB budget."""
    env = [{"name": f"V{i}", "value": "x" * (100 * 1024)} for i in range(11)]
    total = sum(len(f"V{i}") + 100 * 1024 + 1 for i in range(11))
    assert messages(job(**{"/spec/template/spec/containers/0/env": env})) == [
        (
            CONTAINER,
            f"{CONTAINER}: command, args and env add up to {total} bytes; at most 1048576 "
            "(the rest of Linux's 2 MiB ARG_MAX is left for suanli's and the image's variables)",
        )
    ]


def test_a_mount_of_an_unknown_volume_lists_the_known_ones() -> None:
    body = job()
    spec = body["spec"]["template"]["spec"]
    spec["volumes"] = [{"name": "data", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}]
    spec["containers"][0]["volumeMounts"] = [{"name": "nope", "mountPath": "/d"}]
    field = f"{CONTAINER}.volumeMounts[0].name"
    assert messages(body) == [
        (
            field,
            f"{field}: no volume named 'nope' in spec.template.spec.volumes (known: cache, data)",
        )
    ]


def test_every_allowed_resource_is_bounded_even_after_a_refused_one() -> None:
    requests = {"nvidia.com/gpu": "1", "hugepages-2Mi": "1", "cpu": "5000"}
    body = job(**{"/spec/template/spec/containers/0/resources/requests": requests})
    fields = [field for field, _ in messages(body)]
    assert fields == [
        f"{CONTAINER}.resources.requests.nvidia.com/gpu",
        f"{CONTAINER}.resources.requests.hugepages-2Mi",
        f"{CONTAINER}.resources.requests.cpu",
    ]
    assert messages(body)[2][1].endswith("5000 is more than any node offers: at most 4096 CPUs")


def test_an_unknown_class_lists_the_known_ones() -> None:
    body = job(**{"/spec/accelerators/0/acceleratorClass": "tpu-v5"})
    parsed = check_training_job(body).model
    assert parsed is not None
    two = {k: v for k, v in catalogue().items() if k in ("ascend-910b", "nvidia-h100")}
    (problem,) = check_job_against(parsed, two)
    assert problem.message == (
        "spec.accelerators[0].acceleratorClass: no AcceleratorClass named 'tpu-v5' "
        "(known: ascend-910b, nvidia-h100)"
    )


# --- ComputeQuota --------------------------------------------------------------------------------
def test_each_quota_row_bound_names_its_own_field() -> None:
    body = copy.deepcopy(corpus.bases()["quota"])
    body["spec"]["cohort"] = "c"  # limits need a cohort
    body["spec"]["resources"][0].update(nominal=10**9, borrowingLimit=10**9, lendingLimit=10**9)
    fields = [p.field for p in check_compute_quota(body).problems]
    assert fields == [
        "spec.resources[0].nominal",
        "spec.resources[0].borrowingLimit",
        "spec.resources[0].lendingLimit",
    ]


def test_a_quota_row_of_an_unknown_class_lists_the_known_ones() -> None:
    body = copy.deepcopy(corpus.bases()["quota"])
    body["spec"]["resources"][0]["acceleratorClass"] = "tpu-v5"
    two = {k: v for k, v in catalogue().items() if k in ("ascend-910b", "nvidia-h100")}
    (problem,) = check_quota_against(body, {}, two)
    assert problem.message == (
        "spec.resources[0].acceleratorClass: no AcceleratorClass named 'tpu-v5' "
        "(known: ascend-910b, nvidia-h100)"
    )


def test_a_quota_never_conflicts_with_its_own_stored_self() -> None:
    """The cache may already hold the updated quota: adding a namespace it lists itself is no
    conflict (only other quotas' claims count)."""
    stored = quota("mine", ["own"], "2024-01-01T00:00:00Z")
    grown = quota("mine", ["own", "extra"], "2024-01-01T00:00:00Z")
    assert check_quota_against(grown, {"mine": grown}, {}, old=stored) == ()
    other = quota("other", ["extra"], "2025-01-01T00:00:00Z")
    (problem,) = check_quota_against(grown, {"mine": grown, "other": other}, {}, old=stored)
    assert problem.field == "spec.namespaces[1]" and "'other'" in problem.message


# --- AcceleratorClass ----------------------------------------------------------------------------
def test_a_nameless_class_is_refused_naming_metadata_name_not_the_topology() -> None:
    """A file checked offline (``kubectl suanli check``) may lack a name; the problem named is
    the name, not a rule of the placement core that trips over it."""
    body = copy.deepcopy(corpus.catalogue()["ascend-910b"])
    del body["metadata"]["name"]
    (problem,) = check_accelerator_class(body).problems
    assert problem.field == "metadata.name"
    assert "needs a name" in problem.message


def test_an_overlap_without_a_node_says_a_node_with_both_label_sets_would_match() -> None:
    older = accelerator_class(**{"/metadata/creationTimestamp": "2024-01-01T00:00:00Z"})
    newer = accelerator_class(
        **{"/metadata/name": "copy", "/metadata/creationTimestamp": "2025-01-01T00:00:00Z"}
    )
    labels = dict(sorted(older.spec.node_labels.items()))
    # the class itself comes first: the overlap with the older one is still found
    classes: dict[str, Any] = {"copy": newer, "ascend-910b": older}
    (problem,) = check_class_against(newer, None, classes, {})
    assert problem.message == (
        f"spec.nodeLabels: {labels} overlaps AcceleratorClass 'ascend-910b' ({labels}): a node "
        "with both label sets would match both; give the classes a label key with different "
        "values"
    )


def test_every_admitted_job_is_checked_after_one_without_a_shape() -> None:
    old = accelerator_class()
    new = accelerator_class(**{"/spec/topology/allowedDeviceCounts": [1, 2, 8]})
    shapeless = admitted(4)
    shapeless["status"]["chosenOption"] = {"index": 7, "acceleratorClass": "ascend-910b"}
    jobs = {"corpus/a-shapeless": shapeless, "corpus/b-running": admitted(4)}
    (problem,) = check_class_against(new, old, {}, jobs)
    assert "corpus/b-running" in problem.message


def test_an_admitted_shape_falls_back_to_the_chosen_option_of_the_spec() -> None:
    """A status written without devicesPerReplica (older operator): the option's own count."""
    old = accelerator_class()
    new = accelerator_class(**{"/spec/topology/allowedDeviceCounts": [1, 2, 8]})
    body = admitted(4)
    del body["status"]["chosenOption"]["devicesPerReplica"]
    (problem,) = check_class_against(new, old, {}, {"corpus/running": body})
    assert problem.field == "spec.topology.allowedDeviceCounts"
    assert "(1 × 4 devices)" in problem.message


def test_a_node_that_no_longer_matches_is_named_with_the_job_running_there() -> None:
    old = accelerator_class()
    moved = accelerator_class(**{"/spec/nodeLabels": {"accelerator": "elsewhere"}})
    nodes = {"n0": {"metadata": {"labels": dict(old.spec.node_labels)}}}
    problems = check_class_against(moved, old, {}, {"corpus/running": admitted(8)}, nodes=nodes)
    assert [p.message for p in problems] == [
        "spec.nodeLabels: node n0 no longer matches, and admitted TrainingJob corpus/running "
        "runs there"
    ]


def test_an_accelerator_class_model_round_trips_for_these_cases() -> None:
    """The fixtures above are real, valid classes (a broken fixture would pass vacuously)."""
    assert isinstance(accelerator_class(), AcceleratorClass)
    assert check_accelerator_class(copy.deepcopy(corpus.catalogue()["ascend-910b"])).ok


# --- seed-18 survivors: more exact messages and loops --------------------------------------------
def test_a_second_container_without_an_image_is_told_where_images_come_from() -> None:
    body = job()
    body["spec"]["template"]["spec"]["containers"].append({"name": "side"})
    field = "spec.template.spec.containers[1].image"
    assert messages(body) == [
        (
            field,
            f"{field}: an image is required (only the first container's may come from every "
            "accelerator option's image)",
        )
    ]


def test_a_long_argument_and_a_bad_variable_name_say_why() -> None:
    body = job(
        **{
            "/spec/template/spec/containers/0/args": ["x" * 131073],
            "/spec/template/spec/containers/0/env": [{"name": "A=B", "value": "1"}],
        }
    )
    assert messages(body) == [
        (
            f"{CONTAINER}.args[0]",
            f"{CONTAINER}.args[0]: 131073 bytes; at most 131072 (Linux refuses to start a "
            "process with a longer argument)",
        ),
        (
            f"{CONTAINER}.env[0].name",
            f"{CONTAINER}.env[0].name: 'A=B' (3 characters) is not an environment variable "
            "name: printable ASCII characters except '='",
        ),
    ]


def test_a_generate_name_counts_the_five_generated_characters() -> None:
    long = job(**{"/metadata/name": None})
    long["metadata"]["generateName"] = "x" * 54
    assert messages(long) == [
        (
            "metadata.generateName",
            "metadata.generateName: 54 characters (+5 generated); at most 53: the pods' "
            "hostnames are <name>-<replica> (up to 5 more characters) and must fit a "
            "63-character DNS label",
        )
    ]
    fits = job(**{"/metadata/name": None})
    fits["metadata"]["generateName"] = "x" * 53
    assert messages(fits) == []
    bad = job(**{"/metadata/name": None})
    bad["metadata"]["generateName"] = "Bad-"
    ((_, message),) = messages(bad)
    assert message.startswith("metadata.generateName: 'Bad-' (4 characters) cannot name")


def test_volumes_need_exactly_one_source_and_are_told_which_they_have() -> None:
    body = job()
    body["spec"]["template"]["spec"]["volumes"] = [
        {"name": "v"},
        {"name": "w", "emptyDir": {}, "configMap": {"name": "c"}},
    ]
    base = "spec.template.spec.volumes"
    assert messages(body) == [
        (f"{base}[0]", f"{base}[0]: needs exactly one volume source, has 0"),
        (f"{base}[1]", f"{base}[1]: needs exactly one volume source, has 2 (emptyDir, configMap)"),
    ]


def test_a_quota_s_cpu_bound_is_stated_in_nodes() -> None:
    body = copy.deepcopy(corpus.bases()["quota"])
    body["spec"]["cpu"] = "1e12"
    assert [(p.field, p.message) for p in check_compute_quota(body).problems] == [
        (
            "spec.cpu",
            "spec.cpu: 1e12 is more than any node offers: at most 100000 nodes of 4096 CPUs",
        )
    ]


def test_every_option_is_checked_after_an_illegal_one_and_one_legal_count_reads_well() -> None:
    one_count = accelerator_class(
        **{
            "/metadata/name": "whole",
            "/spec/topology/allowedDeviceCounts": [8],
            "/spec/nodeLabels": {"x.io/whole": "y"},
        }
    )
    body = job(
        **{
            "/spec/accelerators": [
                {"acceleratorClass": "whole", "devicesPerReplica": 4},
                {"acceleratorClass": "tpu-v5", "devicesPerReplica": 1},
            ]
        }
    )
    parsed = check_training_job(body).model
    assert parsed is not None
    problems = check_job_against(parsed, {"whole": one_count}, capacity=False)
    assert [p.field for p in problems] == [
        "spec.accelerators[0].devicesPerReplica",
        "spec.accelerators[1].acceleratorClass",
    ]
    assert "8" in problems[0].message and " or " not in problems[0].message


def test_an_update_keeps_a_namespace_it_already_served() -> None:
    """A newer quota listing the same namespace does not take it from the one that serves it."""
    mine = quota("mine", ["shared"], "2024-01-01T00:00:00Z")
    newer = quota("newer", ["shared"], "2025-01-01T00:00:00Z")
    assert check_quota_against(mine, {"mine": mine, "newer": newer}, {}, old=mine) == ()
