"""Choosing a minimal set of running jobs to evict so that a pending job fits quota and places.

Why it is careful: eviction destroys work, so the victim set must be minimal and must never
start a cycle of jobs evicting each other. The rules:

* Inside a quota (policy ``LowerPriority``), a job may evict only strictly lower-priority jobs of
  the same quota. The victim can never evict its preemptor back (it has lower priority).
* Inside a cohort (reclaim policy ``LowerPriority`` or ``Any``), a quota may take back capacity
  others borrowed, only while it stays within its own nominal for the contested class; victims
  are jobs of quotas currently above their nominal. A quota within nominal is never a borrower,
  so the victim's quota can never reclaim from the preemptor: no thrashing.
* Candidates are tried lowest priority first, then most recently created; borrowers before the
  quota's own jobs. After a greedy pass finds a sufficient set, each victim is put back in turn
  (most recently added first) and dropped from the set if the job still fits without evicting it.

The search works on the real quota book and cluster state and restores both exactly before it
returns: victims are uncharged/released and re-charged/re-bound on the same devices; trial
placements are rolled back with ``release_gang``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from suanli.placement.model import Placement
from suanli.scheduling.gangs import PlacementState, gang_for
from suanli.scheduling.model import (
    Admission,
    JobOption,
    JobRequest,
    ReclaimPolicy,
    WithinQuotaPolicy,
)
from suanli.scheduling.quota import QuotaBook, device_resource, format_amount
from suanli.scheduling.statement import Statement


class PreemptionKind(StrEnum):
    WITHIN_QUOTA = "InQuotaPriority"
    RECLAIM = "CohortReclaim"


@dataclass(frozen=True, slots=True)
class Victim:
    admission: Admission
    quota: str
    kind: PreemptionKind
    message: str


@dataclass(frozen=True, slots=True)
class Preempt:
    """Evict ``victims`` so that ``job`` can be admitted with option ``option_index`` later."""

    job: JobRequest
    option_index: int
    quota: str
    victims: tuple[Victim, ...]

    @property
    def reason(self) -> str:
        """``InQuotaPriority``, ``CohortReclaim``, or both joined by a comma."""
        return ",".join(sorted({victim.kind.value for victim in self.victims}))


def _victim_order(candidate: tuple[Admission, str, PreemptionKind]) -> tuple[int, int, float, str]:
    admission, _, kind = candidate
    job = admission.job
    return (0 if kind is PreemptionKind.RECLAIM else 1, job.priority, -job.created, job.key)


def candidates_for(
    job: JobRequest,
    option: JobOption,
    quota: str,
    *,
    book: QuotaBook,
    admitted: Iterable[Admission],
    protected: frozenset[str] = frozenset(),
) -> list[tuple[Admission, str, PreemptionKind]]:
    """Running jobs the policies allow ``job`` to evict for ``option``, in eviction order."""
    spec = book.quotas[quota]
    resource = device_resource(option.device_class)
    demand = book.demand(option)
    limit = spec.devices.get(option.device_class)
    reclaim_allowed = (
        spec.cohort is not None
        and spec.reclaim_within_cohort is not ReclaimPolicy.NEVER
        and limit is not None
        and book.used(quota, resource) + demand[resource] <= book.nominal(quota, resource)
    )
    peers = set(book.cohort_peers(quota))
    found: list[tuple[Admission, str, PreemptionKind]] = []
    for admission in admitted:
        other = admission.job
        if other.key in protected or other.key == job.key:
            continue
        if admission.option.device_class != option.device_class:
            continue
        owner = book.quota_for_namespace(other.namespace)
        if owner is None:
            continue
        if owner.name == quota:
            if (
                spec.within_quota is WithinQuotaPolicy.LOWER_PRIORITY
                and other.priority < job.priority
            ):
                found.append((admission, quota, PreemptionKind.WITHIN_QUOTA))
        elif reclaim_allowed and owner.name in peers:
            lower = other.priority < job.priority
            if spec.reclaim_within_cohort is ReclaimPolicy.ANY or lower:
                found.append((admission, owner.name, PreemptionKind.RECLAIM))
    found.sort(key=_victim_order)
    return found


def _borrowing(book: QuotaBook, quota: str, resource: str) -> bool:
    return book.used(quota, resource) > book.nominal(quota, resource)


class _Trial:
    """Victims taken out of the real book and state through a statement, always put back."""

    def __init__(self, book: QuotaBook, state: PlacementState) -> None:
        self.book = book
        self.statement = Statement(book, state)
        self.removed: list[Admission] = []

    def remove(self, admission: Admission) -> None:
        self.statement.evict(admission)
        self.removed.append(admission)

    def restore(self, admission: Admission) -> None:
        self.statement.discard(admission.job.key)
        self.removed.remove(admission)

    def restore_all(self) -> None:
        self.statement.discard_after(0)
        self.removed.clear()

    def fits(self, job: JobRequest, option: JobOption, quota: str) -> bool:
        if not self.book.fit(quota, self.book.demand(option)).fits:
            return False
        mark = len(self.statement)
        outcome = self.statement.place(job.key, gang_for(job, option))
        self.statement.discard_after(mark)
        return isinstance(outcome, Placement)


def _message(job: JobRequest, victim: Admission, quota: str, kind: PreemptionKind) -> str:
    wanted = format_amount(
        device_resource(victim.option.device_class), victim.charged_option.total_devices_milli
    )
    if kind is PreemptionKind.WITHIN_QUOTA:
        return (
            f"preempted by {job.key} (priority {job.priority} > {victim.job.priority}) in quota "
            f"{quota} to free {wanted}; requeued"
        )
    return (
        f"preempted: quota {quota} was borrowing {victim.option.device_class} from the cohort "
        f"and the lender reclaimed it for {job.key}; requeued"
    )


def find_victims(
    job: JobRequest,
    option_index: int,
    quota: str,
    *,
    book: QuotaBook,
    state: PlacementState,
    admitted: Sequence[Admission],
    protected: frozenset[str] = frozenset(),
) -> Preempt | None:
    """A minimal victim set letting ``job`` run option ``option_index``, or None if none exists.

    ``protected`` jobs (admitted this cycle, or already chosen as victims) are never chosen.
    The book and state are unchanged on return.
    """
    option = job.options[option_index]
    candidates = candidates_for(
        job, option, quota, book=book, admitted=admitted, protected=protected
    )
    if not candidates:
        return None
    resource = device_resource(option.device_class)
    trial = _Trial(book, state)
    kinds: dict[str, tuple[str, PreemptionKind]] = {}
    try:
        if trial.fits(job, option, quota):
            return None  # nothing to evict: the caller should simply admit
        # one placement attempt rules out the common hopeless case before the greedy pass
        for admission, _, _ in candidates:
            trial.remove(admission)
        hopeless = not trial.fits(job, option, quota)
        trial.restore_all()
        if hopeless:
            return None
        sufficient = False
        for admission, owner, kind in candidates:
            if kind is PreemptionKind.RECLAIM and not _borrowing(book, owner, resource):
                continue  # that quota no longer borrows this class: evicting it reclaims nothing
            trial.remove(admission)
            kinds[admission.job.key] = (owner, kind)
            if trial.fits(job, option, quota):
                sufficient = True
                break
        if not sufficient:
            return None
        for admission in reversed(list(trial.removed)):
            trial.restore(admission)
            if trial.fits(job, option, quota):
                continue
            trial.remove(admission)
        victims = tuple(
            Victim(
                admission,
                kinds[admission.job.key][0],
                kinds[admission.job.key][1],
                _message(job, admission, *kinds[admission.job.key]),
            )
            for admission in sorted(trial.removed, key=lambda a: a.job.key)
        )
        return Preempt(job, option_index, quota, victims)
    finally:
        trial.restore_all()
