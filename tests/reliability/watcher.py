"""The invariant watcher: what must hold at every moment, checked from the API server alone.

Why its own view: a checker that read suanli's status would only show that suanli agrees with
itself. The watcher keeps a pod watch of its own (every pod it ever saw, with its start and end,
because billed pods leave the API server) and samples jobs, quotas and nodes on its own clock.
Each invariant names where it comes from (docs/reliability.md has the table):

- ``node-limit``: no node holds more devices than it has, nor one Ascend chip twice (kubelet's
  admission; the device plugin's allocation);
- ``quota-limit``: no quota's live pods hold more devices of a class than its nominal (Kueue's
  "admitted workloads fit the ClusterQueue" invariant), for quotas without a cohort;
- ``partial-gang``: no gang partly present or partly running longer than the gang-start timeout
  plus ``slack`` (Kueue's ``waitForPodsReady``; Volcano's minAvailable);
- ``duplicate-pod``: never two live pods of one replica, nor live pods of two attempts of one job
  (etcd robustness's "no duplicate"; the Job controller's one pod per completion index);
- ``orphan-pod``: no live pod of a missing or finished/queued job for longer than ``grace``;
- ``re-admitted``: a job seen finished never changes phase and gets no later attempt (Kueue's
  "finished workloads stay finished");
- ``final-state`` (at the end): every job Admitted, Running, finished, or Queued with a reason;
- ``metering-decrease`` at every sample, ``metering-exact`` at the end: each quota's
  device-seconds equal Σ devices × (end − start) over its gone pods, recomputed from the pods'
  own ``startTime`` and last container ``finishedAt`` (else ``deletionTimestamp``); never lower
  than at the previous sample (a counter: Prometheus's monotonicity).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

GROUP, VERSION = "suanli.io", "v1alpha1"
JOB_LABEL = "suanli.io/job-name"
ATTEMPT_LABEL = "suanli.io/attempt"
REPLICA_LABEL = "suanli.io/replica-index"
CLASS_ANNOTATION = "suanli.io/accelerator-class"
ASCEND_ANNOTATION = "huawei.com/Ascend910"
FINISHED = ("Succeeded", "Failed")
SETTLED = ("Admitted", "Running", "Succeeded", "Failed")


def epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@dataclass
class PodRecord:
    """What the watcher last saw of one pod (kept after the pod is gone)."""

    uid: str
    namespace: str
    name: str
    job: str | None
    attempt: int | None
    replica: str | None
    owner: str | None
    node: str | None
    klass: str | None
    limits: dict[str, int]
    chips: tuple[str, ...]
    created: float
    start: float | None = None
    end: float | None = None
    phase: str | None = None
    deleting: bool = False
    gone: bool = False
    first_seen: float = 0.0

    @property
    def live(self) -> bool:
        """Holds its replica's slot: not finished, not being deleted, still there."""
        return not (self.gone or self.deleting or self.phase in FINISHED)

    @property
    def holding(self) -> bool:
        """Holds devices on its node: not finished and still there (deleting still holds)."""
        return not (self.gone or self.phase in FINISHED)


def _record(pod: Any) -> PodRecord:
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    limits: dict[str, int] = {}
    for container in spec.get("containers") or []:
        for resource, count in ((container.get("resources") or {}).get("limits") or {}).items():
            if "/" in resource:
                limits[resource] = limits.get(resource, 0) + int(count)
    owners = [o["uid"] for o in meta.get("ownerReferences") or [] if o.get("kind") == "TrainingJob"]
    start = epoch(status.get("startTime"))
    end = None
    containers = status.get("containerStatuses") or []
    terminated = [(c.get("state") or {}).get("terminated") for c in containers]
    if status.get("phase") in FINISHED or (terminated and all(terminated)):
        ends = [epoch((t or {}).get("finishedAt")) for t in terminated]
        known = [e for e in ends if e is not None]
        end = max(known) if known else start
    elif meta.get("deletionTimestamp"):
        end = epoch(meta["deletionTimestamp"])
    attempt = labels.get(ATTEMPT_LABEL)
    chips = str(annotations.get(ASCEND_ANNOTATION) or "")
    return PodRecord(
        uid=meta["uid"],
        namespace=meta["namespace"],
        name=meta["name"],
        job=labels.get(JOB_LABEL),
        attempt=int(attempt) if attempt is not None else None,
        replica=labels.get(REPLICA_LABEL),
        owner=owners[0] if owners else None,
        node=spec.get("nodeName"),
        klass=annotations.get(CLASS_ANNOTATION),
        limits=limits,
        chips=tuple(c for c in chips.split(",") if c),
        created=epoch(meta.get("creationTimestamp")) or time.time(),
        start=start,
        end=end,
        phase=status.get("phase"),
        deleting=bool(meta.get("deletionTimestamp")),
    )


def device_seconds(pod: PodRecord, resource: str) -> float:
    """Ground truth for one gone pod: devices × (end − start), 0 if it never started."""
    if pod.start is None:
        return 0.0
    end = pod.start if pod.end is None else max(pod.end, pod.start)
    return pod.limits.get(resource, 0) * (end - pod.start)


@dataclass
class Violation:
    invariant: str
    at: float
    detail: str

    def __str__(self) -> str:
        return f"[{self.invariant}] {self.detail}"


@dataclass
class Figures:
    samples: int = 0
    pods_seen: int = 0
    jobs_seen: int = 0
    watch_restarts: int = 0
    sample_errors: int = 0
    metering_largest_error: float = 0.0
    metering_device_seconds: float = 0.0


@dataclass
class InvariantWatcher:
    """``with InvariantWatcher(kubeconfig, gang_start_timeout=30) as w: ...; w.finish()``."""

    kubeconfig: Path
    gang_start_timeout: float
    slack: float = 25.0
    grace: float = 30.0
    interval: float = 1.0
    namespaces: set[str] | None = None
    pods: dict[str, PodRecord] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    figures: Figures = field(default_factory=Figures)

    def __post_init__(self) -> None:
        self.api = config.new_client_from_config(config_file=str(self.kubeconfig))
        self.api.configuration.retries = 0
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._resource_of: dict[str, str] = {}
        self._tflops_of: dict[str, float] = {}
        self._partial_since: dict[tuple[str, str, int], float] = {}
        self._orphan_since: dict[str, float] = {}
        self._finished: dict[str, tuple[str, int]] = {}
        self._metering: dict[tuple[str, str], tuple[str, float]] = {}
        self._seen_keys: set[tuple[str, str]] = set()
        self._jobs_seen: set[str] = set()
        self._watch_rv: str | None = None

    # --- running ------------------------------------------------------------------------------
    def __enter__(self) -> InvariantWatcher:
        for item in self._list("acceleratorclasses")["items"]:
            spec = item["spec"]
            self._resource_of[item["metadata"]["name"]] = spec["resourceName"]
            self._tflops_of[item["metadata"]["name"]] = float(spec.get("computeTFLOPS") or 0)
        pods = self.core.list_pod_for_all_namespaces(_request_timeout=60)
        with self._lock:
            for pod in self.api.sanitize_for_serialization(pods.items):
                self._see(pod)
        self._watch_rv = pods.metadata.resource_version
        for target in (self._watch_pods, self._sample_loop):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)

    def _list(self, plural: str) -> dict[str, Any]:
        body: dict[str, Any] = self.custom.list_cluster_custom_object(
            GROUP, VERSION, plural, _request_timeout=30
        )
        return body

    def _see(self, pod: dict[str, Any], gone: bool = False) -> None:
        if self.namespaces is not None and pod["metadata"]["namespace"] not in self.namespaces:
            return
        record = _record(pod)
        record.gone = gone
        earlier = self.pods.get(record.uid)
        record.first_seen = earlier.first_seen if earlier else time.time()
        if earlier is None:
            self.figures.pods_seen += 1
        self.pods[record.uid] = record

    def _watch_pods(self) -> None:
        while not self._stop.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.core.list_pod_for_all_namespaces,
                    resource_version=self._watch_rv,
                    allow_watch_bookmarks=True,
                    timeout_seconds=30,
                    _request_timeout=45,
                ):
                    obj = event["object"]
                    rv = obj.metadata.resource_version
                    if event["type"] == "BOOKMARK":
                        self._watch_rv = rv
                        continue
                    pod = self.api.sanitize_for_serialization(obj)
                    with self._lock:
                        self._see(pod, gone=event["type"] == "DELETED")
                    self._watch_rv = rv
                    if self._stop.is_set():
                        break
            except ApiException as exc:
                self.figures.watch_restarts += 1
                if exc.status == 410:  # compacted: pods created and gone meanwhile are lost
                    self._relist()
                else:
                    time.sleep(1)
            except Exception:  # the apiserver restarting, etcd stopped, a reset: resume
                self.figures.watch_restarts += 1
                time.sleep(1)
            finally:
                stream.stop()

    def _relist(self) -> None:
        with contextlib.suppress(Exception):
            pods = self.core.list_pod_for_all_namespaces(_request_timeout=60)
            present = {p.metadata.uid for p in pods.items}
            with self._lock:
                for pod in self.api.sanitize_for_serialization(pods.items):
                    self._see(pod)
                for record in self.pods.values():
                    if record.uid not in present:
                        record.gone = True
            self._watch_rv = pods.metadata.resource_version

    def _sample_loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception:  # the control plane is down: that sample is skipped
                self.figures.sample_errors += 1

    # --- one sample ---------------------------------------------------------------------------
    def _flag(self, invariant: str, detail: str, now: float) -> None:
        """One violation per invariant and subject (the text before the colon)."""
        key = (invariant, detail.split(":", maxsplit=1)[0])
        if key in self._seen_keys:
            return
        self._seen_keys.add(key)
        self.violations.append(Violation(invariant, now, detail))

    def sample(self) -> None:
        jobs = self._list("trainingjobs")["items"]
        quotas = self._list("computequotas")["items"]
        nodes = self.core.list_node(_request_timeout=30).items
        now = time.time()
        with self._lock:
            pods = list(self.pods.values())
        self.figures.samples += 1
        if self.namespaces is not None:
            jobs = [j for j in jobs if j["metadata"]["namespace"] in self.namespaces]
        self._check_nodes(nodes, pods, now)
        self._check_quotas(quotas, pods, now)
        self._check_gangs(jobs, pods, now)
        self._check_finished(jobs, pods, now)
        self._check_metering_monotonic(quotas, now)

    def _check_nodes(self, nodes: Iterable[Any], pods: list[PodRecord], now: float) -> None:
        held: dict[tuple[str, str], int] = {}
        chips: dict[tuple[str, str], str] = {}
        for pod in pods:
            if not pod.holding or pod.node is None:
                continue
            for resource, count in pod.limits.items():
                held[(pod.node, resource)] = held.get((pod.node, resource), 0) + count
            for chip in pod.chips:
                other = chips.setdefault((pod.node, chip), pod.name)
                if other != pod.name:
                    self._flag(
                        "node-limit",
                        f"{pod.node}: chip {chip} held by {other} and {pod.namespace}/{pod.name}",
                        now,
                    )
        allocatable = {
            n.metadata.name: {k: v for k, v in (n.status.allocatable or {}).items() if "/" in k}
            for n in nodes
        }
        for (node, resource), count in held.items():
            limit = int(allocatable.get(node, {}).get(resource, 0))
            if count > limit:
                self._flag("node-limit", f"{node}: {count} × {resource} held, has {limit}", now)

    def _check_quotas(self, quotas: Iterable[Any], pods: list[PodRecord], now: float) -> None:
        for quota in quotas:
            spec = quota["spec"]
            if spec.get("cohort"):
                continue
            namespaces = set(spec.get("namespaces") or [])
            nominal = {r["acceleratorClass"]: int(r["nominal"]) for r in spec["resources"]}
            used: dict[str, int] = {}
            for pod in pods:
                if pod.live and pod.namespace in namespaces and pod.klass is not None:
                    resource = self._resource_of.get(pod.klass, "")
                    used[pod.klass] = used.get(pod.klass, 0) + pod.limits.get(resource, 0)
            for klass, count in used.items():
                if count > nominal.get(klass, 0):
                    self._flag(
                        "quota-limit",
                        f"{quota['metadata']['name']}: live pods hold {count} × {klass}, "
                        f"nominal {nominal.get(klass, 0)} (sample at {now:.0f})",
                        now,
                    )

    def _check_gangs(self, jobs: list[Any], pods: list[PodRecord], now: float) -> None:
        by_uid = {j["metadata"]["uid"]: j for j in jobs}
        self._jobs_seen.update(by_uid)
        self.figures.jobs_seen = len(self._jobs_seen)
        groups: dict[tuple[str, str, int], list[PodRecord]] = {}
        live_by_job: dict[tuple[str, str], set[int]] = {}
        replicas_live: dict[tuple[str, str, str], list[str]] = {}
        for pod in pods:
            if pod.job is None or pod.attempt is None or pod.gone:
                continue
            if pod.live:
                live_by_job.setdefault((pod.namespace, pod.job), set()).add(pod.attempt)
                replicas_live.setdefault((pod.namespace, pod.job, str(pod.replica)), []).append(
                    pod.name
                )
            if not pod.deleting:
                groups.setdefault((pod.namespace, pod.job, pod.attempt), []).append(pod)
            job = by_uid.get(pod.owner or "")
            phase = ((job or {}).get("status") or {}).get("phase")
            orphan = pod.live and (job is None or phase not in ("Admitted", "Running"))
            if orphan:
                since = self._orphan_since.setdefault(pod.uid, now)
                if now - since > self.grace:
                    self._flag(
                        "orphan-pod",
                        f"{pod.namespace}/{pod.name}: live for {now - since:.0f} s while its "
                        f"job is {'gone' if job is None else phase}",
                        now,
                    )
            else:
                self._orphan_since.pop(pod.uid, None)
        for (ns, name), attempts in live_by_job.items():
            if len(attempts) > 1:
                self._flag("duplicate-pod", f"{ns}/{name}: live pods of attempts {attempts}", now)
        for (ns, name, replica), names in replicas_live.items():
            if len(names) > 1:
                self._flag("duplicate-pod", f"{ns}/{name} replica {replica}: {names}", now)
        spec_replicas = {
            (j["metadata"]["namespace"], j["metadata"]["name"]): int(j["spec"].get("replicas", 1))
            for j in jobs
        }
        partial_now = set()
        for key, members in groups.items():
            want = spec_replicas.get((key[0], key[1]))
            if want is None:
                continue
            complete = len(members) >= want and all(
                m.phase in ("Running", *FINISHED) for m in members
            )
            if complete or all(m.phase in FINISHED for m in members):
                continue
            partial_now.add(key)
            since = self._partial_since.setdefault(key, now)
            if now - since > self.gang_start_timeout + self.slack:
                self._flag(
                    "partial-gang",
                    f"{key[0]}/{key[1]} attempt {key[2]}: {len(members)} of {want} pods, "
                    f"not all running, for {now - since:.0f} s",
                    now,
                )
        for key in set(self._partial_since) - partial_now:
            del self._partial_since[key]

    def _check_finished(self, jobs: list[Any], pods: list[PodRecord], now: float) -> None:
        attempts: dict[tuple[str, str], int] = {}
        for pod in pods:
            if pod.job is not None and pod.attempt is not None:
                key = (pod.namespace, pod.job)
                attempts[key] = max(attempts.get(key, -1), pod.attempt)
        for job in jobs:
            uid = job["metadata"]["uid"]
            phase = (job.get("status") or {}).get("phase")
            key = (job["metadata"]["namespace"], job["metadata"]["name"])
            if uid in self._finished:
                was, attempt = self._finished[uid]
                if phase != was:
                    self._flag("re-admitted", f"{key[0]}/{key[1]}: {was} then {phase}", now)
                if attempts.get(key, -1) > attempt:
                    self._flag(
                        "re-admitted",
                        f"{key[0]}/{key[1]}: pods of attempt {attempts[key]} after it was {was}",
                        now,
                    )
            elif phase in FINISHED:
                self._finished[uid] = (phase, attempts.get(key, -1))

    def _check_metering_monotonic(self, quotas: Iterable[Any], now: float) -> None:
        for quota in quotas:
            uid = quota["metadata"]["uid"]
            for row in (quota.get("status") or {}).get("metering") or []:
                key = (quota["metadata"]["name"], row["acceleratorClass"])
                value = float(row["deviceSeconds"])
                before = self._metering.get(key)
                if before is not None and before[0] == uid and value < before[1]:
                    self._flag(
                        "metering-decrease",
                        f"{key[0]}/{key[1]}: {before[1]:g} then {value:g} device-seconds",
                        now,
                    )
                self._metering[key] = (uid, value)

    # --- the end ------------------------------------------------------------------------------
    def ground_truth(self, quotas: Iterable[Any]) -> dict[tuple[str, str], tuple[float, float]]:
        """(device-seconds, PFLOP-seconds) per quota × class from the gone pods' own times."""
        truth: dict[tuple[str, str], tuple[float, float]] = {}
        with self._lock:
            pods = list(self.pods.values())
        for quota in quotas:
            namespaces = set(quota["spec"].get("namespaces") or [])
            for pod in pods:
                if not pod.gone or pod.namespace not in namespaces or pod.klass is None:
                    continue
                seconds = device_seconds(pod, self._resource_of.get(pod.klass, ""))
                key = (quota["metadata"]["name"], pod.klass)
                old = truth.get(key, (0.0, 0.0))
                pflops = seconds * self._tflops_of.get(pod.klass, 0.0) / 1000
                truth[key] = (old[0] + seconds, old[1] + pflops)
        return truth

    def check_metering_exact(self, bills: int = 0) -> dict[tuple[str, str], float]:
        """Once no pod of the quotas is left: status.metering == ground truth, per class.

        Device-seconds must be equal exactly (whole seconds × whole devices); PFLOP-seconds may
        differ by the 0.0005 rounding of each of the ``bills`` additions (status keeps 3 decimals).
        Returns the error per quota × class (device-seconds)."""
        quotas = self._list("computequotas")["items"]
        if self.namespaces is not None:
            quotas = [q for q in quotas if set(q["spec"].get("namespaces") or []) & self.namespaces]
        truth = self.ground_truth(quotas)
        recorded: dict[tuple[str, str], tuple[float, float]] = {}
        for quota in quotas:
            for row in (quota.get("status") or {}).get("metering") or []:
                recorded[(quota["metadata"]["name"], row["acceleratorClass"])] = (
                    float(row["deviceSeconds"]),
                    float(row["pflopSeconds"]),
                )
        errors: dict[tuple[str, str], float] = {}
        now = time.time()
        for key in set(truth) | set(recorded):
            want = truth.get(key, (0.0, 0.0))
            got = recorded.get(key, (0.0, 0.0))
            error = got[0] - want[0]
            errors[key] = error
            self.figures.metering_device_seconds += got[0]
            if abs(error) > 1e-6:
                self._flag(
                    "metering-exact",
                    f"{key[0]}/{key[1]}: billed {got[0]:g} device-seconds, the pods' own times "
                    f"give {want[0]:g} (error {error:+g})",
                    now,
                )
            tolerance = 0.0005 * max(bills, 1) + 1e-6
            if abs(got[1] - want[1]) > max(tolerance, 1e-9 * want[1] * 10):
                self._flag(
                    "metering-exact",
                    f"{key[0]}/{key[1]}: billed {got[1]:g} PFLOP-seconds, the pods' own times "
                    f"give {want[1]:g}",
                    now,
                )
        largest = max((abs(e) for e in errors.values()), default=0.0)
        self.figures.metering_largest_error = max(self.figures.metering_largest_error, largest)
        return errors

    def check_final_states(self) -> list[str]:
        """Every job ends Admitted, Running, finished, or Queued with a reason."""
        jobs = self._list("trainingjobs")["items"]
        now = time.time()
        unsettled = []
        for job in jobs:
            if self.namespaces is not None and job["metadata"]["namespace"] not in self.namespaces:
                continue
            status = job.get("status") or {}
            phase, reason = status.get("phase"), status.get("reason")
            if phase in SETTLED or (phase == "Queued" and reason):
                continue
            name = f"{job['metadata']['namespace']}/{job['metadata']['name']}"
            unsettled.append(name)
            self._flag("final-state", f"{name}: phase {phase!r}, reason {reason!r}", now)
        return unsettled

    def report(self, item: str, **extra: Any) -> dict[str, Any]:
        by_invariant: dict[str, int] = {}
        for violation in self.violations:
            by_invariant[violation.invariant] = by_invariant.get(violation.invariant, 0) + 1
        return {
            "item": item,
            "samples": self.figures.samples,
            "sample_errors": self.figures.sample_errors,
            "pods_seen": self.figures.pods_seen,
            "jobs_seen": self.figures.jobs_seen,
            "watch_restarts": self.figures.watch_restarts,
            "metering_device_seconds": round(self.figures.metering_device_seconds, 3),
            "metering_largest_error": self.figures.metering_largest_error,
            "violations": len(self.violations),
            "violations_by_invariant": by_invariant,
            "violation_examples": [str(v) for v in self.violations[:10]],
            **extra,
        }
