"""ComputeQuota: a tenant's guaranteed share of the centre, and what it may borrow or lend.

Why cluster-scoped and written by platform engineers: a tenant must not be able to raise its own
share. The quota lists the namespaces it serves; a namespace belongs to at most one quota (the
operator enforces that and marks the later quota with a Conflict condition).

The borrowing model follows Kueue's ClusterQueue and cohort: unused nominal quota of one quota
may be lent to others in the same cohort, within lendingLimit; a quota may borrow up to
borrowingLimit above its nominal. Accounting is per AcceleratorClass in devices, and optionally
in normalised compute (PFLOPS of dense FP16/BF16), the unit compute centres publish.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from .common import (
    CONDITIONS_SCHEMA_EXTRA,
    DNS_LABEL_PATTERN,
    ApiModel,
    Condition,
    CustomResource,
    Quantity,
)

NamespaceName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]


class ResourceQuota(ApiModel):
    """Devices of one accelerator class this quota guarantees, borrows and lends."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.lendingLimit) || self.lendingLimit <= self.nominal",
                    "message": "lendingLimit must not exceed nominal",
                    "fieldPath": ".lendingLimit",
                }
            ]
        }
    )

    accelerator_class: str = Field(
        min_length=1, max_length=253, description="Name of an AcceleratorClass."
    )
    nominal: int = Field(
        ge=0, description="Devices of this class guaranteed to the tenant namespaces."
    )
    borrowing_limit: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Most devices this quota may borrow from its cohort above nominal. Unset: no limit "
            "beyond what the cohort has idle. Needs spec.cohort."
        ),
    )
    lending_limit: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Most of the nominal devices that others in the cohort may borrow while idle. "
            "Unset: all of them. Needs spec.cohort."
        ),
    )

    @model_validator(mode="after")
    def _lending_within_nominal(self) -> ResourceQuota:
        if self.lending_limit is not None and self.lending_limit > self.nominal:
            raise ValueError("lendingLimit must not exceed nominal")
        return self


class Preemption(ApiModel):
    """When admitting a job may evict running ones."""

    within_quota: Literal["Never", "LowerPriority"] = Field(
        default="Never",
        description=(
            "LowerPriority: a job may preempt lower-priority jobs of the same quota to fit "
            "its nominal share. Never: it waits."
        ),
    )
    reclaim_within_cohort: Literal["Never", "Any", "LowerPriority"] = Field(
        default="Never",
        description=(
            "Whether a job may take back nominal quota lent to other quotas of the cohort by "
            "preempting their borrowing jobs: Never, Any (any borrowing job), LowerPriority "
            "(only borrowing jobs of lower priority)."
        ),
    )


class ComputeQuotaSpec(ApiModel):
    """The tenant namespaces served and their guaranteed share."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.cohort) || !has(self.resources) || self.resources.all(r, "
                    "!has(r.borrowingLimit) && !has(r.lendingLimit))",
                    "message": "spec.resources[].borrowingLimit and lendingLimit need spec.cohort",
                    "fieldPath": ".resources",
                },
            ]
        }
    )

    namespaces: list[NamespaceName] = Field(
        min_length=1,
        max_length=256,
        description=(
            "Tenant namespaces whose TrainingJobs are charged to this quota. A namespace may "
            "belong to at most one ComputeQuota; the operator enforces it."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    resources: list[ResourceQuota] = Field(
        default_factory=list,
        max_length=64,
        description="Devices per accelerator class. A class not listed has nominal 0.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["acceleratorClass"],
        },
    )
    cpu: Quantity | None = Field(
        default=None, description="Nominal CPU for the tenant's jobs, for example 512."
    )
    memory: Quantity | None = Field(
        default=None, description="Nominal memory for the tenant's jobs, for example 4Ti."
    )
    compute_budget_pflops: float | None = Field(
        default=None,
        alias="computeBudgetPFLOPS",
        ge=0,
        description=(
            "Optional cap on concurrently admitted compute across all classes, in PFLOPS of "
            "dense FP16/BF16 (devices × AcceleratorClass computeTFLOPS / 1000)."
        ),
    )
    cohort: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="Quotas with the same cohort lend idle nominal quota to each other.",
    )
    fair_share_weight: float = Field(
        default=1.0,
        ge=0,
        description=(
            "Relative weight when the cohort's idle quota is shared between borrowers; 0 "
            "borrows only what nobody else wants."
        ),
    )
    allowed_volume_kinds: list[Literal["nfs", "csi"]] | None = Field(
        default=None,
        max_length=2,
        description="Volume kinds that reach storage outside the cluster and are refused unless "
        "listed here: nfs (any NFS server) and csi (inline CSI volumes). PersistentVolumeClaims "
        "need no entry: the platform chooses what they bind to.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    preemption: Preemption = Field(
        default_factory=Preemption, description="When admitting a job may evict others."
    )

    @model_validator(mode="after")
    def _limits_need_a_cohort(self) -> ComputeQuotaSpec:
        if self.cohort is None:
            limited = [
                r.accelerator_class
                for r in self.resources
                if r.borrowing_limit is not None or r.lending_limit is not None
            ]
            if limited:
                raise ValueError(
                    f"resources[].borrowingLimit and lendingLimit need a cohort (set for {limited})"
                )
        classes = [r.accelerator_class for r in self.resources]
        repeated = sorted({c for c in classes if classes.count(c) > 1})
        if repeated:
            raise ValueError(f"resources: acceleratorClass listed more than once: {repeated}")
        if len(set(self.namespaces)) != len(self.namespaces):
            raise ValueError("namespaces: a namespace is listed more than once")
        return self


class ClassUsage(ApiModel):
    """Devices of one class in use by, borrowed by, lent by and waiting for this quota."""

    accelerator_class: str = Field(description="Name of an AcceleratorClass.")
    used: int = Field(default=0, ge=0, description="Devices held by admitted jobs.")
    borrowed: int = Field(default=0, ge=0, description="Devices in use above nominal.")
    lent: int = Field(default=0, ge=0, description="Nominal devices in use by other quotas.")
    pending: int = Field(default=0, ge=0, description="Devices asked for by queued jobs.")


class Metering(ApiModel):
    """Accelerator time consumed by finished pods, accumulated across operator restarts."""

    accelerator_class: str = Field(description="Name of an AcceleratorClass.")
    device_seconds: float = Field(default=0, ge=0, description="Device-seconds consumed.")
    pflop_seconds: float = Field(
        default=0, ge=0, description="deviceSeconds × computeTFLOPS / 1000."
    )


class ComputeQuotaStatus(ApiModel):
    """Usage and queue figures the operator keeps up to date."""

    usage: list[ClassUsage] | None = Field(
        default=None,
        description="Per accelerator class: used, borrowed, lent and pending devices.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["acceleratorClass"],
        },
    )
    used_pflops: float | None = Field(
        default=None, alias="usedPFLOPS", ge=0, description="Admitted compute in PFLOPS."
    )
    admitted_jobs: int | None = Field(default=None, ge=0, description="Jobs admitted now.")
    pending_jobs: int | None = Field(default=None, ge=0, description="Jobs waiting in the queue.")
    metering: list[Metering] | None = Field(
        default=None,
        description="Accumulated accelerator time of finished pods, per class.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["acceleratorClass"],
        },
    )
    folded_pods: list[str] | None = Field(
        default=None,
        max_length=10000,
        description=(
            "UIDs of pods whose accelerator time is already in metering but which may still "
            "exist (they are being deleted). Kept until the pods are gone, so that no pod is "
            "ever billed twice, even if the operator restarts between the two steps."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    served_namespaces: list[str] | None = Field(
        default=None,
        max_length=256,
        description=(
            "The namespaces this quota serves now: those of spec.namespaces that no other "
            "quota already serves (see the Conflict condition). A namespace stays with the "
            "quota that serves it, also across operator restarts."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    conditions: list[Condition] | None = Field(
        default=None,
        description="Active, Conflict and similar conditions.",
        json_schema_extra=CONDITIONS_SCHEMA_EXTRA,
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The generation this status describes."
    )


class ComputeQuota(CustomResource):
    """A tenant's share of the centre: namespaces served, devices per class, cohort rules."""

    KIND: ClassVar[str] = "ComputeQuota"
    PLURAL: ClassVar[str] = "computequotas"
    SINGULAR: ClassVar[str] = "computequota"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("cq",)
    SCOPE: ClassVar[Literal["Cluster", "Namespaced"]] = "Cluster"
    PRINTER_COLUMNS: ClassVar[tuple[dict[str, str | int], ...]] = (
        {"name": "Cohort", "type": "string", "jsonPath": ".spec.cohort"},
        {"name": "Admitted", "type": "integer", "jsonPath": ".status.admittedJobs"},
        {"name": "Pending", "type": "integer", "jsonPath": ".status.pendingJobs"},
        {"name": "Used-PFLOPS", "type": "number", "jsonPath": ".status.usedPFLOPS"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {
            "name": "Budget-PFLOPS",
            "type": "number",
            "jsonPath": ".spec.computeBudgetPFLOPS",
            "priority": 1,
        },
        {"name": "Weight", "type": "number", "jsonPath": ".spec.fairShareWeight", "priority": 1},
        {"name": "Namespaces", "type": "string", "jsonPath": ".spec.namespaces", "priority": 1},
    )

    kind: Literal["ComputeQuota"] = Field(default="ComputeQuota", description="Kind.")
    spec: ComputeQuotaSpec = Field(description="The share.")
    status: ComputeQuotaStatus | None = Field(default=None, description="Observed usage.")
