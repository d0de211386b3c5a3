"""The suanli.io/v1alpha1 API: AcceleratorClass, ComputeQuota, TrainingJob and ComputeCentre.

These pydantic models are the single source of the API. ``make generate`` turns them into the
CRDs under ``crds/`` (and their chart and deploy copies); the operator validates raw API objects
with the same models (``TrainingJob.model_validate(obj)``) and writes with
``model_dump(by_alias=True, exclude_none=True)``.
"""

from suanli.reasons import Reason

from .acceleratorclass import (
    AcceleratorClass,
    AcceleratorClassSpec,
    AcceleratorClassStatus,
    Sharing,
    Topology,
)
from .common import (
    API_VERSION,
    GROUP,
    VERSION,
    Condition,
    ConditionStatus,
    CustomResource,
    ObjectMeta,
    Quantity,
    Timestamp,
    now,
)
from .computecentre import (
    CentreClass,
    ComputeCentre,
    ComputeCentreSpec,
    ComputeCentreStatus,
    QuotaRoom,
    SecretReference,
)
from .computequota import (
    ClassUsage,
    ComputeQuota,
    ComputeQuotaSpec,
    ComputeQuotaStatus,
    Metering,
    Preemption,
    ResourceQuota,
)
from .podtemplate import Container, EnvVar, PodSpec, PodTemplate, ResourceRequirements, Volume
from .trainingjob import (
    AcceleratorOption,
    ChosenOption,
    ConditionType,
    Phase,
    ReplicaPlacement,
    TopologyPreference,
    TrainingJob,
    TrainingJobSpec,
    TrainingJobStatus,
)

RESOURCES: tuple[type[CustomResource], ...] = (
    AcceleratorClass,
    ComputeQuota,
    TrainingJob,
    ComputeCentre,
)
"""Every kind of the API, in the order their CRDs are applied."""

__all__ = [
    "API_VERSION",
    "GROUP",
    "RESOURCES",
    "VERSION",
    "AcceleratorClass",
    "AcceleratorClassSpec",
    "AcceleratorClassStatus",
    "AcceleratorOption",
    "CentreClass",
    "ChosenOption",
    "ClassUsage",
    "ComputeCentre",
    "ComputeCentreSpec",
    "ComputeCentreStatus",
    "ComputeQuota",
    "ComputeQuotaSpec",
    "ComputeQuotaStatus",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "Container",
    "CustomResource",
    "EnvVar",
    "Metering",
    "ObjectMeta",
    "Phase",
    "PodSpec",
    "PodTemplate",
    "Preemption",
    "Quantity",
    "QuotaRoom",
    "Reason",
    "ReplicaPlacement",
    "ResourceQuota",
    "ResourceRequirements",
    "SecretReference",
    "Sharing",
    "Timestamp",
    "Topology",
    "TopologyPreference",
    "TrainingJob",
    "TrainingJobSpec",
    "TrainingJobStatus",
    "Volume",
    "now",
]
