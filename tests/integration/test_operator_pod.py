"""The operator in a pod: ``helm install`` of the chart with the locally built image on the real
node, then ``helm upgrade``.

The module's centre has kube-scheduler (a Deployment's pods name no node), one kwok H100 server
and the real node, which is its only Ascend node; the root namespace routes the real node's pod
subnet and the apiserver calls webhooks at their endpoints (``route_pods``), so the webhook
served by the operator's pods is reachable. The chart is installed as a platform engineer would:
CRDs and catalogue from the chart, into a namespace that enforces Pod Security "restricted", with
only the image, its pull policy, a node selector (the operator must not land on a kwok node,
where it would never run) and ``failurePolicy: Fail`` (a webhook that cannot be reached must show)
changed from the defaults.

Checked: the pods run on the real node as the chart's ServiceAccount, one holds the Lease, each
serves metrics and the webhook; TrainingJobs run on the kwok node and, in real containers, on the
real node; ``helm upgrade`` rolls both pods while jobs keep arriving, and the audit log shows one
replica acting as leader at a time.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import yaml

from suanli.api.manifests import OPERATOR_NAME, WEBHOOK_CONFIGURATION
from suanli.localcluster import LocalCluster
from suanli.localcluster.fakenodes import default_nodes
from suanli.localcluster.images import OPERATOR_REFERENCE
from suanli.localcluster.netns import API_ADDRESS, POD_SUBNET, NodeNetwork, read_sysctl
from suanli.localcluster.realnode import NODE_NAME, unavailable_reason
from tests.integration.conftest import (
    REPO,
    Kubectl,
    Tenants,
    job_manifest,
    option,
    wait_for,
    wait_for_phase,
)
from tests.integration.test_real_node import assert_nothing_left

pytestmark = pytest.mark.integration

NAMESPACE = "suanli-system"
CHART = REPO / "charts" / "suanli"
RELEASE = "suanli"
LEASE = "suanli-scheduler"
SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:{OPERATOR_NAME}"
KWOK_NODES = default_nodes((("nvidia-h100", "rack-h1", 1),))
KWOK_NODE = KWOK_NODES[0]["metadata"]["name"]
REPOSITORY, TAG = OPERATOR_REFERENCE.rsplit(":", 1)
VALUES = {
    "image": {"repository": REPOSITORY, "tag": TAG, "pullPolicy": "Never"},
    "nodeSelector": {"kubernetes.io/hostname": NODE_NAME},
    "webhook": {"failurePolicy": "Fail"},
}
# What only the Lease holder writes (every replica patches the webhook's caBundle and may post
# events, so those two are left out).
LEADER_RESOURCES = {
    "pods",
    "services",
    "configmaps",
    "trainingjobs",
    "computequotas",
    "acceleratorclasses",
    "leases",
}
WRITES = {"create", "update", "patch", "delete"}


def report(request: pytest.FixtureRequest, line: str) -> None:
    """Print past pytest's capture, so `make test` shows the times."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n[operator-pod] {line}", flush=True)


@pytest.fixture(autouse=True)
def timed(request: pytest.FixtureRequest) -> Iterator[None]:
    t0 = time.monotonic()
    yield
    report(request, f"{request.node.name}: {time.monotonic() - t0:.1f} s")


def helm(cluster: LocalCluster, *args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [str(cluster.tools.helm), f"--kubeconfig={cluster.kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LocalCluster]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"no real node on this machine: {reason}")
    forward_before = {
        k: read_sysctl(k) for k in ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding")
    }
    local = LocalCluster(tmp_path_factory.mktemp("operator-pod"))
    t0 = time.monotonic()
    try:
        local.up(scheduler=True, nodes=KWOK_NODES, real_node=True, route_pods=True)
        t1 = time.monotonic()
        local.kubectl("create", "namespace", NAMESPACE)
        local.kubectl(
            "label", "namespace", NAMESPACE,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest",
        )  # fmt: skip
        local.wait_for_default_service_account(NAMESPACE)
        values = local.state_dir / "values.yaml"
        values.write_text(yaml.safe_dump(VALUES))
        helm(local, "install", RELEASE, str(CHART), "--namespace", NAMESPACE,
             f"--values={values}", "--wait", "--timeout=240s")  # fmt: skip
        report(
            request,
            f"set-up: control plane and node Ready {t1 - t0:.1f} s, helm install until both "
            f"operator pods Ready {time.monotonic() - t1:.1f} s",
        )
        yield local
    finally:
        recorded = local.read_state().get("real_node", {})
        t2 = time.monotonic()
        local.down()
        report(request, f"teardown: {time.monotonic() - t2:.1f} s")
        assert_nothing_left(recorded)
        if "network" in recorded:
            host = NodeNetwork.from_state(recorded["network"]).host_interface
            routes = subprocess.run(
                ["ip", "-4", "-o", "route", "show", "table", "all"],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            assert f"dev {host} " not in routes, routes
        assert {k: read_sysctl(k) for k in forward_before} == forward_before


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster) -> dict[str, int]:
    """The operator runs in the chart's pods here: no operator process of the test's own (the
    shared ``tenants`` fixture asks for this one)."""
    return {}


@pytest.fixture(scope="module")
def network(cluster: LocalCluster) -> NodeNetwork:
    return NodeNetwork.from_state(cluster.read_state()["real_node"]["network"])


# --- helpers -------------------------------------------------------------------------------
SELECTOR = "app.kubernetes.io/name=suanli,app.kubernetes.io/component=operator"


def operator_pods(kubectl: Kubectl) -> list[dict[str, Any]]:
    pods = kubectl.get("pods", "-n", NAMESPACE, "-l", SELECTOR)["items"]
    return sorted(pods, key=lambda p: p["metadata"]["name"])


def ready(pod: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    return conditions.get("Ready") == "True" and not pod["metadata"].get("deletionTimestamp")


def lease(kubectl: Kubectl) -> dict[str, Any]:
    spec: dict[str, Any] = kubectl.get("lease", LEASE, "-n", NAMESPACE)["spec"]
    return spec


def holder_pod(spec: dict[str, Any]) -> str:
    """The pod behind a Lease holder identity (``<hostname>-<pid>``; the hostname is the pod's
    name)."""
    identity = str(spec.get("holderIdentity") or "")
    return identity.rsplit("-", 1)[0] if identity else ""


def metrics(pod: dict[str, Any]) -> dict[str, float]:
    """The pod's /metrics, read from this process through the root namespace's pod route."""
    url = f"http://{pod['status']['podIP']}:9090/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def audit_writes(cluster: LocalCluster) -> list[dict[str, Any]]:
    """Successful writes of the operator's ServiceAccount: time, pod, verb, resource, name."""
    writes = []
    for path in sorted(cluster.logs_dir.glob("audit*.log")):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            user = event.get("user") or {}
            code = (event.get("responseStatus") or {}).get("code", 0)
            if (
                event.get("stage") != "ResponseComplete"
                or user.get("username") != SERVICE_ACCOUNT
                or event.get("verb") not in WRITES
                or not 200 <= code < 300
            ):
                continue
            pod = (user.get("extra") or {}).get("authentication.kubernetes.io/pod-name") or [""]
            writes.append(
                {
                    "received": timestamp(event["requestReceivedTimestamp"]),
                    "done": timestamp(event["stageTimestamp"]),
                    "pod": pod[0],
                    "verb": event["verb"],
                    "resource": ref.get("resource"),
                    "subresource": ref.get("subresource"),
                    "namespace": ref.get("namespace"),
                    "name": ref.get("name"),
                }
            )
    return sorted(writes, key=lambda w: w["received"])


def leader_acts(cluster: LocalCluster) -> list[dict[str, Any]]:
    """Writes only the Lease holder makes (its own Lease writes included)."""
    acts = []
    for write in audit_writes(cluster):
        if write["resource"] not in LEADER_RESOURCES:
            continue
        if write["resource"] == "leases" and write["name"] != LEASE:
            continue
        acts.append(write)
    return acts


def tenures(acts: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Consecutive runs of leader acts by one pod, in the order the apiserver received them."""
    runs: list[tuple[str, list[dict[str, Any]]]] = []
    for act in acts:
        if runs and runs[-1][0] == act["pod"]:
            runs[-1][1].append(act)
        else:
            runs.append((act["pod"], [act]))
    return runs


# --- the network the module relies on ------------------------------------------------------
def test_the_root_namespace_routes_only_the_pod_subnet_into_the_node(
    network: NodeNetwork,
) -> None:
    """The one route ``route_pods`` adds leads into the node's namespace, and the root namespace
    still forwards nothing; the node's own namespace still has no route out."""
    routes = subprocess.run(
        ["ip", "-4", "-o", "route", "show", "dev", network.host_interface],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    destinations = sorted(r.split()[0] for r in routes)
    assert destinations == sorted([POD_SUBNET, network.node_address]), routes
    pod_route = next(r for r in routes if r.startswith(POD_SUBNET))
    assert f"via {network.node_address} " in pod_route and f"src {API_ADDRESS}" in pod_route
    assert read_sysctl("net/ipv4/ip_forward") == network.saved_sysctls["net/ipv4/ip_forward"]
    assert not [r for r in network.routes() if r.startswith("default")], network.routes()


# --- the operator in its pods --------------------------------------------------------------------
def test_the_operator_runs_on_the_real_node_as_the_charts_service_account(
    cluster: LocalCluster, kubectl: Kubectl
) -> None:
    pods = operator_pods(kubectl)
    assert len(pods) == 2 and all(ready(p) for p in pods), [p["status"] for p in pods]
    assert {p["spec"]["nodeName"] for p in pods} == {NODE_NAME}  # never a kwok node
    for pod in pods:
        assert pod["spec"]["serviceAccountName"] == OPERATOR_NAME
        container = pod["spec"]["containers"][0]
        assert container["image"] == OPERATOR_REFERENCE
        state = pod["status"]["containerStatuses"][0]
        assert state["ready"] and "running" in state["state"], state
    # A real process in a real container: uid 65532, read-only root, writable /tmp.
    probe = (
        "import os, tempfile; print(os.getuid(), os.access('/', os.W_OK), "
        "tempfile.gettempdir(), os.environ['KUBERNETES_SERVICE_HOST'])"
    )
    out = kubectl.run("exec", "-n", NAMESPACE, pods[0]["metadata"]["name"], "--",
                      "python3", "-c", probe).split()  # fmt: skip
    service_ip = kubectl.get("service", "kubernetes", "-n", "default")["spec"]["clusterIP"]
    assert out == ["65532", "False", "/tmp", service_ip], out
    # Pod Security "restricted" is enforced where the pods were admitted.
    labels = kubectl.get("namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    template = kubectl.get("deployment", OPERATOR_NAME, "-n", NAMESPACE)["spec"]["template"]
    template["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "escalating", "namespace": NAMESPACE},
           "spec": template["spec"]}  # fmt: skip
    refused = cluster.kubectl("create", "--dry-run=server", "-f", "-",
                              input_text=yaml.safe_dump(pod), check=False)  # fmt: skip
    assert refused.returncode != 0 and "restricted" in refused.stderr, refused.stderr
    # The apiserver saw the pods' own bound tokens: the ServiceAccount, named pod by pod.
    writers = {w["pod"] for w in audit_writes(cluster)}
    assert {p["metadata"]["name"] for p in pods} <= writers, writers


def test_one_replica_holds_the_lease_and_each_serves_metrics(kubectl: Kubectl) -> None:
    pods = operator_pods(kubectl)
    names = {p["metadata"]["name"] for p in pods}
    holder = wait_for("a replica to hold the Lease", lambda: holder_pod(lease(kubectl)), 60)
    assert holder in names, (holder, names)

    def leader_gauges() -> dict[str, float] | None:
        gauges = {
            p["metadata"]["name"]: metrics(p).get("suanli_scheduler_leader", -1.0) for p in pods
        }
        return gauges if sorted(gauges.values()) == [0.0, 1.0] else None

    gauges = wait_for("one leader gauge at 1, the other at 0", leader_gauges, timeout=30)
    assert gauges[holder] == 1.0, gauges
    for pod in pods:
        assert (
            'suanli_build_info{python="3.11'
            in urllib.request.urlopen(f"http://{pod['status']['podIP']}:9090/metrics", timeout=10)
            .read()
            .decode()
        )


def test_the_webhook_served_by_the_pods_refuses_at_apply(kubectl: Kubectl) -> None:
    hooks = kubectl.get("validatingwebhookconfiguration", WEBHOOK_CONFIGURATION)["webhooks"]
    assert {h["failurePolicy"] for h in hooks} == {"Fail"}
    assert all(h["clientConfig"].get("caBundle") for h in hooks), "no replica patched caBundle"
    slices = kubectl.get(
        "endpointslices", "-n", NAMESPACE, "-l", "kubernetes.io/service-name=suanli-webhook"
    )["items"]
    addresses = {a for s in slices for e in s["endpoints"] or [] for a in e["addresses"]}
    assert addresses == {p["status"]["podIP"] for p in operator_pods(kubectl)}
    kubectl.run("create", "namespace", "webhook-probe")
    try:
        kubectl.cluster.wait_for_default_service_account("webhook-probe")
        bad = job_manifest("three-chips", "webhook-probe", [option("ascend-910b", 3)])
        code, output = kubectl.apply(bad)
        assert code != 0 and "legal counts are 1, 2, 4 or 8" in output, output
    finally:
        kubectl.run("delete", "namespace", "webhook-probe", "--wait=false")
    # One of the pods answered (with failurePolicy Fail, an unreachable webhook would refuse
    # with a "failed calling webhook" error instead).
    logs = "".join(
        kubectl.run("logs", "-n", NAMESPACE, p["metadata"]["name"]) for p in operator_pods(kubectl)
    )
    assert "refused trainingjobs three-chips" in logs


# --- scheduling onto both kinds of node ----------------------------------------------------------
PROGRAM = (
    "import os; print('rank', os.environ['RANK'], 'chips', os.environ['ASCEND_VISIBLE_DEVICES'])"
)


def real_job(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "accelerators": [option("ascend-910b", 2)],
            "template": {"spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "trainer", "image": OPERATOR_REFERENCE,
                                "imagePullPolicy": "Never", "command": ["python3", "-c", PROGRAM]}],
            }},
        },
    }  # fmt: skip


def test_jobs_run_on_a_kwok_node_and_on_the_real_node(
    cluster: LocalCluster, kubectl: Kubectl, tenants: Tenants
) -> None:
    tenants.add("t-both", [{"acceleratorClass": "ascend-910b", "nominal": 8},
                           {"acceleratorClass": "nvidia-h100", "nominal": 8}])  # fmt: skip
    fake = job_manifest("on-kwok", "t-both", [option("nvidia-h100", 8)], duration="2s")
    for manifest in (fake, real_job("on-real", "t-both")):
        code, output = kubectl.apply(manifest)
        assert code == 0, output
    for name in ("on-kwok", "on-real"):
        wait_for_phase(kubectl, "t-both", name, "Succeeded", timeout=120)
    pods = {
        p["metadata"]["labels"]["suanli.io/job-name"]: p
        for p in kubectl.get("pods", "-n", "t-both")["items"]
    }
    assert pods["on-kwok"]["spec"]["nodeName"] == KWOK_NODE
    assert pods["on-real"]["spec"]["nodeName"] == NODE_NAME
    logs = kubectl.run("logs", "-n", "t-both", pods["on-real"]["metadata"]["name"])
    chips = pods["on-real"]["metadata"]["annotations"]["huawei.com/Ascend910"]
    assert logs.split() == ["rank", "0", "chips", chips.replace("Ascend910-", "")], (logs, chips)
    # Both pods were created by the replica holding the Lease.
    created = {
        w["name"]: w["pod"]
        for w in audit_writes(cluster)
        if w["verb"] == "create" and w["resource"] == "pods" and w["namespace"] == "t-both"
    }
    holder = holder_pod(lease(kubectl))
    assert set(created.values()) == {holder}, (created, holder)


# --- helm upgrade ------------------------------------------------------------------------------
def test_helm_upgrade_rolls_the_operator_with_no_double_leader(
    cluster: LocalCluster, kubectl: Kubectl, tenants: Tenants, request: pytest.FixtureRequest
) -> None:
    """While jobs keep arriving, ``helm upgrade`` replaces both pods (a new Lease duration in
    their arguments); the Lease moves to a new pod, and the audit log shows the leader's writes
    of one replica ending before the next replica's begin, each handover starting with a Lease
    write of the new holder."""
    tenants.add("t-roll", [{"acceleratorClass": "nvidia-h100", "nominal": 8}])
    old_pods = {p["metadata"]["name"] for p in operator_pods(kubectl)}
    before = lease(kubectl)
    old_holder = holder_pod(before)
    assert old_holder in old_pods
    started = datetime.now().astimezone()
    t0 = time.monotonic()
    upgrade = subprocess.Popen(
        [str(cluster.tools.helm), f"--kubeconfig={cluster.kubeconfig}", "upgrade", RELEASE,
         str(CHART), "--namespace", NAMESPACE, "--reuse-values",
         "--set", "leaderElection.leaseSeconds=12", "--wait", "--timeout=300s"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    submitted = 0
    try:
        while upgrade.poll() is None and time.monotonic() - t0 < 320:
            job = job_manifest(f"roll-{submitted}", "t-roll", [option("nvidia-h100", 1)],
                               duration="1s")  # fmt: skip
            code, output = kubectl.apply(job)
            assert code == 0, output  # the webhook (failurePolicy Fail) answered all along
            submitted += 1
            time.sleep(3)
        output = upgrade.communicate(timeout=30)[0]
    finally:
        if upgrade.poll() is None:
            upgrade.kill()
            upgrade.wait()
    assert upgrade.returncode == 0, output
    rolled = time.monotonic() - t0

    new_pods = {p["metadata"]["name"]: p for p in operator_pods(kubectl) if ready(p)}
    assert len(new_pods) == 2 and not set(new_pods) & old_pods, (new_pods, old_pods)
    for pod in new_pods.values():
        assert "--lease-seconds=12" in pod["spec"]["containers"][0]["args"]
    after = wait_for(
        "a new pod to hold the Lease",
        lambda: spec if holder_pod(spec := lease(kubectl)) in new_pods else None,
        timeout=60,
    )
    assert after["leaseDurationSeconds"] == 12
    assert after["leaseTransitions"] > before.get("leaseTransitions", 0), (before, after)
    for index in range(submitted):
        wait_for_phase(kubectl, "t-roll", f"roll-{index}", "Succeeded", timeout=180)

    # The audit log: one replica acting as leader at a time.
    acts = [a for a in leader_acts(cluster) if a["received"] >= started]
    runs = tenures(acts)
    pods_in_order = [pod for pod, _ in runs]
    assert len(pods_in_order) == len(set(pods_in_order)), (
        "a replica acted as leader again after another had: "
        + " -> ".join(f"{pod} ({len(run)})" for pod, run in runs)
    )
    assert pods_in_order[0] == old_holder and pods_in_order[-1] in new_pods, pods_in_order
    for (previous, ended), (successor, began) in itertools.pairwise(runs):
        first = began[0]
        assert first["resource"] == "leases" and first["verb"] in ("update", "create"), first
        assert ended[-1]["done"] <= first["received"], (previous, ended[-1], successor, first)
    handovers = [
        f"{previous[-5:]} -> {successor[-5:]} "
        f"{(began[0]['received'] - ended[-1]['done']).total_seconds():.2f} s"
        for (previous, ended), (successor, began) in itertools.pairwise(runs)
    ]
    pod_writes = sum(1 for a in acts if a["resource"] == "pods")
    report(
        request,
        f"helm upgrade rolled in {rolled:.1f} s; {submitted} jobs submitted meanwhile, "
        f"{pod_writes} pod writes; leaders {len(runs)}, handovers (gap) {', '.join(handovers)}",
    )
