from __future__ import annotations

import pytest

from suanli.quantity import parse_quantity, to_int, to_mib, to_milli


@pytest.mark.parametrize(
    ("text", "milli"),
    [("1", 1000), ("0.5", 500), ("500m", 500), ("2k", 2_000_000), (3, 3000), ("1e3", 1_000_000)],
)
def test_cpu_in_millicores(text: str | int, milli: int) -> None:
    assert to_milli(text) == milli


@pytest.mark.parametrize(
    ("text", "mib"), [("64Gi", 65536), ("1Mi", 1), ("1M", 1), ("1537Ki", 2), ("2Ti", 2 * 2**20)]
)
def test_memory_in_mib_rounded_up(text: str, mib: int) -> None:
    assert to_mib(text) == mib


def test_counts_must_be_whole() -> None:
    assert to_int("8") == 8
    with pytest.raises(ValueError, match="whole number"):
        to_int("1.5")


def test_garbage_is_refused_naming_the_value() -> None:
    with pytest.raises(ValueError, match="'eight'"):
        parse_quantity("eight")
