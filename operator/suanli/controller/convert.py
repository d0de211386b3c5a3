"""Translate API objects (validated by the pydantic models) into the pure core's types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from suanli.api.acceleratorclass import AcceleratorClass
from suanli.api.trainingjob import Reason, TrainingJob
from suanli.placement.model import DeviceClass, check_shape


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
