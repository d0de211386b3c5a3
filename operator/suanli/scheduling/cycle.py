"""One scheduling cycle, decided without Kubernetes: admit, wait (with a reason) or preempt.

Why a pure cycle: every decision that matters for tenants — which job goes first, which option it
gets, why it waits, whom it evicts — must be reproducible from plain inputs, so it can be tested
exhaustively and replayed after a crash. The operator feeds in the pending jobs, the admitted
ones, the quotas and the placement core's cluster state (with running pods already bound); it
gets back decisions and applies them. If applying an admission fails it calls
:func:`rollback_admission`, which undoes exactly the book charge and the gang assumption
(the cycle's :class:`~suanli.scheduling.statement.Statement` logged both).

Two passes: the first admits only what fits without borrowing (deferring the rest of a quota's
queue from its first job that would borrow), the second the deferred jobs in fair-share order
with borrowing allowed; so jobs within their quota's nominal go before borrowers in a cycle, and
a borrower is rarely admitted only to be reclaimed from in the next. Per job: try each option
in order; an option wins when its shape is legal, it fits the quota (borrowing from the cohort
if allowed) and the placement core places it (which assumes the gang into the state). If none
wins, the job waits with the most useful reason, and may preempt lower-priority or borrowing
jobs (see :mod:`suanli.scheduling.preemption`).

Bounded overtaking: the first job of a quota's queue that waits for capacity (it fits quota but
does not place) or for its own quota (it needs no more than the nominal) counts how many later
jobs competing for the same device class were admitted past it — any quota's jobs for capacity,
its own quota's jobs for quota — across cycles (the caller passes ``CycleResult.overtaken``
back in). Once that reaches ``max_overtakes`` the job reserves the class (cluster-wide for
capacity, inside its quota for quota): later jobs may not take it until the job runs. This is
what keeps a 16-device gang from starving behind a stream of 1-device jobs. Shapes that could
never fit (more devices than the class has, more than the nominal) never reserve anything.

No preemption while capacity is on its way back: ``releasing`` names the device classes whose
chips are still held by pods of jobs that no longer hold an admission (evicted a cycle ago, and
their pods not yet stopped). A job waiting for such a class does not evict anyone else for it
until those pods are gone; it waits, and its message says so. Without this rule the cycle after
an eviction still sees the victims' chips in use, and evicts a second job for the same room.
Kueue has the same rule: a workload that preempted waits for its targets to finish.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from suanli.placement.model import DeviceClass, Failure, FailureReason, Placement, check_shape
from suanli.reasons import Reason
from suanli.scheduling.gangs import PlacementState, gang_for
from suanli.scheduling.model import (
    Admission,
    JobOption,
    JobRequest,
    QuotaSpec,
    SchedulingInputError,
)
from suanli.scheduling.preemption import Preempt, find_victims
from suanli.scheduling.queue import SchedulingQueue
from suanli.scheduling.quota import QuotaBook, QuotaStatus, device_resource
from suanli.scheduling.statement import Statement


@dataclass(frozen=True, slots=True)
class Admit:
    """Admit ``job`` with option ``option_index`` on ``placement``; ``borrowed`` is the part of
    its charge above the quota's nominal (book units, per resource)."""

    job: JobRequest
    option_index: int
    quota: str
    placement: Placement
    borrowed: Mapping[str, int]

    @property
    def admission(self) -> Admission:
        return Admission(self.job, self.option_index, self.placement)


@dataclass(frozen=True, slots=True)
class Wait:
    """``job`` stays queued. ``position`` is 1-based inside its quota's queue (0: no quota)."""

    job: JobRequest
    quota: str | None
    reason: Reason
    message: str
    position: int
    overtaken: int = 0


Decision = Admit | Wait | Preempt


@dataclass(frozen=True, slots=True)
class CycleConfig:
    max_overtakes: int = 8
    preemption: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.max_overtakes, int) or self.max_overtakes < 0:
            raise SchedulingInputError(
                f"max_overtakes must be a non-negative integer, got {self.max_overtakes!r}"
            )


@dataclass(slots=True)
class CycleResult:
    decisions: list[Decision]
    book: QuotaBook
    overtaken: dict[str, int]
    positions: dict[str, int]
    pending_demand: dict[str, list[dict[str, int]]] = field(default_factory=dict)
    statement: Statement | None = None
    """The cycle's assumptions: ``discard(job key)`` undoes one admission (charge and gang)."""
    placement_seconds: list[tuple[str, float]] = field(default_factory=list)
    """(device class, seconds) of every call into the placement core, for its latency metric."""

    @property
    def admitted(self) -> list[Admit]:
        return [d for d in self.decisions if isinstance(d, Admit)]

    @property
    def waiting(self) -> list[Wait]:
        return [d for d in self.decisions if isinstance(d, Wait)]

    @property
    def preemptions(self) -> list[Preempt]:
        return [d for d in self.decisions if isinstance(d, Preempt)]

    def decision_for(self, key: str) -> Decision | None:
        """The Admit or Wait for a job (a preempting job has a Wait with reason Preempting)."""
        for decision in self.decisions:
            if not isinstance(decision, Preempt) and decision.job.key == key:
                return decision
        return None

    def quota_status(self, quota: str) -> QuotaStatus:
        """Used/borrowed/lent after this cycle's admissions, plus what still waits."""
        return self.book.status(quota, self.pending_demand.get(quota, ()))


@dataclass(slots=True)
class _Attempt:
    """What happened to each option of one job."""

    # a quota note is kept as (quota, demand) and worded when the cycle ends, so the numbers
    # tenants read include admissions decided after this job (e.g. in the borrowing pass)
    notes: list[str | tuple[str, dict[str, int]]] = field(default_factory=list)
    quota_exceeded: bool = False
    unschedulable: bool = False
    reserved_by: str | None = None
    illegal: bool = False
    invalid: bool = False
    # classes this job would get if capacity (resp. its own quota) were freed; only shapes that
    # can fit at all are listed, so a reservation for them cannot block forever
    waits_for_capacity: set[str] = field(default_factory=set)
    waits_for_quota: set[str] = field(default_factory=set)

    def reason(self) -> Reason:
        if self.unschedulable:
            return Reason.UNSCHEDULABLE
        if self.reserved_by is not None:
            return Reason.RESERVED_FOR_OLDER_JOB
        if self.quota_exceeded:
            return Reason.QUOTA_EXCEEDED
        if self.illegal:
            return Reason.ILLEGAL_SHAPE
        return Reason.INVALID_REQUEST


_DEFER = object()
"""Returned by ``_Cycle._try_option`` for an option that fits only by borrowing, in pass 1."""


@dataclass(slots=True)
class _StarvingHead:
    """The first job of a quota's queue that waits for capacity or quota it will eventually get."""

    key: str
    quota: str
    capacity_classes: set[str]
    quota_classes: set[str]

    def overtaken_by(self, quota: str, device_class: str) -> bool:
        return device_class in self.capacity_classes or (
            quota == self.quota and device_class in self.quota_classes
        )


def build_book(
    quotas: Iterable[QuotaSpec], classes: Iterable[DeviceClass], admitted: Iterable[Admission]
) -> QuotaBook:
    """A quota book charged with every admitted job (forced: they already run)."""
    book = QuotaBook(quotas, classes)
    for admission in admitted:
        spec = book.quota_for_namespace(admission.job.namespace)
        if spec is None:
            continue  # its quota was deleted: it no longer counts against anyone
        book.charge(admission.job.key, spec.name, book.demand(admission.charged_option), force=True)
    return book


def rollback_admission(result: CycleResult, admit: Admit) -> None:
    """Undo one Admit after applying it failed: exactly its charge and its assumed gang."""
    if result.statement is None or not result.statement.discard(admit.job.key):
        raise SchedulingInputError(f"job {admit.job.key} has no assumption to roll back")


def _replicas_fitting_quota(
    book: QuotaBook, quota: str, job: JobRequest, option: JobOption
) -> int | None:
    """Most replicas (down to the job's minimum) whose demand fits the quota, or None."""
    if book.fit(quota, book.demand(option)).fits:
        return option.replicas
    if job.min_replicas is None:
        return None
    low, high = min(job.min_replicas, option.replicas), option.replicas - 1
    if not book.fit(quota, book.demand(replace(option, replicas=low))).fits:
        return None
    while low < high:  # demand grows with replicas, so the fitting counts are a prefix
        middle = (low + high + 1) // 2
        if book.fit(quota, book.demand(replace(option, replicas=middle))).fits:
            low = middle
        else:
            high = middle - 1
    return low


class _Cycle:
    def __init__(
        self,
        *,
        pending: Sequence[JobRequest],
        admitted: Sequence[Admission],
        book: QuotaBook,
        classes: Mapping[str, DeviceClass],
        state: PlacementState,
        overtaken: Mapping[str, int],
        config: CycleConfig,
        releasing: Mapping[str, int],
    ) -> None:
        self.releasing = releasing
        self.pending = pending
        self.admitted = list(admitted)
        self.book = book
        self.classes = classes
        self.state = state
        self.overtaken = {job.key: overtaken.get(job.key, 0) for job in pending}
        self.config = config
        self.decisions: list[Decision] = []
        self.starving: list[_StarvingHead] = []
        self.capacity_reservations: dict[str, str] = {}  # device class -> reserving job
        self.quota_reservations: dict[tuple[str, str], str] = {}  # (quota, class) -> job
        self.protected: set[str] = set()
        self.notes: dict[str, list[str | tuple[str, dict[str, int]]]] = {}
        self.order: dict[str, int] = {}  # job key -> position in this cycle's queue order
        self.quotas_with_head: set[str] = set()
        self.quotas_that_preempted: set[str] = set()
        self.pending_demand: dict[str, list[dict[str, int]]] = {}
        self.statement = Statement(book, state)
        self.placement_seconds: list[tuple[str, float]] = []
        self.total_devices = {
            name: summary.total_devices for name, summary in state.capacity_summary().items()
        }

    def run(self) -> CycleResult:
        by_quota: dict[str, list[JobRequest]] = {}
        admitted_keys = {a.job.key for a in self.admitted}
        seen: set[str] = set()
        for job in self.pending:
            if job.key in admitted_keys:
                raise SchedulingInputError(f"job {job.key} is both pending and admitted")
            if job.key in seen:
                raise SchedulingInputError(f"job {job.key} is pending twice")
            seen.add(job.key)
            spec = self.book.quota_for_namespace(job.namespace)
            if spec is None:
                self.decisions.append(
                    Wait(
                        job,
                        None,
                        Reason.NO_QUOTA,
                        f"namespace {job.namespace} is not covered by any ComputeQuota",
                        0,
                    )
                )
                continue
            by_quota.setdefault(spec.name, []).append(job)
        queue = SchedulingQueue(by_quota, self.book.dominant_share)
        positions = queue.positions()
        # pass 1 admits only what fits without borrowing (as Kueue does), so a lender's own
        # jobs are not pushed out within a cycle by borrowers it would reclaim from next cycle;
        # pass 2 considers the deferred jobs again, in fair-share order, borrowing allowed. Once
        # a quota has a deferred job, its later jobs are deferred too: inside a quota the
        # priority order stands (else the borrower would evict them next cycle)
        deferred: dict[str, list[JobRequest]] = {}
        while (item := queue.pop()) is not None:
            quota, job = item
            self.order[job.key] = len(self.order)
            if quota in deferred or not self._consider(
                quota, job, positions[job.key], queue, may_borrow=False
            ):
                deferred.setdefault(quota, []).append(job)
        second = SchedulingQueue(deferred, self.book.dominant_share)
        while (item := second.pop()) is not None:
            quota, job = item
            self._consider(quota, job, positions[job.key], second, may_borrow=True)
        # overtaking counted after a job's Wait was written is part of this cycle's answer too
        self.decisions = [
            replace(d, overtaken=self.overtaken[d.job.key], message=self._message(d))
            if isinstance(d, Wait)
            else d
            for d in self.decisions
        ]
        overtaken = {
            d.job.key: d.overtaken for d in self.decisions if isinstance(d, Wait) and d.overtaken
        }
        return CycleResult(
            self.decisions,
            self.book,
            overtaken,
            positions,
            self.pending_demand,
            self.statement,
            self.placement_seconds,
        )

    def _consider(
        self,
        quota: str,
        job: JobRequest,
        position: int,
        queue: SchedulingQueue,
        *,
        may_borrow: bool,
    ) -> bool:
        """Decide one job; False when it was deferred because its first workable option needs
        to borrow and borrowing is not allowed yet."""
        attempt = _Attempt()
        for index, option in enumerate(job.options):
            placement = self._try_option(quota, job, option, attempt, may_borrow=may_borrow)
            if placement is _DEFER:
                return False
            if isinstance(placement, Placement):
                # the core saw a one-option gang; record the job's own option index
                placement = replace(placement, option_index=index)
                self._admit(quota, job, index, placement, queue)
                return True
        self._record_pending(quota, job)
        if (attempt.waits_for_capacity or attempt.waits_for_quota) and (
            quota not in self.quotas_with_head
        ):
            self.quotas_with_head.add(quota)
            head = _StarvingHead(
                job.key, quota, attempt.waits_for_capacity, attempt.waits_for_quota
            )
            self.starving.append(head)
            if self.overtaken[job.key] >= self.config.max_overtakes:
                self._reserve(head)
        # like Kueue, only the first waiting job of a quota (its highest priority) may preempt:
        # one search per quota per cycle, and no lower-priority job evicts on its behalf
        may_preempt = quota not in self.quotas_that_preempted and (
            attempt.unschedulable or attempt.quota_exceeded
        )
        if may_preempt:
            self.quotas_that_preempted.add(quota)
        if self.config.preemption and may_preempt:
            plan = self._preempt(quota, job, attempt)
            if plan is not None:
                self.decisions.append(plan)
                names = ", ".join(v.admission.job.key for v in plan.victims)
                self.decisions.append(
                    Wait(
                        job,
                        quota,
                        Reason.PREEMPTING,
                        f"preempting {len(plan.victims)} job(s) to make room: {names}",
                        position,
                        self.overtaken[job.key],
                    )
                )
                return True
        self.notes[job.key] = attempt.notes
        self.decisions.append(
            Wait(job, quota, attempt.reason(), "", position, self.overtaken[job.key])
        )
        return True

    def _message(self, wait: Wait) -> str:
        notes = self.notes.get(wait.job.key)
        if notes is None:
            return wait.message
        return " | ".join(
            note if isinstance(note, str) else self.book.explain(*note) for note in notes
        )

    def _reserve(self, head: _StarvingHead) -> None:
        for device_class in sorted(head.capacity_classes):
            self.capacity_reservations.setdefault(device_class, head.key)
        for device_class in sorted(head.quota_classes):
            self.quota_reservations.setdefault((head.quota, device_class), head.key)

    def _reserved_by(self, quota: str, job: JobRequest, device_class: str) -> str | None:
        """The older job holding ``device_class`` against ``job`` (reservations bind only jobs
        after the holder in queue order)."""
        for holder in (
            self.capacity_reservations.get(device_class),
            self.quota_reservations.get((quota, device_class)),
        ):
            if holder is not None and self.order[holder] < self.order[job.key]:
                return holder
        return None

    def _record_pending(self, quota: str, job: JobRequest) -> None:
        for option in job.options:
            if option.device_class in self.classes:
                self.pending_demand.setdefault(quota, []).append(self.book.demand(option))
                return

    def _try_option(
        self, quota: str, job: JobRequest, option: JobOption, attempt: _Attempt, *, may_borrow: bool
    ) -> Placement | object | None:
        label = option.describe()
        device_class = self.classes.get(option.device_class)
        if device_class is None:
            attempt.invalid = True
            attempt.notes.append(
                f"{label}: device class {option.device_class} is not in the catalogue"
            )
            return None
        problem = check_shape(
            device_class, option.devices_per_replica, option.replicas, option.milli
        )
        if problem is not None:
            attempt.illegal = True
            attempt.notes.append(f"{label}: {problem}")
            return None
        holder = self._reserved_by(quota, job, option.device_class)
        if holder is not None:
            attempt.reserved_by = holder
            attempt.notes.append(
                f"{label}: {option.device_class} is held for {holder}, which is older and has "
                f"been overtaken {self.overtaken.get(holder, 0)} times"
            )
            return None
        replicas = _replicas_fitting_quota(self.book, quota, job, option)
        demand = self.book.demand(option)
        if replicas is None:
            attempt.quota_exceeded = True
            attempt.notes.append((quota, demand))
            resource = device_resource(option.device_class)
            if demand[resource] <= self.book.nominal(quota, resource):
                attempt.waits_for_quota.add(option.device_class)
            return None
        if not may_borrow:
            granted = self.book.demand(replace(option, replicas=replicas))
            if self.book.fit(quota, granted).borrowing:
                return _DEFER
        started = time.perf_counter()
        outcome = self.statement.place(job.key, gang_for(job, replace(option, replicas=replicas)))
        self.placement_seconds.append((option.device_class, time.perf_counter() - started))
        if isinstance(outcome, Failure):
            if outcome.reason is FailureReason.ILLEGAL_SHAPE:
                attempt.illegal = True
            else:
                attempt.unschedulable = True
                wanted = option.devices_per_replica * option.replicas
                if wanted <= self.total_devices.get(option.device_class, 0):
                    attempt.waits_for_capacity.add(option.device_class)
            attempt.notes.append(f"{label}: {outcome.message}")
            return None
        return outcome

    def _admit(
        self, quota: str, job: JobRequest, index: int, placement: Placement, queue: SchedulingQueue
    ) -> None:
        option = replace(job.options[index], replicas=len(placement.replicas))
        try:
            verdict = self.statement.charge(job.key, quota, self.book.demand(option))
        except Exception:
            self.statement.discard(job.key)
            raise
        self.decisions.append(Admit(job, index, quota, placement, dict(verdict.borrowing)))
        self.admitted.append(Admission(job, index, placement))
        self.protected.add(job.key)
        queue.refresh_share(quota)
        for head in self.starving:
            later = self.order[head.key] < self.order[job.key]
            if later and head.overtaken_by(quota, option.device_class):
                self.overtaken[head.key] += 1
                if self.overtaken[head.key] >= self.config.max_overtakes:
                    self._reserve(head)

    def _preempt(self, quota: str, job: JobRequest, attempt: _Attempt) -> Preempt | None:
        for index, option in enumerate(job.options):
            if option.device_class not in self.classes:
                continue
            if self._reserved_by(quota, job, option.device_class) is not None:
                continue
            coming = self.releasing.get(option.device_class, 0)
            if coming > 0:
                attempt.notes.append(
                    f"no preemption for {option.device_class} while {coming} of its devices "
                    "are still being released by jobs that no longer hold them"
                )
                continue
            plan = find_victims(
                job,
                index,
                quota,
                book=self.book,
                state=self.state,
                admitted=self.admitted,
                protected=frozenset(self.protected),
            )
            if plan is not None and plan.victims:
                for victim in plan.victims:
                    self.protected.add(victim.admission.job.key)
                return plan
        return None


def run_cycle(
    pending: Sequence[JobRequest],
    admitted: Sequence[Admission],
    quotas: Iterable[QuotaSpec],
    classes: Iterable[DeviceClass],
    state: PlacementState,
    *,
    overtaken: Mapping[str, int] | None = None,
    config: CycleConfig | None = None,
    releasing: Mapping[str, int] | None = None,
) -> CycleResult:
    """Decide one cycle. ``state`` must already hold the admitted jobs' pods (bound under the
    keys of :func:`suanli.scheduling.gangs.pod_key`); admissions are assumed into it and charged
    into the returned book. Pass ``result.overtaken`` to the next cycle. ``releasing``: device
    class -> devices still held by pods no admission covers (no preemption for those classes)."""
    catalogue = {device_class.name: device_class for device_class in classes}
    book = build_book(quotas, catalogue.values(), admitted)
    cycle = _Cycle(
        pending=pending,
        admitted=admitted,
        book=book,
        classes=catalogue,
        state=state,
        overtaken=overtaken or {},
        config=config or CycleConfig(),
        releasing=releasing or {},
    )
    return cycle.run()
