#!/usr/bin/env python3
"""Throughput on the real control plane: suanli against kube-scheduler, in one run.

Why this shape: these machines are shared and noisy, so absolute figures do not carry over from
one run to the next; only figures taken side by side in the same run on the same control plane
mean something. One private control plane (etcd, kube-apiserver, kube-controller-manager, kwok)
gets ``--nodes`` kwok nodes (Ascend 910B, H100 and A100 in racks of 16, four racks to a
super-node). Then, one after the other on the same nodes:

1. **kube-scheduler**: ``--pods`` plain pods requesting the same extended resources (and CPU and
   memory) as the suanli pods, created by this script with the same client concurrency; the
   scheduler's client QPS/burst are raised far above what it uses (the operator's Python client
   has no client-side rate limit at all). Its pods are then deleted.
2. **suanli**: the operator is started, and the same pods as TrainingJobs — gangs of 1, 2, 4 and
   8 pods, whole-node (8 devices a pod) and partial-node (1, 2, 4 devices) shapes.

Measured per phase: pods bound per second from the first creation to the last bind, and to the
last pod Running (kwok runs them); API requests per pod (the apiserver's
``apiserver_request_total`` before/after, without node and lease traffic, which does not depend
on the scheduler); for suanli, cycle latency p50/p99 from the operator's cycle log lines and the
operator's peak RSS and CPU (from /proc). Checked, and the run fails when broken: every pod bound
exactly once (one pod per replica, nodeName never changed) and no node over its devices, CPU or
memory. One JSON summary and the same as a table at the end.

    nice -n 5 .venv/bin/python bench/scale_bench.py --nodes 1000 --pods 2000
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))

import urllib3
from kubernetes import client, config
from rich.console import Console
from rich.table import Table

from suanli.localcluster import LocalCluster
from suanli.localcluster.cli import install_api, start_operator
from suanli.localcluster.fakenodes import MODELS, node_manifest
from suanli.quantity import to_int, to_mib, to_milli

KS_NAMESPACE = "bench-kube-scheduler"
TENANTS = ("bench-a", "bench-b", "bench-c", "bench-d")
CLASSES = ("ascend-910b", "nvidia-h100", "nvidia-a100")
NODE_SHARE = {"ascend-910b": 0.5, "nvidia-h100": 0.25, "nvidia-a100": 0.25}
RACK_SIZE = 16
RACKS_PER_SUPER_NODE = 4
CREATE_THREADS = 16
SCHEDULER_QPS = 5000
SCHEDULER_BURST = 10000
# gang sizes and devices per pod, weighted so that about half the devices end up taken
GANG_SIZES = ((1, 3), (2, 3), (4, 2), (8, 1))
DEVICES_PER_POD = ((1, 6), (2, 3), (4, 2), (8, 1))
STALL_SECONDS = 60.0  # a phase ends early when nothing was bound or started for this long
CYCLE_LINE = re.compile(r"cycle \d+: .* (\d+) decisions, (\d+) writes in ([0-9.]+) ms")
BACKGROUND_RESOURCES = frozenset({"nodes", "leases", "nodes/status"})

SCHEDULER_CONFIG = f"""apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: {{kubeconfig}}
  qps: {SCHEDULER_QPS}
  burst: {SCHEDULER_BURST}
leaderElection:
  leaderElect: false
profiles:
- schedulerName: default-scheduler
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources:
        - name: cpu
          weight: 1
        - name: memory
          weight: 1
        - name: huawei.com/Ascend910
          weight: 10
        - name: nvidia.com/gpu
          weight: 10
"""


@dataclass(frozen=True)
class Gang:
    """One TrainingJob of the workload, and the same pods for kube-scheduler."""

    name: str
    namespace: str
    device_class: str
    replicas: int
    devices: int

    @property
    def cpu(self) -> int:
        return 4 * self.devices

    @property
    def memory_gi(self) -> int:
        return 32 * self.devices


def workload(pods: int, seed: int = 7) -> list[Gang]:
    """Gangs of 1, 2, 4 and 8 pods until exactly ``pods`` pods, classes in the nodes' shares."""
    rng = random.Random(seed)
    sizes, size_weights = zip(*GANG_SIZES, strict=True)
    counts, count_weights = zip(*DEVICES_PER_POD, strict=True)
    classes, shares = list(NODE_SHARE), list(NODE_SHARE.values())
    gangs: list[Gang] = []
    left = pods
    while left > 0:
        size = min(left, rng.choices(sizes, size_weights)[0])
        devices = rng.choices(counts, count_weights)[0]
        cls = rng.choices(classes, shares)[0]
        namespace = TENANTS[len(gangs) % len(TENANTS)]
        gangs.append(Gang(f"job-{len(gangs):05d}", namespace, cls, size, devices))
        left -= size
    return gangs


def nodes(count: int) -> list[dict[str, Any]]:
    """``count`` kwok nodes in the classes' shares, racks of 16, four racks to a super-node."""
    manifests = []
    for cls in CLASSES:
        share = round(count * NODE_SHARE[cls]) if cls != CLASSES[-1] else count - len(manifests)
        for index in range(share):
            rack_index = index // RACK_SIZE
            rack = f"{cls}-r{rack_index:03d}"
            body = node_manifest(f"{cls}-{index:05d}", MODELS[cls], rack)
            body["metadata"]["labels"]["topology.suanli.io/super-node"] = (
                f"{cls}-sn{rack_index // RACKS_PER_SUPER_NODE:03d}"
            )
            manifests.append(body)
    return manifests


def container(gang: Gang, resource: str | None) -> dict[str, Any]:
    requests = {"cpu": str(gang.cpu), "memory": f"{gang.memory_gi}Gi"}
    limits: dict[str, str] = {}
    if resource is not None:
        requests[resource] = limits[resource] = str(gang.devices)
    resources: dict[str, Any] = {"requests": requests}
    if limits:
        resources["limits"] = limits
    return {"name": "trainer", "image": "example.invalid/train:1", "resources": resources}


def training_job(gang: Gang) -> dict[str, Any]:
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": gang.name, "namespace": gang.namespace},
        "spec": {
            "replicas": gang.replicas,
            "accelerators": [
                {"acceleratorClass": gang.device_class, "devicesPerReplica": gang.devices}
            ],
            "template": {"spec": {"containers": [container(gang, None)]}},
        },
    }


def plain_pods(gang: Gang) -> list[dict[str, Any]]:
    resource = MODELS[gang.device_class].resource
    selector = {
        k: v
        for k, v in MODELS[gang.device_class].labels.items()
        if "product" in k or k == "accelerator"
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{gang.name}-{replica}", "namespace": KS_NAMESPACE},
            "spec": {
                "nodeSelector": selector,
                "containers": [container(gang, resource)],
            },
        }
        for replica in range(gang.replicas)
    ]


# --- measuring ---------------------------------------------------------------------------------
@dataclass
class PodLog:
    """What a pod watch saw: when each pod was first bound and Running, every node it had."""

    namespaces: frozenset[str]
    bound: dict[str, float] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=dict)
    nodes: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    uids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, core: client.CoreV1Api, resource_version: str) -> None:
        """A raw watch (one json.loads an event, no model classes): the bench shares the CPU
        with what it measures, so it keeps its own share small."""
        while not self.stop.is_set():
            response = core.list_pod_for_all_namespaces(
                watch=True,
                resource_version=resource_version,
                timeout_seconds=5,
                allow_watch_bookmarks=True,
                _preload_content=False,
            )
            buffer = b""
            for chunk in response.stream(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event["type"] == "ERROR":
                        resource_version = core.list_pod_for_all_namespaces(
                            limit=1
                        ).metadata.resource_version
                        break
                    pod = event["object"]
                    resource_version = pod["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self.see(pod)
                if self.stop.is_set():
                    break
            response.release_conn()

    def see(self, pod: Mapping[str, Any]) -> None:
        metadata, spec = pod["metadata"], pod.get("spec") or {}
        if metadata["namespace"] not in self.namespaces:
            return
        key = f"{metadata['namespace']}/{metadata['name']}"
        now = time.monotonic()
        self.uids[key].add(metadata["uid"])
        if spec.get("nodeName"):
            self.nodes[key].add(spec["nodeName"])
            self.bound.setdefault(key, now)
        if (pod.get("status") or {}).get("phase") == "Running":
            self.running.setdefault(key, now)


def api_requests(cluster: LocalCluster) -> Counter[str]:
    """apiserver_request_total by resource/verb, without node and lease traffic."""
    text = cluster.kubectl("get", "--raw", "/metrics").stdout
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        if resource in BACKGROUND_RESOURCES:
            continue
        counts[f"{labels.get('verb', '')} {resource}"] += int(float(line.rsplit(" ", 1)[1]))
    return counts


@dataclass
class ProcessWatch:
    """Peak RSS and CPU seconds of one process, sampled from /proc."""

    pid: int
    peak_rss_kb: int = 0
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        import os

        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    def run(self) -> None:
        self.cpu_start = self.cpu_seconds()
        while not self.stop.wait(0.5):
            self.peak_rss_kb = max(self.peak_rss_kb, self.rss_kb())
        self.peak_rss_kb = max(self.peak_rss_kb, self.rss_kb())
        self.cpu_end = self.cpu_seconds()


@dataclass
class Phase:
    name: str
    pods: int
    seconds_bound: float
    seconds_running: float
    api_requests: int
    api_by_kind: dict[str, int]
    apiserver_cpu_s: float
    scheduler_cpu_s: float
    scheduler_peak_rss_mb: float
    cycles_ms: list[float] = field(default_factory=list)

    @property
    def pods_per_s(self) -> float:
        return self.pods / self.seconds_bound if self.seconds_bound else 0.0

    @property
    def running_per_s(self) -> float:
        return self.pods / self.seconds_running if self.seconds_running else 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- the run ---------------------------------------------------------------------------------
class Rest:
    """Plain JSON over the admin client certificate: the generated client validates and builds
    model objects for every call, CPU this bench would take from what it measures."""

    def __init__(self, kubeconfig: Path) -> None:
        import yaml

        doc = yaml.safe_load(kubeconfig.read_text())
        cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
        self.server = cluster["server"]
        self.pool = urllib3.PoolManager(
            maxsize=CREATE_THREADS * 2,
            ca_certs=cluster["certificate-authority"],
            cert_file=user["client-certificate"],
            key_file=user["client-key"],
        )

    def request(
        self, method: str, path: str, body: Any = None, content: str = "application/json"
    ) -> Any:
        response = self.pool.request(
            method,
            self.server + path,
            body=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": content},
        )
        if response.status >= 300:
            raise client.ApiException(status=response.status, reason=response.data[:300])
        return json.loads(response.data) if response.data else None

    def post(self, path: str) -> Callable[[dict[str, Any]], Any]:
        return lambda body: self.request("POST", path.format(**body["metadata"]), body)


class Bench:
    def __init__(self, cluster: LocalCluster, timeout: float) -> None:
        self.cluster = cluster
        self.timeout = timeout
        self.rest = Rest(cluster.kubeconfig)
        self.ks_pods: list[dict[str, Any]] = []
        config.load_kube_config(str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
        configuration = client.Configuration.get_default_copy()
        configuration.connection_pool_maxsize = CREATE_THREADS * 2
        self.api = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def pid(self, name: str) -> int:
        return int(self.cluster.read_state()["processes"][name]["pid"])

    def create_all(
        self, create: Callable[[dict[str, Any]], Any], bodies: Iterable[dict[str, Any]]
    ) -> None:
        def one(body: dict[str, Any]) -> None:
            for _ in range(20):
                try:
                    create(body)
                    return
                except client.ApiException as exc:
                    if exc.status == 409:
                        return
                    if exc.status not in (429, 500, 503, 504):
                        raise
                    time.sleep(0.5)

        with ThreadPoolExecutor(CREATE_THREADS) as pool:
            list(pool.map(one, bodies))

    def setup(self, count: int) -> None:
        t0 = time.monotonic()
        self.create_all(self.rest.post("/api/v1/nodes"), nodes(count))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            ready = sum(
                1
                for n in self.rest.request("GET", "/api/v1/nodes")["items"]
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in n.get("status", {}).get("conditions") or []
                )
            )
            if ready >= count:
                break
            time.sleep(2)
        else:
            raise SystemExit(f"only {ready} of {count} nodes became Ready")
        # The apiserver taints a new node not-ready; the node lifecycle controller, which would
        # lift it, does not run here (suanli reads the Ready condition and ignores the taint).
        names = [n["metadata"]["name"] for n in self.rest.request("GET", "/api/v1/nodes")["items"]]
        self.create_all(
            lambda body: self.rest.request(
                "PATCH",
                f"/api/v1/nodes/{body['name']}",
                {"spec": {"taints": None}},
                "application/merge-patch+json",
            ),
            [{"name": n} for n in names],
        )
        print(f"{count} kwok nodes Ready in {time.monotonic() - t0:.0f} s", flush=True)
        for namespace in (KS_NAMESPACE, *TENANTS):
            self.rest.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
            self.cluster.wait_for_default_service_account(namespace)
        for namespace in TENANTS:
            quota = {
                "apiVersion": "suanli.io/v1alpha1",
                "kind": "ComputeQuota",
                "metadata": {"name": namespace},
                "spec": {
                    "namespaces": [namespace],
                    "resources": [{"acceleratorClass": c, "nominal": 8 * count} for c in CLASSES],
                },
            }
            self.rest.request("POST", "/apis/suanli.io/v1alpha1/computequotas", quota)

    def measure(
        self,
        name: str,
        namespaces: frozenset[str],
        expected: int,
        start: Callable[[], None],
        scheduler: str,
    ) -> tuple[Phase, PodLog]:
        log = PodLog(namespaces)
        rv = self.rest.request("GET", "/api/v1/pods?limit=1")["metadata"]["resourceVersion"]
        watcher = threading.Thread(target=log.run, args=(self.core, rv), daemon=True)
        watcher.start()
        procs = {n: ProcessWatch(self.pid(n)) for n in ("kube-apiserver", scheduler)}
        threads = [threading.Thread(target=p.run, daemon=True) for p in procs.values()]
        for t in threads:
            t.start()
        before = api_requests(self.cluster)
        t0 = time.monotonic()
        start()
        print(f"{name}: created in {time.monotonic() - t0:.1f} s", flush=True)
        deadline = t0 + self.timeout
        progress, last = (0, 0), time.monotonic()
        while time.monotonic() < deadline and len(log.running) < expected:
            time.sleep(0.5)
            if (len(log.bound), len(log.running)) != progress:
                progress, last = (len(log.bound), len(log.running)), time.monotonic()
            elif time.monotonic() - last > STALL_SECONDS:
                print(f"{name}: no progress for {STALL_SECONDS:.0f} s", flush=True)
                break
        log.stop.set()
        for p in procs.values():
            p.stop.set()
        for t in threads:
            t.join()
        watcher.join(timeout=10)
        after = api_requests(self.cluster)
        delta = {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0) > 0}
        if len(log.bound) < expected:
            print(f"{name}: only {len(log.bound)} of {expected} pods bound in {self.timeout:.0f} s")
        last_bound = max(log.bound.values(), default=t0)
        last_running = max(log.running.values(), default=t0)
        sched = procs[scheduler]
        api = procs["kube-apiserver"]
        phase = Phase(
            name=name,
            pods=len(log.bound),
            seconds_bound=last_bound - t0,
            seconds_running=last_running - t0,
            api_requests=sum(delta.values()),
            api_by_kind=dict(sorted(delta.items(), key=lambda i: -i[1])),
            apiserver_cpu_s=api.cpu_end - api.cpu_start,
            scheduler_cpu_s=sched.cpu_end - sched.cpu_start,
            scheduler_peak_rss_mb=sched.peak_rss_kb / 1024,
        )
        return phase, log

    def kube_scheduler(self, gangs: list[Gang]) -> tuple[Phase, PodLog]:
        path = self.cluster.state_dir / "bench-scheduler.yaml"
        path.write_text(SCHEDULER_CONFIG.format(kubeconfig=self.cluster.kubeconfig))
        self.cluster.start_process(
            "kube-scheduler",
            [
                str(self.cluster.tools.kube_scheduler),
                f"--config={path}",
                f"--authentication-kubeconfig={self.cluster.kubeconfig}",
                f"--authorization-kubeconfig={self.cluster.kubeconfig}",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
            ],
        )
        time.sleep(3)
        pods = [p for g in gangs for p in plain_pods(g)]

        def start() -> None:
            self.create_all(self.rest.post("/api/v1/namespaces/{namespace}/pods"), pods)

        try:
            return self.measure(
                "kube-scheduler", frozenset({KS_NAMESPACE}), len(pods), start, "kube-scheduler"
            )
        finally:
            self.cluster.stop_process("kube-scheduler")
            self.ks_pods = self.rest.request("GET", f"/api/v1/namespaces/{KS_NAMESPACE}/pods")[
                "items"
            ]
            self.rest.request(
                "DELETE", f"/api/v1/namespaces/{KS_NAMESPACE}/pods?gracePeriodSeconds=0"
            )
            while self.rest.request("GET", f"/api/v1/namespaces/{KS_NAMESPACE}/pods?limit=1")[
                "items"
            ]:
                time.sleep(1)

    def suanli(self, gangs: list[Gang]) -> tuple[Phase, PodLog]:
        start_operator(self.cluster, ("--standalone",))
        time.sleep(2)
        log_path = self.cluster.logs_dir / "operator.log"
        offset = log_path.stat().st_size

        def start() -> None:
            self.create_all(
                self.rest.post("/apis/suanli.io/v1alpha1/namespaces/{namespace}/trainingjobs"),
                [training_job(g) for g in gangs],
            )

        try:
            phase, log = self.measure(
                "suanli", frozenset(TENANTS), sum(g.replicas for g in gangs), start, "operator"
            )
        finally:
            text = log_path.read_text(errors="replace")[offset:]
            self.cluster.stop_process("operator")
        phase.cycles_ms = [
            float(m.group(3))
            for m in CYCLE_LINE.finditer(text)
            if int(m.group(1)) or int(m.group(2))
        ]
        return phase, log


# --- checks ------------------------------------------------------------------------------------
def amount_of(resource: str, value: str) -> int:
    if resource == "cpu":
        return to_milli(value)
    return to_mib(value) if resource == "memory" else to_int(value)


def check(
    log: PodLog, expected: Mapping[str, int], pods: Iterable[Any], node_bodies: Iterable[Any]
) -> list[str]:
    """Every pod bound exactly once, one pod per replica, no node over its capacity."""
    problems = []
    for key, names in log.nodes.items():
        if len(names) != 1:
            problems.append(f"pod {key} was bound to {sorted(names)}")
    for key, uids in log.uids.items():
        if len(uids) != 1:
            problems.append(f"pod {key} was created {len(uids)} times")
    per_group: Counter[str] = Counter(k.rsplit("-", 1)[0] for k in log.uids)
    for group, want in expected.items():
        if per_group[group] != want:
            problems.append(f"{group}: {per_group[group]} pods for {want} replicas")
    capacity = {n["metadata"]["name"]: n["status"]["allocatable"] for n in node_bodies}
    used: dict[str, Counter[str]] = defaultdict(Counter)
    for pod in pods:
        node = pod["spec"].get("nodeName")
        if not node or pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for c in pod["spec"]["containers"]:
            resources = c.get("resources") or {}
            wanted = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
            for resource, value in wanted.items():
                used[node][resource] += amount_of(resource, value)
    for node, totals in used.items():
        for resource, amount in totals.items():
            limit = amount_of(resource, capacity[node].get(resource, "0"))
            if amount > limit:
                problems.append(f"node {node}: {resource} {amount} > {limit}")
    return problems


def summary(nodes_count: int, ks: Phase, su: Phase, operator_rss_mb: float) -> dict[str, Any]:
    return {
        "nodes": nodes_count,
        "pods": su.pods,
        "suanli_pods_per_s": round(su.pods_per_s, 1),
        "kube_scheduler_pods_per_s": round(ks.pods_per_s, 1),
        "ratio": round(su.pods_per_s / ks.pods_per_s, 2) if ks.pods_per_s else None,
        "suanli_running_per_s": round(su.running_per_s, 1),
        "kube_scheduler_running_per_s": round(ks.running_per_s, 1),
        "suanli_api_requests_per_pod": round(su.api_requests / max(su.pods, 1), 2),
        "kube_scheduler_api_requests_per_pod": round(ks.api_requests / max(ks.pods, 1), 2),
        "suanli_apiserver_cpu_ms_per_pod": round(1000 * su.apiserver_cpu_s / max(su.pods, 1), 2),
        "kube_scheduler_apiserver_cpu_ms_per_pod": round(
            1000 * ks.apiserver_cpu_s / max(ks.pods, 1), 2
        ),
        "operator_peak_rss_mb": round(operator_rss_mb, 1),
        "operator_cpu_s": round(su.scheduler_cpu_s, 1),
        "kube_scheduler_cpu_s": round(ks.scheduler_cpu_s, 1),
        "kube_scheduler_peak_rss_mb": round(ks.scheduler_peak_rss_mb, 1),
        "cycles": len(su.cycles_ms),
        "cycle_ms_p50": round(statistics.median(su.cycles_ms), 1) if su.cycles_ms else None,
        "cycle_ms_p99": round(percentile(su.cycles_ms, 0.99), 1) if su.cycles_ms else None,
        "kube_scheduler_qps_burst": [SCHEDULER_QPS, SCHEDULER_BURST],
        "operator_client_rate_limit": None,
    }


def run(
    nodes_count: int, pods: int, state_dir: Path, timeout: float, keep: bool = False
) -> tuple[dict[str, Any], list[str]]:
    cluster = LocalCluster(state_dir)
    try:
        cluster.up(scheduler=False, nodes=False)
        install_api(cluster)
        bench = Bench(cluster, timeout)
        bench.setup(nodes_count)
        gangs = workload(pods)
        print(
            f"workload: {len(gangs)} gangs, {pods} pods, "
            f"{sum(g.replicas * g.devices for g in gangs)} of {8 * nodes_count} devices",
            flush=True,
        )
        ks, ks_log = bench.kube_scheduler(gangs)
        ks_expected = {f"{KS_NAMESPACE}/{g.name}": g.replicas for g in gangs}
        all_nodes = bench.rest.request("GET", "/api/v1/nodes")["items"]
        problems = [
            f"kube-scheduler: {p}" for p in check(ks_log, ks_expected, bench.ks_pods, all_nodes)
        ]
        su, su_log = bench.suanli(gangs)
        all_pods = bench.rest.request("GET", "/api/v1/pods")["items"]
        su_expected = {f"{g.namespace}/{g.name}-a0": g.replicas for g in gangs}
        ours = [p for p in all_pods if p["metadata"]["namespace"] in TENANTS]
        problems += [f"suanli: {p}" for p in check(su_log, su_expected, ours, all_nodes)]
        if su.pods < pods:
            problems.append(f"suanli: only {su.pods} of {pods} pods bound")
        if ks.pods < pods:
            problems.append(f"kube-scheduler: only {ks.pods} of {pods} pods bound")
        rss = su.scheduler_peak_rss_mb
        result = summary(nodes_count, ks, su, rss)
        result["suanli_api_requests"] = su.api_by_kind
        result["kube_scheduler_api_requests"] = ks.api_by_kind
        return result, problems
    finally:
        if not keep:
            cluster.down()


def table(result: Mapping[str, Any]) -> Table:
    rows = Table(title=f"{result['nodes']} kwok nodes, {result['pods']} pods, same run")
    rows.add_column("figure")
    rows.add_column("value", justify="right")
    for key, value in result.items():
        if not isinstance(value, dict):
            rows.add_row(key, str(value))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds a phase may take")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    parser.add_argument(
        "--keep", type=Path, help="state directory of the control plane, left running after"
    )
    args = parser.parse_args(argv)
    if args.keep is not None:
        result, problems = run(args.nodes, args.pods, args.keep, args.timeout, keep=True)
    else:
        with tempfile.TemporaryDirectory(prefix="suanli-bench-") as state:
            result, problems = run(args.nodes, args.pods, Path(state), args.timeout)
    Console().print(table(result))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
