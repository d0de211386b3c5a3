"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
(optionally kube-scheduler) and kwok, started as plain processes from binaries built by
``hack/build-tools.sh`` into ``~/.cache/suanli``.

Why not kind or envtest: there is no container engine here, and tests must talk to the real
apiserver (admission, CEL validation, field validation, garbage collection) rather than a mock.
The same class serves ``make dev`` (a long-lived centre in ``~/.cache/suanli/dev``) and the
integration-test fixtures (a throw-away directory per test session).

Every process it starts is recorded in ``state.json`` with its pid and binary; ``down`` stops only
those, after checking that the pid still runs that binary.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from suanli.localcluster.fakenodes import default_nodes
from suanli.localcluster.kwok import KWOK_CONFIGURATION
from suanli.localcluster.pki import Pki, ensure_pki

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-tools.sh"
DEFAULT_CACHE = Path(os.environ.get("SUANLI_CACHE", Path.home() / ".cache" / "suanli"))
SERVICE_CIDR = "10.0.0.0/24"
POD_CIDR = "10.128.0.0/16"
CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",  # the built-in admin/edit/view take in suanli's roles
)

# ServiceAccounts' requests (the operator authenticated with its token) at Metadata level; admin
# and the control plane's own clients are not recorded, which keeps the log small.
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  userGroups: [system:serviceaccounts]
- level: None
"""


class ClusterError(RuntimeError):
    """The control plane could not be started or reached; the message says which part."""


class TransientAPIError(ClusterError):
    """A kubectl call that got no answer (timed out, connection lost, server overloaded): worth
    retrying, unlike a refusal, which is the apiserver's answer."""


KUBECTL_TIMEOUT = 120.0
"""Bound on one kubectl call (its own ``--timeout`` waits, such as ``delete --wait``, included)."""

TRANSIENT_KUBECTL_ERRORS = (
    "connection refused",
    "connection reset by peer",
    "i/o timeout",
    "tls handshake timeout",
    "context deadline exceeded",
    "http2: client connection lost",
    "unexpected eof",
    "etcdserver: request timed out",
    "etcdserver: leader changed",
    "the server is currently unable to handle the request",
    "the server was unable to return a response in the time allotted",
    "too many requests",
)


def log(message: str) -> None:
    print(f"[suanli-dev] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Tools:
    """Absolute paths of the binaries the control plane runs."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kwok: Path
    helm: Path
    prometheus: Path | None

    @classmethod
    def locate(cls, build: bool = True) -> Tools:
        """Find the cached binaries, building the missing ones first (cold: minutes)."""
        if not BUILD_SCRIPT.exists():
            raise ClusterError(f"{BUILD_SCRIPT} not found: run from a suanli source checkout")
        paths = subprocess.run(
            ["bash", str(BUILD_SCRIPT), "paths"], check=True, capture_output=True, text=True
        ).stdout.split()
        k8s, etcd, kwok, helm = (Path(p) for p in paths)
        wanted = {
            "etcd": etcd / "etcd",
            "kube_apiserver": k8s / "kube-apiserver",
            "kube_controller_manager": k8s / "kube-controller-manager",
            "kube_scheduler": k8s / "kube-scheduler",
            "kubectl": k8s / "kubectl",
            "kwok": kwok / "kwok",
            "helm": helm / "helm",
        }
        missing = [name for name, path in wanted.items() if not path.exists()]
        if missing and build:
            log(f"building missing tools ({', '.join(missing)}) into {DEFAULT_CACHE}")
            subprocess.run(["bash", str(BUILD_SCRIPT), "all"], check=True)
            missing = [name for name, path in wanted.items() if not path.exists()]
        if missing:
            raise ClusterError(f"tools not built: {', '.join(missing)} (run hack/build-tools.sh)")
        prometheus = shutil.which("prometheus")
        return cls(**wanted, prometheus=Path(prometheus) if prometheus else None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pid_runs(pid: int, binary: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and binary.encode() in b" ".join(cmdline[:3])


class LocalCluster:
    """A control plane whose state (PKI, etcd data, logs, pids, ports) lives in one directory."""

    def __init__(self, state_dir: Path, tools: Tools | None = None) -> None:
        self.state_dir = state_dir
        self.logs_dir = state_dir / "logs"
        self._tools = tools
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # --- paths and recorded state ---------------------------------------------------------
    @property
    def tools(self) -> Tools:
        if self._tools is None:
            self._tools = Tools.locate()
        return self._tools

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    def read_state(self) -> dict[str, Any]:
        if not self.state_file.exists():
            return {"ports": {}, "processes": {}}
        state: dict[str, Any] = json.loads(self.state_file.read_text())
        return state

    def _write_state(self, state: Mapping[str, Any]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        tmp.replace(self.state_file)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise ClusterError(
                    f"another suanli-dev command is working on {self.state_dir}; wait for it"
                ) from exc
            yield

    def running_processes(self) -> dict[str, dict[str, Any]]:
        """Recorded processes that are still alive and still run the recorded binary."""
        alive = {}
        for name, info in self.read_state()["processes"].items():
            if _pid_runs(int(info["pid"]), str(info["binary"])):
                alive[name] = info
        return alive

    def is_running(self) -> bool:
        return "kube-apiserver" in self.running_processes()

    @property
    def api_port(self) -> int:
        return int(self.read_state()["ports"]["apiserver"])

    @property
    def api_address(self) -> str:
        """127.0.0.1, or the root end of the real node's veth when there is one (see netns)."""
        return str(self.read_state().get("api_address", "127.0.0.1"))

    @property
    def server(self) -> str:
        return f"https://{self.api_address}:{self.api_port}"

    # --- processes --------------------------------------------------------------------------
    def start_process(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        """Start a detached process logging to logs/<name>.log and record it in state.json."""
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.logs_dir / f"{name}.log"
        with open(log_path, "ab") as out:
            process = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd or self.state_dir,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        self._children[name] = process
        state = self.read_state()
        state["processes"][name] = {"pid": process.pid, "binary": argv[0], "log": str(log_path)}
        self._write_state(state)

    def stop_process(self, name: str, timeout: float = 15.0) -> None:
        state = self.read_state()
        info = state["processes"].pop(name, None)
        self._write_state(state)
        child = self._children.pop(name, None)
        if info is None:
            return
        pid = int(info["pid"])
        if not _pid_runs(pid, str(info["binary"])):
            if child is not None:
                child.wait(timeout=timeout)  # reap it (it died on its own or was killed)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _pid_runs(pid, str(info["binary"])):
            if child is not None and child.poll() is not None:
                break
            time.sleep(0.1)
        if _pid_runs(pid, str(info["binary"])):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        if child is not None:
            child.wait(timeout=timeout)

    def _check_alive(self, name: str) -> None:
        child = self._children.get(name)
        if child is not None and child.poll() is not None:
            tail = (self.logs_dir / f"{name}.log").read_text(errors="replace")[-3000:]
            raise ClusterError(f"{name} exited with code {child.returncode}; its log ends:\n{tail}")

    # --- the control plane ----------------------------------------------------------------------
    def up(
        self,
        *,
        scheduler: bool = False,
        nodes: bool | Sequence[Mapping[str, Any]] = True,
        real_node: bool = False,
        route_pods: bool = False,
    ) -> None:
        """Start etcd, kube-apiserver, kube-controller-manager and kwok; wait until usable.

        ``scheduler``: also kube-scheduler, for pods that name no node (a Deployment's).
        ``nodes``: the default kwok nodes (True), none, or these Node manifests.
        ``real_node``: also a kubelet node in its own network namespace (:mod:`realnode`); the
        apiserver then binds to the node's veth address instead of loopback.
        ``route_pods`` (with ``real_node``): the root namespace routes the pod subnet through
        the node and the apiserver calls webhooks at their Service's endpoints, so a webhook
        served by a pod (the operator installed by its chart) is reachable; one centre per
        machine at a time.
        """
        if route_pods and not real_node:
            raise ClusterError("route_pods needs real_node (there are no pods to route to)")
        tools = self.tools
        t0 = time.monotonic()
        network = None
        if real_node:
            from suanli.localcluster import realnode
            from suanli.localcluster.netns import API_ADDRESS

            network = realnode.prepare(self, route_pods=route_pods)
            state = self.read_state()
            state["api_address"] = API_ADDRESS
            self._write_state(state)
        pki = ensure_pki(self.state_dir / "pki", {"admin": "system:masters"})
        ports = {
            "etcd": free_port(),
            "etcd_peer": free_port(),
            "apiserver": free_port(),
            "controller_manager": free_port(),
            "scheduler": free_port(),
            "kwok": free_port(),
        }
        state = self.read_state()
        state["ports"] = ports
        self._write_state(state)
        self._write_kubeconfig(pki, ports["apiserver"])
        self._start_etcd(tools, ports)
        self._start_apiserver(tools, pki, ports)
        self._start_controller_manager(tools, pki, ports)
        if scheduler:
            self.start_process(
                "kube-scheduler",
                [
                    str(tools.kube_scheduler),
                    f"--kubeconfig={self.kubeconfig}",
                    f"--authentication-kubeconfig={self.kubeconfig}",
                    f"--authorization-kubeconfig={self.kubeconfig}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={ports['scheduler']}",
                    "--leader-elect=false",
                ],
            )
        kwok_config = self.state_dir / "kwok.yaml"
        kwok_config.write_text(KWOK_CONFIGURATION)
        self.start_process(
            "kwok",
            [
                str(tools.kwok),
                f"--kubeconfig={self.kubeconfig}",
                f"--config={kwok_config}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--server-address=127.0.0.1:{ports['kwok']}",
                f"--cidr={POD_CIDR}",
                "--node-ip=127.0.0.1",
            ],
        )
        self._wait_http(f"http://127.0.0.1:{ports['kwok']}/healthz", "kwok", timeout=30)
        self.wait_for_default_service_account()
        if nodes is True:
            self.apply_objects(default_nodes())
        elif nodes:
            self.apply_objects(nodes)
        log(f"control plane up in {time.monotonic() - t0:.1f} s at {self.server}")
        if network is not None:
            realnode.start(self, network)

    def _start_etcd(self, tools: Tools, ports: Mapping[str, int]) -> None:
        client = f"http://127.0.0.1:{ports['etcd']}"
        peer = f"http://127.0.0.1:{ports['etcd_peer']}"
        self.start_process(
            "etcd",
            [
                str(tools.etcd),
                "--name=suanli",
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=suanli={peer}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ],
        )
        self._wait_http(f"{client}/health", "etcd", timeout=30)

    def _start_apiserver(self, tools: Tools, pki: Pki, ports: Mapping[str, int]) -> None:
        self.start_process(
            "kube-apiserver",
            [
                str(tools.kube_apiserver),
                f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
                f"--bind-address={self.api_address}",
                f"--advertise-address={self.api_address}",
                f"--secure-port={ports['apiserver']}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                *self._real_node_apiserver_args(pki),
                "--allow-privileged=true",
                "--profiling=false",
                f"--cert-dir={self.state_dir / 'pki'}",
                *self._audit_args(),
            ],
        )
        self._wait_http(f"{self.server}/readyz", "kube-apiserver", timeout=90, pki=pki)

    @property
    def audit_log(self) -> Path:
        return self.logs_dir / "audit.log"

    def _audit_args(self) -> list[str]:
        """Every request of a ServiceAccount, at Metadata level: what the RBAC test reads."""
        policy = self.state_dir / "audit-policy.yaml"
        policy.write_text(AUDIT_POLICY)
        return [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-maxsize=200",
            "--audit-log-maxbackup=1",
        ]

    def _start_controller_manager(self, tools: Tools, pki: Pki, ports: Mapping[str, int]) -> None:
        self.start_process(
            "kube-controller-manager",
            [
                str(tools.kube_controller_manager),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                f"--root-ca-file={pki.ca_cert}",
                f"--service-account-private-key-file={pki.sa_key}",
                f"--controllers={','.join(self._controllers())}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['controller_manager']}",
                "--leader-elect=false",
                "--use-service-account-credentials=false",
            ],
        )

    def _real_node_apiserver_args(self, pki: Pki) -> list[str]:
        """Pods must reach the apiserver through the ``kubernetes`` Service: advertise a real
        endpoint (lease reconciler) only when there is a real node, and let the apiserver reach
        its kubelet (logs, exec) with the admin client certificate."""
        recorded = self.read_state().get("real_node")
        if recorded is None:
            return ["--endpoint-reconciler-type=none"]
        # A webhook Service's ClusterIP means something only to kube-proxy inside the node's
        # namespace: with the pod subnet routed, dial the Service's ready endpoint instead.
        routed = bool(recorded.get("network", {}).get("route_pods"))
        return [
            "--endpoint-reconciler-type=lease",
            f"--kubelet-client-certificate={pki.client_cert('admin')}",
            f"--kubelet-client-key={pki.client_key('admin')}",
            "--kubelet-preferred-address-types=InternalIP",
            *(["--enable-aggregator-routing=true"] if routed else []),
        ]

    def _controllers(self) -> tuple[str, ...]:
        if "real_node" not in self.read_state():
            return CONTROLLERS
        from suanli.localcluster.realnode import NODE_CONTROLLERS

        return CONTROLLERS + NODE_CONTROLLERS

    def _write_kubeconfig(self, pki: Pki, port: int) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "suanli-local",
                    "cluster": {
                        "server": f"https://{self.api_address}:{port}",
                        "certificate-authority": str(pki.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate": str(pki.client_cert("admin")),
                        "client-key": str(pki.client_key("admin")),
                    },
                }
            ],
            "contexts": [
                {"name": "suanli-local", "context": {"cluster": "suanli-local", "user": "admin"}}
            ],
            "current-context": "suanli-local",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))

    def _wait_http(self, url: str, name: str, timeout: float, pki: Pki | None = None) -> None:
        context = None
        if pki is not None:
            context = ssl.create_default_context(cafile=str(pki.ca_cert))
            context.load_cert_chain(str(pki.client_cert("admin")), str(pki.client_key("admin")))
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self._check_alive(name)
            try:
                with urllib.request.urlopen(url, timeout=5, context=context) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.25)
        raise ClusterError(f"{name} not ready at {url} after {timeout:.0f} s ({last})")

    def wait_for_default_service_account(
        self, namespace: str = "default", timeout: float = 60
    ) -> None:
        """Pods are refused until the namespace's default ServiceAccount exists."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.kubectl("get", "serviceaccount", "default", "-n", namespace, check=False)
            if result.returncode == 0:
                return
            time.sleep(0.5)
        raise ClusterError(f"no default ServiceAccount in {namespace} after {timeout:.0f} s")

    # --- talking to it ------------------------------------------------------------------------
    def kubectl(
        self,
        *args: str,
        input_text: str | None = None,
        check: bool = True,
        timeout: float = KUBECTL_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl; with ``check`` a failure raises (``TransientAPIError`` when it got no
        answer). A call past ``timeout`` is killed and reported as exit code 124."""
        command = [str(self.tools.kubectl), f"--kubeconfig={self.kubeconfig}", *args]
        try:
            result = subprocess.run(
                command,
                input=input_text,
                capture_output=True,
                text=True,
                check=False,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            message = f"kubectl {' '.join(args)} timed out after {timeout:g} s"
            result = subprocess.CompletedProcess(command, 124, "", message)
        if check and result.returncode != 0:
            stderr = result.stderr.strip()
            transient = result.returncode == 124 or any(
                pattern in stderr.lower() for pattern in TRANSIENT_KUBECTL_ERRORS
            )
            error = TransientAPIError if transient else ClusterError
            raise error(f"kubectl {' '.join(args)} failed: {stderr}")
        return result

    def apply_objects(self, objects: Sequence[Mapping[str, Any]]) -> None:
        documents = yaml.safe_dump_all([dict(o) for o in objects], sort_keys=False)
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input_text=documents)

    def apply_paths(self, *paths: Path) -> None:
        for path in paths:
            self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))

    def down(self) -> None:
        """Stop every process this directory recorded, newest first."""
        names = list(self.read_state()["processes"])
        for name in reversed(names):
            self.stop_process(name)
        state = self.read_state()
        if "real_node" in state:
            from suanli.localcluster import realnode

            left = realnode.teardown(self.state_dir, state["real_node"])
            if left:
                raise ClusterError(f"the real node left behind: {', '.join(left)}")
            state.pop("real_node")
            state.pop("api_address", None)
            self._write_state(state)
