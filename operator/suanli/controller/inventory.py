"""Keep the placement core's long-lived ClusterState equal to what the API server says.

The core is updated incrementally — never rebuilt per decision — by diffing, once per cycle,
what the cache says (nodes, pods suanli did not create, admitted jobs' recorded placements)
against what the state already holds. Only differences touch the core, so a quiet cluster costs
one dictionary comparison per object, and a restart rebuilds the very same state from the API.

suanli's own pods are *not* bound one by one: an admitted job's charge is its recorded placement
(``status.placement``), bound under the keys ``ns/job/<replica>`` the scheduling package uses.
That makes the job status — written before any pod is created — the single source of truth.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from suanli.constants import (
    DEVICE_INDICES_ANNOTATION,
    JOB_NAME_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    RACK_LABEL,
    SUPER_NODE_LABEL,
)
from suanli.placement import ClusterState
from suanli.placement.model import WHOLE, DeviceClass, WorkloadShape
from suanli.quantity import to_int, to_mib, to_milli

log = logging.getLogger("suanli.inventory")

CONDITION_TAINTS = frozenset({"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})


@dataclass(frozen=True)
class CatalogueEntry:
    """What the operator needs of one AcceleratorClass beyond the core's DeviceClass."""

    device_class: DeviceClass
    vendor: str
    resource_name: str
    node_labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class NodeRecord:
    name: str
    device_class: str | None
    cpu_milli: int
    memory_mib: int
    pods: int
    devices: int
    labels: tuple[tuple[str, str], ...]
    rack: str
    super_node: str
    schedulable: bool


@dataclass(frozen=True)
class PodCharge:
    node: str
    cpu_milli: int
    memory_mib: int
    devices: tuple[int, ...] | int
    milli: int


def class_of_node(labels: Mapping[str, str], catalogue: Mapping[str, CatalogueEntry]) -> str | None:
    """The most specific class whose node labels the node carries (ties: by name)."""
    matches = [
        (-len(entry.node_labels), name)
        for name, entry in catalogue.items()
        if entry.node_labels and all(labels.get(k) == v for k, v in entry.node_labels)
    ]
    return min(matches)[1] if matches else None


def node_ready(node: Mapping[str, Any]) -> bool:
    for condition in node.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def node_record(node: Mapping[str, Any], catalogue: Mapping[str, CatalogueEntry]) -> NodeRecord:
    metadata = node.get("metadata", {})
    labels: dict[str, str] = dict(metadata.get("labels") or {})
    allocatable = node.get("status", {}).get("allocatable") or {}
    cls = class_of_node(labels, catalogue)
    devices = 0
    if cls is not None:
        devices = to_int(allocatable.get(catalogue[cls].resource_name, 0))
        if devices == 0:
            cls = None
    # Accelerator taints are tolerated by the pods we create; the not-ready/unreachable taints
    # only mirror the Ready condition, which is checked directly.
    tolerated = {entry.resource_name for entry in catalogue.values()} | CONDITION_TAINTS
    hard_taints = [
        t
        for t in node.get("spec", {}).get("taints") or []
        if t.get("effect") in ("NoSchedule", "NoExecute") and t.get("key") not in tolerated
    ]
    schedulable = (
        not node.get("spec", {}).get("unschedulable", False)
        and node_ready(node)
        and not hard_taints
    )
    return NodeRecord(
        name=str(metadata["name"]),
        device_class=cls,
        cpu_milli=to_milli(allocatable.get("cpu", 0)),
        memory_mib=to_mib(allocatable.get("memory", 0)),
        pods=to_int(allocatable.get("pods", 110)),
        devices=devices,
        labels=tuple(sorted(labels.items())),
        rack=labels.get(RACK_LABEL, ""),
        super_node=labels.get(SUPER_NODE_LABEL, ""),
        schedulable=schedulable,
    )


def is_suanli_pod(pod: Mapping[str, Any]) -> bool:
    labels = pod.get("metadata", {}).get("labels") or {}
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE and JOB_NAME_LABEL in labels


def pod_is_live(pod: Mapping[str, Any]) -> bool:
    return pod.get("status", {}).get("phase") not in ("Succeeded", "Failed")


def foreign_pod_charge(pod: Mapping[str, Any], resource_names: Iterable[str]) -> PodCharge | None:
    """What a pod suanli did not create takes from its node (None: takes nothing we track)."""
    node = pod.get("spec", {}).get("nodeName")
    if not node or not pod_is_live(pod):
        return None
    cpu = memory = devices = 0
    names = set(resource_names)
    for container in pod.get("spec", {}).get("containers") or []:
        resources = container.get("resources") or {}
        requests = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        cpu += to_milli(requests.get("cpu", 0))
        memory += to_mib(requests.get("memory", 0))
        devices += sum(to_int(v) for k, v in requests.items() if k in names)
    return PodCharge(str(node), cpu, memory, devices, 1000)


def stale_pod_charge(pod: Mapping[str, Any], resource_names: Iterable[str]) -> PodCharge | None:
    """A suanli pod of a released admission: its recorded chips, until it stops running."""
    charge = foreign_pod_charge(pod, resource_names)
    indices = (pod.get("metadata", {}).get("annotations") or {}).get(DEVICE_INDICES_ANNOTATION)
    if charge is None or not indices or not isinstance(charge.devices, int):
        return charge
    try:
        chips = tuple(int(i) for i in str(indices).split(","))
    except ValueError:
        return charge
    return PodCharge(charge.node, charge.cpu_milli, charge.memory_mib, chips, charge.milli)


class Inventory:
    """The ClusterState plus the record of what was put into it, for diffing."""

    def __init__(self) -> None:
        self.catalogue: dict[str, CatalogueEntry] = {}
        self.state = ClusterState()
        self.nodes: dict[str, NodeRecord] = {}
        self.foreign: dict[str, PodCharge] = {}
        self.admissions: dict[str, tuple[Any, ...]] = {}
        self.mix: tuple[WorkloadShape, ...] = ()
        self.records: dict[str, tuple[Any, NodeRecord]] = {}

    def set_catalogue(self, catalogue: Mapping[str, CatalogueEntry]) -> bool:
        """A changed catalogue starts a fresh state (classes cannot be unregistered)."""
        if dict(catalogue) == self.catalogue:
            return False
        self.catalogue = dict(catalogue)
        self.state = ClusterState(
            [entry.device_class for entry in catalogue.values()], track_recent_mix=False
        )
        self.nodes, self.foreign, self.admissions, self.mix = {}, {}, {}, ()
        self.records = {}
        return True

    def learn_mix(self, options: Iterable[Any]) -> bool:
        """Measure fragmentation against the demand the cluster sees: one shape per distinct
        (class, devices, share, CPU, memory) among ``options`` (the pending jobs' preferred
        options and the admitted jobs' chosen ones, each a
        :class:`~suanli.scheduling.model.JobOption`), weighted by replicas rounded up to a
        power of two.

        Why not the core's own recent-mix tracking: it reloads the mix every 64 placements,
        and every reload drops the core's per-shape indexes, so a burst of admissions paid
        ~30 µs a decision instead of ~4 µs. Rounded weights change only when a shape's demand
        doubles or halves, so the mix (and the indexes) survive whole cycles. Returns whether
        the mix changed."""
        from suanli.scheduling.gangs import gang_option

        counts: dict[tuple[int, int, int, int, str], int] = {}
        for option in options:
            gang = gang_option(option)
            milli = gang.milli if gang.devices_per_replica else WHOLE
            key = (
                gang.cpu_milli,
                gang.memory_mib,
                gang.devices_per_replica,
                milli,
                option.device_class,
            )
            counts[key] = counts.get(key, 0) + option.replicas
        mix = tuple(
            WorkloadShape(cpu, memory, devices, milli, 1 << (count - 1).bit_length(), (cls,))
            for (cpu, memory, devices, milli, cls), count in sorted(counts.items())
            if cls in self.catalogue
        )
        if mix == self.mix:
            return False
        self.mix = mix
        self.state.set_workload_mix(mix)
        return True

    def sync_nodes(self, nodes: Iterable[Mapping[str, Any]]) -> None:
        """Level the core's nodes with ``nodes``; a node whose resourceVersion is the one read
        last time is not parsed again (kwok and kubelets touch a few nodes a second, while a
        cycle reads them all)."""
        wanted = {}
        for body in nodes:
            metadata = body.get("metadata", {})
            version = metadata.get("resourceVersion")
            seen = self.records.get(str(metadata.get("name")))
            if version is not None and seen is not None and seen[0] == version:
                record = seen[1]
            else:
                record = node_record(body, self.catalogue)
                self.records[record.name] = (version, record)
            wanted[record.name] = record
        for name in [n for n in self.records if n not in wanted]:
            del self.records[name]
        for name in [n for n in self.nodes if n not in wanted]:
            self._forget_node(name)
            self.state.remove_node(name)
            del self.nodes[name]
        for name, record in wanted.items():
            current = self.nodes.get(name)
            if current is record or current == record:
                continue
            args = (record.device_class, record.cpu_milli, record.memory_mib, record.pods)
            options: dict[str, Any] = {
                "devices": record.devices,
                "labels": dict(record.labels),
                "rack": record.rack,
                "super_node": record.super_node,
                "schedulable": record.schedulable,
            }
            if current is None:
                self.state.add_node(name, *args, **options)
            else:
                try:
                    self.state.update_node(name, *args, **options)
                except ValueError:
                    # Device class or count changed under allocated devices: start over.
                    log.warning("node %s changed its devices; rebuilding its bindings", name)
                    self._forget_node(name)
                    self.state.remove_node(name)
                    self.state.add_node(name, *args, **options)
            self.nodes[name] = record

    def _forget_node(self, name: str) -> None:
        """Release everything bound to a node that goes away, whole gangs included: a gang with
        one replica there is released everywhere (its job restarts as a whole)."""
        for key, signature in list(self.admissions.items()):
            if any(node == name for node, _ in signature[1]):
                release_job(self, key, signature)
        for key in [k for k, c in self.foreign.items() if c.node == name]:
            self.state.release(key)
            del self.foreign[key]

    def forget_gang(self, key: str) -> None:
        """Make sure nothing of job ``key`` is assumed in the state before it is placed again."""
        signature = self.admissions.get(key)
        if signature is not None:
            release_job(self, key, signature)
            return
        with contextlib.suppress(KeyError):
            self.state.release_gang(key)

    def sync_foreign_pods(
        self, pods: Mapping[str, Mapping[str, Any]], covered: frozenset[str] = frozenset()
    ) -> None:
        """Bind what pods outside the recorded admissions take: pods suanli did not create, and
        suanli's own pods that no admission covers any more (``covered``: the keys of current
        admissions' pods) but that still run — a released gang's pods until they are gone — so
        their devices are not handed out while they hold them."""
        resources = [entry.resource_name for entry in self.catalogue.values()]
        wanted: dict[str, PodCharge] = {}
        for key, body in pods.items():
            if is_suanli_pod(body):
                if key in covered:
                    continue
                charge = stale_pod_charge(body, resources)
            else:
                charge = foreign_pod_charge(body, resources)
            if charge is not None and charge.node in self.nodes:
                wanted[f"pod:{key}"] = charge
        for key in [k for k in self.foreign if wanted.get(k) != self.foreign[k]]:
            self.state.release(key)
            del self.foreign[key]
        for key, charge in wanted.items():
            if key in self.foreign:
                continue
            try:
                self.state.bind(
                    key, charge.node, charge.cpu_milli, charge.memory_mib, devices=charge.devices
                )
            except ValueError as exc:
                log.warning("pod %s does not fit the model of its node: %s", key, exc)
                continue
            self.foreign[key] = charge


def admission_signature(admission: Any) -> tuple[Any, ...]:
    return (
        admission.option_index,
        tuple((r.node, tuple(r.device_indices)) for r in admission.placement.replicas),
    )


def sync_admissions(inventory: Inventory, admissions: Iterable[Any]) -> list[str]:
    """Bind every admitted job's recorded placement; release those no longer admitted.

    Returns the keys whose recorded placement could not be bound (their devices are taken by
    something else: a conflict an operator must look at, reported on the job).
    """
    from suanli.scheduling.gangs import bind_admission, release_admission

    wanted = {a.job.key: a for a in admissions}
    for key in list(inventory.admissions):
        admission = wanted.get(key)
        if admission is not None and admission_signature(admission) == inventory.admissions[key]:
            continue
        release_job(inventory, key, inventory.admissions[key])
    conflicts = []
    for key, admission in wanted.items():
        if key in inventory.admissions:
            continue
        if any(r.node not in inventory.nodes for r in admission.placement.replicas):
            conflicts.append(key)
            continue
        try:
            bind_admission(inventory.state, admission)
        except (ValueError, KeyError) as exc:
            release_admission(inventory.state, admission)
            log.error("recorded placement of %s cannot be bound: %s", key, exc)
            conflicts.append(key)
            continue
        inventory.admissions[key] = admission_signature(admission)
    return conflicts


def release_job(inventory: Inventory, key: str, signature: tuple[Any, ...]) -> None:
    """Take a job's replicas out of the state, whether it was placed or bound."""
    try:
        inventory.state.release_gang(key)
    except KeyError:
        for index in range(len(signature[1])):
            try:
                inventory.state.release(f"{key}/{index}")
            except KeyError:
                continue
    inventory.admissions.pop(key, None)
