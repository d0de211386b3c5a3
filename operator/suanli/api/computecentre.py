"""ComputeCentre: one member centre of the compute network, as the hub sees it.

Lives on the hub only (``suanli-operator --hub``). The spec says where the member is and how to
reach it (a Secret with its kubeconfig); the status is what the hub last polled from it. See
docs/network.md.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, Field

from .common import (
    CONDITIONS_SCHEMA_EXTRA,
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    ApiModel,
    Condition,
    CustomResource,
    Timestamp,
)


class SecretReference(ApiModel):
    """A Secret on the hub holding the member's kubeconfig."""

    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN, description="Secret name.")
    namespace: str = Field(
        max_length=63, pattern=DNS_LABEL_PATTERN, description="Namespace of the Secret."
    )
    key: str = Field(
        default="kubeconfig",
        max_length=253,
        description="Key of the Secret's data holding the kubeconfig.",
    )


class ComputeCentreSpec(ApiModel):
    """Where the member centre is and how the hub reaches it."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.region == oldSelf.region",
                    "message": "spec.region is immutable: a centre that moves is a new "
                    "ComputeCentre",
                    "fieldPath": ".region",
                },
            ]
        }
    )

    region: str = Field(
        max_length=63, description="Region or city of the centre, for example guangzhou."
    )
    kubeconfig_secret_ref: SecretReference = Field(
        description="The Secret holding a kubeconfig for the member's API server."
    )
    labels: dict[str, str] | None = Field(
        default=None,
        max_length=32,
        description="Free-form labels such as vendor mix or network zone (not interpreted).",
    )
    price_per_pflop_hour: float | None = Field(
        default=None,
        alias="pricePerPFLOPHour",
        ge=0,
        le=1e9,
        description="Price of one PFLOP-hour in this centre; cheaper centres are preferred "
        "among those that can take a job equally early in its list of options.",
    )
    out_of_service: bool = Field(
        default=False,
        description="Set by a platform engineer to assert that the centre's work is stopped "
        "(like the node.kubernetes.io/out-of-service taint). Nothing is dispatched to it, and "
        "its jobs may be dispatched elsewhere once the re-dispatch time has passed, even while "
        "the centre does not answer.",
    )


class CentreClass(ApiModel):
    """Devices of one accelerator class in the member centre."""

    accelerator_class: str = Field(description="Name of an AcceleratorClass.")
    devices: int = Field(default=0, ge=0, description="Devices allocatable on its nodes.")
    free_devices: int = Field(default=0, ge=0, description="Devices not held by suanli pods.")
    capacity_pflops: float = Field(
        default=0, alias="capacityPFLOPS", ge=0, description="devices × computeTFLOPS / 1000."
    )
    free_pflops: float = Field(
        default=0, alias="freePFLOPS", ge=0, description="freeDevices × computeTFLOPS / 1000."
    )


class QuotaRoom(ApiModel):
    """Unused nominal devices of one class in the member quota serving one namespace."""

    namespace: str = Field(description="A namespace that hub quotas serve.")
    accelerator_class: str = Field(description="Name of an AcceleratorClass.")
    free_devices: int = Field(
        default=0, ge=0, description="Nominal devices of the member quota not in use."
    )


class ComputeCentreStatus(ApiModel):
    """What the hub last saw of the member."""

    state: Literal["Reachable", "Unreachable", "OutOfService", "NoKubeconfig"] | None = Field(
        default=None,
        description="Reachable: the last poll answered within the centre-lost time. "
        "Unreachable: no answer for longer. OutOfService: spec.outOfService is set. "
        "NoKubeconfig: the Secret or its key is missing or unusable.",
    )
    message: str | None = Field(
        default=None, max_length=4096, description="Why the centre is in that state."
    )
    classes: list[CentreClass] | None = Field(
        default=None,
        description="Per accelerator class: devices and free devices, in devices and PFLOPS.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["acceleratorClass"],
        },
    )
    quota_room: list[QuotaRoom] | None = Field(
        default=None,
        description="Per namespace the hub serves and class: the member quota's unused "
        "nominal devices (no entry: no member quota serves the namespace).",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["namespace", "acceleratorClass"],
        },
    )
    jobs: int | None = Field(
        default=None, ge=0, description="Hub jobs whose current copy is in this centre."
    )
    last_contact: Timestamp | None = Field(
        default=None, description="When the member last answered a poll."
    )
    conditions: list[Condition] | None = Field(
        default=None,
        description="Ready: True when state is Reachable, with state as its reason.",
        json_schema_extra=CONDITIONS_SCHEMA_EXTRA,
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The generation this status describes."
    )


class ComputeCentre(CustomResource):
    """A member centre of the compute network (on the hub): how to reach it, what it has."""

    KIND: ClassVar[str] = "ComputeCentre"
    PLURAL: ClassVar[str] = "computecentres"
    SINGULAR: ClassVar[str] = "computecentre"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("cc", "centre")
    SCOPE: ClassVar[Literal["Cluster", "Namespaced"]] = "Cluster"
    PRINTER_COLUMNS: ClassVar[tuple[dict[str, str | int], ...]] = (
        {"name": "Region", "type": "string", "jsonPath": ".spec.region"},
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "Jobs", "type": "integer", "jsonPath": ".status.jobs"},
        {"name": "Last-Contact", "type": "date", "jsonPath": ".status.lastContact"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {
            "name": "Price",
            "type": "number",
            "jsonPath": ".spec.pricePerPFLOPHour",
            "priority": 1,
        },
        {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
    )

    kind: Literal["ComputeCentre"] = Field(default="ComputeCentre", description="Kind.")
    spec: ComputeCentreSpec = Field(description="The member centre.")
    status: ComputeCentreStatus | None = Field(default=None, description="Observed by the hub.")
