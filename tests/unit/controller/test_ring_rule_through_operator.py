"""The Ascend 910A HCCS ring rule through the operator's own path, not only inside the core.

The local centre has no 910A nodes, so no integration job ever reaches this rule. Here every
step is the operator's: the shipped ``deploy/catalogue/ascend-910a.yaml`` is validated as the
API object the operator reads, turned into its catalogue entry by
:func:`~suanli.controller.translate.catalogue_entry`, loaded into the
:class:`~suanli.controller.inventory.Inventory` with 910A nodes labelled as the Ascend device
plugin labels an Atlas 800 (model 9000); chips already in use come from admitted jobs' recorded
``status.placement`` (read back by :func:`~suanli.controller.translate.recorded_admission` and
bound by :func:`~suanli.controller.inventory.sync_admissions`, as after a restart); the pending
TrainingJob is translated by :func:`~suanli.controller.translate.job_request` and decided by
:func:`~suanli.scheduling.cycle.run_cycle` on the inventory's state (what ``loop._decide`` does).

The cases are chosen so that the answer under the ring rule (two rings of 4 chips, 0-3 and 4-7;
a pod of 1, 2 or 4 chips stays inside one ring) differs from the answer with one 8-chip group: a
translation that sets the group size to the devices per node fails them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from suanli.api.acceleratorclass import AcceleratorClass
from suanli.api.computequota import ComputeQuota
from suanli.api.trainingjob import TrainingJob
from suanli.controller.inventory import Inventory, sync_admissions
from suanli.controller.translate import (
    catalogue_entry,
    job_request,
    quota_spec,
    recorded_admission,
)
from suanli.localcluster.fakenodes import MachineModel, node_manifest
from suanli.placement import reference
from suanli.reasons import Reason
from suanli.scheduling.cycle import Admit, Wait, run_cycle
from suanli.scheduling.model import Admission

CLASS = "ascend-910a"
SHIPPED = Path(__file__).resolve().parents[3] / "deploy" / "catalogue"
RINGS = (frozenset(range(4)), frozenset(range(4, 8)))

# An Atlas 800 training server (model 9000) as the Ascend device plugin / MindCluster label it.
ATLAS_800_9000 = MachineModel(
    kind=CLASS,
    resource="huawei.com/Ascend910",
    devices=8,
    cpu="192",
    memory="768Gi",
    arch="arm64",
    labels={
        "accelerator": "huawei-Ascend910",
        "accelerator-type": "module",
        "node.kubernetes.io/npu.chip.name": "910A",
        "host-arch": "huawei-arm",
    },
)


def shipped_class() -> AcceleratorClass:
    raw = yaml.safe_load((SHIPPED / f"{CLASS}.yaml").read_text(encoding="utf-8"))
    return AcceleratorClass.model_validate(raw)


def node(name: str) -> dict[str, Any]:
    body = node_manifest(name, ATLAS_800_9000, "rack-r1")
    body["metadata"]["resourceVersion"] = "1"
    body["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    return body


def job_body(name: str, devices: int, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": "t", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "replicas": replicas,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "i",
                            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                        }
                    ]
                }
            },
            "accelerators": [{"acceleratorClass": CLASS, "devicesPerReplica": devices}],
        },
    }


def quota() -> ComputeQuota:
    return ComputeQuota.model_validate(
        {
            "apiVersion": "suanli.io/v1alpha1",
            "kind": "ComputeQuota",
            "metadata": {"name": "t"},
            "spec": {
                "namespaces": ["t"],
                "resources": [{"acceleratorClass": CLASS, "nominal": 64}],
            },
        }
    )


def held(name: str, node_name: str, chips: tuple[int, ...]) -> Admission:
    """An admitted job as its status records it: one replica on ``chips`` of ``node_name``."""
    body = job_body(name, len(chips))
    request = job_request(TrainingJob.model_validate(body), body)
    status = {
        "chosenOption": {"index": 0, "acceleratorClass": CLASS},
        "placement": [{"replica": 0, "node": node_name, "deviceIndices": list(chips)}],
    }
    admission = recorded_admission(request, status)
    assert admission is not None
    return admission


@dataclass(frozen=True)
class Case:
    name: str
    busy: tuple[tuple[int, ...], ...]  # chips of n-01 held by admitted jobs, one job each
    devices: int
    replicas: int = 1
    nodes: int = 1


def decide(case: Case, core: str) -> Admit | Wait:
    entry = catalogue_entry(shipped_class())
    inventory = Inventory()
    inventory.set_catalogue({CLASS: entry})
    if core == "reference":
        inventory.state = reference.ClusterState([entry.device_class], track_recent_mix=False)  # type: ignore[assignment]
    inventory.sync_nodes([node(f"n-{i:02d}") for i in range(1, case.nodes + 1)])
    admitted = [held(f"held-{i}", "n-01", chips) for i, chips in enumerate(case.busy)]
    assert sync_admissions(inventory, admitted) == []
    body = job_body("new", case.devices, case.replicas)
    pending = job_request(TrainingJob.model_validate(body), body)
    result = run_cycle(
        [pending], admitted, [quota_spec(quota())], [entry.device_class], inventory.state
    )
    decision = result.decision_for("t/new")
    assert isinstance(decision, Admit | Wait)
    return decision


CORES = ("compiled", "reference")


@pytest.mark.parametrize("core", CORES)
def test_the_shipped_910a_class_has_two_rings_of_four(core: str) -> None:
    entry = catalogue_entry(shipped_class())
    cls = entry.device_class
    assert (cls.devices_per_node, cls.group_size) == (8, 4)
    assert (cls.allowed_counts, cls.multi_replica_count) == ((1, 2, 4, 8), 8)
    assert entry.resource_name == "huawei.com/Ascend910"
    assert dict(entry.node_labels) == {
        "accelerator": "huawei-Ascend910",
        "accelerator-type": "module",
    }
    # a node labelled as the device plugin labels an Atlas 800 (model 9000) is of this class
    inventory = Inventory()
    inventory.set_catalogue({CLASS: entry})
    inventory.sync_nodes([node("n-01")])
    assert inventory.nodes["n-01"].device_class == CLASS
    assert inventory.nodes["n-01"].devices == 8


# Free chips: what is left of 0..7 once `busy` is held. Each case's expected answer holds under
# the ring rule and not with one 8-chip group (the comment says what one group would allow).
UNSCHEDULABLE = (
    # 6 chips free (1-3, 5-7), but no ring has 4: one 8-chip group would place it
    Case("four-with-one-chip-used-in-each-ring", busy=((0,), (4,)), devices=4),
    # 4 chips free (2, 3, 6, 7), 2 in each ring
    Case("four-with-two-chips-used-in-each-ring", busy=((0, 1), (4, 5)), devices=4),
)


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("case", UNSCHEDULABLE, ids=lambda c: c.name)
def test_a_pod_that_fits_the_node_but_no_ring_waits(case: Case, core: str) -> None:
    decision = decide(case, core)
    assert isinstance(decision, Wait), decision
    assert decision.reason == Reason.UNSCHEDULABLE


PLACED = (
    # ring 0 has 2 free (0, 3), ring 1 all 4: the pod must take ring 1, not 0, 3, 4, 5
    (Case("four-takes-the-whole-free-ring", busy=((1, 2),), devices=4), (4, 5, 6, 7)),
    # ring 0 has 1 free (3), ring 1 three (4, 6, 7): a pair must come from ring 1, never 3 + 4
    (Case("a-pair-stays-inside-one-ring", busy=((0, 1, 2), (5,)), devices=2), None),
    # a whole server for an 8-chip pod on an empty node
    (Case("eight-takes-both-rings", busy=(), devices=8), (0, 1, 2, 3, 4, 5, 6, 7)),
)


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize(("case", "chips"), PLACED, ids=[c.name for c, _ in PLACED])
def test_a_pod_is_placed_inside_one_ring(
    case: Case, chips: tuple[int, ...] | None, core: str
) -> None:
    decision = decide(case, core)
    assert isinstance(decision, Admit), decision
    (replica,) = decision.placement.replicas
    assert replica.node == "n-01"
    taken = set(replica.device_indices)
    busy = {chip for chips_held in case.busy for chip in chips_held}
    assert len(taken) == case.devices and not taken & busy
    if chips is not None:
        assert tuple(sorted(taken)) == chips
    if case.devices <= 4:
        assert any(taken <= ring for ring in RINGS), taken


@pytest.mark.parametrize("core", CORES)
def test_a_multi_replica_job_takes_whole_servers(core: str) -> None:
    """Jobs with several pods take 8 chips per pod on a 910A: 2 x 4 is refused as illegal
    (whatever is free), 2 x 8 takes two whole servers."""
    refused = decide(Case("two-by-four", busy=(), devices=4, replicas=2, nodes=2), core)
    assert isinstance(refused, Wait) and refused.reason == Reason.ILLEGAL_SHAPE
    placed = decide(Case("two-by-eight", busy=(), devices=8, replicas=2, nodes=2), core)
    assert isinstance(placed, Admit)
    assert sorted(r.node for r in placed.placement.replicas) == ["n-01", "n-02"]
    assert all(tuple(r.device_indices) == tuple(range(8)) for r in placed.placement.replicas)
