"""Which chips a container gets: the pure decisions of the device plugin (no gRPC, no API calls).

The Ascend device plugin does not trust kubelet's choice of device IDs: the scheduler (here, the
suanli operator) has already picked the chips and written them into the pod's
``huawei.com/Ascend910`` annotation (``Ascend910-0,Ascend910-3``). On ``Allocate`` the plugin finds
the pending pod on its node that asks for that many chips and has not been given any yet (no
``huawei.com/AscendReal`` annotation), first in the order kubelet admits them — the order they
were created, which the operator stamps in ``suanli.io/bind-sequence`` because
``creationTimestamp`` has whole seconds only — and hands out the annotated chips instead,
recording them in ``huawei.com/AscendReal``. NVIDIA's plugin has no such step: the IDs kubelet
chose are the GPUs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from suanli.constants import BIND_SEQUENCE_ANNOTATION

ASCEND_RESOURCE = "huawei.com/Ascend910"
ASCEND_REAL_ANNOTATION = "huawei.com/AscendReal"
NVIDIA_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Vendor:
    """One kind of fake accelerator: its resource name, device-ID prefix and visibility variable."""

    name: str
    resource: str
    id_prefix: str
    visible_env: str

    def device_ids(self, count: int) -> list[str]:
        return [f"{self.id_prefix}{i}" for i in range(count)]

    def index(self, device_id: str) -> int:
        if (
            not device_id.startswith(self.id_prefix)
            or not device_id[len(self.id_prefix) :].isdigit()
        ):
            raise ValueError(f"device id {device_id!r} is not one of {self.id_prefix}<n>")
        return int(device_id[len(self.id_prefix) :])


VENDORS = {
    "huawei": Vendor("huawei", ASCEND_RESOURCE, "Ascend910-", "ASCEND_VISIBLE_DEVICES"),
    "nvidia": Vendor("nvidia", NVIDIA_RESOURCE, "nvidia-gpu-", "NVIDIA_VISIBLE_DEVICES"),
}


@dataclass(frozen=True)
class Allocation:
    """What one container gets: its chips and, for Ascend, the pod whose annotation chose them."""

    device_ids: tuple[str, ...]
    pod: tuple[str, str] | None  # (namespace, name)

    def envs(self, vendor: Vendor) -> dict[str, str]:
        indices = ",".join(str(vendor.index(d)) for d in self.device_ids)
        return {vendor.visible_env: indices, "SUANLI_ALLOCATED_DEVICES": ",".join(self.device_ids)}


def _sequence(metadata: Mapping[str, Any]) -> int:
    value = str((metadata.get("annotations") or {}).get(BIND_SEQUENCE_ANNOTATION, ""))
    return int(value) if value.isdigit() else 0


def annotated_chips(pod: Mapping[str, Any], resource: str) -> list[str]:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(resource, "")
    return [chip.strip() for chip in str(value).split(",") if chip.strip()]


def choose(
    vendor: Vendor, requested: Sequence[str], pending_pods: Sequence[Mapping[str, Any]]
) -> Allocation:
    """The chips for one container that kubelet asked ``requested`` for.

    Ascend: the first pending pod (creation time, then bind sequence, then name) without
    ``huawei.com/AscendReal`` whose annotation names exactly ``len(requested)`` chips, all of
    them known IDs, gets those chips; with no such pod, kubelet's choice stands (a pod created
    without the operator). NVIDIA: kubelet's choice.
    """
    if vendor.resource != ASCEND_RESOURCE:
        return Allocation(tuple(requested), None)
    known = set(vendor.device_ids(64))
    candidates = []
    for pod in pending_pods:
        metadata = pod.get("metadata") or {}
        if ASCEND_REAL_ANNOTATION in (metadata.get("annotations") or {}):
            continue
        chips = annotated_chips(pod, vendor.resource)
        if len(chips) == len(requested) and all(chip in known for chip in chips):
            key = (
                str(metadata.get("creationTimestamp", "")),
                _sequence(metadata),
                str(metadata.get("name", "")),
            )
            candidates.append(
                (key, (str(metadata.get("namespace")), str(metadata.get("name"))), chips)
            )
    if not candidates:
        return Allocation(tuple(requested), None)
    _, pod_ref, chips = min(candidates, key=lambda c: c[0])
    return Allocation(tuple(chips), pod_ref)
