"""Type stub of the compiled placement core; the API is identical to ``reference.ClusterState``."""

from collections.abc import Iterable, Mapping, Sequence

from suanli.placement.model import (
    ClassCapacity,
    DeviceClass,
    Failure,
    Gang,
    Placement,
    Policy,
    WorkloadShape,
)

class ClusterState:
    use_memo: bool
    """Score each distinct node state once per decision and answer frequent request shapes from
    their per-shape index (on by default; off only for tests)."""
    index_after: int
    """A request shape gets a per-shape index once asked for this often (default 32)."""

    def __init__(
        self,
        device_classes: Iterable[DeviceClass] = (),
        policy: Policy | str = ...,
        class_policies: Mapping[str, Policy | str] | None = None,
        track_recent_mix: bool = True,
    ) -> None: ...
    def register_device_class(self, device_class: DeviceClass) -> None: ...
    def set_policy(self, policy: Policy | str, device_class: str | None = None) -> None: ...
    def set_workload_mix(self, shapes: Iterable[WorkloadShape]) -> None: ...
    def add_node(
        self,
        name: str,
        device_class: str | None,
        cpu_milli: int,
        memory_mib: int,
        pods: int,
        *,
        devices: int = 0,
        labels: Mapping[str, str] | None = None,
        rack: str = "",
        super_node: str = "",
        schedulable: bool = True,
    ) -> None: ...
    def update_node(
        self,
        name: str,
        device_class: str | None,
        cpu_milli: int,
        memory_mib: int,
        pods: int,
        *,
        devices: int = 0,
        labels: Mapping[str, str] | None = None,
        rack: str = "",
        super_node: str = "",
        schedulable: bool = True,
    ) -> None: ...
    def remove_node(self, name: str) -> None: ...
    def bind(
        self,
        pod_key: str,
        node: str,
        cpu_milli: int,
        memory_mib: int,
        *,
        devices: Sequence[int] | int = 0,
        milli: int = 1000,
    ) -> tuple[int, ...]: ...
    def release(self, pod_key: str) -> None: ...
    def release_gang(self, gang_id: str) -> None: ...
    def place(self, gang: Gang) -> Placement | Failure: ...
    def capacity_summary(self) -> dict[str, ClassCapacity]: ...
    def node_free(self, name: str) -> tuple[int, int, int, tuple[int, ...]]: ...
    def node_names(self) -> list[str]: ...
    def pod_keys(self) -> list[str]: ...
    def gang_pods(self, gang_id: str) -> list[str]: ...
