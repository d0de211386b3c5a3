"""Job-level replay: arrivals, queueing, gangs, tenants with quotas, and departures over time.

Why: placement quality (``suanli.sim.replay``) says how densely a fixed stream of pods packs;
tenants feel the scheduler through how long their jobs wait and whether each gets its share.
This replays a stream of jobs through four schedulers on the same cluster and the same jobs, and
measures both.

The workload (``make_workload``): job shapes are the GPU pods of an Alibaba ``openb`` pod list
(CPU, memory, GPU count, GPU milli); 8-GPU pods become gangs of 1, 2 or 4 replicas (probability
0.5 / 0.3 / 0.2). Inter-arrival gaps are drawn from the same list's ``creation_time`` gaps
(clipped at their 95th percentile: the trace has idle days between bursts) and scaled so the
offered load (GPU-seconds asked per second over capacity) equals ``load``. Run times are drawn
from the Philly run-time distribution, clipped to [60 s, ``max_runtime``].
Trace pods ask for more CPU per GPU than a node has (11 cores for a 0.3-GPU share is common), so
CPU, not GPUs, would be what jobs queue for; with ``proportional`` (the default) each replica's
CPU and memory are capped at its GPUs' proportional part of a node.
Tenants submit ``tenant_shares`` of the jobs; every tenant has the same nominal quota (capacity /
tenants), all in one cohort, so a busy tenant may borrow what the others leave idle; 20 % of
the jobs have a higher priority.

The schedulers (each runs a pass whenever a job arrives or finishes, at most once per
``cycle_seconds``):

* ``fifo``: one queue in arrival order; the head waits until it fits (no overtaking), first-fit
  placement (lowest-numbered node that fits).
* ``best_fit``: every queued job in arrival order that fits is started (backfilling), placed by
  the placement core's ``best_fit`` policy; no quotas.
* ``kueue``: quota first (the quota book's cohort rules, which are Kueue's), then first-fit
  placement; jobs ordered by priority, then arrival; no preemption.
* ``suanli``: ``suanli.scheduling.run_cycle`` (quota book, fair-share order, bounded overtaking,
  in-quota priority preemption and cohort reclaim) on the placement core's
  ``fragmentation_aware`` policy with the mix learnt from recent placements, as in the operator.
  An evicted job goes back to the queue and starts again from scratch.

Metrics: queue wait (first start − arrival) mean and p95; accelerator utilisation (allocated GPU
milli / capacity, time-averaged over the arrival window); fragmentation (FGD's measure of the free
GPU milli that the job mix could not use, :mod:`suanli.sim.fgd`, over free milli) over time; and
Jain's index across tenants of *served / entitled* GPU-time, where a tenant's entitlement at each
instant is its weighted max-min fair share (water-filling by quota) of the capacity given what it
has running or queued, counted only while the cluster is contended (demand above capacity).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from suanli.placement import _core
from suanli.placement.model import WHOLE, DeviceClass, Placement, Policy, ReplicaAssignment
from suanli.scheduling import (
    Admission,
    CycleConfig,
    JobOption,
    JobRequest,
    Preempt,
    QuotaSpec,
    ReclaimPolicy,
    ResourceQuota,
    WithinQuotaPolicy,
    gang_for,
    run_cycle,
)
from suanli.scheduling.quota import QuotaBook
from suanli.sim.fgd import FragTable, TypicalPod, typical_pods
from suanli.sim.trace import TraceNode, TracePod, device_classes

SCHEDULERS = ("fifo", "best_fit", "kueue", "suanli")
MIB = 1 << 20
HIGH_PRIORITY = 100


@dataclass(frozen=True, slots=True)
class SimJob:
    name: str
    tenant: str
    arrival: float
    runtime: float
    replicas: int
    gpus: int
    milli: int
    cpu_milli: int
    memory_mib: int
    priority: int

    @property
    def gpu_milli(self) -> int:
        """GPU milli the whole gang holds while it runs."""
        return self.replicas * self.gpus * self.milli


@dataclass(frozen=True, slots=True)
class Workload:
    nodes: tuple[TraceNode, ...]
    jobs: tuple[SimJob, ...]
    tenants: tuple[str, ...]
    typical: tuple[TypicalPod, ...]

    @property
    def capacity_milli(self) -> int:
        return sum(node.gpus for node in self.nodes) * WHOLE


def read_runtimes(path: Path) -> list[float]:
    values: list[float] = []
    with path.open(encoding="utf-8") as handle:
        header = handle.readline().strip()
        if header != "runtime":
            raise ValueError(f"{path}: expected a 'runtime' column, got {header!r}")
        for line, text in enumerate(handle, start=2):
            try:
                values.append(float(text))
            except ValueError:
                raise ValueError(f"{path}:{line}: runtime must be a number, got {text!r}") from None
    if not values:
        raise ValueError(f"{path}: no run times")
    return values


def arrival_gaps(pods_csv: Path) -> list[float]:
    """Gaps between consecutive ``creation_time`` values of a pod list (seconds, sorted)."""
    import csv

    with pods_csv.open(newline="", encoding="utf-8") as handle:
        times = sorted(float(row["creation_time"]) for row in csv.DictReader(handle))
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if not gaps or sum(gaps) <= 0:
        raise ValueError(f"{pods_csv}: creation_time gives no arrival process")
    return gaps


def make_workload(
    nodes: Sequence[TraceNode],
    pods: Sequence[TracePod],
    gaps: Sequence[float],
    runtimes: Sequence[float],
    *,
    jobs: int,
    seed: int,
    load: float = 1.2,
    tenant_shares: Sequence[float] = (0.4, 0.3, 0.2, 0.1),
    max_runtime: float = 86_400.0,
    proportional: bool = True,
) -> Workload:
    """A seeded job stream (see the module docstring); shapes that fit no node are dropped."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if load <= 0:
        raise ValueError(f"load must be > 0, got {load}")
    rng = random.Random(seed)
    max_gpus = max(node.gpus for node in nodes)
    shapes = [
        p
        for p in pods
        if p.gpus > 0 and not p.gpu_spec
        and any(
            p.gpus <= n.gpus and p.cpu_milli <= n.cpu_milli and p.memory_mib <= n.memory_mib
            for n in nodes
        )
    ]  # fmt: skip
    if not shapes:
        raise ValueError("the pod list has no GPU pod that fits these nodes")
    if proportional:
        shapes = [proportional_shape(pod, nodes) for pod in shapes]
    tenants = tuple(f"tenant-{i}" for i in range(len(tenant_shares)))
    drawn: list[tuple[TracePod, int, float, str, int]] = []
    for _ in range(jobs):
        pod = rng.choice(shapes)
        replicas = rng.choices((1, 2, 4), (0.5, 0.3, 0.2))[0] if pod.gpus == max_gpus else 1
        runtime = min(max(rng.choice(runtimes), 60.0), max_runtime)
        tenant = rng.choices(tenants, tenant_shares)[0]
        priority = HIGH_PRIORITY if rng.random() < 0.2 else 0
        drawn.append((pod, replicas, runtime, tenant, priority))
    asked = sum(pod.gpu_demand_milli * replicas * runtime for pod, replicas, runtime, _, _ in drawn)
    capacity = sum(node.gpus for node in nodes) * WHOLE
    mean_gap = asked / jobs / (load * capacity)
    # The trace's gaps are heavy-tailed (it spans 149 days, with idle days between bursts);
    # clipped at their 95th percentile they keep the burstiness without idling the cluster.
    ceiling = sorted(gaps)[int(0.95 * (len(gaps) - 1))]
    raw = [min(rng.choice(gaps), ceiling) for _ in range(jobs)]
    scale = mean_gap / (sum(raw) / len(raw)) if sum(raw) > 0 else 0.0
    clock = 0.0
    out: list[SimJob] = []
    for index, ((pod, replicas, runtime, tenant, priority), gap) in enumerate(
        zip(drawn, raw, strict=True)
    ):
        out.append(
            SimJob(
                f"job-{index:05d}", tenant, round(clock, 3), runtime, replicas, pod.gpus,
                pod.gpu_milli, pod.cpu_milli, pod.memory_mib, priority,
            )
        )  # fmt: skip
        clock += gap * scale
    return Workload(tuple(nodes), tuple(out), tenants, typical_pods(shapes))


def proportional_shape(pod: TracePod, nodes: Sequence[TraceNode]) -> TracePod:
    """The pod with CPU and memory capped at its GPUs' proportional part of a node (at least one
    core and 1 GiB), so that GPUs, not CPU, are what jobs queue for."""
    fitting = [n for n in nodes if n.gpus >= pod.gpus]
    part = pod.gpus * pod.gpu_milli / WHOLE
    cpu = min(math.ceil(n.cpu_milli * part / n.gpus) for n in fitting)
    memory = min(math.ceil(n.memory_mib * part / n.gpus) for n in fitting)
    return replace(
        pod,
        cpu_milli=min(pod.cpu_milli, max(cpu, 1000)),
        memory_mib=min(pod.memory_mib, max(memory, 1024)),
    )


# --- the cluster every scheduler places into (a mirror, for the metrics) ------------------------


class Mirror:
    """Free GPU milli per device and CPU / memory per node, from the placements made."""

    def __init__(self, nodes: Sequence[TraceNode]) -> None:
        self.index = {node.name: i for i, node in enumerate(nodes)}
        width = max(node.gpus for node in nodes)
        self.gpu = np.zeros((len(nodes), width), dtype=np.int64)
        for i, node in enumerate(nodes):
            self.gpu[i, : node.gpus] = WHOLE
        self.cpu = np.array([node.cpu_milli for node in nodes], dtype=np.int64)
        self.mem = np.array([node.memory_mib for node in nodes], dtype=np.int64)
        models = sorted({node.model for node in nodes})
        self.models = models
        self.model = np.array([models.index(node.model) for node in nodes], dtype=np.int64)

    def apply(self, job: SimJob, replicas: Sequence[ReplicaAssignment], sign: int) -> None:
        """``sign`` -1 when the job starts (takes), +1 when it ends (gives back)."""
        for replica in replicas:
            row = self.index[replica.node]
            self.cpu[row] += sign * job.cpu_milli
            self.mem[row] += sign * job.memory_mib
            for device in replica.device_indices:
                self.gpu[row, device] += sign * replica.milli
                if not 0 <= self.gpu[row, device] <= WHOLE:
                    raise AssertionError(f"{replica.node} device {device} over-allocated")

    def fragmented_share(self, table: FragTable) -> float:
        free = float(self.gpu.sum())
        if free <= 0:
            return 0.0
        return float(table.fragmentation(self.cpu, self.gpu, self.model).sum()) / free


class FirstFit:
    """Lowest-numbered node that fits; shares on the lowest-numbered GPU with room, whole GPUs
    on the lowest-numbered free ones; a gang's replicas one after another, all or nothing."""

    def __init__(self, nodes: Sequence[TraceNode]) -> None:
        self.names = [node.name for node in nodes]
        self.cpu = [node.cpu_milli for node in nodes]
        self.mem = [node.memory_mib for node in nodes]
        self.gpu = [[WHOLE] * node.gpus for node in nodes]

    def place(self, job: SimJob) -> tuple[ReplicaAssignment, ...] | None:
        taken: list[tuple[int, tuple[int, ...]]] = []
        for _ in range(job.replicas):
            found = self._first(job)
            if found is None:
                for row, devices in taken:
                    self._apply(row, job, devices, +1)
                return None
            self._apply(found[0], job, found[1], -1)
            taken.append(found)
        return tuple(ReplicaAssignment(self.names[r], d, job.milli) for r, d in taken)

    def release(self, job: SimJob, replicas: Sequence[ReplicaAssignment]) -> None:
        for replica in replicas:
            self._apply(self.names.index(replica.node), job, replica.device_indices, +1)

    def _first(self, job: SimJob) -> tuple[int, tuple[int, ...]] | None:
        for row, free in enumerate(self.gpu):
            if self.cpu[row] < job.cpu_milli or self.mem[row] < job.memory_mib:
                continue
            if job.milli < WHOLE:
                fitting = [i for i, f in enumerate(free) if f >= job.milli]
                if fitting:
                    return row, (fitting[0],)
                continue
            whole = [i for i, f in enumerate(free) if f == WHOLE]
            if len(whole) >= job.gpus:
                return row, tuple(whole[: job.gpus])
        return None

    def _apply(self, row: int, job: SimJob, devices: Sequence[int], sign: int) -> None:
        self.cpu[row] += sign * job.cpu_milli
        self.mem[row] += sign * job.memory_mib
        for device in devices:
            self.gpu[row][device] += sign * job.milli


# --- the replay ----------------------------------------------------------------------------------


@dataclass(slots=True)
class JobRecord:
    job: SimJob
    first_start: float | None = None
    finish: float | None = None
    starts: int = 0
    preempted: int = 0


@dataclass(slots=True)
class ReplayResult:
    scheduler: str
    records: dict[str, JobRecord]
    times: list[float] = field(default_factory=list)
    utilisation: list[float] = field(default_factory=list)
    fragmentation: list[float] = field(default_factory=list)
    served: dict[str, float] = field(default_factory=dict)
    entitled: dict[str, float] = field(default_factory=dict)
    arrival_window: tuple[float, float] = (0.0, 0.0)

    def jain(self) -> float:
        """Jain's index of served / entitled GPU-time across tenants (NaN: never contended)."""
        ratios = [self.served[t] / self.entitled[t] for t in self.entitled if self.entitled[t] > 0]
        return jain(ratios) if ratios else math.nan

    def waits(self) -> list[float]:
        return [
            r.first_start - r.job.arrival
            for r in self.records.values()
            if r.first_start is not None
        ]

    def summary(self) -> dict[str, float]:
        waits = sorted(self.waits())
        return {
            "jobs": float(len(self.records)),
            "mean_wait_s": sum(waits) / len(waits) if waits else 0.0,
            "p95_wait_s": percentile(waits, 95),
            "utilisation_pct": 100.0
            * time_average(self.times, self.utilisation, self.arrival_window),
            "fragmentation_pct": 100.0
            * time_average(self.times, self.fragmentation, self.arrival_window),
            "jain": self.jain(),
            "preemptions": float(sum(r.preempted for r in self.records.values())),
        }


def format_summaries(summaries: dict[str, dict[str, float]]) -> str:
    """Markdown table of :meth:`ReplayResult.summary` per scheduler."""
    lines = [
        "| scheduler | mean wait (min) | p95 wait (min) | GPU utilisation (%) | "
        "fragmented free GPU (%) | Jain | preemptions |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, s in summaries.items():
        lines.append(
            f"| {name} | {s['mean_wait_s'] / 60:.1f} | {s['p95_wait_s'] / 60:.1f} | "
            f"{s['utilisation_pct']:.1f} | {s['fragmentation_pct']:.1f} | {s['jain']:.3f} | "
            f"{s['preemptions']:.0f} |"
        )
    return "\n".join(lines)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of ascending values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return float(sorted_values[rank - 1])


def jain(values: Sequence[float]) -> float:
    """Jain's fairness index (Σx)² / (n Σx²): 1 when all equal, 1/n when one gets everything."""
    if not values:
        raise ValueError("jain: no values")
    if any(v < 0 for v in values):
        raise ValueError(f"jain: values must be >= 0, got {list(values)}")
    squares = sum(v * v for v in values)
    if squares == 0:
        return 1.0
    return sum(values) ** 2 / (len(values) * squares)


def water_fill(
    capacity: float, demands: dict[str, float], weights: dict[str, float]
) -> dict[str, float]:
    """Weighted max-min fair shares of ``capacity`` for ``demands``."""
    share = {t: 0.0 for t in demands}
    active = {t for t, d in demands.items() if d > 0}
    left = capacity
    while active and left > 1e-9:
        total_weight = sum(weights[t] for t in active)
        step = min((demands[t] - share[t]) / weights[t] for t in active)
        step = min(step, left / total_weight)
        for t in list(active):
            share[t] += step * weights[t]
            left -= step * weights[t]
            if share[t] >= demands[t] - 1e-9:
                active.discard(t)
    return share


def time_average(
    times: Sequence[float], values: Sequence[float], window: tuple[float, float]
) -> float:
    """Time average over ``window`` of a step function (value[i] holds from times[i])."""
    start, end = window
    if end <= start or not times:
        return values[-1] if values else 0.0
    total = 0.0
    for i, (t, v) in enumerate(zip(times, values, strict=True)):
        t_next = times[i + 1] if i + 1 < len(times) else end
        low, high = max(t, start), min(t_next, end)
        if high > low:
            total += v * (high - low)
    return total / (end - start)


class _Scheduler:
    """What a scheduler does each pass: start jobs (and, for suanli, evict some)."""

    def __init__(
        self, name: str, workload: Workload, classes: list[DeviceClass], max_overtakes: int
    ) -> None:
        self.name = name
        self.config = CycleConfig(max_overtakes=max_overtakes)
        self.workload = workload
        self.classes = classes
        self.placements: dict[str, tuple[ReplicaAssignment, ...]] = {}
        self.admissions: dict[str, Admission] = {}
        self.overtaken: dict[str, int] = {}
        self.first_fit = FirstFit(workload.nodes) if name in ("fifo", "kueue") else None
        policy = Policy.BEST_FIT if name == "best_fit" else Policy.FRAGMENTATION_AWARE
        self.state = _core.ClusterState(classes, policy=policy, track_recent_mix=True)
        for node in workload.nodes:
            self.state.add_node(
                node.name, node.model, node.cpu_milli, node.memory_mib, 256, devices=node.gpus
            )
        per_tenant = workload.capacity_milli // WHOLE // len(workload.tenants)
        self.quotas = [
            QuotaSpec(
                name=tenant,
                namespaces=frozenset({tenant}),
                devices={c.name: ResourceQuota(per_tenant) for c in classes},
                cohort="all",
                within_quota=WithinQuotaPolicy.LOWER_PRIORITY,
                reclaim_within_cohort=ReclaimPolicy.ANY,
            )
            for tenant in workload.tenants
        ]
        self.book = QuotaBook(self.quotas, classes) if name == "kueue" else None
        self.requests: dict[str, JobRequest] = {}

    def request(self, job: SimJob) -> JobRequest:
        if job.name not in self.requests:
            option = JobOption(
                self.classes[0].name, job.gpus, job.replicas, job.cpu_milli,
                job.memory_mib * MIB, job.milli,
            )  # fmt: skip
            self.requests[job.name] = JobRequest(
                job.tenant, job.name, job.priority, job.arrival, (option,)
            )
        return self.requests[job.name]

    def schedule(
        self, pending: list[SimJob]
    ) -> tuple[list[tuple[SimJob, tuple[ReplicaAssignment, ...]]], list[SimJob]]:
        """Jobs to start (with where) and running jobs to evict."""
        if self.name == "suanli":
            return self._suanli(pending)
        started: list[tuple[SimJob, tuple[ReplicaAssignment, ...]]] = []
        order = pending
        if self.name == "kueue":
            order = sorted(pending, key=lambda j: (-j.priority, j.arrival, j.name))
        for job in order:
            if self.book is not None:
                demand = self.book.demand(self.request(job).options[0])
                if not self.book.fit(job.tenant, demand).fits:
                    continue
            placed = self._place(job)
            if placed is None:
                if self.name == "fifo":
                    break
                continue
            if self.book is not None:
                self.book.charge(
                    job.name, job.tenant, self.book.demand(self.request(job).options[0])
                )
            started.append((job, placed))
        return started, []

    def _place(self, job: SimJob) -> tuple[ReplicaAssignment, ...] | None:
        if self.first_fit is not None:
            return self.first_fit.place(job)
        request = self.request(job)
        outcome = self.state.place(gang_for(request, request.options[0], job.name))
        return outcome.replicas if isinstance(outcome, Placement) else None

    def finish(self, job: SimJob) -> None:
        replicas = self.placements.pop(job.name)
        self.admissions.pop(job.name, None)
        if self.first_fit is not None:
            self.first_fit.release(job, replicas)
        else:
            self.state.release_gang(job.name if self.name != "suanli" else self.request(job).key)
        if self.book is not None:
            self.book.uncharge(job.name)

    def _suanli(
        self, pending: list[SimJob]
    ) -> tuple[list[tuple[SimJob, tuple[ReplicaAssignment, ...]]], list[SimJob]]:
        by_key = {self.request(job).key: job for job in pending}
        result = run_cycle(
            [self.request(job) for job in pending],
            list(self.admissions.values()),
            self.quotas,
            self.classes,
            self.state,
            overtaken=self.overtaken,
            config=self.config,
        )
        self.overtaken = dict(result.overtaken)
        started = []
        for admit in result.admitted:
            job = by_key[admit.job.key]
            self.admissions[job.name] = admit.admission
            started.append((job, admit.placement.replicas))
        evicted: list[SimJob] = []
        seen: set[str] = set()
        for decision in result.decisions:
            if not isinstance(decision, Preempt):
                continue
            for victim in decision.victims:
                name = victim.admission.job.name
                if name not in seen and name in self.placements:
                    seen.add(name)
                    evicted.append(self._job(name))
        return started, evicted

    def _job(self, name: str) -> SimJob:
        return self.workload.jobs[int(name.removeprefix("job-"))]


def replay_jobs(
    workload: Workload,
    scheduler: str,
    *,
    cycle_seconds: float = 30.0,
    max_overtakes: int = 8,
) -> ReplayResult:
    """Replay the workload through one scheduler until every job has finished."""
    if scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {scheduler!r}")
    classes = device_classes(list(workload.nodes))
    if len(classes) != 1:
        raise ValueError("the job replay models one device class; give nodes of one GPU model")
    sched = _Scheduler(scheduler, workload, classes, max_overtakes)
    mirror = Mirror(workload.nodes)
    table = FragTable(workload.typical, mirror.models)
    records = {job.name: JobRecord(job) for job in workload.jobs}
    result = ReplayResult(scheduler, records)
    jobs = sorted(workload.jobs, key=lambda j: (j.arrival, j.name))
    arrivals = [job.arrival for job in jobs]
    result.arrival_window = (arrivals[0], arrivals[-1])
    weights = {t: 1.0 for t in workload.tenants}
    capacity = float(workload.capacity_milli)
    served = {t: 0.0 for t in workload.tenants}
    entitled = {t: 0.0 for t in workload.tenants}
    running: dict[str, tuple[float, int]] = {}  # name -> (end, generation)
    finishing: list[tuple[float, str, int]] = []
    generation = 0
    pending: list[SimJob] = []
    next_arrival = 0
    now = arrivals[0]
    last_sample: tuple[float, dict[str, float], dict[str, float]] | None = None
    while next_arrival < len(jobs) or pending or running:
        # Departures and arrivals up to now.
        while finishing and finishing[0][0] <= now:
            end, name, gen = heapq.heappop(finishing)
            if name in running and running[name][1] == gen:
                del running[name]
                job = sched._job(name)
                mirror.apply(job, sched.placements[name], +1)
                sched.finish(job)
                records[name].finish = end
        while next_arrival < len(jobs) and jobs[next_arrival].arrival <= now:
            pending.append(jobs[next_arrival])
            next_arrival += 1
        started, evicted = sched.schedule(pending)
        for job in evicted:
            mirror.apply(job, sched.placements[job.name], +1)
            sched.finish(job)
            del running[job.name]
            records[job.name].preempted += 1
            bisect.insort(pending, job, key=lambda j: (j.arrival, j.name))
        started_names = set()
        for job, replicas in started:
            sched.placements[job.name] = replicas
            mirror.apply(job, replicas, -1)
            generation += 1
            running[job.name] = (now + job.runtime, generation)
            heapq.heappush(finishing, (now + job.runtime, job.name, generation))
            record = records[job.name]
            record.starts += 1
            if record.first_start is None:
                record.first_start = now
            started_names.add(job.name)
        if started_names:
            pending = [job for job in pending if job.name not in started_names]
        # Sample the state (it holds until the next event).
        used = {t: 0.0 for t in workload.tenants}
        asked = {t: 0.0 for t in workload.tenants}
        for name in running:
            job = sched._job(name)
            used[job.tenant] += job.gpu_milli
        for job in pending:
            asked[job.tenant] += job.gpu_milli
        demand = {t: used[t] + asked[t] for t in workload.tenants}
        if last_sample is not None:
            t0, used0, fair0 = last_sample
            for t in workload.tenants:
                served[t] += used0[t] * (now - t0)
                entitled[t] += fair0[t] * (now - t0)
        if sum(demand.values()) > capacity:  # contended: count it towards fairness
            last_sample = (now, used, water_fill(capacity, demand, weights))
        else:
            last_sample = (now, dict.fromkeys(used, 0.0), dict.fromkeys(used, 0.0))
        result.times.append(now)
        result.utilisation.append(sum(used.values()) / capacity)
        result.fragmentation.append(mirror.fragmented_share(table))
        # Next event.
        candidates = []
        if finishing:
            candidates.append(finishing[0][0])
        if next_arrival < len(jobs):
            candidates.append(jobs[next_arrival].arrival)
        if not candidates:
            if pending:
                raise AssertionError(
                    f"{scheduler}: {len(pending)} jobs can never start (e.g. {pending[0].name})"
                )
            break
        now = max(min(candidates), now + cycle_seconds)
    result.served, result.entitled = served, entitled
    return result
