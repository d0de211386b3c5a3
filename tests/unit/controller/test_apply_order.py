"""The Applier creates a node's chip-annotated pods one after another, stamped in that order.

The device plugin is not told which pod an ``Allocate`` is for; it serves the pending pod with
the lowest ``suanli.io/bind-sequence`` first, and kubelet admits pods in the order the API server
stored them. Both orders agree only if a node's pods reach the API server in stamp order, which
concurrent creation does not give (the CI run where two ranks of one node swapped chips).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

from suanli.constants import BIND_SEQUENCE_ANNOTATION
from suanli.controller.apply import Applier
from suanli.controller.inventory import Inventory
from suanli.controller.lifecycle import LifecycleSettings


class RecordingKube:
    """Records the order in which creations reach the server, with a random delay per call."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.stored: list[tuple[str, str, str | None]] = []
        self.in_flight: dict[str, int] = {}
        self.overlapped: set[str] = set()

    def create(self, manifest: dict[str, Any]) -> bool:
        node = str(manifest["spec"].get("nodeName"))
        with self.lock:
            self.in_flight[node] = self.in_flight.get(node, 0) + 1
            if self.in_flight[node] > 1:
                self.overlapped.add(node)
            delay = self.random.uniform(0.0, 0.01)
        time.sleep(delay)
        with self.lock:
            sequence = manifest["metadata"]["annotations"].get(BIND_SEQUENCE_ANNOTATION)
            self.stored.append((node, manifest["metadata"]["name"], sequence))
            self.in_flight[node] -= 1
        return True


def pod(name: str, node: str, ascend: bool) -> dict[str, Any]:
    resource = "huawei.com/Ascend910" if ascend else "nvidia.com/gpu"
    annotations = {resource: "Ascend910-0"} if ascend else {}
    return {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "resources": {"limits": {resource: 1}}}],
        },
    }


def create_all(kube: RecordingKube, pods: list[dict[str, Any]]) -> None:
    applier = Applier(kube, Inventory(), LifecycleSettings())  # type: ignore[arg-type]

    async def run() -> None:
        await asyncio.gather(*(applier.create_in_node_order(p) for p in pods))

    asyncio.run(run())


def test_a_nodes_ascend_pods_reach_the_server_in_stamp_order() -> None:
    for seed in range(5):
        kube = RecordingKube(seed)
        pods = [pod(f"j{j}-{r}", f"node-{r % 2}", ascend=True) for j in range(4) for r in range(4)]
        create_all(kube, pods)
        assert not kube.overlapped, "two creations on one node were in flight at once"
        for node in ("node-0", "node-1"):
            sequences = [int(s or 0) for n, _, s in kube.stored if n == node]
            assert len(sequences) == 8
            assert sequences == sorted(sequences) and len(set(sequences)) == 8, sequences


def test_stamps_increase_even_when_the_clock_does_not() -> None:
    kube = RecordingKube(0)
    applier = Applier(kube, Inventory(), LifecycleSettings())  # type: ignore[arg-type]
    applier._last_sequence = time.time_ns() + 10**12  # a clock that went back
    pods = [pod(f"p{i}", "node-0", ascend=True) for i in range(3)]

    async def run() -> None:
        for p in pods:
            await applier.create_in_node_order(p)

    asyncio.run(run())
    sequences = [int(s or 0) for _, _, s in kube.stored]
    assert sequences[1] == sequences[0] + 1 and sequences[2] == sequences[1] + 1


def test_pods_without_annotated_chips_are_not_serialised_or_stamped() -> None:
    kube = RecordingKube(1)
    pods = [pod(f"g{i}", "node-0", ascend=False) for i in range(8)]
    create_all(kube, pods)
    assert all(s is None for _, _, s in kube.stored)
    assert "node-0" in kube.overlapped  # concurrent, as before: nothing needs their order
