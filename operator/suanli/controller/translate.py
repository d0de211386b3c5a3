"""API objects (validated by the pydantic models) → the pure scheduling and placement types.

One module for every translation, so the operator, the webhook and the CLI build the core's
inputs the same way (a class's DeviceClass, why an option can never run, a quota, a job).

Also the reverse for what the operator records: an admission's placement is written into the
job's status, and read back from there after a restart into exactly the same Admission.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from suanli.api.acceleratorclass import AcceleratorClass
from suanli.api.computequota import ComputeQuota
from suanli.api.trainingjob import TrainingJob
from suanli.controller.conditions import epoch_seconds
from suanli.controller.inventory import CatalogueEntry
from suanli.placement.model import (
    DeviceClass,
    Placement,
    ReplicaAssignment,
    TopologyLevel,
    TopologyMode,
    check_shape,
)
from suanli.quantity import parse_quantity, to_milli
from suanli.reasons import Reason
from suanli.scheduling.model import (
    Admission,
    JobOption,
    JobRequest,
    QuotaSpec,
    ReclaimPolicy,
    ResourceQuota,
    WithinQuotaPolicy,
)

MIN_WEIGHT = Fraction(1, 1000)


def device_class(accelerator_class: AcceleratorClass) -> DeviceClass:
    spec = accelerator_class.spec
    return DeviceClass(
        name=accelerator_class.metadata.name or "",
        devices_per_node=spec.devices_per_node,
        group_size=spec.topology.group_size,
        allowed_counts=tuple(sorted(spec.topology.allowed_device_counts)),
        multi_replica_count=spec.topology.multi_replica_device_count,
        fractional=spec.sharing.fractional if spec.sharing else False,
        tflops=spec.compute_tflops,
    )


@dataclass(frozen=True)
class OptionProblem:
    index: int
    reason: Reason
    message: str


def option_problems(job: TrainingJob, classes: Mapping[str, DeviceClass]) -> list[OptionProblem]:
    """Why each accelerator option of the job can never run, given the catalogue."""
    problems = []
    for index, option in enumerate(job.spec.accelerators):
        replicas = option.replicas or job.spec.replicas
        label = f"option {index + 1} ({option.accelerator_class})"
        cls = classes.get(option.accelerator_class)
        if cls is None:
            known = ", ".join(sorted(classes)) or "none"
            problems.append(
                OptionProblem(
                    index,
                    Reason.UNKNOWN_ACCELERATOR_CLASS,
                    f"{label}: no AcceleratorClass named {option.accelerator_class!r} "
                    f"(known: {known})",
                )
            )
            continue
        message = check_shape(cls, option.devices_per_replica, replicas)
        if message is not None:
            problems.append(OptionProblem(index, Reason.ILLEGAL_SHAPE, f"{label}: {message}"))
    return problems


def catalogue_entry(accelerator_class: AcceleratorClass) -> CatalogueEntry:
    spec = accelerator_class.spec
    return CatalogueEntry(
        device_class=device_class(accelerator_class),
        vendor=spec.vendor,
        resource_name=spec.resource_name,
        node_labels=tuple(sorted(spec.node_labels.items())),
    )


def quota_spec(quota: ComputeQuota) -> QuotaSpec:
    spec = quota.spec
    devices = {
        r.accelerator_class: ResourceQuota(r.nominal, r.borrowing_limit, r.lending_limit)
        for r in spec.resources
    }
    cpu = ResourceQuota(to_milli(spec.cpu)) if spec.cpu is not None else None
    memory = ResourceQuota(int(parse_quantity(spec.memory))) if spec.memory is not None else None
    return QuotaSpec(
        name=quota.metadata.name or "",
        namespaces=frozenset(spec.namespaces),
        devices=devices,
        cpu_milli=cpu,
        memory_bytes=memory,
        compute_budget_pflops=(
            Fraction(str(spec.compute_budget_pflops))
            if spec.compute_budget_pflops is not None
            else None
        ),
        cohort=spec.cohort,
        weight=max(Fraction(str(spec.fair_share_weight)), MIN_WEIGHT),
        within_quota=WithinQuotaPolicy(spec.preemption.within_quota),
        reclaim_within_cohort=ReclaimPolicy(spec.preemption.reclaim_within_cohort),
    )


def _per_replica_requests(job: TrainingJob) -> tuple[int, int]:
    cpu = memory = 0
    for container in job.spec.template.spec.containers:
        resources = container.resources
        if resources is None:
            continue
        requests: dict[str, Any] = {**(resources.limits or {}), **(resources.requests or {})}
        if "cpu" in requests:
            cpu += to_milli(requests["cpu"])
        if "memory" in requests:
            memory += int(parse_quantity(requests["memory"]))
    return cpu, memory


def _created(body: Mapping[str, Any]) -> float:
    return epoch_seconds(body.get("metadata", {}).get("creationTimestamp")) or 0.0


def job_request(job: TrainingJob, body: Mapping[str, Any]) -> JobRequest:
    cpu, memory = _per_replica_requests(job)
    options = tuple(
        JobOption(
            device_class=option.accelerator_class,
            devices_per_replica=option.devices_per_replica,
            replicas=option.replicas or job.spec.replicas,
            cpu_milli_per_replica=cpu,
            memory_bytes_per_replica=memory,
        )
        for option in job.spec.accelerators
    )
    topology = job.spec.topology
    mode = TopologyMode.NONE
    level = TopologyLevel.RACK
    if topology is not None:
        mode = TopologyMode(topology.mode.lower())
        level = TopologyLevel.SUPER_NODE if topology.level == "superNode" else TopologyLevel.RACK
    return JobRequest(
        namespace=str(body["metadata"]["namespace"]),
        name=str(body["metadata"]["name"]),
        priority=job.spec.priority or 0,
        created=_created(body),
        options=options,
        min_replicas=job.spec.min_replicas,
        topology=mode,
        topology_level=level,
    )


def recorded_admission(request: JobRequest, status: Mapping[str, Any]) -> Admission | None:
    """The admission a job's status records (None if it records none, or an unusable one)."""
    chosen = status.get("chosenOption")
    replicas = status.get("placement")
    if not chosen or not replicas:
        return None
    index = int(chosen["index"])
    if not 0 <= index < len(request.options):
        return None
    ordered = sorted(replicas, key=lambda r: int(r["replica"]))
    placement = Placement(
        gang_id=request.key,
        option_index=index,
        device_class=request.options[index].device_class,
        replicas=tuple(
            ReplicaAssignment(str(r["node"]), tuple(int(i) for i in r["deviceIndices"]), 1000)
            for r in ordered
        ),
    )
    return Admission(request, index, placement)


def placement_status(placement: Placement) -> list[dict[str, Any]]:
    return [
        {"replica": index, "node": replica.node, "deviceIndices": list(replica.device_indices)}
        for index, replica in enumerate(placement.replicas)
    ]
