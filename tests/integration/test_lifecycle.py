"""Admission and the job lifecycle, on the real apiserver with kwok nodes and the operator process.

The local centre has 4 Ascend 910B nodes (2 racks), 2 H100 and 2 A100 nodes, 8 devices each.
Every test makes its own tenants (namespace + ComputeQuota) and removes them afterwards.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import (
    Kubectl,
    Tenants,
    job_manifest,
    job_status,
    live_pods,
    option,
    wait_for,
    wait_for_phase,
)

pytestmark = pytest.mark.integration

ASCEND = "ascend-910b"
H100 = "nvidia-h100"
A100 = "nvidia-a100"


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0]["env"]}


def quota_usage(kubectl: Kubectl, quota: str, cls: str) -> dict[str, int]:
    status = kubectl.get("computequota", quota).get("status") or {}
    for row in status.get("usage") or []:
        if row["acceleratorClass"] == cls:
            return dict(row)
    return {}


def test_a_gang_lands_whole_with_its_framework_environment(
    kubectl: Kubectl, tenants: Tenants
) -> None:
    ns = tenants.add("t-gang", [{"acceleratorClass": ASCEND, "nominal": 16}])
    # each Ascend node publishes its chips' HCCL device IPs, as Huawei's device plugin does
    published: dict[str, str] = {}
    names = [n["metadata"]["name"] for n in kubectl.get("nodes")["items"]]
    for index, name in enumerate(n for n in names if n.startswith("ascend-910b")):
        infos = {f"Ascend910-{c}": {"IP": f"192.168.{index}.{10 + c}"} for c in range(8)}
        published[name] = f"192.168.{index}."
        kubectl.run(
            "annotate", "node", name, "--overwrite",
            f"huawei.com/npu.base-device-infos={json.dumps(infos)}",
        )  # fmt: skip
    assert kubectl.apply(job_manifest("pretrain", ns, [option(ASCEND, 8)], replicas=2))[0] == 0
    status = wait_for_phase(kubectl, ns, "pretrain", "Running")
    placement = status["placement"]
    assert [r["replica"] for r in placement] == [0, 1]
    assert len({r["node"] for r in placement}) == 2, "8-chip replicas need a node each"
    assert status["chosenOption"]["acceleratorClass"] == ASCEND
    pods = sorted(live_pods(kubectl, ns, "pretrain"), key=lambda p: p["metadata"]["name"])
    assert [p["metadata"]["name"] for p in pods] == ["pretrain-a0-0", "pretrain-a0-1"]
    for pod, replica in zip(pods, placement, strict=True):
        assert pod["spec"]["nodeName"] == replica["node"]
        limits = pod["spec"]["containers"][0]["resources"]["limits"]
        assert limits["huawei.com/Ascend910"] == "8"
        chips = ",".join(f"Ascend910-{i}" for i in replica["deviceIndices"])
        assert pod["metadata"]["annotations"]["huawei.com/Ascend910"] == chips
        owner = pod["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["controller"]) == (
            "TrainingJob",
            "pretrain",
            True,
        )
        env = env_of(pod)
        assert env["WORLD_SIZE"] == "2"
        assert env["RANK"] == str(replica["replica"])
        assert env["MASTER_ADDR"] == f"pretrain-0.pretrain.{ns}.svc"
        assert env["RANK_TABLE_FILE"] == "/etc/hccl/rank_table.json"
        security = pod["spec"]["containers"][0]["securityContext"]
        assert security["privileged"] is False
        assert pod["spec"].get("hostNetwork") is not True
    service = kubectl.get("service", "pretrain", "-n", ns)
    assert service["spec"]["clusterIP"] == "None"
    table = kubectl.get("configmap", "pretrain-a0-hccl", "-n", ns)["data"]["rank_table.json"]
    assert table.count('"rank_id"') == 16
    servers = {s["server_id"]: s["device"] for s in json.loads(table)["server_list"]}
    for replica in placement:
        node_name = replica["node"]
        assert [d["device_ip"] for d in servers[node_name]] == [
            f"{published[node_name]}{10 + i}" for i in replica["deviceIndices"]
        ], servers[node_name]
    wait_for("quota usage 16", lambda: quota_usage(kubectl, ns, ASCEND).get("used") == 16)


def test_falls_back_from_nvidia_to_ascend_when_the_first_option_exceeds_quota(
    kubectl: Kubectl, tenants: Tenants
) -> None:
    ns = tenants.add(
        "t-fallback",
        [{"acceleratorClass": H100, "nominal": 8}, {"acceleratorClass": ASCEND, "nominal": 16}],
    )
    job = job_manifest(
        "sft",
        ns,
        [
            option(H100, 8, image="example.invalid/cuda:1"),
            option(ASCEND, 8, image="example.invalid/cann:1"),
        ],
        replicas=2,
    )
    assert kubectl.apply(job)[0] == 0
    status = wait_for_phase(kubectl, ns, "sft", "Running")
    assert status["chosenOption"] == {
        "index": 1,
        "acceleratorClass": ASCEND,
        "devicesPerReplica": 8,
        "replicas": 2,
    }
    for pod in live_pods(kubectl, ns, "sft"):
        container = pod["spec"]["containers"][0]
        assert container["image"] == "example.invalid/cann:1"
        assert "huawei.com/Ascend910" in container["resources"]["limits"]
        assert "nvidia.com/gpu" not in container["resources"]["limits"]


def test_quota_is_honoured_and_the_wait_is_explained(kubectl: Kubectl, tenants: Tenants) -> None:
    ns = tenants.add("t-quota", [{"acceleratorClass": A100, "nominal": 8}])
    assert kubectl.apply(job_manifest("first", ns, [option(A100, 8)]))[0] == 0
    wait_for_phase(kubectl, ns, "first", "Running")
    assert kubectl.apply(job_manifest("second", ns, [option(A100, 8)]))[0] == 0

    def waiting() -> dict[str, Any] | None:
        status = job_status(kubectl, ns, "second")
        return status if status.get("reason") == "QuotaExceeded" else None

    status = wait_for("second to wait for quota", waiting)
    assert status["phase"] == "Queued"
    assert status["queuePosition"] == 1
    assert "quota t-quota has 0 free" in status["message"], status["message"]
    assert not live_pods(kubectl, ns, "second")
    usage = quota_usage(kubectl, ns, A100)
    assert usage["used"] == 8 and usage["pending"] == 8
    kubectl.run("delete", "trainingjob", "first", "-n", ns)
    wait_for_phase(kubectl, ns, "second", "Running")


def test_a_finished_job_releases_its_quota(kubectl: Kubectl, tenants: Tenants) -> None:
    ns = tenants.add("t-finish", [{"acceleratorClass": H100, "nominal": 8}])
    assert kubectl.apply(job_manifest("short", ns, [option(H100, 4)], duration="2s"))[0] == 0
    status = wait_for_phase(kubectl, ns, "short", "Succeeded", timeout=60)
    assert status["finishedAt"] and status["startedAt"]
    wait_for("quota released", lambda: quota_usage(kubectl, ns, H100).get("used") == 0)


def test_a_failed_pod_restarts_the_whole_gang_until_the_limit(
    kubectl: Kubectl, tenants: Tenants
) -> None:
    ns = tenants.add("t-restart", [{"acceleratorClass": ASCEND, "nominal": 16}])
    job = job_manifest(
        "flaky",
        ns,
        [option(ASCEND, 8)],
        replicas=2,
        duration="3s",
        exit_code=1,
        restartPolicy="OnFailure",
        restartLimit=1,
    )
    assert kubectl.apply(job)[0] == 0
    first = wait_for("attempt 0 pods", lambda: live_pods(kubectl, ns, "flaky"))
    checkpoint = env_of(first[0])["SUANLI_CHECKPOINT_DIR"]

    def attempt_one() -> list[dict[str, Any]] | None:
        """The whole second gang: its two pods are two creates, so a list between them shows
        one, and stopping at the first non-empty list would race them."""
        pods = [
            p
            for p in live_pods(kubectl, ns, "flaky")
            if p["metadata"]["labels"]["suanli.io/attempt"] == "1"
        ]
        return pods if len(pods) == 2 else None

    second = wait_for("both attempt 1 pods", attempt_one, timeout=60)
    assert env_of(second[0])["SUANLI_CHECKPOINT_DIR"] == checkpoint
    status = wait_for_phase(kubectl, ns, "flaky", "Failed", timeout=60)
    assert status["reason"] == "RestartLimitExceeded"
    assert status["restartCount"] == 1


def test_a_lost_node_restarts_the_gang_elsewhere(kubectl: Kubectl, tenants: Tenants) -> None:
    ns = tenants.add("t-nodeloss", [{"acceleratorClass": A100, "nominal": 8}])
    job = job_manifest("resilient", ns, [option(A100, 8)], restartPolicy="OnFailure")
    assert kubectl.apply(job)[0] == 0
    status = wait_for_phase(kubectl, ns, "resilient", "Running")
    lost = status["placement"][0]["node"]
    node = kubectl.get("node", lost)
    kubectl.run("delete", "node", lost)
    try:

        def moved() -> dict[str, Any] | None:
            now = job_status(kubectl, ns, "resilient")
            placed = now.get("placement") or [{}]
            if now.get("phase") == "Running" and placed[0].get("node") not in (None, lost):
                return now
            return None

        moved_status = wait_for("the gang to run on another node", moved, timeout=90)
        # a lost node is the centre's fault: a fresh admission, the job's restart budget intact
        assert moved_status.get("restartCount", 0) == 0
        assert moved_status["attempt"] == status["attempt"] + 1
    finally:
        for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
            node["metadata"].pop(key, None)
        node["spec"] = {}
        assert kubectl.apply(node)[0] == 0


def test_suspend_releases_and_resume_readmits(kubectl: Kubectl, tenants: Tenants) -> None:
    ns = tenants.add("t-suspend", [{"acceleratorClass": H100, "nominal": 8}])
    assert kubectl.apply(job_manifest("pausable", ns, [option(H100, 8)]))[0] == 0
    wait_for_phase(kubectl, ns, "pausable", "Running")
    kubectl.run(
        "patch",
        "trainingjob",
        "pausable",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"suspend":true}}',
    )
    wait_for_phase(kubectl, ns, "pausable", "Suspended")
    wait_for("pods removed", lambda: not live_pods(kubectl, ns, "pausable"))
    wait_for("quota released", lambda: quota_usage(kubectl, ns, H100).get("used") == 0)
    kubectl.run(
        "patch",
        "trainingjob",
        "pausable",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"suspend":false}}',
    )
    wait_for_phase(kubectl, ns, "pausable", "Running")


def test_higher_priority_preempts_lower_inside_a_quota(kubectl: Kubectl, tenants: Tenants) -> None:
    ns = tenants.add(
        "t-preempt",
        [{"acceleratorClass": H100, "nominal": 8}],
        preemption={"withinQuota": "LowerPriority"},
    )
    assert kubectl.apply(job_manifest("low", ns, [option(H100, 8)], priority=0))[0] == 0
    wait_for_phase(kubectl, ns, "low", "Running")
    assert kubectl.apply(job_manifest("high", ns, [option(H100, 8)], priority=100))[0] == 0
    wait_for_phase(kubectl, ns, "high", "Running", timeout=60)
    low = job_status(kubectl, ns, "low")
    assert low["phase"] in ("Preempted", "Queued"), low
    reasons = {c["reason"] for c in low["conditions"]}
    assert "Preempted" in reasons, low["conditions"]
    events = kubectl.get("events", "-n", ns, "--field-selector", "involvedObject.name=low")
    assert any(e["reason"] == "Preempted" for e in events["items"])


def test_cohort_borrowing_and_reclaim(kubectl: Kubectl, tenants: Tenants) -> None:
    lender = tenants.add(
        "t-lender",
        [{"acceleratorClass": A100, "nominal": 8}],
        cohort="c-reclaim",
        preemption={"reclaimWithinCohort": "Any"},
    )
    borrower = tenants.add(
        "t-borrower",
        [{"acceleratorClass": A100, "nominal": 8, "borrowingLimit": 8}],
        cohort="c-reclaim",
    )
    assert kubectl.apply(job_manifest("big", borrower, [option(A100, 8)], replicas=2))[0] == 0
    wait_for_phase(kubectl, borrower, "big", "Running")
    wait_for("borrowed 8", lambda: quota_usage(kubectl, borrower, A100).get("borrowed") == 8)
    wait_for("lent 8", lambda: quota_usage(kubectl, lender, A100).get("lent") == 8)
    assert kubectl.apply(job_manifest("mine", lender, [option(A100, 8)]))[0] == 0
    wait_for_phase(kubectl, lender, "mine", "Running", timeout=60)
    big = job_status(kubectl, borrower, "big")
    assert big["phase"] in ("Preempted", "Queued"), big
    assert "Preempted" in {c["reason"] for c in big["conditions"]}


def test_pods_suanli_did_not_create_consume_capacity(kubectl: Kubectl, tenants: Tenants) -> None:
    ns = tenants.add("t-foreign", [{"acceleratorClass": H100, "nominal": 16}])
    nodes = [
        n["metadata"]["name"]
        for n in kubectl.get("nodes")["items"]
        if n["metadata"]["labels"].get("nvidia.com/gpu.product") == "NVIDIA-H100-80GB-HBM3"
    ]
    foreign = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "inference", "namespace": ns},
        "spec": {
            "nodeName": nodes[0],
            "containers": [
                {
                    "name": "serve",
                    "image": "example.invalid/serve:1",
                    "resources": {"limits": {"nvidia.com/gpu": "8"}},
                }
            ],
        },
    }
    assert kubectl.apply(foreign)[0] == 0
    assert kubectl.apply(job_manifest("wide", ns, [option(H100, 8)], replicas=2))[0] == 0

    def unschedulable() -> dict[str, Any] | None:
        status = job_status(kubectl, ns, "wide")
        return status if status.get("reason") == "Unschedulable" else None

    wait_for("wide to be unschedulable", unschedulable)
    kubectl.run("delete", "pod", "inference", "-n", ns)
    wait_for_phase(kubectl, ns, "wide", "Running", timeout=60)


def test_max_run_time_fails_the_job(kubectl: Kubectl, tenants: Tenants) -> None:
    ns = tenants.add("t-maxrun", [{"acceleratorClass": H100, "nominal": 8}])
    assert kubectl.apply(job_manifest("endless", ns, [option(H100, 1)], maxRunSeconds=3))[0] == 0
    status = wait_for_phase(kubectl, ns, "endless", "Failed", timeout=60)
    assert status["reason"] == "MaxRunTimeExceeded"
    wait_for("pods removed", lambda: not live_pods(kubectl, ns, "endless"))


def test_ttl_after_finished_deletes_the_job(kubectl: Kubectl, tenants: Tenants) -> None:
    ns = tenants.add("t-ttl", [{"acceleratorClass": H100, "nominal": 8}])
    job = job_manifest("brief", ns, [option(H100, 1)], duration="1s", ttlSecondsAfterFinished=2)
    assert kubectl.apply(job)[0] == 0
    wait_for(
        "the finished job to be deleted",
        lambda: (
            "brief"
            not in {j["metadata"]["name"] for j in kubectl.get("trainingjobs", "-n", ns)["items"]}
        ),
        timeout=60,
    )


def test_forbidden_template_fields_are_refused_naming_the_field(
    kubectl: Kubectl, tenants: Tenants
) -> None:
    ns = tenants.add("t-forbidden", [{"acceleratorClass": H100, "nominal": 8}])
    job = job_manifest("escape", ns, [option(H100, 1)])
    job["spec"]["template"]["spec"]["hostNetwork"] = True
    job["spec"]["template"]["spec"]["volumes"] = [{"name": "root", "hostPath": {"path": "/"}}]
    assert kubectl.apply(job)[0] == 0

    def refused() -> dict[str, Any] | None:
        status = job_status(kubectl, ns, "escape")
        return status if status.get("reason") == "ForbiddenPodField" else None

    status = wait_for("a ForbiddenPodField verdict", refused)
    assert "spec.template.spec.hostNetwork" in status["message"]
    assert "spec.template.spec.volumes[0].hostPath" in status["message"]
    assert not live_pods(kubectl, ns, "escape")


def test_one_failed_replica_restarts_every_replica(kubectl: Kubectl, tenants: Tenants) -> None:
    """Only replica 1 fails (its status is set by hand, as a kubelet would); replica 0 is healthy
    and must go too: collective communication cannot survive a lost rank."""
    ns = tenants.add("t-onefails", [{"acceleratorClass": H100, "nominal": 16}])
    job = job_manifest(
        "ranks", ns, [option(H100, 8)], replicas=2, restartPolicy="OnFailure", restartLimit=2
    )
    assert kubectl.apply(job)[0] == 0
    running = wait_for_phase(kubectl, ns, "ranks", "Running")
    attempt = running["attempt"]
    failing = f"ranks-a{attempt}-1"
    healthy = f"ranks-a{attempt}-0"
    failed_status = {
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {
                    "name": "trainer",
                    "image": "example.invalid/train:1",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": 3,
                            "reason": "Error",
                            "finishedAt": "2026-01-01T00:00:00Z",
                        }
                    },
                }
            ],
        }
    }
    kubectl.run(
        "patch",
        "pod",
        failing,
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(failed_status),
    )

    def restarted() -> dict[str, Any] | None:
        status = job_status(kubectl, ns, "ranks")
        return status if status.get("restartCount") == 1 else None

    status = wait_for("the gang to restart", restarted, timeout=60)
    assert "ranks-a" in status["message"] and "failed" in status["message"], status["message"]

    def new_gang() -> list[str] | None:
        """Both pods of the new attempt and none of the old (two creates: see above)."""
        names = sorted(p["metadata"]["name"] for p in live_pods(kubectl, ns, "ranks"))
        fresh = len(names) == 2 and all(f"-a{attempt}-" not in n for n in names)
        return names if fresh else None

    names = wait_for("both pods of the new attempt and no other", new_gang, timeout=90)
    assert healthy not in names, names
    final = wait_for_phase(kubectl, ns, "ranks", "Running", timeout=90)
    assert final["attempt"] > attempt and final["restartCount"] == 1
