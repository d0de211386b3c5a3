"""A real node beside the kwok nodes: containerd, kubelet, kube-proxy, CoreDNS and suanli's fake
device plugin, all inside the node's own network, mount and pid namespaces.

Why three namespaces: the network namespace (:mod:`suanli.localcluster.netns`) keeps every
packet on the machine; the mount namespace holds every mount containerd, runc and kubelet make
(overlay roots, pod network namespaces, secret volumes) and a private ``/run``, ``/var/lib`` and
``/var/log`` for the paths kubelet and containerd hard-code, so they all vanish when its last
process exits; the pid namespace's init is :func:`supervise`, and when it exits the kernel kills
every shim and container that is left. What outlives all three is removed by :func:`teardown`:
the node's cgroups, the namespace, the veth, the guards and the sysctls it recorded.

The node registers as ``suanli-real-0`` with the Ascend 910B labels of the fake nodes, so the
operator can place TrainingJobs on it; its chips come from the device plugin.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from suanli.constants import RACK_LABEL, SUPER_NODE_LABEL
from suanli.localcluster import images
from suanli.localcluster.fakenodes import ASCEND_910B
from suanli.localcluster.netns import (
    CLUSTER_DNS,
    POD_GATEWAY,
    POD_SUBNET,
    NetworkError,
    NodeNetwork,
)

if TYPE_CHECKING:
    from suanli.localcluster.cluster import LocalCluster

NODE_NAME = "suanli-real-0"
NODE_LABELS = {
    **ASCEND_910B.labels,
    RACK_LABEL: "real",
    SUPER_NODE_LABEL: "real-sn",
    "type": "real",
}
# The controllers a real node needs beyond the control plane's own set.
NODE_CONTROLLERS = (
    "node-lifecycle-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "persistentvolume-binder-controller",
    "persistentvolume-protection-controller",
    "persistentvolumeclaim-protection-controller",
    # Deployments run there (the operator from its chart): their ReplicaSets and pods.
    "deployment-controller",
    "replicaset-controller",
)
CGROUP_ROOT_PREFIX = "suanli-node"


class RealNodeError(RuntimeError):
    """The real node could not be started here; the message says why."""


def log(message: str) -> None:
    print(f"[suanli-node] {message}", file=sys.stderr, flush=True)


def unavailable_reason() -> str | None:
    """Why this machine cannot run the real node, or None when it can."""
    if os.geteuid() != 0:
        return "not root (containerd, network namespaces and cgroups need root)"
    if not Path("/sys/fs/cgroup").is_dir():
        return "no /sys/fs/cgroup"
    for command in ("containerd", "runc", "ctr", "ip", "iptables", "nsenter", "unshare"):
        if not _which(command):
            return f"{command} missing (run: bash hack/install-node-packages.sh)"
    if not Path("/usr/lib/cni/bridge").exists():
        return "CNI plugins missing (run: bash hack/install-node-packages.sh)"
    return None


def _which(command: str) -> bool:
    return any(
        os.access(Path(directory) / command, os.X_OK)
        for directory in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/sbin", "/sbin"]
    )


class NodeLayout:
    """Where one real node keeps its files, under ``<state_dir>/node``."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "node"
        self.state_dir = state_dir

    @property
    def config(self) -> Path:
        return self.root / "supervisor.json"

    @property
    def containerd_socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    @property
    def kubelet_dir(self) -> Path:
        return self.root / "kubelet"

    @property
    def volumes_dir(self) -> Path:
        """Host directories for the node's local PersistentVolumes (checkpoints)."""
        return self.root / "volumes"


# --- configuration files ---------------------------------------------------------------------
def containerd_config(layout: NodeLayout) -> str:
    base = layout.root / "containerd"
    return f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
[grpc]
  address = "{layout.containerd_socket}"
[ttrpc]
  address = "{base / "containerd.sock.ttrpc"}"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{base / "opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{images.PAUSE_REFERENCE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{base / "runc"}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{layout.root / "cni" / "net.d"}"
"""


def cni_config(layout: NodeLayout) -> dict[str, Any]:
    return {
        "cniVersion": "0.4.0",
        "name": "suanli-pods",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": POD_GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.root / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(layout: NodeLayout, network: NodeNetwork, ca_cert: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{CGROUP_ROOT_PREFIX}{network.index}",
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": ["pods"],
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "podLogsDir": str(layout.root / "pod-logs"),
        "resolvConf": str(layout.root / "resolv.conf"),
        "clusterDNS": [CLUSTER_DNS],
        "clusterDomain": "cluster.local",
        "address": network.node_address,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca_cert)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "volumePluginDir": str(layout.root / "volume-plugins"),
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "maxPods": 32,
        "protectKernelDefaults": False,
        "registerNode": True,
        "shutdownGracePeriod": "0s",
    }


def kube_proxy_config(kubeconfig: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": POD_SUBNET,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # Leave the machine's conntrack table size and timeouts alone (they are not per-namespace).
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


def corefile(kubeconfig: Path) -> str:
    # No `forward`: names outside cluster.local get no answer from anywhere.
    return f""".:53 {{
    errors
    health 127.0.0.1:8080
    ready 127.0.0.1:8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} suanli-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
"""


def dns_objects(network: NodeNetwork) -> list[dict[str, Any]]:
    """The ``kube-dns`` Service at the cluster DNS address, its endpoint CoreDNS on the node."""
    ports = [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
    ]
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system"},
            "spec": {"clusterIP": CLUSTER_DNS, "ports": [{**p, "targetPort": 53} for p in ports]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kube-dns-real-node",
                "namespace": "kube-system",
                "labels": {
                    "kubernetes.io/service-name": "kube-dns",
                    "endpointslice.kubernetes.io/managed-by": "suanli-localcluster",
                },
            },
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": [network.node_address], "conditions": {"ready": True}},
            ],
            "ports": ports,
        },
    ]


NODE_RBAC = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "suanli-local:system:nodes"},
    "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "system:node",
    },
    "subjects": [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}
    ],
}


# --- the cluster side -------------------------------------------------------------------------
def prepare(cluster: LocalCluster, route_pods: bool = False) -> NodeNetwork:
    """Before the control plane starts: the node's network, so the apiserver can bind to it.

    ``route_pods``: the root namespace routes the pod subnet through the node (see netns).
    """
    reason = unavailable_reason()
    if reason:
        raise RealNodeError(f"the real node cannot run here: {reason}")
    t0 = time.monotonic()
    cluster.state_dir.mkdir(parents=True, exist_ok=True)
    network = NodeNetwork.create(cluster.state_dir, route_pods=route_pods)
    state = cluster.read_state()
    state["real_node"] = {"network": network.to_state()}
    cluster._write_state(state)
    log(
        f"network namespace {network.namespace} ({network.node_address}) "
        f"in {time.monotonic() - t0:.1f} s"
    )
    return network


def start(cluster: LocalCluster, network: NodeNetwork, device_vendor: str = "huawei") -> None:
    """After the control plane is up: write the node's files, start its supervisor, wait Ready."""
    from suanli.localcluster.pki import ensure_pki

    t0 = time.monotonic()
    layout = NodeLayout(cluster.state_dir)
    archives = images.ensure_node_images()
    pki = ensure_pki(
        cluster.state_dir / "pki",
        {"admin": "system:masters", f"system:node:{NODE_NAME}": "system:nodes"},
    )
    for sub in ("cni/net.d", "cni/ipam", "pod-logs", "volume-plugins", "kubelet", "volumes"):
        (layout.root / sub).mkdir(parents=True, exist_ok=True)
    (layout.root / "containerd.toml").write_text(containerd_config(layout))
    (layout.root / "cni" / "net.d" / "10-suanli.conflist").write_text(
        json.dumps(cni_config(layout), indent=2)
    )
    (layout.root / "resolv.conf").write_text(
        f"nameserver {CLUSTER_DNS}\nsearch cluster.local\noptions ndots:5\n"
    )
    node_kubeconfig = layout.root / "kubelet.kubeconfig"
    _write_kubeconfig(
        node_kubeconfig,
        cluster.server,
        pki.ca_cert,
        pki.client_cert(f"system:node:{NODE_NAME}"),
        pki.client_key(f"system:node:{NODE_NAME}"),
    )
    (layout.root / "kubelet.yaml").write_text(
        yaml.safe_dump(kubelet_config(layout, network, pki.ca_cert), sort_keys=False)
    )
    (layout.root / "kube-proxy.yaml").write_text(
        yaml.safe_dump(kube_proxy_config(cluster.kubeconfig), sort_keys=False)
    )
    (layout.root / "Corefile").write_text(corefile(cluster.kubeconfig))
    cluster.apply_objects([NODE_RBAC])
    bin_dir = cluster.tools.kubectl.parent
    coredns = images.coredns_binary()
    commands: dict[str, list[str]] = {
        "containerd": ["containerd", f"--config={layout.root / 'containerd.toml'}"],
        "kubelet": [
            str(bin_dir / "kubelet"),
            f"--config={layout.root / 'kubelet.yaml'}",
            f"--kubeconfig={node_kubeconfig}",
            f"--root-dir={layout.kubelet_dir}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={network.node_address}",
            "--node-labels=" + ",".join(f"{k}={v}" for k, v in NODE_LABELS.items()),
            "--v=1",
        ],
        "kube-proxy": [str(bin_dir / "kube-proxy"), f"--config={layout.root / 'kube-proxy.yaml'}"],
        "coredns": [str(coredns), "-conf", str(layout.root / "Corefile")],
        "device-plugin": [
            sys.executable,
            "-m",
            "suanli.deviceplugin",
            f"--vendor={device_vendor}",
            f"--node-name={NODE_NAME}",
            f"--kubeconfig={cluster.kubeconfig}",
        ],
    }
    cgroup_root = f"{CGROUP_ROOT_PREFIX}{network.index}"
    _make_cgroup_root(cgroup_root)
    layout.config.write_text(
        json.dumps(
            {
                "logs": str(cluster.logs_dir),
                "containerd_socket": str(layout.containerd_socket),
                "images": [str(p) for p in archives],
                "commands": commands,
            },
            indent=2,
        )
    )
    cluster.start_process(
        "real-node",
        [
            # unshare stays the recorded process (stop_process checks the pid still runs it);
            # its child, PID 1 of the new pid namespace, joins the node's network namespace.
            "unshare",
            "--mount",
            "--propagation=private",
            "--pid",
            "--fork",
            "--kill-child=SIGTERM",
            "--mount-proc",
            "nsenter",
            f"--net={network.namespace_path}",
            sys.executable,
            "-m",
            "suanli.localcluster.realnode",
            "supervise",
            str(layout.config),
        ],
        env={"PYTHONUNBUFFERED": "1"},
    )
    state = cluster.read_state()
    state["real_node"] = {"network": network.to_state(), "cgroup_root": cgroup_root}
    cluster._write_state(state)
    cluster.apply_objects(dns_objects(network))
    _wait_ready(cluster, timeout=120)
    log(f"real node {NODE_NAME} Ready in {time.monotonic() - t0:.1f} s")


def _wait_ready(cluster: LocalCluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    resource = "huawei.com/Ascend910"
    while time.monotonic() < deadline:
        cluster._check_alive("real-node")
        result = cluster.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
        if result.returncode == 0:
            node = json.loads(result.stdout)
            conditions = {c["type"]: c["status"] for c in node["status"].get("conditions", [])}
            taints = node["spec"].get("taints") or []
            allocatable = node["status"].get("allocatable", {})
            if (
                conditions.get("Ready") == "True"
                and not taints
                and allocatable.get(resource, "0") != "0"
            ):
                return
        time.sleep(0.5)
    tail = (
        (cluster.logs_dir / "kubelet.log").read_text(errors="replace")[-3000:]
        if (cluster.logs_dir / "kubelet.log").exists()
        else ""
    )
    raise RealNodeError(
        f"node {NODE_NAME} not Ready with chips after {timeout:.0f} s; kubelet log:\n{tail}"
    )


def _write_kubeconfig(path: Path, server: str, ca: Path, cert: Path, key: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "suanli-local",
                "cluster": {"server": server, "certificate-authority": str(ca)},
            }
        ],
        "users": [
            {"name": "node", "user": {"client-certificate": str(cert), "client-key": str(key)}}
        ],
        "contexts": [
            {"name": "suanli-local", "context": {"cluster": "suanli-local", "user": "node"}}
        ],
        "current-context": "suanli-local",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _cgroup_hierarchies() -> list[Path]:
    return [p for p in Path("/sys/fs/cgroup").iterdir() if p.is_dir() and not p.is_symlink()]


def _make_cgroup_root(name: str) -> None:
    """kubelet wants its cgroup root to exist in every hierarchy; cpuset needs its sets copied."""
    for hierarchy in _cgroup_hierarchies():
        path = hierarchy / name
        path.mkdir(exist_ok=True)
        if hierarchy.name == "cpuset":
            for key in ("cpuset.cpus", "cpuset.mems"):
                (path / key).write_text((hierarchy / key).read_text())


def _remove_cgroup_tree(path: Path) -> list[str]:
    """rmdir leaf-first; kill what is still inside first. Returns what could not be removed."""
    left: list[str] = []
    if not path.is_dir():
        return left
    for child in sorted((p for p in path.iterdir() if p.is_dir()), key=str):
        left += _remove_cgroup_tree(child)
    with contextlib.suppress(OSError):
        for pid in (path / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    for _ in range(50):
        try:
            path.rmdir()
            return left
        except OSError:
            time.sleep(0.1)
    return [*left, str(path)]


def _processes_naming(marker: str) -> list[int]:
    """Pids whose command line names ``marker`` (this node's own directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def _stop_leftovers(root: Path, timeout: float = 20) -> list[str]:
    """The pid namespace dies with its init, but its last processes (containerd still unpacking,
    shims) take a moment: wait for them, SIGKILL any that remain, by pid."""
    deadline = time.monotonic() + timeout
    while (pids := _processes_naming(str(root))) and time.monotonic() < deadline:
        if time.monotonic() > deadline - timeout / 2:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    return [f"process {pid}" for pid in _processes_naming(str(root))]


def teardown(state_dir: Path, recorded: Mapping[str, Any]) -> list[str]:
    """After the supervisor has stopped: remove cgroups, namespace, veth, guards; restore sysctls.

    Returns what could not be removed (empty when the node left nothing behind).
    """
    left: list[str] = _stop_leftovers(NodeLayout(state_dir).root)
    cgroup_root = recorded.get("cgroup_root")
    if cgroup_root:
        for hierarchy in _cgroup_hierarchies():
            left += _remove_cgroup_tree(hierarchy / str(cgroup_root))
    if "network" in recorded:
        network = NodeNetwork.from_state(dict(recorded["network"]))
        try:
            network.delete()
        except NetworkError as exc:
            left.append(str(exc))
        if network.exists():
            left.append(str(network.namespace_path))
    return left


# --- inside the namespaces ------------------------------------------------------------------------
def _private_mounts() -> None:
    """Own copies of the directories kubelet and containerd hard-code; gone with this namespace."""
    for path in ("/run", "/var/lib", "/var/log"):
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", path], check=True)
    Path("/var/lib/kubelet/device-plugins").mkdir(parents=True)
    Path("/var/log/containers").mkdir(parents=True)


class Supervisor:
    """PID 1 of the node's pid namespace: starts the node's processes in order, reaps orphans
    (containerd's shims are re-parented to it), stops them in reverse order on SIGTERM."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.logs = Path(config["logs"])
        self.children: dict[str, int] = {}
        self.stopping = False

    def spawn(self, name: str, argv: Sequence[str]) -> None:
        with open(self.logs / f"{name}.log", "ab") as out:
            process = subprocess.Popen(
                list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.children[name] = process.pid
        log(f"started {name} (pid {process.pid} in the node's pid namespace)")

    def reap(self) -> list[str]:
        """Collect every exited process; name the recorded ones that died."""
        died = []
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            died += [name for name, child in self.children.items() if child == pid]
        for name in died:
            self.children.pop(name)
        return died

    def wait_socket(self, path: Path, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not path.exists():
            if self.reap():
                raise RealNodeError(f"containerd exited; see {self.logs / 'containerd.log'}")
            time.sleep(0.1)
        if not path.exists():
            raise RealNodeError(f"{path} did not appear after {timeout:.0f} s")

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        _private_mounts()
        commands = self.config["commands"]
        t0 = time.monotonic()
        self.spawn("containerd", commands["containerd"])
        socket_path = Path(self.config["containerd_socket"])
        self.wait_socket(socket_path)
        log(f"containerd up in {time.monotonic() - t0:.1f} s")
        t1 = time.monotonic()
        for archive in self.config["images"]:
            images.import_archive(socket_path, Path(archive))
        log(f"{len(self.config['images'])} images imported in {time.monotonic() - t1:.1f} s")
        for name in ("kubelet", "kube-proxy", "coredns", "device-plugin"):
            self.spawn(name, commands[name])
        while not self.stopping:
            died = self.reap()
            if died:
                log(f"{', '.join(died)} exited; stopping the node")
                break
            time.sleep(0.2)
        self.stop()
        return 0

    def _on_term(self, signum: int, frame: object) -> None:
        self.stopping = True

    def stop(self) -> None:
        """kubelet and the rest first (4 s), then containerd (3 s); SIGKILL for the slow ones.
        Within the 15 s ``stop_process`` gives this process group."""
        for group, grace in ((("device-plugin", "kubelet", "kube-proxy", "coredns"), 4.0),
                             (("containerd",), 3.0)):  # fmt: skip
            pids = {name: self.children[name] for name in group if name in self.children}
            for pid in pids.values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while any(n in self.children for n in pids) and time.monotonic() < deadline:
                self.reap()
                time.sleep(0.05)
            for name, pid in pids.items():
                if name in self.children:
                    log(f"{name} did not stop in {grace:.0f} s: SIGKILL")
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        log("stopped; the kernel ends what is left in this pid namespace (shims, containers)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suanli.localcluster.realnode")
    commands = parser.add_subparsers(dest="command", required=True)
    supervise = commands.add_parser("supervise", help="run the node (inside its namespaces)")
    supervise.add_argument("config", type=Path)
    args = parser.parse_args(argv)
    if os.getpid() != 1:
        log("supervise must run as PID 1 of its own pid namespace (started by `up --real-node`)")
        return 2
    return Supervisor(json.loads(args.config.read_text())).run()


if __name__ == "__main__":
    sys.exit(main())
