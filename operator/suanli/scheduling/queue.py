"""The order in which pending jobs are considered: priority, then fair share, then age.

Why this shape: inside one quota all jobs share the same fair share, so each quota's queue is a
static sort by (priority, age). Across quotas the order depends on fair share, which changes as
jobs are admitted during a cycle; so the global order is a merge of the per-quota queues that
re-reads each quota's dominant share (DRF, divided by the quota's weight) every time it picks
the next job. That is exactly a global sort by (−priority, share, creation time, key) in which
the shares are always current, at the cost of one comparison per quota per pick.

Bounded overtaking (anti-starvation) is decided in :mod:`suanli.scheduling.cycle`, which knows
whether a job failed for quota or for capacity; this module only provides the order and the
per-quota positions shown in job status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from fractions import Fraction

from suanli.scheduling.model import JobRequest

QuotaOrderKey = tuple[int, float, str]


def quota_order_key(job: JobRequest) -> QuotaOrderKey:
    """Order inside one quota: higher priority first, then older, then by key (determinism)."""
    return (-job.priority, job.created, job.key)


class SchedulingQueue:
    """Merge of per-quota queues; :meth:`pop` returns the job to consider next."""

    def __init__(
        self,
        jobs_by_quota: Mapping[str, Iterable[JobRequest]],
        share_of: Callable[[str], Fraction],
    ) -> None:
        self._queues: dict[str, list[JobRequest]] = {
            quota: sorted(jobs, key=quota_order_key) for quota, jobs in jobs_by_quota.items()
        }
        self._cursor: dict[str, int] = dict.fromkeys(self._queues, 0)
        self._share_of = share_of
        self._shares: dict[str, Fraction] = {quota: share_of(quota) for quota in self._queues}

    def positions(self) -> dict[str, int]:
        """1-based position of every queued job inside its quota's queue (for job status)."""
        return {
            job.key: index + 1 for queue in self._queues.values() for index, job in enumerate(queue)
        }

    def queue_of(self, quota: str) -> Sequence[JobRequest]:
        return tuple(self._queues.get(quota, ()))

    def refresh_share(self, quota: str) -> None:
        """Re-read a quota's fair share after its usage changed (admission or preemption)."""
        if quota in self._shares:
            self._shares[quota] = self._share_of(quota)

    def pop(self) -> tuple[str, JobRequest] | None:
        best: tuple[tuple[int, Fraction, float, str], str] | None = None
        for quota, queue in self._queues.items():
            cursor = self._cursor[quota]
            if cursor >= len(queue):
                continue
            head = queue[cursor]
            key = (-head.priority, self._shares[quota], head.created, head.key)
            if best is None or key < best[0]:
                best = (key, quota)
        if best is None:
            return None
        quota = best[1]
        job = self._queues[quota][self._cursor[quota]]
        self._cursor[quota] += 1
        return quota, job


def global_order(
    jobs_by_quota: Mapping[str, Iterable[JobRequest]], share_of: Callable[[str], Fraction]
) -> list[JobRequest]:
    """The order with today's shares, as if nothing were admitted (for displays and tests)."""
    queue = SchedulingQueue(jobs_by_quota, share_of)
    ordered = []
    while (item := queue.pop()) is not None:
        ordered.append(item[1])
    return ordered
