"""The CLI's recomputed cycle and its explanations, on a synthetic snapshot."""

from __future__ import annotations

from suanli.cli.explain import duration, explain, free_groups, replicas_on_node
from suanli.cli.plan import ClusterObjects, build_plan
from suanli.cli.views import queue_view, quota_view, top_classes, top_nodes, top_tenants
from suanli.placement.model import DeviceClass
from tests.unit.cli.conftest import H100_8, NOW, centre, job, quota, running


def test_the_plan_admits_and_waits_like_the_operator(busy_centre: ClusterObjects) -> None:
    plan = build_plan(busy_centre)
    assert [a.job.key for a in plan.admitted] == ["team-a/trainer"]
    admitted = {d.job.key: d for d in plan.result.admitted}
    assert set(admitted) == {"team-a/fallback"}
    assert admitted["team-a/fallback"].option_index == 1  # fell back to Ascend
    waits = {w.job.key: w.reason.value for w in plan.result.waiting}
    assert waits == {"team-a/big": "Unschedulable", "team-b/greedy": "QuotaExceeded"}
    assert plan.warnings == []


def test_why_names_the_blocking_class_the_closest_node_and_what_unblocks(
    busy_centre: ClusterObjects,
) -> None:
    plan = build_plan(busy_centre)
    item = explain(
        plan, "team-a/big", fresh=lambda p: build_plan(busy_centre, preemption=p), now=NOW
    )
    assert item.verdict == "waiting"
    assert item.reason == "Unschedulable"
    assert item.quota == "team-a"
    [option] = item.options
    assert option.quota is not None and option.quota.fits
    assert (option.quota.needed, option.quota.used, option.quota.nominal) == (16, 8, 24)
    assert (option.class_free_devices, option.class_total_devices) == (8, 16)
    closest, other = option.nodes
    assert (closest.name, closest.free_devices, closest.replicas_it_can_host) == ("h100-2", 8, 1)
    assert other.name == "h100-1"
    assert other.lacks == ("needs 8 free devices, has 0",)
    assert item.unblock is not None
    assert item.unblock.jobs == ("team-a/trainer",)
    assert item.unblock.devices == 8
    assert item.unblock.estimated
    # started 10 min ago with a 1 h limit: ends in ~50 min
    assert item.unblock.next_end_seconds is not None
    assert 2990 <= item.unblock.next_end_seconds <= 3010
    assert "fits if 8 × nvidia-h100 free up (team-a/trainer)" in item.unblock.sentence()
    assert "the next finishes in ~50 min" in item.unblock.sentence()


def test_why_over_nominal_without_a_cohort_has_nothing_to_wait_for(
    busy_centre: ClusterObjects,
) -> None:
    plan = build_plan(busy_centre)
    item = explain(
        plan, "team-b/greedy", fresh=lambda p: build_plan(busy_centre, preemption=p), now=NOW
    )
    assert item.reason == "QuotaExceeded"
    [option] = item.options
    assert option.quota is not None and not option.quota.fits
    assert (option.quota.needed, option.quota.nominal, option.quota.cohort_can_lend) == (16, 8, 0)
    assert "quota team-b has 8 free" in item.message
    assert item.unblock is None


def test_why_running_and_admissible_jobs(busy_centre: ClusterObjects) -> None:
    plan = build_plan(busy_centre)
    running = explain(plan, "team-a/trainer")
    assert (running.verdict, running.message) == ("running", "holds its devices on h100-1")
    admissible = explain(plan, "team-a/fallback")
    assert admissible.verdict == "admissible"
    assert "2 × 8 ascend-910b on npu-1, npu-2" in admissible.message


def test_an_illegal_shape_is_reported_per_option() -> None:
    objects = centre(
        job("three", "team-a", [{"acceleratorClass": "ascend-910b", "devicesPerReplica": 3}])
    )
    item = explain(build_plan(objects), "team-a/three")
    assert item.verdict == "invalid"
    assert "legal" in item.message and "3" in item.message
    assert item.quota == "team-a"  # an invalid job still belongs to its namespace's quota


def test_queue_view_orders_by_quota_and_position(busy_centre: ClusterObjects) -> None:
    rows = queue_view(build_plan(busy_centre), None, now=NOW).rows
    assert [(r["quota"], r["name"], r["reason"]) for r in rows] == [
        ("team-a", "big", "Unschedulable"),
        ("team-a", "fallback", "Admissible"),
        ("team-b", "greedy", "QuotaExceeded"),
    ]
    assert rows[0]["position"] == 1
    assert rows[0]["option"] == "2×8 nvidia-h100"
    assert rows[1]["option"] == "2×8 ascend-910b"
    only_b = queue_view(build_plan(busy_centre), "team-b", now=NOW).rows
    assert [r["name"] for r in only_b] == ["greedy"]


def test_quota_view_counts_used_and_pending_in_devices_and_pflops(
    busy_centre: ClusterObjects,
) -> None:
    rows = {(r["quota"], r["class"]): r for r in quota_view(build_plan(busy_centre), None).rows}
    h100 = rows[("team-a", "nvidia-h100")]
    assert (h100["nominal"], h100["used"], h100["borrowed"], h100["lent"]) == (24, 8, 0, 0)
    # big (16) and fallback (first known option: 4 × 8) wait
    assert h100["pending"] == 48
    assert h100["usedPFLOPS"] == round(8 * 989 / 1000, 3)
    assert rows[("team-b", "nvidia-h100")]["pending"] == 16
    assert [r["quota"] for r in quota_view(build_plan(busy_centre), "team-b").rows] == ["team-b"]


def test_top_views(busy_centre: ClusterObjects) -> None:
    plan = build_plan(busy_centre)
    classes = {r["class"]: r for r in top_classes(plan).rows}
    assert set(classes) == {"nvidia-h100", "ascend-910b"}
    h100 = classes["nvidia-h100"]
    assert (h100["nodes"], h100["total"], h100["allocated"], h100["free"]) == (2, 16, 8, 8)
    assert h100["allocatedPercent"] == 50.0
    assert h100["totalPFLOPS"] == round(16 * 989 / 1000, 3)
    nodes = {r["node"]: r for r in top_nodes(plan).rows}
    assert (nodes["h100-1"]["free"], nodes["h100-2"]["free"]) == (0, 8)
    assert nodes["npu-1"]["freeGroups"] == "8"  # one interconnect group of 8 on 910B
    tenants = {r["quota"]: r for r in top_tenants(plan).rows}
    assert tenants["team-a"]["devices"] == "8 nvidia-h100"
    assert (tenants["team-a"]["running"], tenants["team-a"]["pending"]) == (1, 2)
    assert tenants["team-b"]["usedPFLOPS"] == 0


def test_a_quota_claiming_a_served_namespace_serves_only_the_rest_as_the_operator_does() -> None:
    objects = centre(job("one", "team-a", H100_8))
    clash = dict(objects.quotas[1])
    clash["metadata"] = {"name": "zz-clash"}
    clash["spec"] = {**clash["spec"], "namespaces": ["team-a", "team-z"]}
    plan = build_plan(
        ClusterObjects(objects.classes, [*objects.quotas, clash], objects.jobs, objects.nodes, [])
    )
    served = {q.name: sorted(q.namespaces) for q in plan.quotas}
    assert served == {"team-a": ["team-a"], "team-b": ["team-b"], "zz-clash": ["team-z"]}
    assert len(plan.warnings) == 1
    assert "zz-clash" in plan.warnings[0] and "ComputeQuota team-a" in plan.warnings[0]


def test_the_quota_recorded_as_serving_a_namespace_keeps_it_in_a_same_second_tie() -> None:
    """What the operator does after a restart: ``status.servedNamespaces`` decides, not names."""
    objects = centre(job("one", "team-a", H100_8))
    same = "2026-01-01T00:00:00Z"
    owner = {**objects.quotas[0], "status": {"servedNamespaces": ["team-a"]}}
    owner["metadata"] = {"name": "team-a", "creationTimestamp": same}
    rival = dict(objects.quotas[1])
    rival["metadata"] = {"name": "a-rival", "creationTimestamp": same}
    rival["spec"] = {**rival["spec"], "namespaces": ["team-a"]}
    plan = build_plan(
        ClusterObjects(objects.classes, [owner, rival], objects.jobs, objects.nodes, [])
    )
    served = {q.name: sorted(q.namespaces) for q in plan.quotas}
    assert served == {"team-a": ["team-a"], "a-rival": []}


def test_free_groups_and_replicas_respect_hccs_rings() -> None:
    ascend = DeviceClass("a", 8, 4, (1, 2, 4, 8), multi_replica_count=8)
    half = (1000, 1000, 0, 1000, 1000, 1000, 1000, 1000)
    assert free_groups(ascend, half) == [3, 4]
    assert replicas_on_node(ascend, [3, 4], 4) == 1
    assert replicas_on_node(ascend, [3, 4], 8) == 0
    assert replicas_on_node(ascend, [4, 4], 8) == 1
    assert replicas_on_node(ascend, [3, 4], 2) == 3


def test_duration_reads_like_kubectl_ages() -> None:
    assert [duration(s) for s in (45, 150, 840, 3 * 3600 + 720, 3 * 86400)] == [
        "45s",
        "2m30s",
        "14 min",
        "3h12m",
        "3d",
    ]


def test_why_names_whom_the_operator_would_preempt() -> None:
    base = centre()
    quotas = [
        *base.quotas,
        quota(
            "team-c",
            [{"acceleratorClass": "nvidia-h100", "nominal": 8}],
            preemption={"withinQuota": "LowerPriority"},
        ),
    ]
    jobs = [
        job("low", "team-c", H100_8, status=running("h100-1", 60), priority=0, age=100),
        job("high", "team-c", H100_8, priority=100, age=10),
    ]
    objects = ClusterObjects(base.classes, quotas, jobs, base.nodes, [])
    plan = build_plan(objects)
    item = explain(plan, "team-c/high", fresh=lambda p: build_plan(objects, preemption=p))
    assert item.reason == "QuotaExceeded"
    assert item.would_preempt == ["team-c/low"]
    # without preemption nothing is evicted: the plan itself only waits
    assert plan.result.preemptions == []


def suanli_pod(job_name: str, node: str, attempt: int, devices: int = 8) -> dict[str, object]:
    return {
        "metadata": {
            "name": f"{job_name}-a{attempt}-0",
            "namespace": "team-a",
            "uid": f"uid-{job_name}-{attempt}",
            "labels": {
                "app.kubernetes.io/managed-by": "suanli",
                "suanli.io/job-name": job_name,
                "suanli.io/attempt": str(attempt),
            },
        },
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "trainer",
                    "resources": {
                        "requests": {"cpu": "8", "memory": "64Gi"},
                        "limits": {"nvidia.com/gpu": str(devices)},
                    },
                }
            ],
        },
        "status": {"phase": "Running"},
    }


def test_an_admitted_jobs_own_pods_are_not_counted_twice(busy_centre: ClusterObjects) -> None:
    objects = ClusterObjects(
        busy_centre.classes,
        busy_centre.quotas,
        busy_centre.jobs,
        busy_centre.nodes,
        [suanli_pod("trainer", "h100-1", attempt=0)],
    )
    plan = build_plan(objects)
    h100 = {r["class"]: r for r in top_classes(plan).rows}["nvidia-h100"]
    assert (h100["allocated"], h100["free"]) == (8, 8)
