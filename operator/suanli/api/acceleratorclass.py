"""AcceleratorClass: one entry of the centre's catalogue of accelerator models.

Why a catalogue object rather than hard-coded knowledge: Ascend and NVIDIA nodes advertise
devices differently (``huawei.com/Ascend910`` vs ``nvidia.com/gpu``), label the model
differently, and impose different rules on how many devices one pod may take. A class names all
of that once, so a TrainingJob can say "4 × 8 of nvidia-h100, or else 8 × 8 of ascend-910b" and
quota can be counted per class and in a common unit (PFLOPS of dense FP16/BF16).

The placement core maps the spec fields 1:1; keep the names stable.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from .common import (
    CONDITIONS_SCHEMA_EXTRA,
    EXTENDED_RESOURCE_PATTERN,
    ApiModel,
    Condition,
    CustomResource,
)


class Topology(ApiModel):
    """How the devices of one node are wired together, and which per-pod counts are legal."""

    group_size: int = Field(
        ge=1,
        le=64,
        description=(
            "Devices in one interconnect group (for Ascend 910: an HCCS ring of 4 chips). A pod "
            "asking for at most groupSize devices gets them all inside one group."
        ),
    )
    allowed_device_counts: list[Annotated[int, Field(ge=1, le=64)]] = Field(
        min_length=1,
        max_length=64,
        description=(
            "Devices one pod may request on this class, for example [1, 2, 4, 8] on Ascend 910. "
            "Any other count is refused with the IllegalShape reason."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    multi_replica_device_count: int | None = Field(
        default=None,
        ge=1,
        description=(
            "When set, a job with more than one replica must take exactly this many devices per "
            "replica (Ascend 910: 8, a whole server per pod). Unset: no extra rule."
        ),
    )

    @model_validator(mode="after")
    def _multi_replica_count_is_allowed(self) -> Topology:
        counts = self.allowed_device_counts
        if len(set(counts)) != len(counts):
            raise ValueError("topology.allowedDeviceCounts: counts must not repeat")
        if (
            self.multi_replica_device_count is not None
            and self.multi_replica_device_count not in counts
        ):
            raise ValueError(
                "topology.multiReplicaDeviceCount must be one of topology.allowedDeviceCounts"
            )
        return self


class Sharing(ApiModel):
    """Whether a device may be split between pods."""

    fractional: bool = Field(
        default=False,
        description="True when a device can be shared between pods in fractions (vGPU, vNPU, "
        "MIG). The placement core and the simulator place such shares; a TrainingJob cannot ask "
        "for a fraction yet (devicesPerReplica counts whole devices).",
    )


class AcceleratorClassSpec(ApiModel):
    """What the accelerator model is, how nodes advertise it, and how it may be cut."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.topology.allowedDeviceCounts.all(c, c <= self.devicesPerNode)",
                    "message": "spec.topology.allowedDeviceCounts must not exceed "
                    "spec.devicesPerNode",
                    "fieldPath": ".topology.allowedDeviceCounts",
                },
                {
                    "rule": "self.devicesPerNode % self.topology.groupSize == 0",
                    "message": "spec.topology.groupSize must divide spec.devicesPerNode",
                    "fieldPath": ".topology.groupSize",
                },
                {
                    "rule": "self.topology.allowedDeviceCounts.all(c, c <= self.topology.groupSize"
                    " || c % self.topology.groupSize == 0)",
                    "message": "spec.topology.allowedDeviceCounts: a count above groupSize must "
                    "be a whole number of groups",
                    "fieldPath": ".topology.allowedDeviceCounts",
                },
                {
                    "rule": "!has(self.topology.multiReplicaDeviceCount) || "
                    "self.topology.multiReplicaDeviceCount in self.topology.allowedDeviceCounts",
                    "message": "spec.topology.multiReplicaDeviceCount must be one of "
                    "spec.topology.allowedDeviceCounts",
                    "fieldPath": ".topology.multiReplicaDeviceCount",
                },
                {
                    "rule": "self.vendor == oldSelf.vendor",
                    "message": "spec.vendor is immutable: create a new AcceleratorClass instead",
                    "fieldPath": ".vendor",
                },
            ]
        }
    )

    vendor: Literal["huawei", "nvidia"] = Field(
        description="Who makes the device: huawei (Ascend NPU) or nvidia (GPU)."
    )
    resource_name: str = Field(
        max_length=253,
        pattern=EXTENDED_RESOURCE_PATTERN,
        description=(
            "Extended resource the device plugin advertises on nodes and pods request, for "
            "example huawei.com/Ascend910 or nvidia.com/gpu."
        ),
    )
    node_labels: dict[str, str] = Field(
        min_length=1,
        max_length=16,
        description=(
            "Node labels that identify this model (a matchLabels selector), for example "
            "node.kubernetes.io/npu.chip.name: 910B3 or nvidia.com/gpu.product: "
            "NVIDIA-H100-80GB-HBM3. A node belongs to the class when it has all of them."
        ),
    )
    devices_per_node: int = Field(
        ge=1, le=64, description="Devices in one fully populated node of this class."
    )
    device_memory_gi_b: float = Field(
        alias="deviceMemoryGiB",
        gt=0,
        description="On-device memory of one device, in GiB.",
    )
    compute_tflops: float = Field(
        alias="computeTFLOPS",
        gt=0,
        description=(
            "Dense (no sparsity) FP16/BF16 tensor throughput of one device in TFLOPS. Quota "
            "budgets and capacity in PFLOPS are computed from it."
        ),
    )
    topology: Topology = Field(description="Interconnect groups and legal per-pod counts.")
    sharing: Sharing = Field(
        default_factory=Sharing, description="Whether devices can be split between pods."
    )
    display_name: str | None = Field(
        default=None, max_length=128, description="Human name shown in dashboards."
    )

    @model_validator(mode="after")
    def _counts_fit_a_node(self) -> AcceleratorClassSpec:
        too_big = [c for c in self.topology.allowed_device_counts if c > self.devices_per_node]
        if too_big:
            raise ValueError(
                f"topology.allowedDeviceCounts {too_big} exceed devicesPerNode "
                f"({self.devices_per_node})"
            )
        group = self.topology.group_size
        if self.devices_per_node % group:
            raise ValueError(
                f"topology.groupSize ({group}) must divide devicesPerNode ({self.devices_per_node})"
            )
        # The placement core builds a pod above one group from whole groups only.
        straddling = [c for c in self.topology.allowed_device_counts if c > group and c % group]
        if straddling:
            raise ValueError(
                f"topology.allowedDeviceCounts {straddling}: a count above groupSize ({group}) "
                "must be a whole number of groups"
            )
        return self

    def legal_counts_text(self) -> str:
        """The legal per-pod device counts, for messages such as IllegalShape."""
        return ", ".join(str(c) for c in sorted(self.topology.allowed_device_counts))


class AcceleratorClassStatus(ApiModel):
    """What the operator last saw of this class in the cluster."""

    nodes: int | None = Field(default=None, ge=0, description="Nodes matching nodeLabels.")
    devices: int | None = Field(
        default=None, ge=0, description="Devices allocatable on those nodes."
    )
    allocated_devices: int | None = Field(
        default=None, ge=0, description="Devices held by suanli pods."
    )
    capacity_pflops: float | None = Field(
        default=None,
        alias="capacityPFLOPS",
        ge=0,
        description="devices × computeTFLOPS / 1000.",
    )
    conditions: list[Condition] | None = Field(
        default=None,
        description="Ready and similar conditions.",
        json_schema_extra=CONDITIONS_SCHEMA_EXTRA,
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The generation this status describes."
    )


class AcceleratorClass(CustomResource):
    """A cluster-wide catalogue entry describing one accelerator model (Ascend or NVIDIA)."""

    KIND: ClassVar[str] = "AcceleratorClass"
    PLURAL: ClassVar[str] = "acceleratorclasses"
    SINGULAR: ClassVar[str] = "acceleratorclass"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("acc", "accel")
    SCOPE: ClassVar[Literal["Cluster", "Namespaced"]] = "Cluster"
    PRINTER_COLUMNS: ClassVar[tuple[dict[str, str | int], ...]] = (
        {"name": "Vendor", "type": "string", "jsonPath": ".spec.vendor"},
        {"name": "Resource", "type": "string", "jsonPath": ".spec.resourceName"},
        {"name": "Per-Node", "type": "integer", "jsonPath": ".spec.devicesPerNode"},
        {"name": "TFLOPS", "type": "number", "jsonPath": ".spec.computeTFLOPS"},
        {"name": "Nodes", "type": "integer", "jsonPath": ".status.nodes"},
        {"name": "Devices", "type": "integer", "jsonPath": ".status.devices"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {
            "name": "Memory-GiB",
            "type": "number",
            "jsonPath": ".spec.deviceMemoryGiB",
            "priority": 1,
        },
        {
            "name": "Allocated",
            "type": "integer",
            "jsonPath": ".status.allocatedDevices",
            "priority": 1,
        },
        {
            "name": "PFLOPS",
            "type": "number",
            "jsonPath": ".status.capacityPFLOPS",
            "priority": 1,
        },
    )

    kind: Literal["AcceleratorClass"] = Field(default="AcceleratorClass", description="Kind.")
    spec: AcceleratorClassSpec = Field(description="The accelerator model.")
    status: AcceleratorClassStatus | None = Field(
        default=None, description="Observed by the operator."
    )
