"""Thin adapter between scheduling requests and the placement core's cluster state.

Why: the scheduler tries one option at a time (quota is checked between options), and must be
able to take a running job's pods out of the state and put them back *exactly* while searching
for preemption victims. The core offers ``place``/``release_gang`` for gangs it placed and
``bind``/``release`` for individual pods; this module fixes the naming convention that joins
them: a job's gang id is its key ``ns/name`` and replica ``i`` is the pod key ``ns/name/i``
(the key the core itself gives replicas of a placed gang). The operator must bind pods it finds
in the API server with :func:`bind_admission` so that the same convention holds after a restart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from suanli.placement.model import ClassCapacity, Failure, Gang, GangOption, Placement
from suanli.scheduling.model import Admission, JobOption, JobRequest

MIB = 1 << 20


class PlacementState(Protocol):
    """The part of the placement core's ``ClusterState`` the scheduler uses (both the compiled
    core and the pure-Python reference provide it)."""

    def place(self, gang: Gang) -> Placement | Failure: ...

    def release_gang(self, gang_id: str) -> None: ...

    def capacity_summary(self) -> Mapping[str, ClassCapacity]: ...

    def release(self, pod_key: str) -> None: ...

    def bind(
        self,
        pod_key: str,
        node: str,
        cpu_milli: int,
        memory_mib: int,
        *,
        devices: Sequence[int] | int = 0,
        milli: int = 1000,
    ) -> tuple[int, ...]: ...


def pod_key(job_key: str, replica: int) -> str:
    """The state's key for replica ``replica`` of job ``job_key``."""
    return f"{job_key}/{replica}"


def memory_mib(memory_bytes: int) -> int:
    """Bytes rounded up to whole MiB (the core's memory unit), so a pod never gets less."""
    return -(-memory_bytes // MIB)


def gang_option(option: JobOption) -> GangOption:
    return GangOption(
        device_class=option.device_class,
        devices_per_replica=option.devices_per_replica,
        milli=option.milli,
        cpu_milli=option.cpu_milli_per_replica,
        memory_mib=memory_mib(option.memory_bytes_per_replica),
    )


def gang_for(job: JobRequest, option: JobOption, gang_id: str | None = None) -> Gang:
    """A one-option gang for ``option`` (with its replica count), keeping the job's wishes."""
    minimum = None if job.min_replicas is None else min(job.min_replicas, option.replicas)
    return Gang(
        id=gang_id or job.key,
        replicas=option.replicas,
        options=(gang_option(option),),
        min_replicas=minimum,
        topology=job.topology,
        topology_level=job.topology_level,
        node_selector=tuple(sorted(job.node_selector.items())),
    )


def bind_admission(state: PlacementState, admission: Admission) -> None:
    """Bind an admitted job's pods into ``state`` on exactly the recorded nodes and devices."""
    option = gang_option(admission.option)
    for index, replica in enumerate(admission.placement.replicas):
        state.bind(
            pod_key(admission.job.key, index),
            replica.node,
            option.cpu_milli,
            option.memory_mib,
            devices=replica.device_indices,
            milli=replica.milli,
        )


def release_admission(state: PlacementState, admission: Admission) -> int:
    """Release whichever of the job's pods are bound; returns how many were. Gang bookkeeping
    in the core is left alone so that :func:`bind_admission` restores the previous state."""
    released = 0
    for index in range(admission.replicas):
        try:
            state.release(pod_key(admission.job.key, index))
        except KeyError:
            continue
        released += 1
    return released
