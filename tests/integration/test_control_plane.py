"""The local control plane is the real thing: built binaries, running processes, kwok nodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from suanli.localcluster import LocalCluster
from tests.integration.conftest import Kubectl, wait_for

pytestmark = pytest.mark.integration


def test_real_apiserver_and_etcd_processes_serve_the_tests(cluster: LocalCluster) -> None:
    running = cluster.running_processes()
    for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kwok"):
        assert component in running, f"{component} is not running"
        pid = running[component]["pid"]
        exe = Path(f"/proc/{pid}/exe").resolve()
        assert exe.name == component, f"pid {pid} runs {exe}, not {component}"
        assert str(exe).startswith(str(cluster.tools.etcd.parents[2])), exe
    version = json.loads(cluster.kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"].startswith("v1.34."), version
    assert cluster.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"


def test_fake_accelerator_nodes_are_ready(kubectl: Kubectl) -> None:
    nodes = kubectl.get("nodes")["items"]
    by_resource: dict[str, int] = {}
    for node in nodes:
        for resource in ("huawei.com/Ascend910", "nvidia.com/gpu"):
            if resource in node["status"]["allocatable"]:
                by_resource[resource] = by_resource.get(resource, 0) + 1
    assert by_resource.get("huawei.com/Ascend910", 0) >= 2
    assert by_resource.get("nvidia.com/gpu", 0) >= 2

    def all_ready() -> bool:
        for node in kubectl.get("nodes")["items"]:
            ready = [c for c in node["status"].get("conditions", []) if c["type"] == "Ready"]
            if not ready or ready[0]["status"] != "True":
                return False
        return True

    wait_for("every kwok node Ready", all_ready, timeout=30)


def test_kwok_pods_run_and_finish_as_annotated(kubectl: Kubectl, cluster: LocalCluster) -> None:
    node = next(
        n["metadata"]["name"]
        for n in kubectl.get("nodes")["items"]
        if "huawei.com/Ascend910" in n["status"]["allocatable"]
    )
    cluster.kubectl("create", "namespace", "kwok-check")
    cluster.wait_for_default_service_account("kwok-check")
    for name, pod_annotations in (
        ("succeeds", {"suanli.io/fake-duration": "2s"}),
        ("fails", {"suanli.io/fake-duration": "2s", "suanli.io/fake-exit-code": "7"}),
    ):
        code, output = kubectl.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "namespace": "kwok-check",
                    "annotations": pod_annotations,
                },
                "spec": {
                    "nodeName": node,
                    "containers": [{"name": "main", "image": "example.invalid/train:1"}],
                },
            }
        )
        assert code == 0, output
    wait_for(
        "pods Running",
        lambda: all(
            p["status"].get("phase") in ("Running", "Succeeded", "Failed")
            for p in kubectl.get("pods", "-n", "kwok-check")["items"]
        ),
        timeout=30,
    )
    phases = wait_for(
        "pods finished",
        lambda: (
            {
                p["metadata"]["name"]: p["status"]["phase"]
                for p in kubectl.get("pods", "-n", "kwok-check")["items"]
            }
            if all(
                p["status"].get("phase") in ("Succeeded", "Failed")
                for p in kubectl.get("pods", "-n", "kwok-check")["items"]
            )
            else None
        ),
        timeout=30,
    )
    assert phases == {"succeeds": "Succeeded", "fails": "Failed"}
    failed = kubectl.get("pod", "fails", "-n", "kwok-check")
    assert failed["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 7
    cluster.kubectl("delete", "namespace", "kwok-check", "--wait=false")
