"""Which centres can take a hub job, in which order, within the tenant's hub quota.

One copy at a time (docs/network.md explains why not MultiKueue's copy-to-all): the hub checks
the job's options in order against its hub quota, keeps the centres that can take an option
now, orders them by :func:`candidates`' key and creates the copy in the first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class JobOption:
    """One accelerator option of a job: its position, class and the gang's devices in all."""

    index: int
    accelerator_class: str
    devices: int


@dataclass(frozen=True)
class CentreView:
    """A member centre as last polled by the hub.

    ``free``: class → devices not held by suanli pods. ``devices``: class → all devices.
    ``quota_room``: (namespace, class) → unused nominal devices of the member quota serving the
    namespace (absent: no member quota serves it). ``available``: the centre may take new work
    (reachable, not out of service).
    """

    name: str
    available: bool
    free: Mapping[str, int] = field(default_factory=dict)
    devices: Mapping[str, int] = field(default_factory=dict)
    quota_room: Mapping[tuple[str, str], int] = field(default_factory=dict)
    price_per_pflop_hour: float | None = None


@dataclass(frozen=True)
class Candidate:
    """A centre that can take one option of the job now."""

    centre: str
    option: JobOption
    free_after: int
    devices: int
    price_per_pflop_hour: float | None

    def key(self) -> tuple[int, int, float, float, str]:
        """Smaller is better: the tenant's option order, then price (unpriced last), then
        the most room left in the class (spreads load), then the name."""
        priced = 0 if self.price_per_pflop_hour is not None else 1
        price = self.price_per_pflop_hour or 0.0
        room = -(self.free_after / self.devices) if self.devices else 0.0
        return (self.option.index, priced, price, room, self.centre)


def charged_devices(held: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Class → devices charged to a hub quota, from (class, devices) of each dispatched,
    unfinished job of its namespaces."""
    total: dict[str, int] = {}
    for cls, devices in held:
        total[cls] = total.get(cls, 0) + devices
    return total


def options_within_quota(
    options: Sequence[JobOption], nominal: Mapping[str, int], charged: Mapping[str, int]
) -> list[JobOption]:
    """The options whose devices fit the hub quota's unused nominal devices of their class."""
    return [
        o
        for o in options
        if charged.get(o.accelerator_class, 0) + o.devices <= nominal.get(o.accelerator_class, 0)
    ]


def candidates(
    namespace: str,
    options: Sequence[JobOption],
    centres: Iterable[CentreView],
    excluded: frozenset[str] = frozenset(),
) -> list[Candidate]:
    """Every (centre, option) that could admit the job now, best first.

    A centre qualifies for an option when it is available, not in ``excluded`` (tried and
    withdrawn from in this round), has the gang's devices free in the class, and the member
    quota serving ``namespace`` has that many unused nominal devices of the class.
    """
    found: list[Candidate] = []
    for centre in centres:
        if not centre.available or centre.name in excluded:
            continue
        for option in options:
            cls = option.accelerator_class
            free = centre.free.get(cls, 0)
            room = centre.quota_room.get((namespace, cls))
            if room is None or free < option.devices or room < option.devices:
                continue
            found.append(
                Candidate(
                    centre=centre.name,
                    option=option,
                    free_after=free - option.devices,
                    devices=centre.devices.get(cls, free),
                    price_per_pflop_hour=centre.price_per_pflop_hour,
                )
            )
    return sorted(found, key=Candidate.key)


def choose(
    namespace: str,
    options: Sequence[JobOption],
    nominal: Mapping[str, int],
    charged: Mapping[str, int],
    centres: Iterable[CentreView],
    excluded: frozenset[str] = frozenset(),
) -> Candidate | None:
    """The centre and option to dispatch to now, or None (see :func:`why_not_dispatched`)."""
    allowed = options_within_quota(options, nominal, charged)
    found = candidates(namespace, allowed, centres, excluded)
    return found[0] if found else None


def why_not_dispatched(
    namespace: str,
    options: Sequence[JobOption],
    nominal: Mapping[str, int],
    charged: Mapping[str, int],
    centres: Sequence[CentreView],
    quota: str,
) -> tuple[str, str]:
    """(reason, message) for a job :func:`choose` found no centre for, in numbers."""
    allowed = options_within_quota(options, nominal, charged)
    if not allowed:
        parts = [
            f"{o.devices} × {o.accelerator_class}: hub quota {quota} has "
            f"{max(nominal.get(o.accelerator_class, 0) - charged.get(o.accelerator_class, 0), 0)}"
            f" of {nominal.get(o.accelerator_class, 0)} free"
            for o in options
        ]
        return "QuotaExceeded", "waiting for " + "; or ".join(parts)
    parts = []
    for centre in sorted(centres, key=lambda c: c.name):
        if not centre.available:
            parts.append(f"{centre.name}: not available")
            continue
        for o in allowed:
            cls = o.accelerator_class
            room = centre.quota_room.get((namespace, cls))
            if room is None:
                parts.append(f"{centre.name}: no quota serves {namespace} for {cls}")
            else:
                parts.append(
                    f"{centre.name}: {centre.free.get(cls, 0)} {cls} free, quota room {room}, "
                    f"need {o.devices}"
                )
    where = "; ".join(parts) if parts else "no ComputeCentre exists"
    return "NoCentre", f"no centre can take the job now: {where}"
