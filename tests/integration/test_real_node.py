"""The real node: containerd + kubelet in a network namespace of its own, real containers.

The module brings up a control plane whose only Ascend node is the real one (no kwok nodes), so
every TrainingJob here lands on it and runs for real: a 2-replica job whose ranks meet at
``MASTER_ADDR:MASTER_PORT`` through the headless Service and cluster DNS, check the environment
and rank table the operator and the device plugin gave them, all-reduce a vector over TCP, write a
checkpoint and exit 0; a gang restart after one rank's container is killed, resuming from the
checkpoint; restricted Pod Security enforced on the tenant's namespace. Before any of it: the
node's namespace has no route out and the root namespace's forwarding is unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from suanli.localcluster import LocalCluster
from suanli.localcluster.cli import install_api
from suanli.localcluster.images import OPERATOR_REFERENCE
from suanli.localcluster.netns import API_ADDRESS, POD_SUBNET, NodeNetwork, read_sysctl
from suanli.localcluster.realnode import NODE_NAME, NodeLayout, unavailable_reason
from tests.integration.conftest import Kubectl, Tenants, job_status, wait_for, wait_for_phase

pytestmark = pytest.mark.integration

OPERATOR_ARGS = ("--standalone", "--gang-start-timeout=120", "--requeue-backoff=1")

# The distributed program: rank 0 serves the all-reduce at MASTER_ADDR:MASTER_PORT; every rank
# checks what it was given, contributes its vector, gets the sum back, and rank 0 checkpoints the
# step. STEPS and STEP_SECONDS come from the environment so the restart test can run longer.
PROGRAM = r"""
import json, os, socket, sys, time

env = os.environ
rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
assert world == 2 and env["LOCAL_WORLD_SIZE"] == "2", (world, env["LOCAL_WORLD_SIZE"])
chips = env["ASCEND_VISIBLE_DEVICES"].split(",")
assert env["SUANLI_ALLOCATED_DEVICES"] == ",".join("Ascend910-" + c for c in chips), env
table = json.load(open(env["RANK_TABLE_FILE"]))
mine = [d["device_id"] for d in table["server_list"][rank]["device"]]
assert mine == chips, ("rank table", mine, "visible", chips)
ckpt_dir = env["SUANLI_CHECKPOINT_DIR"]
os.makedirs(ckpt_dir, exist_ok=True)
ckpt = os.path.join(ckpt_dir, "state.json")
start = json.load(open(ckpt))["step"] if os.path.exists(ckpt) else 0
steps, pause = int(env.get("STEPS", "3")), float(env.get("STEP_SECONDS", "0"))
host, port = env["MASTER_ADDR"], int(env["MASTER_PORT"])

def lines(sock):
    buf = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield json.loads(line)

attempt = env["SUANLI_ATTEMPT"]
if rank == 0:
    server = socket.create_server(("0.0.0.0", port))
    server.settimeout(180)
    peer, _ = server.accept()
    peer.sendall((json.dumps(attempt) + "\n").encode())
    peer_lines = lines(peer)
else:
    # The headless Service may still name the previous attempt's rank 0 for a moment after a
    # gang restart: keep trying until the rank 0 that answers is of this attempt.
    deadline = time.time() + 120
    while True:
        try:
            peer = socket.create_connection((host, port), timeout=5)
            peer.settimeout(10)
            peer_lines = lines(peer)
            if next(peer_lines) == attempt:
                break
            peer.close()
        except (OSError, StopIteration, ValueError):
            pass
        if time.time() > deadline:
            raise SystemExit("no rank 0 of attempt " + attempt)
        time.sleep(0.5)
peer.settimeout(60)

for step in range(start, steps):
    vector = [float(rank + 1) * (step + 1)] * 4
    if rank == 0:
        other = next(peer_lines)
        total = [a + b for a, b in zip(vector, other)]
        peer.sendall((json.dumps(total) + "\n").encode())
    else:
        peer.sendall((json.dumps(vector) + "\n").encode())
        total = next(peer_lines)
    assert total == [3.0 * (step + 1)] * 4, total
    if rank == 0:
        tmp = ckpt + ".tmp"
        json.dump({"step": step + 1}, open(tmp, "w"))
        os.replace(tmp, ckpt)
    time.sleep(pause)

record = {"rank": rank, "attempt": env["SUANLI_ATTEMPT"], "resumed_from": start,
          "master": host, "chips": chips, "sum": total}
json.dump(record, open(os.path.join(ckpt_dir, "rank%d.json" % rank), "w"))
print("done", json.dumps(record), flush=True)
"""


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
    local = LocalCluster(tmp_path_factory.mktemp("real-node"))
    t0 = time.monotonic()
    try:
        local.up(nodes=False, real_node=True)
        install_api(local)
        report(request, f"set-up (control plane, node Ready, CRDs): {time.monotonic() - t0:.1f} s")
        yield local
    finally:
        recorded = local.read_state().get("real_node", {})
        t1 = time.monotonic()
        local.down()
        report(request, f"teardown: {time.monotonic() - t1:.1f} s")
        assert_nothing_left(recorded)
        forward_after = {k: read_sysctl(k) for k in forward_before}
        assert forward_after == forward_before


def assert_nothing_left(recorded: dict[str, Any]) -> None:
    """No namespace, interface, guard chain, cgroup or process of the node survives `down`."""
    if "network" not in recorded:
        return
    network = NodeNetwork.from_state(recorded["network"])
    assert not network.exists()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert network.host_interface not in links
    assert "cni0" not in links and " veth" not in links
    chains = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True, check=True)
    assert network.guard_chain not in chains.stdout
    cgroup_root = recorded.get("cgroup_root")
    if cgroup_root:
        assert not [p for p in Path("/sys/fs/cgroup").glob(f"*/{cgroup_root}")]
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert network.namespace not in processes.stdout


@pytest.fixture(scope="module")
def network(cluster: LocalCluster) -> NodeNetwork:
    return NodeNetwork.from_state(cluster.read_state()["real_node"]["network"])


def report(request: pytest.FixtureRequest, line: str) -> None:
    """Print past pytest's capture, so `make test` shows the real node's times."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n[real-node] {line}", flush=True)


@pytest.fixture(autouse=True)
def timed(request: pytest.FixtureRequest) -> Iterator[None]:
    t0 = time.monotonic()
    yield
    report(request, f"{request.node.name}: {time.monotonic() - t0:.1f} s")


# --- network safety ----------------------------------------------------------------------------
def test_the_node_namespace_has_no_route_out(network: NodeNetwork) -> None:
    routes = network.routes()
    assert not [r for r in routes if r.startswith("default")], routes
    allowed = (
        f"{API_ADDRESS} ",
        POD_SUBNET.split("/")[0][:-1],
        "127.",
        "local 127.",
        "broadcast 127.",
    )
    for route in routes:
        words = route.split()
        destination = words[1] if words[0] in ("local", "broadcast") else words[0]
        assert (
            destination == API_ADDRESS
            or destination == network.node_address
            or destination.startswith(("127.", "10.129.0."))
        ), f"unexpected route in the node namespace: {route} (allowed: {allowed})"
    interfaces = set(network.interfaces())
    assert {"lo", network.node_interface} <= interfaces  # cni0 comes with the first pod
    assert all(
        i in ("lo", "cni0", network.node_interface) or i.startswith("veth") for i in interfaces
    )


def test_root_namespace_forwards_nothing_and_guards_the_pod_subnet(network: NodeNetwork) -> None:
    assert read_sysctl("net/ipv4/ip_forward") == network.saved_sysctls["net/ipv4/ip_forward"]
    rules = subprocess.run(
        ["iptables", "-w", "-S", network.guard_chain], capture_output=True, text=True, check=True
    ).stdout
    for rule in (f"-i {network.host_interface}", f"-o {network.host_interface}", f"-s {POD_SUBNET}",
                 f"-d {POD_SUBNET}"):  # fmt: skip
        assert f"{rule} -j DROP" in rules, rules
    forward = subprocess.run(
        ["iptables", "-w", "-S", "FORWARD"], capture_output=True, text=True, check=True
    )
    assert f"-A FORWARD -j {network.guard_chain}" in forward.stdout


def run_pod(kubectl: Kubectl, namespace: str, name: str, script: str, timeout: float = 90) -> str:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "nodeName": NODE_NAME,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe", "image": OPERATOR_REFERENCE, "imagePullPolicy": "Never",
                "command": ["python3", "-c", script],
                "securityContext": {"allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }  # fmt: skip
    code, output = kubectl.apply(pod)
    assert code == 0, output
    phase = wait_for(
        f"pod {name} to finish",
        lambda: (
            kubectl.get("pod", name, "-n", namespace)["status"].get("phase")
            in ("Succeeded", "Failed")
            and kubectl.get("pod", name, "-n", namespace)["status"]["phase"]
        ),
        timeout=timeout,
    )
    logs = kubectl.run("logs", name, "-n", namespace)
    assert phase == "Succeeded", logs
    return logs


def test_a_pod_reaches_the_apiserver_and_nothing_else(
    kubectl: Kubectl, network: NodeNetwork
) -> None:
    """From inside a container: the apiserver answers through the kubernetes Service; the
    machine's own uplink address and its gateway are unreachable; DNS has no upstream."""
    targets = ["8.8.8.8", "10.0.2.2"]  # the internet, a typical VM gateway
    default = subprocess.run(
        ["ip", "-4", "-o", "route", "show", "default"], capture_output=True, text=True, check=True
    ).stdout.split()
    if "via" in default:  # the machine's own gateway and its address on the uplink
        targets.append(default[default.index("via") + 1])
        device = default[default.index("dev") + 1]
        addresses = subprocess.run(
            ["ip", "-4", "-o", "addr", "show", "dev", device],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        targets += [a.split("/")[0] for i, a in enumerate(addresses) if addresses[i - 1] == "inet"]
    script = f"""
import socket, ssl, json
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with socket.create_connection(("kubernetes.default.svc.cluster.local", 443), timeout=10) as s:
    with ctx.wrap_socket(s) as t:
        t.sendall(b"GET /version HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
        print("apiserver:", t.recv(200).split(b"\\r\\n")[0].decode())
for target in {targets!r}:
    try:
        socket.create_connection((target, 80), timeout=3).close()
        print("REACHED", target)
    except OSError as exc:
        print("unreachable", target, type(exc).__name__)
try:
    socket.getaddrinfo("example.com", 80)
    print("RESOLVED example.com")
except OSError as exc:
    print("no upstream DNS", type(exc).__name__)
"""
    kubectl.run("create", "namespace", "net-probe")
    try:
        kubectl.cluster.wait_for_default_service_account("net-probe")
        logs = run_pod(kubectl, "net-probe", "probe", script)
    finally:
        kubectl.run("delete", "namespace", "net-probe", "--wait=false")
    assert "apiserver: HTTP/1." in logs, logs  # an HTTP answer from kube-apiserver itself
    assert "REACHED" not in logs and "RESOLVED" not in logs, logs
    assert logs.count("unreachable") == len(targets), logs


# --- the workload ------------------------------------------------------------------------------
def restricted_tenant(kubectl: Kubectl, tenants: Tenants, name: str, cluster: LocalCluster) -> Path:
    """A tenant namespace enforcing restricted Pod Security, a checkpoint volume on the node."""
    tenants.add(name, [{"acceleratorClass": "ascend-910b", "nominal": 8}])
    kubectl.run("label", "namespace", name, "--overwrite",
                "pod-security.kubernetes.io/enforce=restricted",
                "pod-security.kubernetes.io/enforce-version=latest")  # fmt: skip
    host_dir = NodeLayout(cluster.state_dir).volumes_dir / name
    host_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(host_dir, 0o777)  # the containers run as uid 65532
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{name}-checkpoints"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "real-node-local",
            "claimRef": {"namespace": name, "name": "checkpoints"},
            "local": {"path": str(host_dir)},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": [NODE_NAME],
                                }
                            ]
                        }
                    ]
                }
            },
        },
    }
    pvc = {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "checkpoints", "namespace": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "real-node-local",
                 "volumeName": f"{name}-checkpoints",
                 "resources": {"requests": {"storage": "1Gi"}}},
    }  # fmt: skip
    for manifest in (pv, pvc):
        code, output = kubectl.apply(manifest)
        assert code == 0, output
    wait_for(
        "the checkpoint claim to be Bound",
        lambda: kubectl.get("pvc", "checkpoints", "-n", name)["status"].get("phase") == "Bound",
    )
    return host_dir


def training_job(name: str, namespace: str, steps: int, step_seconds: float) -> dict[str, Any]:
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 2,
            "accelerators": [{"acceleratorClass": "ascend-910b", "devicesPerReplica": 2}],
            "restartPolicy": "OnFailure",
            "restartLimit": 3,
            "template": {"spec": {
                "terminationGracePeriodSeconds": 1,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": "trainer", "image": OPERATOR_REFERENCE, "imagePullPolicy": "Never",
                    "command": ["python3", "-c", PROGRAM],
                    "env": [{"name": "STEPS", "value": str(steps)},
                            {"name": "STEP_SECONDS", "value": str(step_seconds)}],
                    "volumeMounts": [{"name": "checkpoints", "mountPath": "/checkpoints"}],
                }],
                "volumes": [{"name": "checkpoints",
                             "persistentVolumeClaim": {"claimName": "checkpoints"}}],
            }},
        },
    }  # fmt: skip


def gang_pods(kubectl: Kubectl, namespace: str, job: str) -> list[dict[str, Any]]:
    pods = kubectl.get("pods", "-n", namespace, "-l", f"suanli.io/job-name={job}")["items"]
    return sorted(pods, key=lambda p: p["metadata"]["name"])


def checkpoint_dir(host_dir: Path) -> Path:
    found = [p for p in host_dir.glob("*/*") if p.is_dir()]
    assert len(found) == 1, found
    return found[0]


def test_restricted_pod_security_is_enforced_on_the_tenant(
    kubectl: Kubectl, tenants: Tenants, cluster: LocalCluster, operator: dict[str, int]
) -> None:
    restricted_tenant(kubectl, tenants, "t-restricted", cluster)
    privileged = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "root", "namespace": "t-restricted"},
        "spec": {"containers": [{"name": "c", "image": OPERATOR_REFERENCE,
                                 "securityContext": {"privileged": True}}]},
    }  # fmt: skip
    code, output = kubectl.apply(privileged)
    assert code != 0 and "violates PodSecurity" in output and "restricted" in output, output


def test_two_ranks_all_reduce_on_the_real_node(
    kubectl: Kubectl, tenants: Tenants, cluster: LocalCluster, operator: dict[str, int]
) -> None:
    host_dir = restricted_tenant(kubectl, tenants, "t-dist", cluster)
    code, output = kubectl.apply(training_job("allreduce", "t-dist", steps=3, step_seconds=0))
    assert code == 0, output
    status = wait_for_phase(kubectl, "t-dist", "allreduce", "Succeeded", timeout=180)
    pods = gang_pods(kubectl, "t-dist", "allreduce")
    assert len(pods) == 2 and {p["spec"]["nodeName"] for p in pods} == {NODE_NAME}
    assert {p["status"]["phase"] for p in pods} == {"Succeeded"}
    # the device plugin served the operator's chips: its record on the pod equals the annotation
    for pod in pods:
        annotations = pod["metadata"]["annotations"]
        assert annotations["huawei.com/AscendReal"] == annotations["huawei.com/Ascend910"]
    records = [json.loads((checkpoint_dir(host_dir) / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["sum"] for r in records] == [[9.0] * 4, [9.0] * 4]
    assert records[0]["master"].startswith("allreduce-0.")
    assert not set(records[0]["chips"]) & set(records[1]["chips"]), records
    assert json.loads((checkpoint_dir(host_dir) / "state.json").read_text()) == {"step": 3}
    assert status.get("phase") == "Succeeded"


def _kill_container(cluster: LocalCluster, pod: dict[str, Any]) -> None:
    container_id = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    socket_path = NodeLayout(cluster.state_dir).containerd_socket
    result = subprocess.run(
        ["ctr", f"--address={socket_path}", "-n", "k8s.io", "tasks", "kill", "--signal=SIGKILL",
         container_id],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, (result.stderr, pod["status"])


def test_a_killed_rank_restarts_the_gang_from_its_checkpoint(
    kubectl: Kubectl, tenants: Tenants, cluster: LocalCluster, operator: dict[str, int]
) -> None:
    host_dir = restricted_tenant(kubectl, tenants, "t-restart", cluster)
    code, output = kubectl.apply(training_job("resume", "t-restart", steps=12, step_seconds=1))
    assert code == 0, output

    def checkpointed() -> int:
        dirs = [p for p in host_dir.glob("*/*") if (p / "state.json").exists()]
        return int(json.loads((dirs[0] / "state.json").read_text())["step"]) if dirs else 0

    wait_for("the first attempt to checkpoint step 3", lambda: checkpointed() >= 3, timeout=120)
    running = [
        p for p in gang_pods(kubectl, "t-restart", "resume") if p["status"]["phase"] == "Running"
    ]
    rank1 = next(p for p in running if p["metadata"]["labels"]["suanli.io/replica-index"] == "1")
    _kill_container(cluster, rank1)
    status = wait_for_phase(kubectl, "t-restart", "resume", "Succeeded", timeout=240)
    records = [json.loads((checkpoint_dir(host_dir) / f"rank{r}.json").read_text()) for r in (0, 1)]
    first_attempt = rank1["metadata"]["labels"]["suanli.io/attempt"]
    assert all(r["attempt"] != first_attempt for r in records), (first_attempt, records)
    assert all(r["resumed_from"] >= 3 for r in records), records
    assert json.loads((checkpoint_dir(host_dir) / "state.json").read_text()) == {"step": 12}
    assert status.get("restartCount") == 1, status
    assert job_status(kubectl, "t-restart", "resume")["phase"] == "Succeeded"
