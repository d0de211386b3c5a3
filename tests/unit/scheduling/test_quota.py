"""QuotaBook: nominal, cohort borrowing and lending limits, budgets, exact charge/uncharge."""

from __future__ import annotations

from fractions import Fraction

import pytest

from suanli.scheduling.model import JobOption, ResourceQuota, SchedulingInputError
from suanli.scheduling.quota import (
    CPU,
    MEMORY,
    QuotaBook,
    QuotaError,
    device_resource,
)

from .helpers import CLASSES, ascend, h100, milli, quota

ASC = device_resource("ascend-910b")
GPU = device_resource("nvidia-h100")


def test_standalone_quota_fits_up_to_nominal_and_not_beyond() -> None:
    book = QuotaBook([quota("team-a", ascend=8)], CLASSES)
    assert book.fit("team-a", book.demand(ascend(8))).fits
    book.charge("team-a/j1", "team-a", book.demand(ascend(4)))
    verdict = book.fit("team-a", book.demand(ascend(8)))
    assert not verdict.fits
    assert verdict.message() == "waiting for 8 × ascend-910b: quota team-a has 4 free"


def test_message_names_quota_free_and_what_the_cohort_can_lend() -> None:
    book = QuotaBook(
        [
            quota("team-a", ascend=8, cohort="lab"),
            quota("team-b", ascend=ResourceQuota(8, lending_limit=4), cohort="lab"),
        ],
        CLASSES,
    )
    assert (
        book.explain("team-a", book.demand(ascend(8, replicas=2)))
        == "waiting for 16 × ascend-910b: quota team-a has 8 free, the cohort can lend 4"
    )
    assert book.headroom("team-a", ASC) == milli(12)


def test_borrowing_within_the_cohort_is_reported_and_counted() -> None:
    book = QuotaBook(
        [quota("team-a", ascend=8, cohort="lab"), quota("team-b", ascend=8, cohort="lab")],
        CLASSES,
    )
    verdict = book.charge("team-a/big", "team-a", book.demand(ascend(8, replicas=2)))
    assert verdict.fits
    assert verdict.borrowing == {ASC: milli(8)}
    assert book.borrowed("team-a") == {ASC: milli(8)}
    assert book.lent("team-b") == {ASC: milli(8)}
    # team-b's nominal is fully lent: it cannot take even one device without a reclaim
    assert book.headroom("team-b", ASC) == 0
    assert "8 of it lent out" in book.explain("team-b", book.demand(ascend(1)))
    assert book.violations() == []


def test_borrowing_limit_caps_what_a_quota_takes_from_the_cohort() -> None:
    book = QuotaBook(
        [
            quota("team-a", ascend=ResourceQuota(8, borrowing_limit=2), cohort="lab"),
            quota("team-b", ascend=16, cohort="lab"),
        ],
        CLASSES,
    )
    assert book.headroom("team-a", ASC) == milli(10)
    verdict = book.fit("team-a", book.demand(ascend(4, replicas=3)))
    assert not verdict.fits
    assert verdict.message().endswith("quota team-a has 8 free, the cohort can lend 2")


def test_lending_limit_keeps_the_rest_of_the_nominal_for_its_owner() -> None:
    book = QuotaBook(
        [
            quota("team-a", ascend=0, cohort="lab"),
            quota("team-b", ascend=ResourceQuota(8, lending_limit=4), cohort="lab"),
        ],
        CLASSES,
    )
    assert book.headroom("team-a", ASC) == milli(4)
    book.charge("team-a/j", "team-a", book.demand(ascend(4)))
    assert book.headroom("team-a", ASC) == 0
    assert book.headroom("team-b", ASC) == milli(4)
    book.charge("team-b/j", "team-b", book.demand(ascend(4)))
    assert book.lent("team-b") == {ASC: milli(4)}
    with pytest.raises(QuotaError, match="does not fit quota team-b"):
        book.charge("team-b/k", "team-b", book.demand(ascend(1)))
    assert book.violations() == []


def test_lent_amounts_add_up_to_borrowed_amounts_across_lenders() -> None:
    book = QuotaBook(
        [
            quota("a", ascend=0, cohort="lab"),
            quota("b", ascend=3, cohort="lab"),
            quota("c", ascend=3, cohort="lab"),
            quota("d", ascend=1, cohort="lab"),
        ],
        CLASSES,
    )
    book.charge("a/j", "a", book.demand(JobOption("ascend-910b", 1, 5)))
    lent = {name: book.lent(name).get(ASC, 0) for name in "bcd"}
    assert sum(lent.values()) == book.borrowed("a")[ASC] == milli(5)
    assert all(lent[name] <= milli(n) for name, n in zip("bcd", (3, 3, 1), strict=True))
    assert lent["b"] == lent["c"]


def test_no_cohort_means_no_borrowing() -> None:
    book = QuotaBook([quota("solo", ascend=ResourceQuota(4, borrowing_limit=100))], CLASSES)
    assert book.headroom("solo", ASC) == milli(4)
    assert book.explain("solo", book.demand(ascend(8))) == (
        "waiting for 8 × ascend-910b: quota solo has 4 free"
    )


def test_a_class_missing_from_the_quota_cannot_be_used() -> None:
    book = QuotaBook([quota("team-a", ascend=8)], CLASSES)
    verdict = book.fit("team-a", book.demand(h100(1)))
    assert not verdict.fits
    assert verdict.message() == "waiting for 1 × nvidia-h100: quota team-a has no nvidia-h100"


def test_compute_budget_in_pflops_is_exact() -> None:
    book = QuotaBook([quota("team-a", h100=16, compute_budget_pflops=Fraction(8))], CLASSES)
    # 8 × 989.5 TFLOPS = 7.916 PFLOPS fits; one more device would be 8.9055 PFLOPS
    book.charge("team-a/eight", "team-a", book.demand(h100(8)))
    assert book.compute_used_tflops("team-a") == Fraction(7916)
    verdict = book.fit("team-a", book.demand(h100(1)))
    assert not verdict.fits
    assert verdict.message() == (
        "waiting for 0.99 PFLOPS of compute budget: quota team-a has 0.084 PFLOPS left"
    )


def test_cpu_and_memory_limits_apply_when_set() -> None:
    gib = 1 << 30
    book = QuotaBook(
        [
            quota(
                "team-a",
                ascend=16,
                cpu_milli=ResourceQuota(32_000),
                memory_bytes=ResourceQuota(256 * gib),
            )
        ],
        CLASSES,
    )
    option = JobOption("ascend-910b", 8, 1, cpu_milli_per_replica=48_000)
    assert book.explain("team-a", book.demand(option)) == (
        "waiting for 48 CPU: quota team-a has 32 CPU free"
    )
    option = JobOption("ascend-910b", 8, 2, memory_bytes_per_replica=200 * gib)
    assert "waiting for 400 GiB memory" in book.explain("team-a", book.demand(option))
    unlimited = QuotaBook([quota("team-b", ascend=16)], CLASSES)
    assert unlimited.headroom("team-b", CPU) is None
    assert unlimited.headroom("team-b", MEMORY) is None


def test_charge_and_uncharge_are_exact_and_refuse_double_counting() -> None:
    book = QuotaBook(
        [quota("team-a", ascend=8, cohort="lab"), quota("team-b", ascend=8, cohort="lab")],
        CLASSES,
    )
    before = (book.usage("team-a"), book.lent("team-b"))
    demand = book.demand(ascend(4, replicas=3))
    book.charge("team-a/j", "team-a", demand)
    with pytest.raises(QuotaError, match="already charged"):
        book.charge("team-a/j", "team-a", demand)
    assert book.uncharge("team-a/j") == ("team-a", demand)
    assert (book.usage("team-a"), book.lent("team-b")) == before
    with pytest.raises(QuotaError, match="not charged"):
        book.uncharge("team-a/j")


def test_forced_charges_are_recorded_and_flagged() -> None:
    book = QuotaBook([quota("team-a", ascend=4)], CLASSES)
    book.charge("team-a/old", "team-a", book.demand(ascend(8)), force=True)
    assert book.used("team-a", ASC) == milli(8)
    assert any("used 8000 > limit 4000" in problem for problem in book.violations())


def test_copy_is_independent() -> None:
    book = QuotaBook([quota("team-a", ascend=8)], CLASSES)
    clone = book.copy()
    clone.charge("team-a/j", "team-a", clone.demand(ascend(8)))
    assert book.used("team-a", ASC) == 0
    assert clone.used("team-a", ASC) == milli(8)


def test_dominant_share_uses_the_largest_resource_and_the_weight() -> None:
    book = QuotaBook(
        [
            quota("a", ascend=8, h100=8, cohort="lab"),
            quota("b", ascend=8, h100=8, cohort="lab", weight=Fraction(2)),
        ],
        CLASSES,
    )
    book.charge("a/j", "a", book.demand(ascend(4)))
    book.charge("b/j", "b", book.demand(ascend(4)))
    book.charge("b/k", "b", book.demand(h100(8)))
    assert book.dominant_share("a") == Fraction(4, 16)
    assert book.dominant_share("b") == Fraction(8, 16) / 2


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: ResourceQuota(4, lending_limit=8), "lending_limit"),
        (lambda: ResourceQuota(-1), "nominal"),
        (lambda: QuotaBook([quota("a", ascend=1), quota("b", namespaces=["a"])], CLASSES), "a"),
        (lambda: QuotaBook([quota("a", ascend=1), quota("a", ascend=1)], CLASSES), "a"),
        (lambda: JobOption("ascend-910b", 0, 1), "devices_per_replica"),
        (lambda: JobOption("ascend-910b", 1, 1, milli=0), "milli"),
        (lambda: quota("a", weight=Fraction(0)), "weight"),
    ],
)
def test_bad_input_is_rejected_naming_the_field(build: object, field: str) -> None:
    with pytest.raises(SchedulingInputError, match=field):
        build()  # type: ignore[operator]


def test_a_class_missing_from_the_catalogue_is_still_accounted() -> None:
    """A quota may be created before its AcceleratorClass, and running jobs outlive a deleted
    class: neither may wedge the book; usage of such a class still counts against the quota."""
    from suanli.scheduling.model import QuotaSpec

    spec = QuotaSpec("team-a", frozenset({"team-a"}), {"tpu-v5": ResourceQuota(4)})
    book = QuotaBook([spec], CLASSES)
    demand = book.demand(JobOption("tpu-v5", 4, 1))
    book.charge("team-a/old", "team-a", demand)
    assert book.used("team-a", device_resource("tpu-v5")) == milli(4)
    assert book.compute_tflops(demand) == 0
    assert book.explain("team-a", demand) == "waiting for 4 × tpu-v5: quota team-a has 0 free"
