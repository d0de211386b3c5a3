"""Reading a snapshot: quotas sharing a namespace, node taints, jobs set aside with a reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from suanli.constants import (
    ACCELERATOR_CLASS_ANNOTATION,
    DEVICE_INDICES_ANNOTATION,
    JOB_NAME_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
)
from suanli.controller.cache import Cache, Kind
from suanli.controller.facts import node_facts
from suanli.controller.inventory import CatalogueEntry
from suanli.controller.validate import (
    check_accelerator_class,
    check_compute_quota,
    check_training_job,
)
from suanli.controller.world import observe
from suanli.placement.model import DeviceClass
from suanli.reasons import Reason

ASCEND = CatalogueEntry(
    DeviceClass("ascend-910b", 8, 8, (1, 2, 4, 8), multi_replica_count=8, tflops=376.0),
    "huawei",
    "huawei.com/Ascend910",
    (("accelerator", "huawei-Ascend910"),),
)


def quota(name: str, created: str, *namespaces: str) -> dict[str, Any]:
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "ComputeQuota",
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "resourceVersion": "1",
            "generation": 1,
        },
        "spec": {"namespaces": list(namespaces), "resources": []},
    }


def job(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": "1",
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {
            "replicas": 1,
            "accelerators": [{"acceleratorClass": "ascend-910b", "devicesPerReplica": 8}],
            "template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}},
            **spec,
        },
    }


def cache_with(*events: tuple[Kind, dict[str, Any]]) -> Cache:
    cache = Cache(
        checkers={
            Kind.TRAINING_JOB: check_training_job,
            Kind.COMPUTE_QUOTA: check_compute_quota,
            Kind.ACCELERATOR_CLASS: check_accelerator_class,
        }
    )
    for kind, body in events:
        cache.apply_event(kind, "ADDED", body)
    return cache


def test_the_older_quota_keeps_a_contested_namespace_and_the_newer_gets_a_conflict() -> None:
    cache = cache_with(
        (Kind.COMPUTE_QUOTA, quota("newcomer", "2026-02-01T00:00:00Z", "shared", "own")),
        (Kind.COMPUTE_QUOTA, quota("zz-first", "2026-01-01T00:00:00Z", "shared")),
    )
    world = observe(cache.snapshot(), {}, 0.0)
    assert world.quota_of_namespace == {"shared": "zz-first", "own": "newcomer"}
    assert set(world.conflicts) == {"newcomer"}
    assert "ComputeQuota zz-first" in world.conflicts["newcomer"]
    assert "newcomer" in world.conflicts["newcomer"] and "shared" in world.conflicts["newcomer"]


def test_invalid_jobs_are_set_aside_naming_the_field_and_others_go_on() -> None:
    long_name = "j" * 60  # valid for a TrainingJob, too long for its pods' hostnames
    cache = cache_with(
        (Kind.COMPUTE_QUOTA, quota("team", "2026-01-01T00:00:00Z", "team")),
        (Kind.TRAINING_JOB, job(long_name, "team")),
        (
            Kind.TRAINING_JOB,
            job(
                "unknown-class",
                "team",
                accelerators=[{"acceleratorClass": "nope", "devicesPerReplica": 1}],
            ),
        ),
        (Kind.TRAINING_JOB, job("fine", "team")),
    )
    world = observe(cache.snapshot(), {}, 0.0)
    assert world.invalid[f"team/{long_name}"].reason is Reason.INVALID
    assert "metadata.name" in world.invalid[f"team/{long_name}"].message
    # no class is in the (empty) catalogue: the job waits, naming the option, until one exists
    assert world.invalid["team/unknown-class"].reason is Reason.UNKNOWN_ACCELERATOR_CLASS
    assert world.invalid["team/fine"].reason is Reason.UNKNOWN_ACCELERATOR_CLASS


def test_a_job_in_backoff_is_not_pending_and_a_missing_priority_class_waits() -> None:
    cache = cache_with(
        (Kind.COMPUTE_QUOTA, quota("team", "2026-01-01T00:00:00Z", "team")),
        (Kind.TRAINING_JOB, job("later", "team")),
        (Kind.TRAINING_JOB, job("urgent", "team", priorityClassName="urgent")),
    )
    snapshot = cache.snapshot()
    world = observe(snapshot, {"team/later": 100.0}, 50.0)
    assert world.invalid["team/urgent"].reason in (
        Reason.UNKNOWN_PRIORITY_CLASS,
        Reason.UNKNOWN_ACCELERATOR_CLASS,
    )


def node(taints: list[dict[str, str]], *, ready: bool = True, cordoned: bool = False) -> Any:
    return {
        "metadata": {"name": "n1"},
        "spec": {"taints": taints, "unschedulable": cordoned},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ]
        },
    }


def test_which_taints_stop_placements_and_which_evict() -> None:
    catalogue = {"ascend-910b": ASCEND}
    tolerated = node([{"key": "huawei.com/Ascend910", "effect": "NoSchedule"}])
    assert not node_facts(tolerated, catalogue).unschedulable
    evicting = node([{"key": "huawei.com/Ascend910", "effect": "NoExecute"}])
    assert node_facts(evicting, catalogue).no_execute  # our pods tolerate NoSchedule only
    mirror = node([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}], ready=False)
    facts = node_facts(mirror, catalogue)
    assert not facts.no_execute and not facts.ready
    assert facts.not_ready_since == 1_767_225_600.0
    other = node([{"key": "maintenance", "effect": "NoSchedule"}], cordoned=False)
    assert (
        node_facts(other, catalogue).unschedulable and not node_facts(other, catalogue).no_execute
    )
    assert node_facts(node([], cordoned=True), catalogue).unschedulable


def test_a_namespace_stays_with_the_quota_that_served_it() -> None:
    """Creation times have one-second resolution: two quotas created in the same second are
    ordered by name, unless one of them already serves the namespace."""
    same = "2026-01-01T00:00:00Z"
    cache = cache_with(
        (Kind.COMPUTE_QUOTA, quota("b-owner", same, "shared")),
        (Kind.COMPUTE_QUOTA, quota("a-newcomer", same, "shared")),
    )
    first = observe(cache.snapshot(), {}, 0.0)
    assert first.quota_of_namespace == {"shared": "a-newcomer"}  # a tie: by name
    kept = observe(cache.snapshot(), {}, 0.0, {"shared": "b-owner"})
    assert kept.quota_of_namespace == {"shared": "b-owner"}
    assert "ComputeQuota b-owner" in kept.conflicts["a-newcomer"]


def accelerator_class(name: str, created: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "AcceleratorClass",
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "resourceVersion": "1",
            "generation": 1,
        },
        "spec": {
            "vendor": "nvidia",
            "resourceName": "nvidia.com/gpu",
            "nodeLabels": labels,
            "devicesPerNode": 8,
            "deviceMemoryGiB": 80.0,
            "computeTFLOPS": 312.0,
            "topology": {"groupSize": 8, "allowedDeviceCounts": [1, 2, 4, 8]},
        },
    }


def test_a_newer_class_overlapping_an_older_ones_nodes_is_set_aside() -> None:
    older = accelerator_class("gpu-a100", "2026-01-01T00:00:00Z", {"gpu.product": "A100"})
    # more specific: every node it matches is one of the older class's, which it would take
    broader = accelerator_class(
        "gpu-any", "2026-02-01T00:00:00Z", {"gpu.product": "A100", "gpu.memory": "80GB"}
    )
    cache = cache_with((Kind.ACCELERATOR_CLASS, older), (Kind.ACCELERATOR_CLASS, broader))
    bad_quota = quota("broken", "2026-01-01T00:00:00Z", "x")
    bad_quota["spec"]["resources"] = [{"acceleratorClass": "gpu-a100", "nominal": -1}]
    cache.apply_event(Kind.COMPUTE_QUOTA, "ADDED", bad_quota)
    world = observe(cache.snapshot(), {}, 0.0)
    assert set(world.catalogue) == {"gpu-a100"}
    assert "gpu-a100" in world.invalid_classes["gpu-any"]
    assert "spec.nodeLabels" in world.invalid_classes["gpu-any"]
    assert "nominal" in world.invalid_quotas["broken"]


def suanli_pod(name: str, chips: str, phase: str, deleting: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": "team",
        "uid": f"uid-{name}",
        "resourceVersion": "1",
        "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, JOB_NAME_LABEL: "gone"},
        "annotations": {
            ACCELERATOR_CLASS_ANNOTATION: "ascend-910b",
            DEVICE_INDICES_ANNOTATION: chips,
        },
    }
    if deleting is not None:
        metadata["deletionTimestamp"] = deleting
    return {"metadata": metadata, "spec": {"nodeName": "n1"}, "status": {"phase": phase}}


def test_chips_of_pods_no_admission_covers_are_counted_as_coming_back() -> None:
    now = 1_800_000_000.0  # 2027-01-15T08:00:00Z

    def at(seconds_ago: float) -> str:
        return datetime.fromtimestamp(now - seconds_ago, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    pods = [
        suanli_pod("running", "0,1,2,3", "Running"),  # its job was evicted a moment ago
        suanli_pod("stopping", "4,5", "Running", deleting=at(10)),
        suanli_pod("stuck", "6", "Running", deleting=at(120)),  # on a node that does not answer
        suanli_pod("done", "7", "Failed"),
        suanli_pod("pending", "0", "Pending"),
    ]
    cache = cache_with(*((Kind.POD, pod) for pod in pods))
    world = observe(cache.snapshot(), {}, now)
    assert world.releasing == {"ascend-910b": 4 + 2 + 1}


def test_node_facts_carry_the_device_ips_the_node_publishes() -> None:
    published = node([])
    published["metadata"] = {
        "name": "n-ips",
        "resourceVersion": "5",
        "annotations": {
            "huawei.com/npu.base-device-infos": (
                '{"Ascend910-0": {"IP": "192.168.100.10"}, "Ascend910-3": {"IP": "192.168.100.13"}}'
            )
        },
    }
    facts = node_facts(published, {"ascend-910b": ASCEND})
    assert facts.device_ips == ((0, "192.168.100.10"), (3, "192.168.100.13"))
    assert node_facts(node([]), {"ascend-910b": ASCEND}).device_ips == ()


def serving(body: dict[str, Any], *namespaces: str) -> dict[str, Any]:
    """``body`` with the status the operator wrote: the namespaces it serves."""
    return {**body, "status": {"servedNamespaces": list(namespaces)}}


def test_after_a_restart_the_recorded_owner_keeps_a_namespace_a_same_second_rival_claims() -> None:
    """No memory of the last cycle (a restart, a new leader): the quotas' own statuses say who
    serves the namespace, so the name order of a same-second tie never moves it."""
    same = "2026-01-01T00:00:00Z"
    cache = cache_with(
        (Kind.COMPUTE_QUOTA, serving(quota("t-owner", same, "shared"), "shared")),
        (Kind.COMPUTE_QUOTA, quota("t-intruder", same, "shared", "own")),
    )
    world = observe(cache.snapshot(), {}, 0.0)
    assert world.quota_of_namespace == {"shared": "t-owner", "own": "t-intruder"}
    assert set(world.conflicts) == {"t-intruder"}
    assert "ComputeQuota t-owner" in world.conflicts["t-intruder"]


def test_a_recorded_claim_counts_only_while_the_quota_still_lists_the_namespace() -> None:
    cache = cache_with(
        (Kind.COMPUTE_QUOTA, serving(quota("left", "2026-01-01T00:00:00Z", "own"), "shared")),
        (Kind.COMPUTE_QUOTA, quota("taker", "2026-02-01T00:00:00Z", "shared")),
    )
    world = observe(cache.snapshot(), {}, 0.0)
    assert world.quota_of_namespace == {"own": "left", "shared": "taker"}
    assert world.conflicts == {}


def test_each_namespace_stays_with_its_own_server_when_an_older_quota_adds_it() -> None:
    """The older quota keeps what it serves and adds a namespace the newer one serves: the
    namespace stays with the newer one; the older quota alone gets the conflict."""
    cache = cache_with(
        (Kind.COMPUTE_QUOTA, quota("older", "2026-01-01T00:00:00Z", "mine", "theirs")),
        (Kind.COMPUTE_QUOTA, quota("newer", "2026-02-01T00:00:00Z", "theirs")),
    )
    world = observe(cache.snapshot(), {}, 0.0, {"mine": "older", "theirs": "newer"})
    assert world.quota_of_namespace == {"mine": "older", "theirs": "newer"}
    assert set(world.conflicts) == {"older"}
    assert "theirs" in world.conflicts["older"] and "ComputeQuota newer" in world.conflicts["older"]
    served = {spec.name: sorted(spec.namespaces) for spec in world.quotas}
    assert served == {"older": ["mine"], "newer": ["theirs"]}
