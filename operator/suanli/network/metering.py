"""The hub's metering: per tenant and class, the exact sum of the member quotas' metering.

Each member bills every pod exactly once into its ComputeQuota's ``status.metering``. The hub
sums, per class, the entries of the member quotas that serve the tenant's namespaces, counting
each (centre, quota) once. Sums are exact: the members' figures are read as the binary numbers
they are and added as fractions; device-seconds of whole-second pod times stay whole numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class MemberMetering:
    """One ``status.metering`` entry of a member quota."""

    centre: str
    quota: str
    accelerator_class: str
    device_seconds: float
    pflop_seconds: float


def network_metering(entries: Iterable[MemberMetering]) -> dict[str, tuple[Fraction, Fraction]]:
    """Class → (device-seconds, PFLOP-seconds), summed exactly; a repeated (centre, quota,
    class) entry is counted once (the last one read wins)."""
    unique: dict[tuple[str, str, str], MemberMetering] = {}
    for entry in entries:
        unique[(entry.centre, entry.quota, entry.accelerator_class)] = entry
    totals: dict[str, tuple[Fraction, Fraction]] = {}
    for entry in unique.values():
        devices, pflops = totals.get(entry.accelerator_class, (Fraction(0), Fraction(0)))
        totals[entry.accelerator_class] = (
            devices + Fraction(entry.device_seconds),
            pflops + Fraction(entry.pflop_seconds),
        )
    return dict(sorted(totals.items()))
