"""Why a job waits, in numbers: quota, free and borrowable devices, closest nodes, what unblocks it.

Everything is read from a :class:`~suanli.cli.plan.Plan`: the quota book and the placement core
after the recomputed cycle, so "free" means what is left once the jobs ahead of this one in the
queue have been placed. :func:`what_unblocks` releases running jobs one by one (soonest expected
end first) in the plan's private state and asks the placement core again; it changes the plan,
so it runs last.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from suanli.cli.plan import Plan, option_problems
from suanli.controller.inventory import release_job
from suanli.placement.model import DeviceClass, Failure
from suanli.scheduling.cycle import Admit, Wait
from suanli.scheduling.gangs import gang_for
from suanli.scheduling.model import WHOLE_DEVICE_MILLI, JobOption, JobRequest
from suanli.scheduling.quota import device_resource

MIB = 1 << 20
CLOSEST_NODES = 3


@dataclass(frozen=True)
class QuotaView:
    """One option's demand against its quota, in devices."""

    quota: str
    device_class: str
    needed: float
    nominal: float
    used: float
    free_in_quota: float
    cohort_can_lend: float
    fits: bool
    borrowing: float
    message: str


@dataclass(frozen=True)
class NodeView:
    """How close one node comes to hosting a replica of an option."""

    name: str
    free_devices: int
    replicas_it_can_host: int
    lacks: tuple[str, ...]


@dataclass(frozen=True)
class OptionView:
    index: int
    device_class: str
    replicas: int
    devices_per_replica: int
    problem: str | None
    quota: QuotaView | None
    class_free_devices: float
    class_total_devices: int
    nodes: tuple[NodeView, ...]


@dataclass(frozen=True)
class Unblock:
    """Running jobs whose end would let an option run, and when the first of them ends."""

    option_index: int
    jobs: tuple[str, ...]
    devices: float
    device_class: str
    next_end_seconds: float | None
    last_end_seconds: float | None
    estimated: bool

    def sentence(self) -> str:
        text = (
            f"fits if {_count(self.devices)} × {self.device_class} free up ({', '.join(self.jobs)})"
        )
        if self.next_end_seconds is not None:
            text += f"; the next finishes in ~{duration(self.next_end_seconds)}"
        if self.estimated and self.last_end_seconds is not None:
            text += f", all of them within ~{duration(self.last_end_seconds)}"
        elif not self.estimated:
            text += " (not all of them have a max run time: no estimate for the rest)"
        return text


@dataclass
class Explanation:
    job: str
    phase: str
    quota: str | None
    verdict: str
    reason: str
    message: str
    position: int | None
    options: list[OptionView] = field(default_factory=list)
    unblock: Unblock | None = None
    would_preempt: list[str] = field(default_factory=list)
    recorded_reason: str | None = None
    recorded_message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def duration(seconds: float) -> str:
    """kubectl-style ages: 45s, 14m, 3h12m, 2d5h."""
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 600:
        return f"{seconds // 60}m{seconds % 60}s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def _count(devices: float) -> str:
    return f"{devices:g}"


def _devices(milli: int) -> float:
    return milli / WHOLE_DEVICE_MILLI


def free_groups(device_class: DeviceClass, device_milli: tuple[int, ...]) -> list[int]:
    """Whole free devices in each interconnect group of a node."""
    size = device_class.group_size
    return [
        sum(1 for milli in device_milli[start : start + size] if milli >= WHOLE_DEVICE_MILLI)
        for start in range(0, len(device_milli), size)
    ]


def replicas_on_node(device_class: DeviceClass, groups: list[int], per_replica: int) -> int:
    """Replicas of ``per_replica`` devices the free groups can hold under the class's rules: up
    to a group inside one group, above it whole groups."""
    if per_replica <= device_class.group_size:
        return sum(free // per_replica for free in groups)
    whole = sum(1 for free in groups if free == device_class.group_size)
    return whole // (per_replica // device_class.group_size)


def node_views(plan: Plan, option: JobOption) -> tuple[NodeView, ...]:
    """Nodes of the option's class, closest first, each with what it lacks for one replica."""
    cls = plan.classes[option.device_class]
    state = plan.inventory.state
    views = []
    for name, record in sorted(plan.inventory.nodes.items()):
        if record.device_class != option.device_class:
            continue
        cpu, memory_mib, pods, device_milli = state.node_free(name)
        groups = free_groups(cls, device_milli)
        by_devices = replicas_on_node(cls, groups, option.devices_per_replica)
        lacks = []
        free = sum(groups)
        if not record.schedulable:
            lacks.append("not schedulable (cordoned, not ready or tainted)")
        if by_devices == 0:
            if free >= option.devices_per_replica:
                lacks.append(
                    f"{free} devices free but not {option.devices_per_replica} in a legal "
                    f"block (free per group of {cls.group_size}: {groups})"
                )
            else:
                lacks.append(f"needs {option.devices_per_replica} free devices, has {free}")
        by_cpu = cpu // option.cpu_milli_per_replica if option.cpu_milli_per_replica else pods
        need_mib = -(-option.memory_bytes_per_replica // MIB)
        by_memory = memory_mib // need_mib if need_mib else pods
        if by_cpu == 0:
            lacks.append(
                f"needs {option.cpu_milli_per_replica / 1000:g} CPU, has {cpu / 1000:g} free"
            )
        if by_memory == 0:
            lacks.append(f"needs {need_mib / 1024:g} GiB memory, has {memory_mib / 1024:g} free")
        if pods == 0:
            lacks.append("no pod slots left")
        hosts = 0 if not record.schedulable else min(by_devices, by_cpu, by_memory, pods)
        views.append(NodeView(name, free, min(hosts, option.replicas), tuple(lacks)))
    views.sort(key=lambda v: (-v.replicas_it_can_host, -v.free_devices, v.name))
    return tuple(views[:CLOSEST_NODES])


def quota_view(plan: Plan, quota: str, option: JobOption) -> QuotaView:
    book = plan.result.book
    demand = book.demand(option)
    resource = device_resource(option.device_class)
    verdict = book.fit(quota, demand)
    short = next((s for s in verdict.shortfalls if s.resource == resource), None)
    room = book.headroom(quota, resource) or 0
    nominal = book.nominal(quota, resource)
    used = book.used(quota, resource)
    in_quota = short.quota_free if short else min(room, max(0, nominal - used))
    lend = short.cohort_can_lend if short else max(0, room - in_quota)
    return QuotaView(
        quota=quota,
        device_class=option.device_class,
        needed=_devices(demand.get(resource, 0)),
        nominal=_devices(nominal),
        used=_devices(used),
        free_in_quota=_devices(in_quota),
        cohort_can_lend=_devices(lend),
        fits=verdict.fits,
        borrowing=_devices(verdict.borrowing.get(resource, 0)),
        message=verdict.message(),
    )


def option_views(plan: Plan, request: JobRequest, quota: str | None) -> list[OptionView]:
    views = []
    classes = plan.classes
    entry = plan.jobs.get(request.key)
    problems = {}
    if entry is not None and entry.job is not None:
        problems = {p.index: p.message for p in option_problems(entry.job, classes)}
    for index, option in enumerate(request.options):
        known = option.device_class in classes
        capacity = plan.inventory.state.capacity_summary().get(option.device_class)
        views.append(
            OptionView(
                index=index,
                device_class=option.device_class,
                replicas=option.replicas,
                devices_per_replica=option.devices_per_replica,
                problem=problems.get(index),
                quota=quota_view(plan, quota, option) if quota and known else None,
                class_free_devices=_devices(capacity.free_milli) if capacity else 0.0,
                class_total_devices=capacity.total_devices if capacity else 0,
                nodes=node_views(plan, option) if known and index not in problems else (),
            )
        )
    return views


def explain(
    plan: Plan,
    key: str,
    fresh: Callable[[bool], Plan] | None = None,
    now: float | None = None,
) -> Explanation:
    """The explanation of one job (pending, admitted or finished) from the plan. With ``fresh``
    (a builder of new plans from the same snapshot; its argument turns preemption on) a waiting
    job also gets :func:`what_unblocks` and the evictions the operator would start for it."""
    entry = plan.jobs[key]
    status = entry.status
    recorded = (status.get("reason"), status.get("message"))
    base: dict[str, Any] = {
        "job": key,
        "phase": entry.phase,
        "recorded_reason": recorded[0],
        "recorded_message": recorded[1],
    }
    if entry.request is None or entry.problem is not None:
        serving = plan.quota_of(key.split("/", 1)[0])
        return Explanation(
            **base,
            quota=serving.name if serving else None,
            verdict="invalid",
            reason=str(status.get("reason") or "InvalidSpec"),
            message=entry.problem or "",
            position=None,
        )
    quota_spec = plan.quota_of(entry.request.namespace)
    quota = quota_spec.name if quota_spec else None
    decision = plan.decision(key)
    if decision is None:
        nodes = sorted({str(r.get("node")) for r in status.get("placement") or []})
        if entry.job is not None and entry.job.spec.suspend:
            verdict, message = "suspended", "spec.suspend is true: the job holds nothing"
        elif entry.phase in ("Admitted", "Running"):
            verdict = "running"
            message = f"holds its devices on {', '.join(nodes)}" if nodes else str(recorded[1])
        else:
            verdict, message = "finished", str(recorded[1] or "")
        return Explanation(
            **base,
            quota=quota,
            verdict=verdict,
            reason=str(recorded[0] or entry.phase),
            message=message,
            position=None,
        )
    options = option_views(plan, entry.request, quota)
    if isinstance(decision, Admit):
        nodes = sorted({r.node for r in decision.placement.replicas})
        option = entry.request.options[decision.option_index]
        message = (
            f"would be admitted now as {len(decision.placement.replicas)} × "
            f"{option.devices_per_replica} {option.device_class} on {', '.join(nodes)}"
        )
        if decision.borrowed:
            message += " (borrowing from the cohort)"
        return Explanation(
            **base,
            quota=quota,
            verdict="admissible",
            reason="Admissible",
            message=message,
            position=None,
            options=options,
        )
    assert isinstance(decision, Wait)
    explanation = Explanation(
        **base,
        quota=quota,
        verdict="waiting",
        reason=decision.reason.value,
        message=decision.message,
        position=decision.position or None,
        options=options,
    )
    if quota is not None and fresh is not None:
        preempting = fresh(True)
        explanation.would_preempt = [
            victim.admission.job.key
            for decision in preempting.result.preemptions
            if decision.job.key == key
            for victim in decision.victims
        ]
        explanation.unblock = what_unblocks(lambda: fresh(False), entry.request, quota, now)
    return explanation


def what_unblocks(
    fresh: Callable[[], Plan], request: JobRequest, quota: str, now: float | None = None
) -> Unblock | None:
    """Release running jobs, soonest expected end first, until an option of ``request`` fits
    both its quota and the placement core. Each option is tried on a plan of its own from
    ``fresh``, since releasing changes a plan's state and book. Prefers the option whose
    unblocking jobs all have an estimated end, then the one needing the fewest jobs to end."""
    now = time.time() if now is None else now
    best: Unblock | None = None
    for index, option in enumerate(request.options):
        plan = fresh()
        if option.device_class not in plan.classes:
            continue
        book = plan.result.book
        state = plan.inventory.state
        running = []
        for admission in [*plan.admitted, *(a.admission for a in plan.result.admitted)]:
            placement = admission.placement
            if placement.device_class != option.device_class:
                continue
            entry = plan.jobs.get(admission.job.key)
            end = entry.expected_end if entry is not None else None
            devices = len(placement.replicas) * admission.option.devices_per_replica
            running.append((end if end is not None else float("inf"), admission.job.key, devices))
        running.sort()
        trial_book = book.copy()
        released: list[tuple[float, str, int]] = []
        for item in running:
            end, key, devices = item
            if trial_book.is_charged(key):
                trial_book.uncharge(key)
            _release(plan, key)
            released.append(item)
            if not trial_book.fit(quota, trial_book.demand(option)).fits:
                continue
            outcome = state.place(gang_for(request, option, gang_id=f"why:{request.key}"))
            if isinstance(outcome, Failure):
                continue
            state.release_gang(outcome.gang_id)
            ends = [e for e, _, _ in released]
            known = [e - now for e in ends if e != float("inf")]
            candidate = Unblock(
                option_index=index,
                jobs=tuple(k for _, k, _ in released),
                devices=float(sum(d for _, _, d in released)),
                device_class=option.device_class,
                next_end_seconds=max(0.0, min(known)) if known else None,
                last_end_seconds=max(0.0, *known) if known else None,
                estimated=len(known) == len(ends),
            )
            if best is None or (candidate.estimated, -len(candidate.jobs)) > (
                best.estimated,
                -len(best.jobs),
            ):
                best = candidate
            break
    return best


def _release(plan: Plan, key: str) -> None:
    """Take job ``key`` out of the plan's placement state, recorded or assumed this cycle."""
    signature = plan.inventory.admissions.get(key)
    if signature is not None:
        release_job(plan.inventory, key, signature)
        return
    if plan.inventory.state.gang_pods(key):
        plan.inventory.state.release_gang(key)
