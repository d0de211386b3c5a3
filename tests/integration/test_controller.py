"""The rebuilt controller on the real apiserver: complete rollback, terminal refusals, fresh
objects per admission, node rules, quota conflicts, billing whoever deletes a pod, priority
classes, restricted Pod Security, and bad objects that never hold up anyone else.

Faults are injected by the API server itself: a ValidatingAdmissionPolicy refuses the chosen
creation (the rank table, the Service, or one pod), so the operator's real error path runs —
there is no test hook in the operator.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

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


def objects(kubectl: Kubectl, kind: str, namespace: str, job: str) -> list[str]:
    items = kubectl.get(kind, "-n", namespace, "-l", f"suanli.io/job-name={job}")["items"]
    return sorted(i["metadata"]["name"] for i in items)


def usage(kubectl: Kubectl, quota: str, cls: str) -> int:
    status = kubectl.get("computequota", quota).get("status") or {}
    return sum(
        int(r.get("used", 0)) for r in status.get("usage") or [] if r["acceleratorClass"] == cls
    )


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    for found in status.get("conditions") or []:
        if found["type"] == type_:
            return dict(found)
    return {}


@pytest.fixture
def refuse(kubectl: Kubectl) -> Iterator[Any]:
    """Make the API server refuse creations in one namespace whose name matches ``expression``."""
    made: list[str] = []

    def install(
        namespace: str, expression: str, reason: str, resources: list[str], probe_name: str
    ) -> None:
        name = f"fault-{namespace}"
        policy = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": resources,
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": f"!({expression})",
                        "message": "injected fault: this object is refused",
                        "reason": reason,
                    }
                ],
            },
        }
        binding = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                },
            },
        }
        for manifest in (policy, binding):
            code, output = kubectl.apply(manifest)
            assert code == 0, output
        made.append(name)
        kind = {"pods": "Pod", "services": "Service", "configmaps": "ConfigMap"}[resources[0]]
        probe: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": {"name": probe_name, "namespace": namespace},
        }
        if kind == "Pod":
            probe["spec"] = {"containers": [{"name": "c", "image": "probe.invalid/x"}]}
        if kind == "Service":
            probe["spec"] = {"ports": [{"port": 1}]}

        def enforced() -> bool:  # policies take effect once the apiserver has compiled them
            result = kubectl.cluster.kubectl(
                "create",
                "--dry-run=server",
                "-f",
                "-",
                input_text=yaml.safe_dump(probe),
                check=False,
            )
            return "injected fault" in result.stderr

        wait_for("the injected fault to be enforced", enforced, timeout=30)

    def remove() -> None:
        for name in made:
            kubectl.cluster.kubectl(
                "delete",
                "validatingadmissionpolicybinding,validatingadmissionpolicy",
                name,
                "--ignore-not-found",
                check=False,
            )
        made.clear()

    install.remove = remove  # type: ignore[attr-defined]
    try:
        yield install
    finally:
        remove()


@pytest.mark.parametrize(
    ("step", "resources", "expression", "probe"),
    [
        ("rank table", ["configmaps"], "object.metadata.name.endsWith('-hccl')", "p-a0-hccl"),
        ("headless Service", ["services"], "object.metadata.name == 'faulty'", "faulty"),
        ("second pod", ["pods"], "object.metadata.name.endsWith('-1')", "probe-a0-1"),
    ],
)
def test_a_failed_creation_rolls_back_everything_of_the_admission(
    kubectl: Kubectl,
    tenants: Tenants,
    refuse: Any,
    step: str,
    resources: list[str],
    expression: str,
    probe: str,
) -> None:
    ns = tenants.add(f"t-fault-{resources[0][:4]}", [{"acceleratorClass": ASCEND, "nominal": 16}])
    refuse(ns, expression, "Forbidden", resources, probe)
    assert kubectl.apply(job_manifest("faulty", ns, [option(ASCEND, 8)], replicas=2))[0] == 0

    def rolled_back() -> dict[str, Any] | None:
        status = job_status(kubectl, ns, "faulty")
        return status if status.get("reason") == "ApplyFailed" else None

    status = wait_for(f"the job to be rolled back after the {step} was refused", rolled_back, 90)
    assert "injected fault" in status["message"], status["message"]
    assert status["phase"] == "Queued"
    assert not status.get("placement") and not status.get("chosenOption")
    wait_for("no pod of the admission left", lambda: not live_pods(kubectl, ns, "faulty"), 60)
    assert objects(kubectl, "configmaps", ns, "faulty") == []
    wait_for("the quota to be released", lambda: usage(kubectl, ns, ASCEND) == 0, 30)

    refuse.remove()
    running = wait_for_phase(kubectl, ns, "faulty", "Running", timeout=120)
    # a fresh admission number: nothing of the failed one is reused
    assert running["attempt"] >= 1
    names = sorted(p["metadata"]["name"] for p in live_pods(kubectl, ns, "faulty"))
    assert names == [f"faulty-a{running['attempt']}-0", f"faulty-a{running['attempt']}-1"]
    assert objects(kubectl, "configmaps", ns, "faulty") == [f"faulty-a{running['attempt']}-hccl"]


def test_a_refusal_that_cannot_change_ends_the_job_with_the_servers_message(
    kubectl: Kubectl, tenants: Tenants, refuse: Any
) -> None:
    ns = tenants.add("t-refused", [{"acceleratorClass": H100, "nominal": 8}])
    refuse(ns, "object.metadata.name.startsWith('doomed-')", "Invalid", ["pods"], "doomed-a0-0")
    assert kubectl.apply(job_manifest("doomed", ns, [option(H100, 8)]))[0] == 0
    status = wait_for_phase(kubectl, ns, "doomed", "Failed", timeout=90)
    assert status["reason"] == "CreateRefused"
    assert "injected fault" in status["message"]
    assert condition(status, "Finished")["status"] == "True"
    time.sleep(3)  # a retry loop would have re-admitted it by now
    assert job_status(kubectl, ns, "doomed")["phase"] == "Failed"
    assert usage(kubectl, ns, H100) == 0


def test_a_readmitted_job_gets_a_fresh_rank_table_and_the_stale_one_goes(
    kubectl: Kubectl, tenants: Tenants
) -> None:
    ns = tenants.add("t-fresh", [{"acceleratorClass": ASCEND, "nominal": 16}])
    assert kubectl.apply(job_manifest("fresh", ns, [option(ASCEND, 4)], replicas=2))[0] == 0
    first = wait_for_phase(kubectl, ns, "fresh", "Running")
    assert objects(kubectl, "configmaps", ns, "fresh") == [f"fresh-a{first['attempt']}-hccl"]
    kubectl.run("patch", "tj", "fresh", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    wait_for_phase(kubectl, ns, "fresh", "Suspended")
    kubectl.run(
        "patch", "tj", "fresh", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}'
    )
    second = wait_for_phase(kubectl, ns, "fresh", "Running", timeout=90)
    assert second["attempt"] == first["attempt"] + 1
    wanted = f"fresh-a{second['attempt']}-hccl"
    wait_for(
        "only the new rank table",
        lambda: objects(kubectl, "configmaps", ns, "fresh") == [wanted],
        30,
    )
    table = json.loads(kubectl.get("configmap", wanted, "-n", ns)["data"]["rank_table.json"])
    placed = {r["node"]: r["deviceIndices"] for r in second["placement"]}
    assert {
        s["server_id"]: [int(d["device_id"]) for d in s["device"]] for s in table["server_list"]
    } == placed


def test_cordon_only_stops_placements_and_a_noexecute_taint_restarts_without_a_charge(
    kubectl: Kubectl, tenants: Tenants
) -> None:
    ns = tenants.add("t-nodes", [{"acceleratorClass": H100, "nominal": 16}])
    job = job_manifest("steady", ns, [option(H100, 8)], restartPolicy="Never")
    assert kubectl.apply(job)[0] == 0
    status = wait_for_phase(kubectl, ns, "steady", "Running")
    node = status["placement"][0]["node"]
    try:
        kubectl.run("cordon", node)
        kubectl.run("taint", "nodes", node, "maintenance=soon:NoSchedule", "--overwrite")
        time.sleep(8)  # more than one cycle tick: a restart would have happened by now
        after = job_status(kubectl, ns, "steady")
        assert (after["phase"], after.get("restartCount") or 0) == ("Running", 0), after
        assert [p["metadata"]["name"] for p in live_pods(kubectl, ns, "steady")] == [
            f"steady-a{status['attempt']}-0"
        ]
        kubectl.run("uncordon", node)
        kubectl.run("taint", "nodes", node, "evict=now:NoExecute", "--overwrite")

        def moved() -> dict[str, Any] | None:
            found = job_status(kubectl, ns, "steady")
            placement = found.get("placement") or [{}]
            return found if placement[0].get("node") not in (None, node) else None

        again = wait_for("the gang to be restarted on another node", moved, 90)
        # the centre's failure: restartPolicy Never does not fail the job, the count stays
        assert again["phase"] in ("Admitted", "Running")
        assert (again.get("restartCount") or 0) == 0
    finally:
        kubectl.cluster.kubectl("uncordon", node, check=False)
        for taint in ("maintenance", "evict"):
            kubectl.cluster.kubectl("taint", "nodes", node, f"{taint}-", check=False)


def test_the_older_quota_keeps_a_namespace_a_newer_one_claims(
    kubectl: Kubectl, tenants: Tenants
) -> None:
    ns = tenants.add("t-owner", [{"acceleratorClass": H100, "nominal": 8}])
    wait_for(
        "the owner quota to serve its namespace",
        lambda: (kubectl.get("computequota", ns).get("status") or {}).get("usage") is not None,
    )
    intruder = {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "ComputeQuota",
        "metadata": {"name": "t-intruder"},
        "spec": {"namespaces": [ns, "t-intruder-own"], "resources": []},
    }
    code, output = kubectl.apply(intruder)
    if code != 0:  # the validating webhook, where registered, refuses it at apply time
        assert "t-owner" in output, output
        return
    try:

        def conflict() -> dict[str, Any] | None:
            status = kubectl.get("computequota", "t-intruder").get("status") or {}
            found = condition(status, "Conflict")
            return found if found.get("status") == "True" else None

        found = wait_for("a Conflict condition on the newer quota", conflict, 90)
        assert "ComputeQuota t-owner" in found["message"] and ns in found["message"]
        status = kubectl.get("computequota", "t-intruder")["status"]
        assert status["servedNamespaces"] == ["t-intruder-own"], status
        assert kubectl.get("computequota", ns)["status"]["servedNamespaces"] == [ns]
        assert kubectl.apply(job_manifest("mine", ns, [option(H100, 8)]))[0] == 0
        assert wait_for_phase(kubectl, ns, "mine", "Running")["quota"] == "t-owner"
    finally:
        kubectl.cluster.kubectl("delete", "computequota", "t-intruder", check=False)


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_a_pod_deleted_by_the_tenant_is_billed_to_the_second(
    kubectl: Kubectl, tenants: Tenants
) -> None:
    ns = tenants.add("t-billed", [{"acceleratorClass": H100, "nominal": 8}])
    job = job_manifest("billed", ns, [option(H100, 4)], restartPolicy="Never")
    assert kubectl.apply(job)[0] == 0
    wait_for_phase(kubectl, ns, "billed", "Running")
    (pod,) = live_pods(kubectl, ns, "billed")
    time.sleep(3)
    kubectl.run("delete", "pod", pod["metadata"]["name"], "-n", ns, "--wait=false")

    def billed() -> list[dict[str, Any]] | None:
        rows = (kubectl.get("computequota", ns).get("status") or {}).get("metering") or []
        return rows or None

    rows = wait_for("the deleted pod's time in the quota's metering", billed, 60)
    wait_for("the pod to be released", lambda: not kubectl.get("pods", "-n", ns)["items"], 60)
    # ground truth from the pod's own times: start, and the deletion (kwok stops it at once)
    started = _seconds(pod["status"]["startTime"])
    assert rows[0]["acceleratorClass"] == H100
    seconds = float(rows[0]["deviceSeconds"])
    assert seconds >= 4 * 3, rows  # it ran at least the 3 s we waited, on 4 devices
    assert seconds <= 4 * (time.time() - started), rows
    assert seconds % 4 == 0, "whole seconds × 4 devices"
    assert job_status(kubectl, ns, "billed")["phase"] == "Failed"  # restartPolicy Never


def test_priority_class_name_is_resolved_and_preempts(kubectl: Kubectl, tenants: Tenants) -> None:
    ns = tenants.add(
        "t-prio",
        [{"acceleratorClass": H100, "nominal": 8}],
        preemption={"withinQuota": "LowerPriority"},
    )
    klass = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "suanli-test-urgent"},
        "value": 100000,
    }
    assert kubectl.apply(klass)[0] == 0
    try:
        assert kubectl.apply(job_manifest("low", ns, [option(H100, 8)]))[0] == 0
        wait_for_phase(kubectl, ns, "low", "Running")
        urgent = job_manifest(
            "urgent", ns, [option(H100, 8)], priorityClassName="suanli-test-urgent"
        )
        assert kubectl.apply(urgent)[0] == 0
        wait_for_phase(kubectl, ns, "low", "Preempted", timeout=90)
        wait_for_phase(kubectl, ns, "urgent", "Running", timeout=90)
    finally:
        kubectl.cluster.kubectl("delete", "priorityclass", "suanli-test-urgent", check=False)


def test_pods_start_where_the_restricted_pod_security_level_is_enforced(
    kubectl: Kubectl, tenants: Tenants
) -> None:
    ns = tenants.add("t-restricted", [{"acceleratorClass": ASCEND, "nominal": 8}])
    kubectl.run("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    assert kubectl.apply(job_manifest("safe", ns, [option(ASCEND, 8)]))[0] == 0
    status = wait_for_phase(kubectl, ns, "safe", "Running")
    (pod,) = live_pods(kubectl, ns, "safe")
    security = pod["spec"]["containers"][0]["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert status["reason"] == "Running"


def test_bad_jobs_are_refused_by_name_and_never_hold_up_a_canary(
    kubectl: Kubectl, tenants: Tenants
) -> None:
    ns = tenants.add("t-bad", [{"acceleratorClass": H100, "nominal": 16}])
    long_name = "a" * 60  # a valid TrainingJob name; its pods' hostnames would be too long
    bad = {
        long_name: job_manifest(long_name, ns, [option(H100, 1)]),
        "huge-cpu": job_manifest("huge-cpu", ns, [option(H100, 1)]),
        "gpu-in-template": job_manifest("gpu-in-template", ns, [option(H100, 1)]),
    }
    bad["huge-cpu"]["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "1e30"}
    }
    bad["gpu-in-template"]["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"nvidia.com/gpu": "8"}
    }
    refused_at_apply = 0
    for manifest in bad.values():
        code, _ = kubectl.apply(manifest)
        refused_at_apply += int(code != 0)
    assert kubectl.apply(job_manifest("canary", ns, [option(H100, 8)]))[0] == 0
    wait_for_phase(kubectl, ns, "canary", "Running", timeout=60)
    marked = 0
    for name, field in (
        (long_name, "metadata.name"),
        ("huge-cpu", "cpu"),
        ("gpu-in-template", "nvidia.com/gpu"),
    ):
        found = kubectl.cluster.kubectl("get", "tj", name, "-n", ns, "-o", "json", check=False)
        if found.returncode != 0:
            continue  # refused at kubectl apply (the webhook)

        def invalid(name: str = name) -> dict[str, Any] | None:
            status = job_status(kubectl, ns, name)
            return status if condition(status, "Valid").get("status") == "False" else None

        status = wait_for(f"{name} marked Invalid", invalid, 30)
        assert status["reason"] in ("Invalid", "ForbiddenPodField"), status
        assert field in status["message"], status
        marked += 1
    assert refused_at_apply + marked == len(bad)
