"""The quota book: exact accounting of who uses how much of which ComputeQuota.

Why it exists: quota must be honoured exactly, and borrowing inside a cohort is easy to get
subtly wrong. The book is the single place that answers "may this quota take ``d`` more of
resource ``r``?" and records charges per job, so that usage is always the sum of its charges
(nothing lost, nothing double-counted) and a release restores the previous state exactly.

Cohort model (the one Kueue uses): every member lends the part of its nominal above
``nominal - lending_limit`` to a cohort pool; ``nominal - lending_limit`` stays guaranteed to it.
A quota may use up to ``nominal + borrowing_limit`` as long as the members' usage above their
guaranteed parts fits in the pool. A quota outside any cohort is a cohort of one that cannot
borrow. All quantities are integers (milli-devices, millicores, bytes); compute budgets use
Fractions.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

from suanli.placement.model import DeviceClass
from suanli.scheduling.model import (
    WHOLE_DEVICE_MILLI,
    JobOption,
    JobRequest,
    QuotaSpec,
    ResourceQuota,
    SchedulingInputError,
    exact,
    format_devices,
)

CPU = "cpu"
MEMORY = "memory"
_DEVICE_PREFIX = "devices:"
_TFLOPS_PER_PFLOPS = 1000

Demand = Mapping[str, int]


def device_resource(class_name: str) -> str:
    """The book's resource key for a device class (kept apart from ``cpu``/``memory``)."""
    return _DEVICE_PREFIX + class_name


def class_of(resource: str) -> str | None:
    """The device class of a resource key, or None for cpu/memory."""
    return resource[len(_DEVICE_PREFIX) :] if resource.startswith(_DEVICE_PREFIX) else None


def format_amount(resource: str, amount: int) -> str:
    """A resource amount as a tenant reads it: ``16 × ascend-910b``, ``64 CPU``, ``512 GiB``."""
    device_class = class_of(resource)
    if device_class is not None:
        return f"{format_devices(amount)} × {device_class}"
    if resource == CPU:
        return f"{format_devices(amount)} CPU"
    gib = Fraction(amount, 1 << 30)
    text = str(gib.numerator) if gib.denominator == 1 else f"{float(gib):.2f}"
    return f"{text} GiB memory"


def _format_count(resource: str, amount: int) -> str:
    """Like :func:`format_amount` but without the class name (``8``, ``32 CPU``)."""
    if class_of(resource) is not None:
        return format_devices(amount)
    return format_amount(resource, amount)


def _format_pflops(tflops: Fraction) -> str:
    pflops = tflops / _TFLOPS_PER_PFLOPS
    if pflops.denominator == 1:
        return f"{pflops.numerator} PFLOPS"
    return f"{float(pflops):.3f}".rstrip("0").rstrip(".") + " PFLOPS"


class QuotaError(Exception):
    """A charge/uncharge that would corrupt the book (double charge, unknown job, over quota)."""


@dataclass(frozen=True, slots=True)
class Shortfall:
    """One resource for which a quota cannot take the demand."""

    resource: str
    needed: int
    quota_free: int
    cohort_can_lend: int
    lent_out: int
    in_cohort: bool
    not_in_quota: bool = False

    @property
    def available(self) -> int:
        return self.quota_free + self.cohort_can_lend

    @property
    def resource_label(self) -> str:
        return class_of(self.resource) or self.resource


@dataclass(frozen=True, slots=True)
class QuotaFit:
    """The verdict of :meth:`QuotaBook.fit`: does a demand fit, and how much is borrowed."""

    quota: str
    demand: Mapping[str, int]
    shortfalls: tuple[Shortfall, ...]
    borrowing: Mapping[str, int]
    budget_needed_tflops: Fraction
    budget_free_tflops: Fraction | None

    @property
    def budget_exceeded(self) -> bool:
        return (
            self.budget_free_tflops is not None
            and self.budget_needed_tflops > self.budget_free_tflops
        )

    @property
    def fits(self) -> bool:
        return not self.shortfalls and not self.budget_exceeded

    def message(self) -> str:
        """Why it does not fit, in words a tenant understands (empty when it fits)."""
        parts: list[str] = []
        for short in self.shortfalls:
            wanted = format_amount(short.resource, short.needed)
            if short.not_in_quota:
                parts.append(
                    f"waiting for {wanted}: quota {self.quota} has no {short.resource_label}"
                )
                continue
            text = (
                f"waiting for {wanted}: quota {self.quota} has "
                f"{_format_count(short.resource, short.quota_free)} free"
            )
            if short.in_cohort:
                text += (
                    f", the cohort can lend {_format_count(short.resource, short.cohort_can_lend)}"
                )
            if short.lent_out:
                text += f" ({_format_count(short.resource, short.lent_out)} of it lent out)"
            parts.append(text)
        if self.budget_exceeded and self.budget_free_tflops is not None:
            parts.append(
                f"waiting for {_format_pflops(self.budget_needed_tflops)} of compute budget: "
                f"quota {self.quota} has {_format_pflops(self.budget_free_tflops)} left"
            )
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """What ComputeQuota status shows, per resource key, in book units."""

    used: Mapping[str, int]
    borrowed: Mapping[str, int]
    lent: Mapping[str, int]
    pending: Mapping[str, int]


class QuotaBook:
    """Usage per quota × resource, maintained only through :meth:`charge`/:meth:`uncharge`."""

    def __init__(self, quotas: Iterable[QuotaSpec], classes: Iterable[DeviceClass]) -> None:
        self._classes: dict[str, DeviceClass] = {}
        self._tflops: dict[str, Fraction] = {}
        for info in classes:
            if info.name in self._classes:
                raise SchedulingInputError(f"class {info.name} is listed twice")
            self._classes[info.name] = info
            self._tflops[info.name] = exact(info.tflops)
            if self._tflops[info.name] < 0:
                raise SchedulingInputError(f"class {info.name}: tflops must be >= 0")
        self._specs: dict[str, QuotaSpec] = {}
        self._quota_of_namespace: dict[str, str] = {}
        self._limits: dict[str, dict[str, ResourceQuota]] = {}
        for spec in quotas:
            if spec.name in self._specs:
                raise SchedulingInputError(f"quota {spec.name} is listed twice")
            self._specs[spec.name] = spec
            for namespace in sorted(spec.namespaces):
                owner = self._quota_of_namespace.setdefault(namespace, spec.name)
                if owner != spec.name:
                    raise SchedulingInputError(
                        f"quota {spec.name}: namespaces: {namespace} is already "
                        f"claimed by quota {owner}"
                    )
            limits: dict[str, ResourceQuota] = {}
            # a class not (or no longer) in the catalogue is still accounted: the quota may be
            # created before its AcceleratorClass, and running jobs outlive a deleted class
            for class_name, share in spec.devices.items():
                limits[device_resource(class_name)] = share.scaled(WHOLE_DEVICE_MILLI)
            if spec.cpu_milli is not None:
                limits[CPU] = spec.cpu_milli
            if spec.memory_bytes is not None:
                limits[MEMORY] = spec.memory_bytes
            self._limits[spec.name] = limits
        # cohort name (or the quota's own name, as a cohort of one) -> member quota names
        self._members: dict[str, tuple[str, ...]] = {}
        for name in sorted(self._specs):
            group = self._group(name)
            self._members[group] = (*self._members.get(group, ()), name)
        self._usage: dict[str, dict[str, int]] = {name: {} for name in self._specs}
        self._charges: dict[str, tuple[str, dict[str, int]]] = {}

    # --- lookups -----------------------------------------------------------------------------

    def _group(self, quota: str) -> str:
        cohort = self._specs[quota].cohort
        return f"cohort:{cohort}" if cohort is not None else f"quota:{quota}"

    def _in_cohort(self, quota: str) -> bool:
        return self._specs[quota].cohort is not None

    @property
    def quotas(self) -> Mapping[str, QuotaSpec]:
        return self._specs

    @property
    def classes(self) -> Mapping[str, DeviceClass]:
        return self._classes

    def quota_for_namespace(self, namespace: str) -> QuotaSpec | None:
        """The quota that charges jobs of ``namespace`` (the only way a quota is chosen)."""
        name = self._quota_of_namespace.get(namespace)
        return None if name is None else self._specs[name]

    def cohort_peers(self, quota: str) -> tuple[str, ...]:
        """All quotas sharing ``quota``'s cohort, itself included."""
        return self._members[self._group(quota)]

    def _spec(self, quota: str) -> QuotaSpec:
        try:
            return self._specs[quota]
        except KeyError:
            raise SchedulingInputError(f"unknown quota {quota!r}") from None

    # --- demands -----------------------------------------------------------------------------

    def demand(self, option: JobOption) -> dict[str, int]:
        """What admitting ``option`` charges: milli-devices of its class, millicores, bytes."""
        result = {device_resource(option.device_class): option.total_devices_milli}
        if option.cpu_milli_per_replica:
            result[CPU] = option.cpu_milli_per_replica * option.replicas
        if option.memory_bytes_per_replica:
            result[MEMORY] = option.memory_bytes_per_replica * option.replicas
        return result

    def job_demand(self, job: JobRequest, option_index: int) -> dict[str, int]:
        return self.demand(job.options[option_index])

    def compute_tflops(self, demand: Demand) -> Fraction:
        """Normalised compute of a demand: devices × the class's TFLOPS, exactly (a class missing
        from the catalogue counts 0: its TFLOPS are unknown)."""
        total = Fraction(0)
        for resource, amount in demand.items():
            device_class = class_of(resource)
            if device_class is not None and device_class in self._tflops:
                total += Fraction(amount, WHOLE_DEVICE_MILLI) * self._tflops[device_class]
        return total

    # --- the arithmetic ----------------------------------------------------------------------

    def used(self, quota: str, resource: str) -> int:
        return self._usage[quota].get(resource, 0)

    def nominal(self, quota: str, resource: str) -> int:
        """Nominal of ``resource`` in book units (0 if the quota does not list it)."""
        limit = self._limits[quota].get(resource)
        return 0 if limit is None else limit.nominal

    def _guaranteed(self, limit: ResourceQuota) -> int:
        lendable = limit.nominal if limit.lending_limit is None else limit.lending_limit
        return limit.nominal - lendable

    def _pool_slack(self, quota: str, resource: str) -> int:
        """Pool capacity minus members' usage above their guaranteed parts (may be negative
        only if charges were forced past the limits)."""
        slack = 0
        for member in self.cohort_peers(quota):
            limit = self._limits[member].get(resource)
            if limit is None:
                continue
            guaranteed = self._guaranteed(limit)
            slack += limit.nominal - guaranteed
            slack -= max(0, self.used(member, resource) - guaranteed)
        return slack

    def headroom(self, quota: str, resource: str) -> int | None:
        """How much more of ``resource`` the quota may take now (None: not limited)."""
        self._spec(quota)
        if class_of(resource) is None and resource not in self._limits[quota]:
            return None
        limit = self._limits[quota].get(resource)
        if limit is None:
            return 0
        used = self.used(quota, resource)
        if self._in_cohort(quota):
            own_cap: int | None = (
                None
                if limit.borrowing_limit is None
                else limit.nominal + limit.borrowing_limit - used
            )
        else:
            own_cap = limit.nominal - used
        pool_cap = max(0, self._guaranteed(limit) - used) + self._pool_slack(quota, resource)
        room = pool_cap if own_cap is None else min(own_cap, pool_cap)
        return max(0, room)

    def borrowed(self, quota: str) -> dict[str, int]:
        """Usage above nominal, per resource."""
        result = {}
        for resource, limit in self._limits[quota].items():
            over = self.used(quota, resource) - limit.nominal
            if over > 0:
                result[resource] = over
        return result

    def lent(self, quota: str) -> dict[str, int]:
        """How much of this quota's unused nominal cohort peers are using, per resource.

        The cohort's total borrowing is attributed to lenders in proportion to what each has
        free to lend (largest remainder, ties by name), so the lent amounts add up exactly to
        the borrowed amounts and never exceed a lender's lending limit.
        """
        result = {}
        for resource in self._limits[quota]:
            share = self._lent_shares(quota, resource).get(quota, 0)
            if share:
                result[resource] = share
        return result

    def _lent_shares(self, quota: str, resource: str) -> dict[str, int]:
        borrowed_total = 0
        lendable_free: dict[str, int] = {}
        for member in self.cohort_peers(quota):
            limit = self._limits[member].get(resource)
            if limit is None:
                continue
            used = self.used(member, resource)
            borrowed_total += max(0, used - limit.nominal)
            lendable = limit.nominal - self._guaranteed(limit)
            free = min(lendable, max(0, limit.nominal - used))
            if free > 0:
                lendable_free[member] = free
        supply = sum(lendable_free.values())
        if borrowed_total == 0 or supply == 0:
            return {}
        if borrowed_total >= supply:
            return lendable_free
        shares = {m: borrowed_total * free // supply for m, free in lendable_free.items()}
        remainder = borrowed_total - sum(shares.values())
        by_fraction = sorted(
            lendable_free, key=lambda m: (-(borrowed_total * lendable_free[m] % supply), m)
        )
        for member in by_fraction[:remainder]:
            shares[member] += 1
        return shares

    def compute_used_tflops(self, quota: str) -> Fraction:
        return self.compute_tflops(self._usage[quota])

    def fit(self, quota: str, demand: Demand) -> QuotaFit:
        """Would ``demand`` fit ``quota`` now, and how much of it would be borrowed?"""
        spec = self._spec(quota)
        in_cohort = self._in_cohort(quota)
        shortfalls: list[Shortfall] = []
        borrowing: dict[str, int] = {}
        for resource, amount in sorted(demand.items()):
            if amount <= 0:
                continue
            room = self.headroom(quota, resource)
            if room is None:
                continue
            limit = self._limits[quota].get(resource)
            if limit is None:
                shortfalls.append(Shortfall(resource, amount, 0, 0, 0, in_cohort, True))
                continue
            used = self.used(quota, resource)
            if amount > room:
                quota_free = min(room, max(0, limit.nominal - used))
                shortfalls.append(
                    Shortfall(
                        resource,
                        amount,
                        quota_free,
                        room - quota_free,
                        self.lent(quota).get(resource, 0),
                        in_cohort,
                    )
                )
                continue
            over = max(0, used + amount - limit.nominal) - max(0, used - limit.nominal)
            if over:
                borrowing[resource] = over
        needed = self.compute_tflops(demand)
        budget_free: Fraction | None = None
        if spec.compute_budget_pflops is not None:
            budget_free = max(
                Fraction(0),
                spec.compute_budget_pflops * _TFLOPS_PER_PFLOPS - self.compute_used_tflops(quota),
            )
        return QuotaFit(quota, dict(demand), tuple(shortfalls), borrowing, needed, budget_free)

    def explain(self, quota: str, demand: Demand) -> str:
        """Tenant-readable reason ``demand`` does not fit (empty string if it fits), e.g.
        "waiting for 16 × ascend-910b: quota team-a has 8 free, the cohort can lend 4"."""
        return self.fit(quota, demand).message()

    # --- charging ----------------------------------------------------------------------------

    def charge(self, key: str, quota: str, demand: Demand, *, force: bool = False) -> QuotaFit:
        """Record ``demand`` for job ``key``. Refuses a second charge for the same job and, unless
        ``force`` (rebuilding from jobs already running), a demand that does not fit."""
        if key in self._charges:
            raise QuotaError(f"job {key} is already charged to quota {self._charges[key][0]}")
        verdict = self.fit(quota, demand)
        if not verdict.fits and not force:
            raise QuotaError(f"job {key} does not fit quota {quota}: {verdict.message()}")
        amounts = {resource: amount for resource, amount in demand.items() if amount}
        for resource, amount in amounts.items():
            if amount < 0:
                raise QuotaError(f"job {key}: negative demand for {resource}")
        usage = self._usage[quota]
        for resource, amount in amounts.items():
            usage[resource] = usage.get(resource, 0) + amount
        self._charges[key] = (quota, amounts)
        return verdict

    def uncharge(self, key: str) -> tuple[str, dict[str, int]]:
        """Release job ``key``'s charge exactly; returns (quota, demand) so it can be restored."""
        try:
            quota, amounts = self._charges.pop(key)
        except KeyError:
            raise QuotaError(f"job {key} is not charged to any quota") from None
        usage = self._usage[quota]
        for resource, amount in amounts.items():
            remaining = usage[resource] - amount
            if remaining:
                usage[resource] = remaining
            else:
                del usage[resource]
        return quota, dict(amounts)

    def is_charged(self, key: str) -> bool:
        return key in self._charges

    def charge_of(self, key: str) -> tuple[str, Mapping[str, int]] | None:
        entry = self._charges.get(key)
        return None if entry is None else (entry[0], dict(entry[1]))

    @property
    def charged_keys(self) -> tuple[str, ...]:
        return tuple(sorted(self._charges))

    def usage(self, quota: str) -> dict[str, int]:
        return dict(self._usage[quota])

    # --- reporting ---------------------------------------------------------------------------

    def dominant_share(self, quota: str) -> Fraction:
        """DRF dominant share over weight: max over limited resources of usage divided by the
        cohort's total nominal of that resource (own nominal outside a cohort)."""
        share = Fraction(0)
        peers = self.cohort_peers(quota)
        for resource, amount in self._usage[quota].items():
            if resource not in self._limits[quota]:
                continue
            total = sum(
                self._limits[m][resource].nominal for m in peers if resource in self._limits[m]
            )
            ratio = Fraction(amount, total) if total else Fraction(amount)
            share = max(share, ratio)
        return share / self._specs[quota].weight

    def status(self, quota: str, pending: Iterable[Demand] = ()) -> QuotaStatus:
        waiting: dict[str, int] = {}
        for demand in pending:
            for resource, amount in demand.items():
                waiting[resource] = waiting.get(resource, 0) + amount
        return QuotaStatus(self.usage(quota), self.borrowed(quota), self.lent(quota), waiting)

    def violations(self) -> list[str]:
        """Every broken invariant, for tests and for the operator's self-check (empty if sound)."""
        problems = []
        totals: dict[str, dict[str, int]] = {name: {} for name in self._specs}
        for key, (quota, amounts) in self._charges.items():
            for resource, amount in amounts.items():
                if amount < 0:
                    problems.append(f"{key}: negative charge for {resource}")
                totals[quota][resource] = totals[quota].get(resource, 0) + amount
        for quota in self._specs:
            if totals[quota] != self._usage[quota]:
                problems.append(f"{quota}: usage {self._usage[quota]} != charges {totals[quota]}")
            for resource, limit in self._limits[quota].items():
                used = self.used(quota, resource)
                cap = limit.nominal
                if self._in_cohort(quota) and limit.borrowing_limit is not None:
                    cap += limit.borrowing_limit
                elif self._in_cohort(quota):
                    cap = used  # bounded by the pool check below
                if used > cap:
                    problems.append(f"{quota}: {resource} used {used} > limit {cap}")
                if self._pool_slack(quota, resource) < 0:
                    problems.append(f"{quota}: cohort pool for {resource} over-committed")
                lent = self.lent(quota).get(resource, 0)
                lendable = limit.nominal - self._guaranteed(limit)
                if lent > lendable:
                    problems.append(f"{quota}: {resource} lent {lent} > lending limit {lendable}")
            spec = self._specs[quota]
            if spec.compute_budget_pflops is not None:
                used_tflops = self.compute_used_tflops(quota)
                if used_tflops > spec.compute_budget_pflops * _TFLOPS_PER_PFLOPS:
                    problems.append(f"{quota}: compute budget exceeded ({used_tflops} TFLOPS)")
        return problems

    def copy(self) -> QuotaBook:
        """An independent book with the same charges (for what-if preemption searches)."""
        clone = copy.copy(self)
        clone._usage = {name: dict(usage) for name, usage in self._usage.items()}
        clone._charges = {key: (q, dict(a)) for key, (q, a) in self._charges.items()}
        return clone
