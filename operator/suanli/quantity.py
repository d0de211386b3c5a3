"""Kubernetes resource quantities as exact integers.

The scheduler counts CPU in millicores and memory in MiB (rounded up), as the Alibaba trace and
the placement core do. Parsing here is exact (``Decimal``), so "0.5", "500m" and "1/2 core" written
any way the API server accepts all become 500 — nothing is lost to floating point.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def parse_quantity(value: str | int | float) -> Decimal:
    """The quantity's value in base units (cores, bytes, devices)."""
    if isinstance(value, int | float):
        return Decimal(str(value))
    text = value.strip()
    for suffix, factor in _BINARY.items():
        if text.endswith(suffix):
            return _number(text[: -len(suffix)], value) * factor
    if "e" in text.lower() and not text.lower().endswith("e"):
        return _number(text, value)
    suffix = text[-1:] if text[-1:] in _DECIMAL else ""
    number = text[: -len(suffix)] if suffix else text
    return _number(number, value) * _DECIMAL[suffix]


def _number(text: str, original: object) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"{original!r} is not a Kubernetes quantity") from exc


def to_milli(value: str | int | float) -> int:
    """CPU (or any quantity) in thousandths, rounded up as the kubelet does."""
    return math.ceil(parse_quantity(value) * 1000)


def to_mib(value: str | int | float) -> int:
    """Memory in MiB, rounded up."""
    return math.ceil(parse_quantity(value) / (2**20))


def to_int(value: str | int | float) -> int:
    """A count (pods, devices): must be a whole number."""
    number = parse_quantity(value)
    if number != number.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)
