"""The complete object checks: table tests, the hostile corpus, and Hypothesis over the valid and
the hostile schema-valid space."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from suanli.api import AcceleratorClass, TrainingJob
from suanli.controller.validate import (
    Problem,
    check_accelerator_class,
    check_class_against,
    check_compute_quota,
    check_job_against,
    check_quota_against,
    check_training_job,
    options_with_problems,
)
from suanli.workload.pods import MAX_JOB_NAME_LENGTH, pod_name
from tests.unit.controller import corpus
from tests.unit.controller.corpus.strategies import (
    hostile_entries,
    hostile_object,
    valid_classes,
    valid_jobs,
    valid_quotas,
)

ENTRIES = corpus.load()
OLD = "2020-01-01T00:00:00Z"


def catalogue(devices: int = 64, nodes: int = 8) -> dict[str, dict[str, Any]]:
    classes = corpus.catalogue()
    for body in classes.values():
        body["status"] = {"nodes": nodes, "devices": devices}
        body["metadata"]["creationTimestamp"] = OLD  # as the cache holds them: created before
    return classes


def all_problems(entry: corpus.Entry) -> list[Problem]:
    """What the webhook would say: the object alone, then against the catalogue and ``given``."""
    given = {
        g["metadata"]["name"]: {**g, "metadata": {**g["metadata"], "creationTimestamp": OLD}}
        for g in entry.given
    }
    return problems_of(entry.manifest, given)


def problems_of(manifest: dict[str, Any], given: dict[str, Any] | None = None) -> list[Problem]:
    classes = catalogue()
    if manifest["kind"] == "TrainingJob":
        job = check_training_job(manifest)
        found = list(job.problems)
        if job.parsed is not None:
            found += check_job_against(job.parsed, classes, quotas=given or {})
    elif manifest["kind"] == "ComputeQuota":
        quota = check_compute_quota(manifest)
        found = list(quota.problems)
        if quota.parsed is not None:
            found += check_quota_against(manifest, given or {}, classes)
    else:
        cls = check_accelerator_class(manifest)
        found = list(cls.problems)
        if cls.parsed is not None:
            found += check_class_against(cls.parsed, None, classes, {})
    return found


def names_field(problems: list[Problem], field: str) -> bool:
    return any(
        p.message.startswith(p.field + ": ")
        and field in p.message
        and (p.field.startswith(field) or field.startswith(p.field))
        for p in problems
    )


# --- the corpus ----------------------------------------------------------------------------------
def test_the_corpus_is_large_and_its_bases_are_valid() -> None:
    hand = [e for e in ENTRIES if e.source == "hand-written.yaml"]
    assert len(ENTRIES) >= 100 and len(hand) >= 100, (len(ENTRIES), len(hand))
    assert len({e.name for e in ENTRIES}) == len(ENTRIES)
    for base in corpus.bases().values():
        assert problems_of(copy.deepcopy(base)) == []


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_every_corpus_entry_is_refused_naming_its_field(entry: corpus.Entry) -> None:
    problems = all_problems(entry)
    assert names_field(problems, entry.field), [p.message[:200] for p in problems]


# --- Hypothesis ----------------------------------------------------------------------------------
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(valid_jobs())
def test_valid_jobs_pass(job: dict[str, Any]) -> None:
    assert problems_of(job) == []


@FAST
@given(valid_quotas())
def test_valid_quotas_pass(quota: dict[str, Any]) -> None:
    assert problems_of(quota) == []


@FAST
@given(valid_classes())
def test_valid_classes_pass(cls: dict[str, Any]) -> None:
    assert problems_of(cls) == []


@FAST
@given(hostile_entries())
def test_hostile_schema_valid_changes_are_refused_naming_the_field(entry: dict[str, Any]) -> None:
    problems = problems_of(hostile_object(entry, "hostile"))
    assert names_field(problems, entry["field"]), (entry["field"], [p.message for p in problems])


# --- TrainingJob table ---------------------------------------------------------------------------
def job(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(corpus.bases()["job"])
    for pointer, value in changes.items():
        corpus.set_pointer(body, pointer, value)
    return body


def test_a_clean_verdict_carries_the_model_and_a_refused_one_only_parsed() -> None:
    good = check_training_job(job())
    assert good.ok and isinstance(good.model, TrainingJob) and good.message() == ""
    bad = check_training_job(job(**{"/metadata/name": "x" * 60}))
    assert not bad.ok and bad.model is None and isinstance(bad.parsed, TrainingJob)


def test_schema_errors_name_the_field_in_camel_case() -> None:
    verdict = check_training_job(job(**{"/spec/accelerators/0/devicesPerReplica": 0}))
    assert verdict.parsed is None
    assert verdict.problems[0].field == "spec.accelerators[0].devicesPerReplica"
    assert verdict.problems[0].message.startswith("spec.accelerators[0].devicesPerReplica: ")
    rule = check_training_job(job(**{"/spec/minReplicas": 3}))
    assert [p.field for p in rule.problems] == ["spec.minReplicas"]


def test_the_longest_name_allowed_makes_pod_hostnames_that_fit_a_dns_label() -> None:
    name = "a" * MAX_JOB_NAME_LENGTH
    assert check_training_job(job(**{"/metadata/name": name})).ok
    assert len(f"{name}-{4095}") <= 63 and len(pod_name(name, 9999, 4095)) <= 253
    assert not check_training_job(job(**{"/metadata/name": name + "a"})).ok


def test_generate_name_leaves_room_for_the_five_generated_characters() -> None:
    body = job()
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "a" * (MAX_JOB_NAME_LENGTH - 5)
    assert check_training_job(body).ok
    body["metadata"]["generateName"] += "a"
    assert [p.field for p in check_training_job(body).problems] == ["metadata.generateName"]


@pytest.mark.parametrize(
    ("value", "refused"),
    [("4096", False), ("4097", True), ("500m", False), ("-1", True), ("1e30", True),
     ("1e100", True), ("0", False), ("4096000m", False), ("4096001m", True)],
)  # fmt: skip
def test_cpu_bounds(value: str, refused: bool) -> None:
    verdict = check_training_job(
        job(**{"/spec/template/spec/containers/0/resources/requests/cpu": value})
    )
    assert (not verdict.ok) == refused, verdict.message()


def test_a_missing_request_counts_as_its_limit_in_the_pod_total() -> None:
    sidecar = {"name": "side", "image": "x:1", "resources": {"limits": {"memory": "40Ti"}}}
    verdict = check_training_job(
        job(
            **{
                "/spec/template/spec/containers/0/resources/requests/memory": "30Ti",
                "/spec/template/spec/containers/-": sidecar,
            }
        )
    )
    assert [p.field for p in verdict.problems] == ["spec.template.spec.containers"]
    assert "70Ti" not in verdict.message() and "64Ti" in verdict.message()


def test_every_option_with_an_image_makes_the_first_container_image_optional() -> None:
    body = job(**{"/spec/accelerators/0/image": "cann:8"})
    del body["spec"]["template"]["spec"]["containers"][0]["image"]
    assert check_training_job(body).ok


# --- against the catalogue -----------------------------------------------------------------------
def test_an_illegal_count_names_the_legal_ones() -> None:
    parsed = TrainingJob.model_validate(job(**{"/spec/accelerators/0/devicesPerReplica": 3}))
    (problem,) = check_job_against(parsed, catalogue())
    assert problem.message == (
        "spec.accelerators[0].devicesPerReplica: 3 is not legal for ascend-910b: legal counts "
        "are 1, 2, 4 or 8"
    )


def test_options_with_problems_lists_the_unusable_options() -> None:
    body = job(
        **{"/spec/accelerators/-": {"acceleratorClass": "nvidia-b200", "devicesPerReplica": 8}}
    )
    problems = check_job_against(TrainingJob.model_validate(body), catalogue())
    assert options_with_problems(problems) == {1}


def test_capacity_is_checked_only_once_the_class_was_observed() -> None:
    big = TrainingJob.model_validate(job(**{"/spec/replicas": 9}))
    classes = catalogue(devices=64, nodes=8)
    (problem,) = check_job_against(big, classes)
    assert problem.field == "spec.replicas" and "64 devices on 8 nodes" in problem.message
    assert check_job_against(big, classes, capacity=False) == ()
    for body in classes.values():
        del body["status"]
    assert check_job_against(big, classes) == ()
    minimum = TrainingJob.model_validate(job(**{"/spec/replicas": 9, "/spec/minReplicas": 8}))
    assert check_job_against(minimum, catalogue(devices=64, nodes=8)) == ()


def test_nfs_needs_the_namespace_quota_to_allow_it() -> None:
    body = job(
        **{"/spec/template/spec/volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}}]}
    )
    assert check_training_job(body).ok  # alone it may be fine: it depends on the quota
    parsed = TrainingJob.model_validate(body)
    quota = copy.deepcopy(corpus.bases()["quota"])
    quota["spec"]["namespaces"] = ["corpus"]
    (problem,) = check_job_against(parsed, catalogue(), quotas={"corpus-quota": quota})
    assert problem.field == "spec.template.spec.volumes[0].nfs"
    assert "'corpus-quota'" in problem.message
    quota["spec"]["allowedVolumeKinds"] = ["nfs"]
    assert check_job_against(parsed, catalogue(), quotas={"corpus-quota": quota}) == ()


# --- ComputeQuota against the others -------------------------------------------------------------
def quota(name: str, namespaces: list[str], created: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if created:
        metadata["creationTimestamp"] = created
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "ComputeQuota",
        "metadata": metadata,
        "spec": {"namespaces": namespaces},
    }


def test_the_older_claim_keeps_a_namespace() -> None:
    first = quota("first", ["shared"], "2024-01-01T00:00:00Z")
    second = quota("second", ["own", "shared"], "2024-06-01T00:00:00Z")
    every = {"first": first, "second": second}
    assert check_quota_against(first, every, {}) == ()
    (problem,) = check_quota_against(second, every, {})
    assert problem.field == "spec.namespaces[1]"
    assert "'first'" in problem.message and "'second'" in problem.message
    new = quota("zzz-new", ["shared"], None)  # at admission time: no creationTimestamp yet
    assert len(check_quota_against(new, every, {})) == 1


def test_equal_timestamps_are_decided_by_name() -> None:
    a = quota("a", ["shared"], OLD)
    b = quota("b", ["shared"], OLD)
    assert check_quota_against(a, {"a": a, "b": b}, {}) == ()
    assert len(check_quota_against(b, {"a": a, "b": b}, {})) == 1


# --- AcceleratorClass against the others ---------------------------------------------------------
def accelerator_class(**changes: Any) -> AcceleratorClass:
    body = copy.deepcopy(corpus.catalogue()["ascend-910b"])
    for pointer, value in changes.items():
        corpus.set_pointer(body, pointer, value)
    return AcceleratorClass.model_validate(body)


def admitted(devices: int, replicas: int = 1, phase: str = "Running") -> dict[str, Any]:
    body = job(**{"/spec/accelerators/0/devicesPerReplica": devices, "/spec/replicas": replicas})
    body["status"] = {
        "phase": phase,
        "chosenOption": {
            "index": 0,
            "acceleratorClass": "ascend-910b",
            "devicesPerReplica": devices,
        },
        "placement": [
            {"replica": i, "node": f"n{i}", "deviceIndices": list(range(devices))}
            for i in range(replicas)
        ],
    }
    return body


def test_the_default_catalogue_has_no_overlapping_selectors() -> None:
    classes = corpus.catalogue()
    for body in classes.values():
        parsed = AcceleratorClass.model_validate(body)
        assert check_class_against(parsed, None, classes, {}) == ()


def test_a_node_carrying_both_selectors_is_an_overlap_even_without_a_shared_key() -> None:
    new = accelerator_class(**{"/metadata/name": "other", "/spec/nodeLabels": {"x.io/y": "z"}})
    classes = corpus.catalogue()
    assert check_class_against(new, None, classes, {}) == ()
    node = {"metadata": {"labels": {"x.io/y": "z", **classes["ascend-910b"]["spec"]["nodeLabels"]}}}
    (problem,) = check_class_against(new, None, classes, {}, nodes={"n1": node})
    assert problem.field == "spec.nodeLabels" and "node n1 matches both" in problem.message


def test_removing_a_legal_count_in_use_strands_the_job() -> None:
    old = accelerator_class()
    new = accelerator_class(**{"/spec/topology/allowedDeviceCounts": [1, 2, 8]})
    jobs = {"corpus/running": admitted(4), "corpus/queued": admitted(4, phase="Queued")}
    (problem,) = check_class_against(new, old, {}, jobs)
    assert problem.field == "spec.topology.allowedDeviceCounts"
    assert "corpus/running" in problem.message and "legal counts are 1, 2 or 8" in problem.message
    assert check_class_against(new, old, {}, {"corpus/q": admitted(4, phase="Queued")}) == ()


def test_other_changes_that_strand_admitted_jobs() -> None:
    old = accelerator_class()
    jobs = {"corpus/running": admitted(8)}
    renamed = accelerator_class(**{"/spec/resourceName": "huawei.com/Ascend910B"})
    assert [p.field for p in check_class_against(renamed, old, {}, jobs)] == ["spec.resourceName"]
    smaller = accelerator_class(
        **{
            "/spec/devicesPerNode": 4,
            "/spec/topology": {"groupSize": 4, "allowedDeviceCounts": [1, 2, 4]},
        }
    )
    fields = {p.field for p in check_class_against(smaller, old, {}, jobs)}
    assert fields == {"spec.topology.allowedDeviceCounts", "spec.devicesPerNode"}
    moved = accelerator_class(**{"/spec/nodeLabels": {"accelerator": "elsewhere"}})
    nodes = {"n0": {"metadata": {"labels": dict(old.spec.node_labels)}}}
    (problem,) = check_class_against(moved, old, {}, jobs, nodes=nodes)
    assert problem.field == "spec.nodeLabels" and "n0" in problem.message


def test_vendor_and_resource_name_must_agree() -> None:
    body = copy.deepcopy(corpus.catalogue()["nvidia-h100"])
    body["spec"]["resourceName"] = "huawei.com/Ascend910"
    (problem,) = check_accelerator_class(body).problems
    assert problem.field == "spec.resourceName" and "nvidia.com/*" in problem.message


def test_of_two_overlapping_classes_only_the_newer_is_refused() -> None:
    older = accelerator_class(**{"/metadata/creationTimestamp": "2024-01-01T00:00:00Z"})
    newer = accelerator_class(
        **{
            "/metadata/name": "ascend-910b-copy",
            "/metadata/creationTimestamp": "2025-01-01T00:00:00Z",
        }
    )
    classes: dict[str, Any] = {"ascend-910b": older, "ascend-910b-copy": newer}
    assert check_class_against(older, None, classes, {}) == ()
    (problem,) = check_class_against(newer, None, classes, {})
    assert problem.field == "spec.nodeLabels" and "'ascend-910b'" in problem.message


def test_an_update_cannot_take_a_namespace_another_quota_serves_even_if_older() -> None:
    older = quota("older", ["own"], "2024-01-01T00:00:00Z")
    newer = quota("newer", ["shared"], "2024-06-01T00:00:00Z")
    grown = quota("older", ["own", "shared"], "2024-01-01T00:00:00Z")
    every = {"older": older, "newer": newer}
    (problem,) = check_quota_against(grown, every, {}, old=older)
    assert problem.field == "spec.namespaces[1]" and "'newer'" in problem.message
    assert check_quota_against(newer, every, {}, old=newer) == ()


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("9f8e7d6c-0000-4000-8000-000000000001", False),
        ("9F8E7D6C-0000-4000-8000-000000000001", True),
        ("9f8e7d6c", True),
        ("", True),
        ("anything", True),
    ],
)
def test_the_hub_job_uid_label_must_be_a_uid(value: str, refused: bool) -> None:
    verdict = check_training_job(job(**{"/metadata/labels": {"suanli.io/hub-job-uid": value}}))
    assert verdict.ok is not refused
    if refused:
        (problem,) = verdict.problems
        assert problem.field == "metadata.labels.suanli.io/hub-job-uid"
        assert problem.message.startswith(problem.field + ": ")
