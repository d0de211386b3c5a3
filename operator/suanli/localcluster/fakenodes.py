"""The fake machines of the local centre: kwok nodes labelled as real device plugins label them.

Ascend nodes carry the labels the Ascend device plugin / MindCluster set (``accelerator``,
``accelerator-type``, ``node.kubernetes.io/npu.chip.name``, ``host-arch``) and advertise
``huawei.com/Ascend910``; NVIDIA nodes carry GPU Feature Discovery labels
(``nvidia.com/gpu.product``, ``nvidia.com/gpu.memory``, ``nvidia.com/gpu.count``) and advertise
``nvidia.com/gpu``. Every node has a rack label so topology-aware placement has something to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from suanli.constants import KWOK_NODE_ANNOTATION, RACK_LABEL, SUPER_NODE_LABEL


@dataclass(frozen=True)
class MachineModel:
    """One kind of server: its accelerator resource, labels and host size."""

    kind: str
    resource: str
    devices: int
    cpu: str
    memory: str
    arch: str
    labels: dict[str, str] = field(default_factory=dict)


ASCEND_910B = MachineModel(
    kind="ascend-910b",
    resource="huawei.com/Ascend910",
    devices=8,
    cpu="192",
    memory="1536Gi",
    arch="arm64",
    labels={
        "accelerator": "huawei-Ascend910",
        "accelerator-type": "module-910b-8",
        "node.kubernetes.io/npu.chip.name": "910B3",
        "host-arch": "huawei-arm",
    },
)
NVIDIA_H100 = MachineModel(
    kind="nvidia-h100",
    resource="nvidia.com/gpu",
    devices=8,
    cpu="224",
    memory="2048Gi",
    arch="amd64",
    labels={
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
        "nvidia.com/gpu.memory": "81559",
        "nvidia.com/gpu.count": "8",
        "nvidia.com/gpu.family": "hopper",
        "nvidia.com/gpu.compute.major": "9",
        "nvidia.com/gpu.compute.minor": "0",
    },
)
NVIDIA_A100 = MachineModel(
    kind="nvidia-a100",
    resource="nvidia.com/gpu",
    devices=8,
    cpu="128",
    memory="1024Gi",
    arch="amd64",
    labels={
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
        "nvidia.com/gpu.memory": "81920",
        "nvidia.com/gpu.count": "8",
        "nvidia.com/gpu.family": "ampere",
        "nvidia.com/gpu.compute.major": "8",
        "nvidia.com/gpu.compute.minor": "0",
    },
)
MODELS = {m.kind: m for m in (ASCEND_910B, NVIDIA_H100, NVIDIA_A100)}

# The default local centre: two racks of Ascend 910B, one rack of H100, one of A100.
DEFAULT_LAYOUT: tuple[tuple[str, str, int], ...] = (
    ("ascend-910b", "rack-a1", 2),
    ("ascend-910b", "rack-a2", 2),
    ("nvidia-h100", "rack-h1", 2),
    ("nvidia-a100", "rack-g1", 2),
)


def node_manifest(name: str, model: MachineModel, rack: str) -> dict[str, Any]:
    """A Node object that kwok will manage, as a device plugin would have registered it."""
    resources = {
        "cpu": model.cpu,
        "memory": model.memory,
        "pods": "110",
        "ephemeral-storage": "2Ti",
        model.resource: str(model.devices),
    }
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": model.arch,
        "type": "kwok",
        RACK_LABEL: rack,
        SUPER_NODE_LABEL: f"{rack}-sn",
        **model.labels,
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {},
        "status": {
            "allocatable": resources,
            "capacity": resources,
            "nodeInfo": {"architecture": model.arch, "operatingSystem": "linux"},
        },
    }


def default_nodes(
    layout: tuple[tuple[str, str, int], ...] = DEFAULT_LAYOUT,
) -> list[dict[str, Any]]:
    nodes = []
    for kind, rack, count in layout:
        for index in range(1, count + 1):
            name = f"{kind}-{rack}-{index:02d}"
            nodes.append(node_manifest(name, MODELS[kind], rack))
    return nodes
