"""TrainingJob: a gang of identical pods that needs accelerators, written by a tenant.

Why an ordered list of accelerator options: a centre with Ascend and NVIDIA side by side has
capacity in one vendor while the other is full. Pod resources are fixed once a pod exists, which
is why Volcano refuses ``A100|Ascend-910B`` style requests; suanli creates the pods only after it
chose an option, so one job can say "4 × 8 H100, or else 8 × 8 Ascend 910B" and carry a
different image and environment per option.

Immutability follows Kueue: what decides the admission (options, replicas, gang minimum) may
change while the job is queued or suspended and is frozen while it holds quota, so the operator
never has running pods that disagree with the spec they were admitted for.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import ConfigDict, Field, JsonValue, model_validator

from .common import (
    CONDITIONS_SCHEMA_EXTRA,
    ApiModel,
    Condition,
    CustomResource,
    Timestamp,
)
from .podtemplate import ENV_LIST_EXTRA, EnvVar, PodTemplate

MAX_ACCELERATOR_OPTIONS = 8
MAX_REPLICAS = 4096


class Phase(StrEnum):
    QUEUED = "Queued"
    ADMITTED = "Admitted"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"
    PREEMPTED = "Preempted"


class ConditionType(StrEnum):
    ADMITTED = "Admitted"
    RUNNING = "Running"
    FINISHED = "Finished"
    VALID = "Valid"


class AcceleratorOption(ApiModel):
    """One acceptable way to run the job: which class, how many devices per replica."""

    accelerator_class: str = Field(
        min_length=1, max_length=253, description="Name of an AcceleratorClass."
    )
    devices_per_replica: int = Field(
        ge=1,
        le=64,
        description=(
            "Devices each replica's pod gets. Must be one of the class's "
            "topology.allowedDeviceCounts, or the job gets the IllegalShape reason."
        ),
    )
    replicas: int | None = Field(
        default=None,
        ge=1,
        le=MAX_REPLICAS,
        description="Replicas when this option is chosen; unset means spec.replicas.",
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Image for the first container when this option is chosen (CANN vs CUDA).",
    )
    env: list[EnvVar] | None = Field(
        default=None,
        max_length=128,
        description="Extra environment variables for every container with this option.",
        json_schema_extra=ENV_LIST_EXTRA,
    )


class TopologyPreference(ApiModel):
    """How close together the replicas should land."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.mode == 'None' || has(self.level)",
                    "message": "spec.topology.level is required when spec.topology.mode is "
                    "Prefer or Require",
                    "fieldPath": ".level",
                }
            ]
        }
    )

    mode: Literal["None", "Prefer", "Require"] = Field(
        default="None",
        description=(
            "None: any nodes. Prefer: pack replicas into as few topology domains as possible. "
            "Require: all replicas in one domain, or the job waits."
        ),
    )
    level: Literal["rack", "superNode"] | None = Field(
        default=None,
        description="The topology domain: rack, or superNode (for example an Atlas SuperPoD).",
    )

    @model_validator(mode="after")
    def _level_when_constrained(self) -> TopologyPreference:
        if self.mode != "None" and self.level is None:
            raise ValueError("topology.level is required when topology.mode is Prefer or Require")
        return self


_SPEC_RULES: list[JsonValue] = [
    {
        "rule": "!has(self.minReplicas) || self.minReplicas <= self.replicas",
        "message": "spec.minReplicas must not exceed spec.replicas",
        "fieldPath": ".minReplicas",
    },
    {
        "rule": "!has(self.minReplicas) || self.accelerators.all(a, !has(a.replicas) || "
        "self.minReplicas <= a.replicas)",
        "message": "spec.minReplicas must not exceed spec.accelerators[].replicas",
        "fieldPath": ".minReplicas",
    },
    {
        "rule": "!(has(self.priority) && has(self.priorityClassName))",
        "message": "set spec.priority or spec.priorityClassName, not both",
        "fieldPath": ".priorityClassName",
    },
    {
        "rule": "self.restartPolicy != 'Never' || !has(self.restartLimit) "
        "|| self.restartLimit == 0",
        "message": "spec.restartLimit needs spec.restartPolicy OnFailure",
        "fieldPath": ".restartLimit",
    },
]

# Root-level rules see status, so they can freeze the spec only while the job holds quota.
_HOLDS_QUOTA = (
    "has(oldSelf.status) && has(oldSelf.status.phase) && "
    "oldSelf.status.phase in ['Admitted', 'Running'] && !oldSelf.spec.suspend"
)
_ADMISSION_SHAPE = (
    "{obj}.spec.replicas",
    "{obj}.spec.accelerators.map(a, a.acceleratorClass)",
    "{obj}.spec.accelerators.map(a, a.devicesPerReplica)",
    "{obj}.spec.accelerators.map(a, has(a.replicas) ? a.replicas : 0)",
    "(has({obj}.spec.minReplicas) ? {obj}.spec.minReplicas : 0)",
)
# Only what decides admission is frozen (class, devices, replica counts); an option's image or
# env may still change and applies to pods created later, as with a Deployment's template.
_ROOT_RULES: tuple[dict[str, str], ...] = (
    {
        "rule": f"!({_HOLDS_QUOTA}) || ("
        + " && ".join(
            f"{part.format(obj='self')} == {part.format(obj='oldSelf')}"
            for part in _ADMISSION_SHAPE
        )
        + ")",
        "message": "spec.replicas, spec.minReplicas and the class, devicesPerReplica and "
        "replicas of spec.accelerators are immutable while the job is admitted or running; "
        "set spec.suspend first",
        "fieldPath": ".spec",
        "reason": "FieldValueForbidden",
    },
)


class TrainingJobSpec(ApiModel):
    """What to run, on which accelerators, and how to treat failures."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _SPEC_RULES})

    replicas: int = Field(
        ge=1, le=MAX_REPLICAS, description="Pods in the gang (one per worker/rank)."
    )
    min_replicas: int | None = Field(
        default=None,
        ge=1,
        le=MAX_REPLICAS,
        description="Gang minimum: the job starts only when this many pods can start "
        "together. Unset means all replicas.",
    )
    template: PodTemplate = Field(description="The pod every replica runs.")
    accelerators: list[AcceleratorOption] = Field(
        min_length=1,
        max_length=MAX_ACCELERATOR_OPTIONS,
        description=(
            "Acceptable accelerator options, most preferred first. The operator admits the job "
            "on the first option that has quota and room."
        ),
    )
    priority: int | None = Field(
        default=None,
        ge=-1_000_000_000,
        le=1_000_000_000,
        description="Priority inside the tenant's queue; higher runs first.",
    )
    priority_class_name: str | None = Field(
        default=None,
        max_length=253,
        description="A PriorityClass whose value is the job's priority.",
    )
    restart_policy: Literal["Never", "OnFailure"] = Field(
        default="Never",
        description=(
            "OnFailure: when a pod fails, the whole gang restarts (collective communication "
            "cannot survive a lost rank), up to restartLimit times. Never: the job fails."
        ),
    )
    restart_limit: int | None = Field(
        default=None, ge=0, le=1000, description="Most gang restarts with OnFailure."
    )
    max_run_seconds: int | None = Field(
        default=None, ge=1, description="Running longer than this fails the job."
    )
    suspend: bool = Field(
        default=False,
        description="True stops the pods and releases quota; false queues the job again.",
    )
    topology: TopologyPreference | None = Field(
        default=None, description="How close together replicas should land."
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None, ge=0, description="Delete the job this long after it finished."
    )

    @model_validator(mode="after")
    def _cross_field_rules(self) -> TrainingJobSpec:
        if self.min_replicas is not None:
            if self.min_replicas > self.replicas:
                raise ValueError("minReplicas must not exceed replicas")
            for index, option in enumerate(self.accelerators):
                if option.replicas is not None and self.min_replicas > option.replicas:
                    raise ValueError(f"minReplicas must not exceed accelerators[{index}].replicas")
        if self.priority is not None and self.priority_class_name is not None:
            raise ValueError("set priority or priorityClassName, not both")
        if self.restart_policy == "Never" and self.restart_limit:
            raise ValueError("restartLimit needs restartPolicy OnFailure")
        return self

    def replicas_for(self, option_index: int) -> int:
        """Replicas of the gang when the option at ``option_index`` is chosen."""
        option = self.accelerators[option_index]
        return option.replicas if option.replicas is not None else self.replicas


class ChosenOption(ApiModel):
    """The accelerator option the job was admitted with."""

    index: int = Field(ge=0, description="Position in spec.accelerators.")
    accelerator_class: str = Field(description="That option's AcceleratorClass.")
    devices_per_replica: int | None = Field(default=None, ge=1, description="Devices per pod.")
    replicas: int | None = Field(default=None, ge=1, description="Replicas with this option.")


class ReplicaPlacement(ApiModel):
    """Where one replica runs."""

    replica: int = Field(ge=0, description="Replica index (rank).")
    node: str = Field(description="Node name.")
    device_indices: list[int] = Field(
        default_factory=list, description="Device indices on that node."
    )


class TrainingJobStatus(ApiModel):
    """What the operator decided and observed."""

    phase: Phase | None = Field(
        default=None,
        description="Queued, Admitted, Running, Succeeded, Failed, Suspended or Preempted.",
    )
    reason: str | None = Field(
        default=None,
        description="Reason of the most relevant condition, shown by kubectl get.",
    )
    message: str | None = Field(default=None, description="Human-readable summary.")
    conditions: list[Condition] | None = Field(
        default=None,
        description="Admitted, Running, Finished and Valid conditions with their reasons.",
        json_schema_extra=CONDITIONS_SCHEMA_EXTRA,
    )
    chosen_option: ChosenOption | None = Field(
        default=None, description="The option the job was admitted with."
    )
    placement: list[ReplicaPlacement] | None = Field(
        default=None, description="Node and device indices of each replica."
    )
    quota: str | None = Field(default=None, description="The ComputeQuota the job is charged to.")
    queue_position: int | None = Field(
        default=None, ge=0, description="Position in its quota's queue while queued (0 = next)."
    )
    admitted_at: Timestamp | None = Field(default=None, description="When quota was granted.")
    started_at: Timestamp | None = Field(default=None, description="When all pods ran.")
    finished_at: Timestamp | None = Field(default=None, description="When the job ended.")
    restart_count: int | None = Field(
        default=None,
        ge=0,
        description="Gang restarts after a failure of the job's own (a pod failed or vanished), "
        "counted against spec.restartLimit.",
    )
    start_timeouts: int | None = Field(
        default=None,
        ge=0,
        description="Times the admitted gang did not start within the gang-start timeout. The "
        "centre's fault, not the job's: counted apart from restartCount, with its own limit.",
    )
    attempt: int | None = Field(
        default=None,
        ge=0,
        description="The number of the job's latest admission (0 for the first). Every admission "
        "gets the next number, and its pods and rank table carry it in their names "
        "(<job>-a<attempt>-<replica>), so a re-admitted job never reuses an earlier admission's "
        "objects.",
    )
    centre: str | None = Field(
        default=None,
        max_length=253,
        description="On a compute-network hub: the ComputeCentre the job's current copy is in "
        "(unset until dispatched; see docs/network.md).",
    )
    dispatched_at: Timestamp | None = Field(
        default=None, description="On a hub: when the current copy was created in its centre."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The generation this status describes."
    )


class TrainingJob(CustomResource):
    """A gang of pods on accelerators, with ordered fallback options across vendors."""

    KIND: ClassVar[str] = "TrainingJob"
    PLURAL: ClassVar[str] = "trainingjobs"
    SINGULAR: ClassVar[str] = "trainingjob"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("tj",)
    SCOPE: ClassVar[Literal["Cluster", "Namespaced"]] = "Namespaced"
    ROOT_VALIDATIONS: ClassVar[tuple[dict[str, str], ...]] = _ROOT_RULES
    PRINTER_COLUMNS: ClassVar[tuple[dict[str, str | int], ...]] = (
        {"name": "Class", "type": "string", "jsonPath": ".status.chosenOption.acceleratorClass"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Reason", "type": "string", "jsonPath": ".status.reason"},
        {"name": "Centre", "type": "string", "jsonPath": ".status.centre"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Quota", "type": "string", "jsonPath": ".status.quota", "priority": 1},
        {"name": "Position", "type": "integer", "jsonPath": ".status.queuePosition", "priority": 1},
        {
            "name": "Devices",
            "type": "integer",
            "jsonPath": ".status.chosenOption.devicesPerReplica",
            "priority": 1,
        },
        {"name": "Node", "type": "string", "jsonPath": ".status.placement[0].node", "priority": 1},
        {"name": "Restarts", "type": "integer", "jsonPath": ".status.restartCount", "priority": 1},
    )

    kind: Literal["TrainingJob"] = Field(default="TrainingJob", description="Kind.")
    spec: TrainingJobSpec = Field(description="The job.")
    status: TrainingJobStatus | None = Field(default=None, description="Observed by suanli.")
