"""Building blocks shared by the three suanli.io/v1alpha1 kinds.

Why a shared base: the operator reads raw API objects with ``Model.model_validate(obj)`` and
writes them back with ``model_dump(by_alias=True, exclude_none=True)``. That only stays honest
when every model agrees on the same rules: camelCase on the wire, snake_case in Python, unknown
fields refused (a typo in a spec must be an error, not silently ignored), and Kubernetes value
types (quantities, timestamps, conditions) that serialise exactly as the API server stores them.

The CRD generator (``suanli.api.crd``) turns these models into openAPIV3Schema. Anything the
JSON schema pydantic produces cannot express (CEL rules, list types, int-or-string) is attached
with ``json_schema_extra`` right next to the field it belongs to.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel

GROUP = "suanli.io"
VERSION = "v1alpha1"
API_VERSION: Final = "suanli.io/v1alpha1"

# The exact regular expression controller-gen emits for resource.Quantity.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY_RE = re.compile(QUANTITY_PATTERN)

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A Kubernetes qualified name with a mandatory prefix, as extended resources are written.
EXTENDED_RESOURCE_PATTERN = (
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


class ApiModel(BaseModel):
    """Base of every suanli API model: camelCase aliases, snake_case attributes, no extras."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=True,
        use_enum_values=True,
    )


def _parse_quantity(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("a quantity must be a number or a string such as '500m' or '64Gi'")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and _QUANTITY_RE.match(value):
        return value
    raise ValueError(f"{value!r} is not a Kubernetes quantity (examples: 4, '500m', '64Gi', '1.5')")


Quantity = Annotated[
    str,
    BeforeValidator(_parse_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A Kubernetes resource quantity. YAML may say ``4`` or ``"64Gi"``; the model always holds a
string (``"4"``), the form the Kubernetes client's Pod models insist on."""


def _format_timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[
    datetime,
    PlainSerializer(_format_timestamp, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""An RFC 3339 time in UTC with second precision, serialised the way metav1.Time is."""


def now() -> datetime:
    """The current time truncated to whole seconds (what the API server keeps)."""
    return datetime.now(UTC).replace(microsecond=0)


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """One observation of the object's state, in the shape of metav1.Condition."""

    type: str = Field(
        description="What this condition is about, in CamelCase (for example Admitted).",
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    )
    status: Literal["True", "False", "Unknown"] = Field(
        description="Whether the condition holds: True, False or Unknown."
    )
    reason: str = Field(
        description=(
            "Machine-readable CamelCase reason for the last transition, for example "
            "QuotaExceeded, IllegalShape, Unschedulable, Preempted or UnknownAcceleratorClass."
        ),
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
    )
    message: str = Field(
        default="",
        description="Human-readable detail: what was checked and what to change.",
        max_length=32768,
    )
    last_transition_time: Timestamp = Field(
        description="When the status last changed from one value to another."
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation this condition was computed from.",
    )


CONDITIONS_SCHEMA_EXTRA: dict[str, Any] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}


class ObjectMeta(BaseModel):
    """The parts of metadata suanli reads; the API server owns the rest.

    This is the one model that accepts unknown keys: metadata carries many server-managed fields
    (managedFields, ownerReferences, finalizers...) the operator passes through untouched.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", validate_assignment=True
    )

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class CustomResource(ApiModel):
    """A complete suanli object: apiVersion, kind, metadata, spec and status.

    The class variables are read by the CRD generator and by the operator, so group, kind,
    plural, short names, scope and printer columns are written once, here.
    """

    KIND: ClassVar[str]
    PLURAL: ClassVar[str]
    SINGULAR: ClassVar[str]
    SHORT_NAMES: ClassVar[tuple[str, ...]]
    CATEGORIES: ClassVar[tuple[str, ...]] = ("suanli",)
    SCOPE: ClassVar[Literal["Cluster", "Namespaced"]]
    PRINTER_COLUMNS: ClassVar[tuple[dict[str, Any], ...]] = ()
    # CEL rules at the root of the schema: they see spec and status together.
    ROOT_VALIDATIONS: ClassVar[tuple[dict[str, str], ...]] = ()

    api_version: Literal["suanli.io/v1alpha1"] = Field(
        default=API_VERSION, description="Always suanli.io/v1alpha1."
    )
    kind: str = Field(description="The object kind.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard metadata.")

    @classmethod
    def crd_name(cls) -> str:
        return f"{cls.PLURAL}.{GROUP}"
