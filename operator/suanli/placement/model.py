"""Plain data types shared by the compiled placement core and its pure-Python reference.

Why a separate module: the operator, the simulator and the tests must be able to build requests
and read results without importing either implementation, and both implementations must agree on
exactly the same vocabulary. Everything here is immutable and Kubernetes-free.

Units everywhere: CPU in milli-cores, memory in MiB, device shares in milli-devices (1000 = one
whole device). Scores are integers so that the compiled core and the reference decide identically.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

WHOLE = 1000
"""Milli-units in one whole device."""

MAX_DEVICES_PER_NODE = 16
"""Largest device count one node may carry (an Ascend 910B A+X module has 16 NPUs)."""


BALANCE_WEIGHT = 3000
"""Weight of the CPU/device balance term of ``fragmentation_aware`` (see docs/placement.md).

Tuned on the Alibaba trace (openb lists, seeds 42-51, 130 % demand) together with the share
waste curves below: 2000, 3000 and 4000 are within 0.02 points of each other on the default
list (96.0 %); 3000 keeps the CPU-heavy lists best (cpu200: 95.64 % at 2000, 95.97 % at 3000).
Without the waste curves, 0 gives plain FGD (95.0 %) and 4000 was best (95.7 %)."""

WASTE_HORIZON = 100
"""Mean number of future requests a partly used device is assumed to be offered (geometric
horizon) when the share waste curves are computed (see ``suanli.placement.mix``). 30/60/100/300
give 95.97/96.00/96.00/96.00 % on the default list (seeds 42-61, balance weight 4000)."""

WASTE_WEIGHT = 6
"""Weight of the share waste curves against FGD's whole-device fragmentation (3/6/10: 95.98/
96.00/96.00 % on the default list, seeds 42-61, balance weight 4000)."""

WASTE_CPU_LEVELS = 16
"""At most this many free-CPU levels get a waste curve of their own per device class."""


class Policy(StrEnum):
    """How a node (and the devices inside it) is chosen among those that fit."""

    BEST_FIT = "best_fit"
    SPREAD = "spread"
    FRAGMENTATION_AWARE = "fragmentation_aware"


class FailureReason(StrEnum):
    INSUFFICIENT_CAPACITY = "InsufficientCapacity"
    ILLEGAL_SHAPE = "IllegalShape"
    TOPOLOGY_UNSATISFIABLE = "TopologyUnsatisfiable"


class TopologyMode(StrEnum):
    NONE = "none"
    PREFER = "prefer"
    REQUIRE = "require"


class TopologyLevel(StrEnum):
    RACK = "rack"
    SUPER_NODE = "super_node"


@dataclass(frozen=True, slots=True)
class DeviceClass:
    """One accelerator model as the placement core sees it (from an AcceleratorClass).

    ``group_size`` is the number of devices per interconnect group (4 for an Ascend 910 HCCS
    ring; equal to ``devices_per_node`` for a full mesh or NVSwitch). A pod taking
    ``c <= group_size`` devices takes them inside one group; ``c > group_size`` takes
    ``c / group_size`` whole groups.
    """

    name: str
    devices_per_node: int
    group_size: int
    allowed_counts: tuple[int, ...]
    multi_replica_count: int | None = None
    fractional: bool = False
    tflops: float = 0.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("DeviceClass.name must not be empty")
        if not 1 <= self.devices_per_node <= MAX_DEVICES_PER_NODE:
            raise ValueError(
                f"DeviceClass {self.name}: devices_per_node must be 1..{MAX_DEVICES_PER_NODE}, "
                f"got {self.devices_per_node}"
            )
        if self.group_size < 1 or self.devices_per_node % self.group_size:
            raise ValueError(
                f"DeviceClass {self.name}: group_size {self.group_size} must divide "
                f"devices_per_node {self.devices_per_node}"
            )
        if not self.allowed_counts or tuple(sorted(set(self.allowed_counts))) != tuple(
            self.allowed_counts
        ):
            raise ValueError(
                f"DeviceClass {self.name}: allowed_counts must be non-empty, sorted and unique"
            )
        for count in self.allowed_counts:
            legal_grouping = count <= self.group_size or count % self.group_size == 0
            if not 1 <= count <= self.devices_per_node or not legal_grouping:
                raise ValueError(
                    f"DeviceClass {self.name}: allowed_counts entry {count} is not 1.."
                    f"{self.devices_per_node} or cannot be built from {self.group_size}-device "
                    "groups"
                )
        if self.multi_replica_count is not None and (
            self.multi_replica_count not in self.allowed_counts
        ):
            raise ValueError(
                f"DeviceClass {self.name}: multi_replica_count {self.multi_replica_count} "
                "must be one of allowed_counts"
            )


def _join_counts(counts: tuple[int, ...]) -> str:
    words = [str(c) for c in counts]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def check_shape(
    device_class: DeviceClass, devices_per_replica: int, replicas: int, milli: int = WHOLE
) -> str | None:
    """Return a human message when the per-replica device shape is illegal, else None."""
    name = device_class.name
    if replicas < 1:
        return f"replicas must be at least 1, got {replicas}"
    if not 0 < milli <= WHOLE:
        return f"milli must be 1..{WHOLE}, got {milli}"
    if milli < WHOLE:
        if not device_class.fractional:
            return f"{name} devices cannot be shared: milli must be {WHOLE}, got {milli}"
        if devices_per_replica != 1:
            return (
                f"a fractional share (milli={milli}) needs exactly 1 device per replica, "
                f"got {devices_per_replica}"
            )
        return None
    if devices_per_replica not in device_class.allowed_counts:
        grouping = (
            f"inside one {device_class.group_size}-device group, or whole groups"
            if device_class.group_size < device_class.devices_per_node
            else "on one node"
        )
        return (
            f"{devices_per_replica} devices per replica is not legal for {name}: legal counts are "
            f"{_join_counts(device_class.allowed_counts)} ({grouping})"
        )
    multi = device_class.multi_replica_count
    if replicas > 1 and multi is not None and devices_per_replica != multi:
        return (
            f"a {replicas}-replica gang on {name} must take exactly {multi} devices per replica, "
            f"got {devices_per_replica}"
        )
    return None


@dataclass(frozen=True, slots=True)
class GangOption:
    """One acceptable way to run every replica of a gang (one device class and its shape).

    ``device_class`` None with ``devices_per_replica`` 0 is a CPU-only replica that may land on
    any node. ``replicas`` overrides the gang's replica count for this option (e.g. 2 × 8 NPUs or
    4 × 4 GPUs for the same job).
    """

    device_class: str | None
    devices_per_replica: int = 0
    milli: int = WHOLE
    cpu_milli: int = 0
    memory_mib: int = 0
    replicas: int | None = None

    def __post_init__(self) -> None:
        for field_name in ("devices_per_replica", "cpu_milli", "memory_mib"):
            if getattr(self, field_name) < 0:
                raise ValueError(f"GangOption.{field_name} must be >= 0")
        if self.replicas is not None and self.replicas < 1:
            raise ValueError(f"GangOption.replicas must be >= 1, got {self.replicas}")
        if self.device_class is None and self.devices_per_replica:
            raise ValueError("GangOption.device_class is required when devices_per_replica > 0")
        if self.device_class is not None and self.devices_per_replica == 0:
            raise ValueError(
                f"GangOption.devices_per_replica must be > 0 for device class {self.device_class}"
            )


@dataclass(frozen=True, slots=True)
class Gang:
    """All-or-nothing request: ``replicas`` identical pods, one option chosen for all of them.

    Options are tried in order (the first that fits wins) unless ``choose_best_option`` is set,
    in which case every option is scored and the best-scoring one wins. With ``min_replicas``
    the gang is elastic: it succeeds with the most replicas that fit, at least ``min_replicas``.
    """

    id: str
    replicas: int
    options: tuple[GangOption, ...]
    min_replicas: int | None = None
    topology: TopologyMode = TopologyMode.NONE
    topology_level: TopologyLevel = TopologyLevel.RACK
    node_selector: tuple[tuple[str, str], ...] = ()
    choose_best_option: bool = False

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("Gang.id must not be empty")
        if self.replicas < 1:
            raise ValueError(f"Gang.replicas must be >= 1, got {self.replicas}")
        if not self.options:
            raise ValueError("Gang.options must list at least one option")
        if self.min_replicas is not None and not 1 <= self.min_replicas <= self.replicas:
            raise ValueError(
                f"Gang.min_replicas must be 1..replicas ({self.replicas}), got {self.min_replicas}"
            )
        TopologyMode(self.topology)
        TopologyLevel(self.topology_level)

    def replicas_for(self, option: GangOption) -> int:
        return option.replicas if option.replicas is not None else self.replicas

    def min_replicas_for(self, option: GangOption) -> int:
        wanted = self.replicas_for(option)
        return wanted if self.min_replicas is None else min(self.min_replicas, wanted)


def selector(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Turn a label mapping into the hashable form ``Gang.node_selector`` stores."""
    return tuple(sorted(labels.items()))


@dataclass(frozen=True, slots=True)
class ReplicaAssignment:
    node: str
    device_indices: tuple[int, ...]
    milli: int


@dataclass(frozen=True, slots=True)
class Placement:
    gang_id: str
    option_index: int
    device_class: str | None
    replicas: tuple[ReplicaAssignment, ...]

    @property
    def ok(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Failure:
    gang_id: str
    reason: FailureReason
    message: str
    numbers: Mapping[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class ClassCapacity:
    """Device accounting for one device class, in whole devices and in milli-devices."""

    device_class: str
    nodes: int
    total_devices: int
    allocated_milli: int
    free_milli: int
    free_whole_devices: int
    fragmented_milli: int
    """Free milli no legal request of this class can use (partial devices of a non-shareable
    class, or free devices on a node that is cordoned or out of pods, CPU or memory)."""
    expected_fragmented_milli: int
    """FGD-style: free milli that a request drawn from the current workload mix could not use,
    weighted by the mix (0 when no mix is known)."""


@dataclass(frozen=True, slots=True)
class WorkloadShape:
    """One request shape of the workload mix the fragmentation-aware policy measures against.

    ``device_classes`` empty means any device class is acceptable. ``devices`` 0 is CPU-only.
    ``weight`` is an integer count (how often the shape occurs), keeping scores exact.
    """

    cpu_milli: int
    memory_mib: int
    devices: int
    milli: int
    weight: int
    device_classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"WorkloadShape.weight must be >= 0, got {self.weight}")
        if self.devices < 0 or not 0 < self.milli <= WHOLE:
            raise ValueError(
                f"WorkloadShape: devices must be >= 0 and milli 1..{WHOLE}, "
                f"got devices={self.devices} milli={self.milli}"
            )
