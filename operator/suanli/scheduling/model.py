"""Plain, frozen inputs and outputs of the scheduling logic.

Why a separate model: the scheduling core must be decidable without Kubernetes, so it never sees
pydantic API objects or kopf bodies. The operator converts TrainingJobs, ComputeQuotas and
AcceleratorClasses into these dataclasses once per cycle; everything downstream is pure and
deterministic. Every constructor validates its fields and names the offending one, because the
values ultimately come from tenants.

Units are integers wherever arithmetic must be exact: CPU in millicores, memory in bytes, devices
in milli-devices inside the quota book (1000 = one whole device; fractional classes use less).
Compute (TFLOPS/PFLOPS) uses :class:`fractions.Fraction`, so sums never drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType
from typing import TypeVar

from suanli.placement.model import Placement, TopologyLevel, TopologyMode

WHOLE_DEVICE_MILLI = 1000
_V = TypeVar("_V")


class SchedulingInputError(ValueError):
    """Raised for malformed scheduling input; the message always names the field."""


def exact(value: int | float | str | Fraction) -> Fraction:
    """Convert a catalogue/API number to an exact Fraction via its decimal text (0.1 stays 1/10)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, bool):
        raise SchedulingInputError(f"expected a number, got {value!r}")
    try:
        return Fraction(str(value))
    except (ValueError, ZeroDivisionError) as error:
        raise SchedulingInputError(f"expected a number, got {value!r}") from error


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise SchedulingInputError(message)


def _frozen_mapping(mapping: Mapping[str, _V]) -> Mapping[str, _V]:
    return MappingProxyType(dict(mapping))


class WithinQuotaPolicy(StrEnum):
    """May a pending job evict admitted jobs of its own quota?"""

    NEVER = "Never"
    LOWER_PRIORITY = "LowerPriority"


class ReclaimPolicy(StrEnum):
    """May a quota evict cohort peers' jobs that run on capacity borrowed from it?

    ``Any`` is the lender's guarantee: nominal quota can be taken back whatever the borrower's
    priority. It cannot thrash, because reclaiming is only allowed when the reclaiming quota stays
    within its nominal, and a quota within nominal is never a borrower that could be reclaimed.
    """

    NEVER = "Never"
    LOWER_PRIORITY = "LowerPriority"
    ANY = "Any"


@dataclass(frozen=True, slots=True)
class ResourceQuota:
    """Nominal share of one resource, plus how much may be borrowed from / lent to the cohort.

    ``None`` limits mean "no limit": borrow as much as the cohort has free, lend all unused
    nominal. A lending limit keeps ``nominal - lending_limit`` reserved for the quota itself.
    """

    nominal: int
    borrowing_limit: int | None = None
    lending_limit: int | None = None

    def __post_init__(self) -> None:
        _require(
            isinstance(self.nominal, int) and self.nominal >= 0,
            f"nominal must be a non-negative integer, got {self.nominal!r}",
        )
        for name in ("borrowing_limit", "lending_limit"):
            value = getattr(self, name)
            _require(
                value is None or (isinstance(value, int) and value >= 0),
                f"{name} must be a non-negative integer or unset, got {value!r}",
            )
        _require(
            self.lending_limit is None or self.lending_limit <= self.nominal,
            f"lending_limit ({self.lending_limit}) exceeds nominal ({self.nominal})",
        )

    def scaled(self, factor: int) -> ResourceQuota:
        """The same quota in a finer unit (devices -> milli-devices)."""
        return ResourceQuota(
            self.nominal * factor,
            None if self.borrowing_limit is None else self.borrowing_limit * factor,
            None if self.lending_limit is None else self.lending_limit * factor,
        )


@dataclass(frozen=True, slots=True)
class QuotaSpec:
    """A tenant's share (the ComputeQuota), in devices per class, millicores and bytes.

    A device class absent from ``devices`` cannot be used by this quota at all; list it with a
    nominal of 0 to allow borrowing it. ``cpu_milli``/``memory_bytes`` set to ``None`` mean
    "not limited" (usage is still counted for status).
    """

    name: str
    namespaces: frozenset[str]
    devices: Mapping[str, ResourceQuota] = field(default_factory=dict)
    cpu_milli: ResourceQuota | None = None
    memory_bytes: ResourceQuota | None = None
    compute_budget_pflops: Fraction | None = None
    cohort: str | None = None
    weight: Fraction = Fraction(1)
    within_quota: WithinQuotaPolicy = WithinQuotaPolicy.NEVER
    reclaim_within_cohort: ReclaimPolicy = ReclaimPolicy.NEVER

    def __post_init__(self) -> None:
        _require(bool(self.name), "quota name must not be empty")
        _require(
            not isinstance(self.namespaces, str),
            f"quota {self.name}: namespaces must be a set of names, not a string",
        )
        object.__setattr__(self, "namespaces", frozenset(self.namespaces))
        object.__setattr__(self, "devices", _frozen_mapping(self.devices))
        for class_name, share in self.devices.items():
            _require(
                isinstance(share, ResourceQuota),
                f"quota {self.name}: devices[{class_name}] must be a ResourceQuota",
            )
        if self.compute_budget_pflops is not None:
            object.__setattr__(self, "compute_budget_pflops", exact(self.compute_budget_pflops))
            _require(
                self.compute_budget_pflops is not None and self.compute_budget_pflops >= 0,
                f"quota {self.name}: compute_budget_pflops must be >= 0",
            )
        object.__setattr__(self, "weight", exact(self.weight))
        _require(self.weight > 0, f"quota {self.name}: weight must be > 0, got {self.weight}")
        _require(
            self.cohort is None or bool(self.cohort),
            f"quota {self.name}: cohort must be a name or unset",
        )


@dataclass(frozen=True, slots=True)
class JobOption:
    """One way to run a job: which class, how many devices per replica, how many replicas.

    ``milli`` is the share of each device (1000 = whole device; fractional classes use less).
    """

    device_class: str
    devices_per_replica: int
    replicas: int
    cpu_milli_per_replica: int = 0
    memory_bytes_per_replica: int = 0
    milli: int = WHOLE_DEVICE_MILLI

    def __post_init__(self) -> None:
        _require(bool(self.device_class), "option device_class must not be empty")
        for name in ("devices_per_replica", "replicas"):
            value = getattr(self, name)
            _require(
                isinstance(value, int) and value > 0,
                f"option {self.device_class}: {name} must be a positive integer, got {value!r}",
            )
        for name in ("cpu_milli_per_replica", "memory_bytes_per_replica"):
            value = getattr(self, name)
            _require(
                isinstance(value, int) and value >= 0,
                f"option {self.device_class}: {name} must be a non-negative integer, got {value!r}",
            )
        _require(
            isinstance(self.milli, int) and 0 < self.milli <= WHOLE_DEVICE_MILLI,
            f"option {self.device_class}: milli must be in 1..1000, got {self.milli!r}",
        )

    @property
    def total_devices_milli(self) -> int:
        return self.devices_per_replica * self.milli * self.replicas

    def describe(self) -> str:
        """Human form used in messages, e.g. ``16 × ascend-910b``."""
        return f"{format_devices(self.total_devices_milli)} × {self.device_class}"


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A pending (or admitted) TrainingJob as the scheduler sees it.

    There is deliberately no quota field: the quota is chosen from ``namespace`` by the quota
    book, never from a name the tenant writes.
    """

    namespace: str
    name: str
    priority: int
    created: float
    options: tuple[JobOption, ...]
    min_replicas: int | None = None
    topology: TopologyMode = TopologyMode.NONE
    topology_level: TopologyLevel = TopologyLevel.RACK
    node_selector: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(bool(self.namespace), "job namespace must not be empty")
        _require(bool(self.name), "job name must not be empty")
        _require(
            isinstance(self.priority, int),
            f"job {self.key}: priority must be an integer, got {self.priority!r}",
        )
        object.__setattr__(self, "options", tuple(self.options))
        _require(len(self.options) > 0, f"job {self.key}: options must not be empty")
        for option in self.options:
            _require(isinstance(option, JobOption), f"job {self.key}: options must be JobOptions")
        if self.min_replicas is not None:
            _require(
                isinstance(self.min_replicas, int) and self.min_replicas > 0,
                f"job {self.key}: min_replicas must be a positive integer, "
                f"got {self.min_replicas!r}",
            )
        object.__setattr__(self, "node_selector", _frozen_mapping(self.node_selector))
        try:
            object.__setattr__(self, "topology", TopologyMode(self.topology))
            object.__setattr__(self, "topology_level", TopologyLevel(self.topology_level))
        except ValueError as error:
            raise SchedulingInputError(f"job {self.key}: topology: {error}") from None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted job: which option won and where it runs. Its charge is derived, not stored,
    so a record can never disagree with the job it describes."""

    job: JobRequest
    option_index: int
    placement: Placement

    def __post_init__(self) -> None:
        _require(
            0 <= self.option_index < len(self.job.options),
            f"admission {self.job.key}: option_index {self.option_index} out of range",
        )
        _require(
            len(self.placement.replicas) > 0,
            f"admission {self.job.key}: placement has no replicas",
        )

    @property
    def option(self) -> JobOption:
        return self.job.options[self.option_index]

    @property
    def replicas(self) -> int:
        """Replicas actually placed (fewer than asked only for an elastic gang)."""
        return len(self.placement.replicas)

    @property
    def charged_option(self) -> JobOption:
        """The option with the placed replica count: what the quota book charges."""
        return replace(self.option, replicas=self.replicas)


def format_devices(milli: int) -> str:
    """Milli-devices as a device count: 16000 -> "16", 2500 -> "2.5"."""
    whole, rest = divmod(milli, WHOLE_DEVICE_MILLI)
    if rest == 0:
        return str(whole)
    return f"{whole}.{rest:03d}".rstrip("0")
