"""The placement core: gang bin-packing of NPUs and GPUs over a long-lived cluster state.

Pure by design (no Kubernetes, Kopf or Prometheus): the operator feeds it from watches, the
simulator from traces. ``suanli.placement._core`` is the compiled implementation used in
production; ``suanli.placement.reference`` is the pure-Python oracle with the same API.
"""

from suanli.placement._core import ClusterState
from suanli.placement.model import (
    WHOLE,
    ClassCapacity,
    DeviceClass,
    Failure,
    FailureReason,
    Gang,
    GangOption,
    Placement,
    Policy,
    ReplicaAssignment,
    TopologyLevel,
    TopologyMode,
    WorkloadShape,
    check_shape,
    selector,
)

__all__ = [
    "WHOLE",
    "ClassCapacity",
    "ClusterState",
    "DeviceClass",
    "Failure",
    "FailureReason",
    "Gang",
    "GangOption",
    "Placement",
    "Policy",
    "ReplicaAssignment",
    "TopologyLevel",
    "TopologyMode",
    "WorkloadShape",
    "check_shape",
    "selector",
]
