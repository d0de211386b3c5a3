"""Request validation and failure messages shared by the compiled core and the reference.

Why shared: both implementations must refuse the same requests with the same words, and these
paths are not hot, so there is nothing to gain by writing them twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from suanli.placement.model import (
    DeviceClass,
    Failure,
    FailureReason,
    Gang,
    GangOption,
    check_shape,
)


def check_node_args(name: str, cpu_milli: int, memory_mib: int, pods: int) -> None:
    if not name:
        raise ValueError("node name must not be empty")
    if cpu_milli <= 0:
        raise ValueError(f"node {name!r}: cpu_milli must be > 0, got {cpu_milli}")
    if memory_mib <= 0:
        raise ValueError(f"node {name!r}: memory_mib must be > 0, got {memory_mib}")
    if pods < 0:
        raise ValueError(f"node {name!r}: pods must be >= 0, got {pods}")


def legal_options(
    gang: Gang, class_index: Mapping[str, int], classes: Sequence[DeviceClass]
) -> tuple[list[int], list[str]]:
    """Indices of the options that can be tried, and a message for each one that cannot."""
    legal: list[int] = []
    problems: list[str] = []
    for index, option in enumerate(gang.options):
        if option.device_class is None:
            legal.append(index)
            continue
        class_id = class_index.get(option.device_class)
        if class_id is None:
            problems.append(f"options[{index}].device_class: unknown class {option.device_class!r}")
            continue
        message = check_shape(
            classes[class_id], option.devices_per_replica, gang.replicas_for(option), option.milli
        )
        if message is None:
            legal.append(index)
        else:
            problems.append(f"options[{index}]: {message}")
    return legal, problems


def illegal_options_failure(gang: Gang, problems: list[str]) -> Failure:
    return Failure(
        gang.id,
        FailureReason.ILLEGAL_SHAPE,
        f"gang {gang.id}: no legal option: " + "; ".join(problems),
        {"options": len(gang.options)},
    )


def failure_insufficient(
    gang: Gang, option: GangOption, wanted: int, most_fit: int, free_whole_devices: int
) -> Failure:
    need = gang.min_replicas_for(option)
    what = f"{option.devices_per_replica} × {option.device_class}" if option.device_class else "CPU"
    return Failure(
        gang.id,
        FailureReason.INSUFFICIENT_CAPACITY,
        f"gang {gang.id}: only {most_fit} of {wanted} replicas ({what}, {option.cpu_milli}m CPU, "
        f"{option.memory_mib} MiB) fit at once; at least {need} needed; "
        f"{free_whole_devices} whole devices of the first class are free",
        {
            "replicas_wanted": wanted,
            "replicas_needed": need,
            "replicas_fit": most_fit,
            "devices_per_replica": option.devices_per_replica,
            "free_whole_devices": free_whole_devices,
        },
    )


def failure_topology(gang: Gang, option: GangOption, wanted: int, most_fit: int) -> Failure:
    need = gang.min_replicas_for(option)
    return Failure(
        gang.id,
        FailureReason.TOPOLOGY_UNSATISFIABLE,
        f"gang {gang.id}: {need} replicas fit in the cluster but not inside one "
        f"{gang.topology_level}; the best {gang.topology_level} holds {most_fit} of {wanted}",
        {"replicas_wanted": wanted, "replicas_needed": need, "replicas_fit_in_domain": most_fit},
    )
