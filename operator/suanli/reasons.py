"""The one vocabulary of reasons: job conditions, Events and the ``reason`` label of metrics.

Why one enum in a dependency-free module: the pure scheduling package, the lifecycle, the status
writers, the API schema's documentation and the metrics registry must all speak the same words.
A reason spelled as a string literal anywhere else can drift from what dashboards, alerts and
tenants' scripts match on; here every reason exists once, and the metric label sets are derived
from the groups below.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Machine-readable reasons (CamelCase, as Kubernetes condition and Event reasons are)."""

    # waiting for admission (decided by suanli.scheduling)
    QUOTA_EXCEEDED = "QuotaExceeded"
    ILLEGAL_SHAPE = "IllegalShape"
    UNSCHEDULABLE = "Unschedulable"
    UNKNOWN_ACCELERATOR_CLASS = "UnknownAcceleratorClass"
    NO_QUOTA = "NoQuota"
    INVALID_REQUEST = "InvalidRequest"
    RESERVED_FOR_OLDER_JOB = "ReservedForOlderJob"
    PREEMPTING = "Preempting"
    # refused for good: the object can never run as written
    INVALID = "Invalid"
    FORBIDDEN_POD_FIELD = "ForbiddenPodField"
    UNKNOWN_PRIORITY_CLASS = "UnknownPriorityClass"
    CREATE_REFUSED = "CreateRefused"
    INTERNAL_ERROR = "InternalError"
    VALID = "Valid"
    # admitted, running, finished
    ADMITTED = "Admitted"
    WITHIN_NOMINAL = "WithinNominal"
    BORROWED = "Borrowed"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"
    MAX_RUN_TIME_EXCEEDED = "MaxRunTimeExceeded"
    RESTART_LIMIT_EXCEEDED = "RestartLimitExceeded"
    GANG_START_LIMIT_EXCEEDED = "GangStartLimitExceeded"
    # giving an admission back
    PREEMPTED = "Preempted"
    RESTARTING = "Restarting"
    GANG_START_TIMEOUT = "GangStartTimeout"
    APPLY_FAILED = "ApplyFailed"
    POD_FAILED = "PodFailed"
    POD_LOST = "PodLost"
    NODE_LOST = "NodeLost"
    NODE_NOT_READY = "NodeNotReady"
    # ComputeQuota and AcceleratorClass conditions
    CONFLICT = "Conflict"
    ACTIVE = "Active"
    # API errors, by the HTTP status the API server answered
    API_CONFLICT = "Conflict"
    API_NOT_FOUND = "NotFound"
    API_FORBIDDEN = "Forbidden"
    API_INVALID = "Invalid"
    API_BAD_REQUEST = "BadRequest"
    API_SERVER_ERROR = "ServerError"
    API_OTHER = "Other"


# Label sets of the metrics (suanli.metrics.registry pre-creates a series for each).
ADMISSION_REASONS: tuple[Reason, ...] = (Reason.WITHIN_NOMINAL, Reason.BORROWED)
REJECTION_REASONS: tuple[Reason, ...] = (
    Reason.QUOTA_EXCEEDED,
    Reason.UNSCHEDULABLE,
    Reason.ILLEGAL_SHAPE,
    Reason.NO_QUOTA,
    Reason.UNKNOWN_ACCELERATOR_CLASS,
    Reason.INVALID_REQUEST,
    Reason.RESERVED_FOR_OLDER_JOB,
    Reason.PREEMPTING,
)
EVICTION_REASONS: tuple[Reason, ...] = (
    Reason.PREEMPTED,
    Reason.POD_FAILED,
    Reason.NODE_LOST,
    Reason.POD_LOST,
    Reason.GANG_START_TIMEOUT,
    Reason.MAX_RUN_TIME_EXCEEDED,
    Reason.SUSPENDED,
)
API_ERROR_REASONS: tuple[Reason, ...] = (
    Reason.API_CONFLICT,
    Reason.API_NOT_FOUND,
    Reason.API_FORBIDDEN,
    Reason.API_INVALID,
    Reason.API_BAD_REQUEST,
    Reason.API_SERVER_ERROR,
    Reason.API_OTHER,
)
# Problems handling one object that are counted (suanli_object_errors_total).
OBJECT_ERROR_REASONS: tuple[Reason, ...] = (
    Reason.INVALID,
    Reason.CREATE_REFUSED,
    Reason.INTERNAL_ERROR,
    Reason.CONFLICT,
)
