"""Admission decided without Kubernetes: quota book, queue order, preemption and the cycle.

Why a package of its own: everything that can be decided from plain data is decided here, so it
is deterministic, fast and testable without an API server. The operator converts API objects
into :mod:`suanli.scheduling.model` dataclasses, calls :func:`run_cycle`, and applies the
decisions. This package must never import kopf, kubernetes or prometheus_client.
"""

from suanli.reasons import Reason
from suanli.scheduling.cycle import (
    Admit,
    CycleConfig,
    CycleResult,
    Decision,
    Wait,
    build_book,
    rollback_admission,
    run_cycle,
)
from suanli.scheduling.gangs import bind_admission, gang_for, pod_key, release_admission
from suanli.scheduling.model import (
    Admission,
    JobOption,
    JobRequest,
    QuotaSpec,
    ReclaimPolicy,
    ResourceQuota,
    SchedulingInputError,
    WithinQuotaPolicy,
)
from suanli.scheduling.preemption import Preempt, PreemptionKind, Victim, find_victims
from suanli.scheduling.quota import QuotaBook, QuotaError, QuotaFit, QuotaStatus
from suanli.scheduling.statement import Statement

__all__ = [
    "Admission",
    "Admit",
    "CycleConfig",
    "CycleResult",
    "Decision",
    "JobOption",
    "JobRequest",
    "Preempt",
    "PreemptionKind",
    "QuotaBook",
    "QuotaError",
    "QuotaFit",
    "QuotaSpec",
    "QuotaStatus",
    "Reason",
    "ReclaimPolicy",
    "ResourceQuota",
    "SchedulingInputError",
    "Statement",
    "Victim",
    "Wait",
    "WithinQuotaPolicy",
    "bind_admission",
    "build_book",
    "find_victims",
    "gang_for",
    "pod_key",
    "release_admission",
    "rollback_admission",
    "run_cycle",
]
