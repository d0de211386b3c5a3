"""Every change one scheduling cycle makes to the quota book and the placement state, in order.

Why a statement (Volcano's ``framework/statement.go``, Kueue's assume/forget): a cycle decides
many admissions against one book and one long-lived placement state before anything is written
to the API server. When applying an admission fails, exactly that admission must be undone —
its charge and its assumed gang — and nothing else; when a preemption search tries victims, it
must leave the book and state exactly as it found them. So during a cycle the statement is the
only writer of both: each operation is logged under the job it belongs to with its inverse, and
``discard`` runs a job's inverses newest first. ``commit`` forgets the log (the changes stay).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from suanli.placement.model import Failure, Gang, Placement
from suanli.scheduling.gangs import PlacementState, bind_admission, release_admission
from suanli.scheduling.model import Admission
from suanli.scheduling.quota import Demand, QuotaBook, QuotaFit


@dataclass(frozen=True, slots=True)
class _Operation:
    key: str
    what: str
    undo: Callable[[], None]


class Statement:
    """The log of one cycle's assumptions; ``book`` and ``state`` are the real ones."""

    def __init__(self, book: QuotaBook, state: PlacementState) -> None:
        self.book = book
        self.state = state
        self._log: list[_Operation] = []

    # --- assuming ------------------------------------------------------------------------------
    def place(self, key: str, gang: Gang) -> Placement | Failure:
        """Ask the core to place ``gang``; a placement is assumed into the state until undone."""
        outcome = self.state.place(gang)
        if isinstance(outcome, Placement):
            gang_id = outcome.gang_id
            self._log.append(_Operation(key, "place", lambda: self.state.release_gang(gang_id)))
        return outcome

    def charge(self, key: str, quota: str, demand: Demand) -> QuotaFit:
        verdict = self.book.charge(key, quota, demand)
        self._log.append(_Operation(key, "charge", lambda: self._uncharge(key)))
        return verdict

    def evict(self, admission: Admission) -> None:
        """Take a running job out of book and state (a preemption trial), restorably."""
        key = admission.job.key
        quota, amounts = self.book.uncharge(key)
        release_admission(self.state, admission)

        def restore() -> None:
            bind_admission(self.state, admission)
            self.book.charge(key, quota, amounts, force=True)

        self._log.append(_Operation(key, "evict", restore))

    def _uncharge(self, key: str) -> None:
        self.book.uncharge(key)

    # --- undoing -------------------------------------------------------------------------------
    def discard(self, key: str) -> int:
        """Undo every logged operation of job ``key``, newest first; returns how many."""
        undone = 0
        for index in range(len(self._log) - 1, -1, -1):
            operation = self._log[index]
            if operation.key == key:
                del self._log[index]
                operation.undo()
                undone += 1
        return undone

    def discard_after(self, mark: int) -> None:
        """Undo everything logged since ``mark`` (a ``len(statement)`` taken earlier)."""
        while len(self._log) > mark:
            self._log.pop().undo()

    def commit(self, key: str) -> None:
        """Keep job ``key``'s changes: they can no longer be discarded."""
        self._log = [operation for operation in self._log if operation.key != key]

    def pending(self, key: str) -> tuple[str, ...]:
        """What is logged for ``key`` (for tests and logs): e.g. ("place", "charge")."""
        return tuple(op.what for op in self._log if op.key == key)

    def __len__(self) -> int:
        return len(self._log)
