"""The HCCL rank table checked field by field against the placement and the v1.0 format.

HCCL's rank table v1.0 (the ``hccl.json`` MindCluster's Ascend Operator mounts, and the layout
MindSpore's ``hccl_tools`` writes): ``status``, ``version`` "1.0", ``server_count`` and a
``server_list`` of servers, each with ``server_id``, ``container_ip`` and ``device``: a list of
``{"device_id", "device_ip", "rank_id"}``, every value a string. What suanli fills and when:

* written before any pod exists, from the placement: one server per replica in replica order,
  ``server_id`` the node's name, its chips in placement order, ``device_id`` the physical chip
  index, ``rank_id`` consecutive over the whole gang;
* ``device_ip``: the address the node publishes for that chip (the Ascend device plugin's
  ``huawei.com/npu.base-device-infos`` Node annotation, or the deprecated ``baseDeviceInfos``);
  absent for a chip it publishes none for;
* ``container_ip``: empty, since a pod's IP exists only once the pod runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from suanli.placement.model import DeviceClass, Gang, GangOption, Placement
from suanli.placement.reference import ClusterState
from suanli.workload.pods import (
    DEPRECATED_BASE_DEVICE_INFOS_ANNOTATION,
    NPU_BASE_DEVICE_INFOS_ANNOTATION,
    GangSpec,
    ReplicaSlot,
    build_rank_table,
    published_device_ips,
)

from .test_pods import spec


def table_of(slots: list[ReplicaSlot], gang: GangSpec | None = None) -> dict[str, Any]:
    config_map = build_rank_table(gang or spec({"spec": {"containers": [{"name": "c"}]}}), slots)
    assert list(config_map["data"]) == ["rank_table.json"]
    table = json.loads(config_map["data"]["rank_table.json"])
    assert isinstance(table, dict)
    return table


def infos(**chips: str) -> str:
    """A base-device-infos annotation value as the device plugin writes it."""
    return json.dumps(
        {f"Ascend910-{c[1:]}": {"IP": ip, "SuperDeviceID": 0} for c, ip in chips.items()}
    )


@dataclass(frozen=True)
class Published:
    name: str
    annotations: dict[str, str] | None
    ips: tuple[tuple[int, str], ...]


PUBLISHED = (
    Published("none", None, ()),
    Published("other-annotations", {"note": "x"}, ()),
    Published(
        "current-annotation",
        {NPU_BASE_DEVICE_INFOS_ANNOTATION: infos(c1="10.0.0.2", c0="10.0.0.1")},
        ((0, "10.0.0.1"), (1, "10.0.0.2")),
    ),
    Published(
        "deprecated-annotation",
        {DEPRECATED_BASE_DEVICE_INFOS_ANNOTATION: infos(c7="10.0.0.8")},
        ((7, "10.0.0.8"),),
    ),
    Published(
        "the-current-one-wins",
        {
            NPU_BASE_DEVICE_INFOS_ANNOTATION: infos(c3="10.0.1.4"),
            DEPRECATED_BASE_DEVICE_INFOS_ANNOTATION: infos(c3="10.9.9.9"),
        },
        ((3, "10.0.1.4"),),
    ),
    Published("not-json", {NPU_BASE_DEVICE_INFOS_ANNOTATION: "{Ascend910-0"}, ()),
    Published("not-a-map", {NPU_BASE_DEVICE_INFOS_ANNOTATION: '["10.0.0.1"]'}, ()),
    Published(
        "unusable-entries-are-skipped",
        {
            NPU_BASE_DEVICE_INFOS_ANNOTATION: json.dumps(
                {
                    "Ascend910-0": {"IP": "10.0.0.1"},
                    "Ascend910-x": {"IP": "10.0.0.2"},  # no numeric id
                    "Ascend910-2": {"IP": ""},  # no address
                    "Ascend910-3": {"SuperDeviceID": 3},  # no IP at all
                    "Ascend910-4": "10.0.0.5",  # not an object
                    "Ascend910-5": {"IP": 5},  # not a string
                }
            )
        },
        ((0, "10.0.0.1"),),
    ),
)


@pytest.mark.parametrize("case", PUBLISHED, ids=[p.name for p in PUBLISHED])
def test_the_device_ips_a_node_publishes(case: Published) -> None:
    assert published_device_ips(case.annotations) == case.ips


def test_the_table_is_hccl_v1_with_every_published_device_ip() -> None:
    slots = [
        ReplicaSlot(0, "n2", (4, 5, 6, 7), ((4, "10.2.0.5"), (5, "10.2.0.6"), (6, "10.2.0.7"))),
        ReplicaSlot(
            1,
            "n1",
            (0, 1, 2, 3),
            ((0, "10.1.0.1"), (1, "10.1.0.2"), (2, "10.1.0.3"), (3, "10.1.0.4")),
        ),
    ]
    assert table_of(slots) == {
        "status": "completed",
        "version": "1.0",
        "server_count": "2",
        "server_list": [
            {
                "server_id": "n2",
                "container_ip": "",
                "device": [
                    {"device_id": "4", "device_ip": "10.2.0.5", "rank_id": "0"},
                    {"device_id": "5", "device_ip": "10.2.0.6", "rank_id": "1"},
                    {"device_id": "6", "device_ip": "10.2.0.7", "rank_id": "2"},
                    {"device_id": "7", "rank_id": "3"},  # n2 publishes no IP for chip 7
                ],
            },
            {
                "server_id": "n1",
                "container_ip": "",
                "device": [
                    {"device_id": "0", "device_ip": "10.1.0.1", "rank_id": "4"},
                    {"device_id": "1", "device_ip": "10.1.0.2", "rank_id": "5"},
                    {"device_id": "2", "device_ip": "10.1.0.3", "rank_id": "6"},
                    {"device_id": "3", "device_ip": "10.1.0.4", "rank_id": "7"},
                ],
            },
        ],
    }


def test_an_address_published_for_a_chip_the_replica_does_not_hold_is_not_used() -> None:
    slot = ReplicaSlot(0, "n1", (2,), ((0, "10.1.0.1"), (1, "10.1.0.2"), (3, "10.1.0.4")))
    (server,) = table_of([slot])["server_list"]
    assert server["device"] == [{"device_id": "2", "rank_id": "0"}]


ASCEND = DeviceClass("ascend-910a", 8, 4, (1, 2, 4, 8), multi_replica_count=8)


@pytest.mark.parametrize(("replicas", "devices"), [(1, 1), (1, 2), (1, 4), (3, 8)])
def test_the_table_is_the_placement_of_a_real_gang(replicas: int, devices: int) -> None:
    """Place a gang with the core on nodes that publish their chips' IPs; every server, chip and
    rank of the table is the placement's, with the address its node published."""
    state = ClusterState([ASCEND])
    published = {}
    for n in range(4):
        name = f"n{n}"
        state.add_node(name, ASCEND.name, 64_000, 256 * 1024, 110, devices=8)
        annotations = {
            NPU_BASE_DEVICE_INFOS_ANNOTATION: infos(**{f"c{c}": f"10.{n}.0.{c}" for c in range(8)})
        }
        published[name] = published_device_ips(annotations)
    state.bind("other/0", "n0", 1000, 1024, devices=(1,))  # so a small pod does not start at chip 0
    option = GangOption(ASCEND.name, devices, cpu_milli=1000, memory_mib=1024)
    placement = state.place(Gang("t/j", replicas, (option,)))
    assert isinstance(placement, Placement), placement
    slots = [
        ReplicaSlot(i, r.node, tuple(r.device_indices), published[r.node])
        for i, r in enumerate(placement.replicas)
    ]
    table = table_of(slots)
    assert table["server_count"] == str(replicas)
    assert [s["server_id"] for s in table["server_list"]] == [r.node for r in placement.replicas]
    flat = [(s["server_id"], d) for s in table["server_list"] for d in s["device"]]
    assert [d["rank_id"] for _, d in flat] == [str(i) for i in range(replicas * devices)]
    assert [(node, int(d["device_id"])) for node, d in flat] == [
        (r.node, c) for r in placement.replicas for c in r.device_indices
    ]
    assert all(d["device_ip"] == f"10.{node[1:]}.0.{d['device_id']}" for node, d in flat)
    assert all(s["container_ip"] == "" for s in table["server_list"])
