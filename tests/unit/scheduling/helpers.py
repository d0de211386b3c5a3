"""Builders shared by the scheduling tests: a small catalogue, quotas, jobs and a cluster."""

from __future__ import annotations

from collections.abc import Iterable

from suanli.placement.model import DeviceClass
from suanli.scheduling.model import (
    JobOption,
    JobRequest,
    QuotaSpec,
    ReclaimPolicy,
    ResourceQuota,
    WithinQuotaPolicy,
)

H100 = DeviceClass("nvidia-h100", 8, 8, (1, 2, 4, 8), multi_replica_count=8, tflops=989.5)
ASCEND = DeviceClass("ascend-910b", 8, 8, (1, 2, 4, 8), multi_replica_count=8, tflops=376)
CLASSES = (H100, ASCEND)


def quota(
    name: str,
    *,
    h100: ResourceQuota | int | None = None,
    ascend: ResourceQuota | int | None = None,
    cohort: str | None = None,
    namespaces: Iterable[str] | None = None,
    within: WithinQuotaPolicy = WithinQuotaPolicy.NEVER,
    reclaim: ReclaimPolicy = ReclaimPolicy.NEVER,
    **extra: object,
) -> QuotaSpec:
    devices = {}
    for class_name, share in (("nvidia-h100", h100), ("ascend-910b", ascend)):
        if share is None:
            continue
        devices[class_name] = ResourceQuota(share) if isinstance(share, int) else share
    return QuotaSpec(
        name=name,
        namespaces=frozenset(namespaces if namespaces is not None else (name,)),
        devices=devices,
        cohort=cohort,
        within_quota=within,
        reclaim_within_cohort=reclaim,
        **extra,  # type: ignore[arg-type]
    )


def job(
    key: str,
    *options: JobOption,
    priority: int = 0,
    created: float = 0.0,
    min_replicas: int | None = None,
) -> JobRequest:
    namespace, name = key.split("/")
    return JobRequest(
        namespace=namespace,
        name=name,
        priority=priority,
        created=created,
        options=options,
        min_replicas=min_replicas,
    )


def h100(devices: int, replicas: int = 1) -> JobOption:
    return JobOption("nvidia-h100", devices, replicas)


def ascend(devices: int, replicas: int = 1) -> JobOption:
    return JobOption("ascend-910b", devices, replicas)


def milli(devices: int) -> int:
    return devices * 1000


def implementations() -> list[type]:
    """Cluster-state classes to run against: the compiled core when built, and the reference."""
    from suanli.placement.reference import ClusterState as Reference

    found: list[type] = []
    try:
        from suanli.placement._core import ClusterState as Compiled  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        found.append(Compiled)
    found.append(Reference)
    return found


def add_nodes(state: object, device_class: DeviceClass, count: int, prefix: str = "") -> None:
    for index in range(count):
        state.add_node(  # type: ignore[attr-defined]
            f"{prefix or device_class.name}-{index}",
            device_class.name,
            cpu_milli=192_000,
            memory_mib=1_500_000,
            pods=110,
            devices=device_class.devices_per_node,
        )
