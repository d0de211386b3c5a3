"""The pod builder's allow-list: what a tenant writes can never grant privilege."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from suanli.constants import HUB_JOB_UID_LABEL
from suanli.workload.pods import (
    GangSpec,
    ReplicaSlot,
    build_gang,
    build_pod,
    build_service,
    checkpoint_id,
    template_violations,
)


def spec(template: dict[str, Any], vendor: str = "huawei") -> GangSpec:
    return GangSpec(
        namespace="team",
        job_name="train",
        job_uid="0123456789abcdef",
        attempt=2,
        template=template,
        accelerator_class="ascend-910b" if vendor == "huawei" else "nvidia-h100",
        vendor=vendor,
        resource_name="huawei.com/Ascend910" if vendor == "huawei" else "nvidia.com/gpu",
        devices_per_replica=4,
        image="override:1",
        extra_env=({"name": "HCCL_BUFFSIZE", "value": "200"},),
    )


HOSTILE = {
    "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
    "spec": {
        "hostNetwork": True,
        "hostPID": True,
        "serviceAccountName": "cluster-admin",
        "tolerations": [{"operator": "Exists"}],
        "securityContext": {"runAsUser": 1000, "sysctls": [{"name": "x", "value": "1"}]},
        "volumes": [
            {"name": "root", "hostPath": {"path": "/"}},
            {"name": "scratch", "emptyDir": {}},
        ],
        "containers": [
            {
                "name": "trainer",
                "image": "mine:1",
                "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}},
                "resources": {"limits": {"cpu": 8, "nvidia.com/gpu": 8}},
                "env": [{"name": "RANK", "value": "99"}, {"name": "MINE", "value": "1"}],
            }
        ],
    },
}


def test_every_forbidden_field_is_named() -> None:
    problems = " ".join(template_violations(HOSTILE))
    for field in (
        "spec.template.spec.hostNetwork",
        "spec.template.spec.hostPID",
        "spec.template.spec.serviceAccountName",
        "spec.template.spec.tolerations",
        "spec.template.spec.securityContext.sysctls",
        "spec.template.spec.volumes[0].hostPath",
        "spec.template.spec.containers[0].securityContext.privileged",
        "spec.template.spec.containers[0].securityContext.capabilities",
        "spec.template.spec.containers[0].resources.limits.nvidia.com/gpu",
    ):
        assert field in problems, field
    assert "volumes[1]" not in problems
    assert template_violations({"spec": {"containers": [{"name": "c"}]}}) == []


def test_the_built_pod_is_safe_even_from_a_hostile_template() -> None:
    pod = build_pod(spec(HOSTILE), ReplicaSlot(1, "node-7", (4, 5, 6, 7)), world_size=2)
    pod_spec = pod["spec"]
    assert "hostNetwork" not in pod_spec and "hostPID" not in pod_spec
    assert pod_spec["serviceAccountName"] == "default"
    assert pod_spec["automountServiceAccountToken"] is False
    # the restricted Pod Security level's demands, plus what the template may set
    assert pod_spec["securityContext"] == {
        "runAsUser": 1000,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert [v["name"] for v in pod_spec["volumes"]] == ["scratch", "suanli-hccl"]
    container = pod_spec["containers"][0]
    assert container["securityContext"]["privileged"] is False
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["metadata"]["finalizers"] == ["suanli.io/metering"]
    assert container["resources"]["limits"] == {"cpu": "8", "huawei.com/Ascend910": "4"}
    assert container["image"] == "override:1"
    assert pod_spec["nodeName"] == "node-7"
    assert pod["metadata"]["annotations"]["huawei.com/Ascend910"] == (
        "Ascend910-4,Ascend910-5,Ascend910-6,Ascend910-7"
    )
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["RANK"] == "1"  # ours wins over the tenant's
    assert env["MINE"] == "1" and env["HCCL_BUFFSIZE"] == "200"
    assert env["WORLD_SIZE"] == "2" and env["ASCEND_VISIBLE_DEVICES"] == "4,5,6,7"
    assert env["SUANLI_CHECKPOINT_DIR"] == "/checkpoints/team/train-01234567"
    assert pod["metadata"]["name"] == "train-a2-1"
    assert pod["metadata"]["ownerReferences"][0]["uid"] == "0123456789abcdef"


def test_nvidia_gangs_get_no_rank_table() -> None:
    objects = build_gang(
        spec({"spec": {"containers": [{"name": "c"}]}}, "nvidia"),
        [ReplicaSlot(0, "g1", (0, 1, 2, 3))],
    )
    assert [o["kind"] for o in objects] == ["Pod"]
    env = {e["name"] for e in objects[0]["spec"]["containers"][0]["env"]}
    assert "RANK_TABLE_FILE" not in env


def test_rank_table_numbers_every_device_once() -> None:
    slots = [ReplicaSlot(0, "a", (0, 1, 2, 3)), ReplicaSlot(1, "b", (4, 5, 6, 7))]
    table = json.loads(
        build_gang(spec({"spec": {"containers": [{"name": "c"}]}}), slots)[0]["data"][
            "rank_table.json"
        ]
    )
    ranks = [d["rank_id"] for s in table["server_list"] for d in s["device"]]
    assert ranks == [str(i) for i in range(8)]
    assert build_service(spec({"spec": {}}))["spec"]["clusterIP"] == "None"


def test_the_template_may_tighten_but_not_loosen_the_restricted_defaults() -> None:
    template = {
        "spec": {
            "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "p"}},
            "containers": [
                {
                    "name": "c",
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": True,
                    },
                }
            ],
        }
    }
    assert template_violations(template) == [
        "spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation: not allowed"
    ]
    pod = build_pod(spec(template), ReplicaSlot(0, "n", (0,)), world_size=1)
    assert pod["spec"]["securityContext"]["seccompProfile"]["type"] == "Localhost"
    security = pod["spec"]["containers"][0]["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False


def test_nfs_and_csi_volumes_need_the_quota_s_permission() -> None:
    template = {
        "spec": {
            "containers": [{"name": "c"}],
            "volumes": [
                {"name": "data", "nfs": {"server": "10.9.9.9", "path": "/"}},
                {"name": "ckpt", "csi": {"driver": "x"}},
            ],
        }
    }
    problems = template_violations(template)
    assert [p.split(":")[0] for p in problems] == [
        "spec.template.spec.volumes[0].nfs",
        "spec.template.spec.volumes[1].csi",
    ]
    assert "spec.allowedVolumeKinds" in problems[0]
    assert template_violations(template, {"nfs", "csi"}) == []
    assert template_violations(template, {"nfs"}) == problems[1:]


def test_the_rank_table_is_hccl_v1_and_the_pods_keep_their_layout() -> None:
    gang = spec({"spec": {"containers": [{"name": "c"}]}})
    slots = [ReplicaSlot(0, "n1", (0, 1, 2, 3)), ReplicaSlot(1, "n2", (4, 5, 6, 7))]
    table_map = build_gang(gang, slots)[0]
    assert table_map["metadata"]["name"] == "train-a2-hccl"
    table = json.loads(table_map["data"]["rank_table.json"])
    # the HCCL rank table v1.0 layout: every field name and value type as HCCL reads them
    assert table["status"] == "completed" and table["version"] == "1.0"
    assert table["server_count"] == "2"
    assert [s["server_id"] for s in table["server_list"]] == ["n1", "n2"]
    assert [
        [(d["device_id"], d["rank_id"]) for d in s["device"]] for s in table["server_list"]
    ] == [
        [("0", "0"), ("1", "1"), ("2", "2"), ("3", "3")],
        [("4", "4"), ("5", "5"), ("6", "6"), ("7", "7")],
    ]
    pod = build_gang(gang, slots)[2]
    assert pod["spec"]["hostname"] == "train-1" and pod["spec"]["subdomain"] == "train"
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["enableServiceLinks"] is False
    assert pod["spec"]["restartPolicy"] == "Never"
    mount = pod["spec"]["containers"][0]["volumeMounts"][-1]
    assert mount == {"name": "suanli-hccl", "mountPath": "/etc/hccl", "readOnly": True}
    assert pod["spec"]["volumes"][-1] == {
        "name": "suanli-hccl",
        "configMap": {"name": "train-a2-hccl"},
    }
    assert build_service(gang)["spec"]["selector"] == {"suanli.io/job-name": "train"}


HUB_UID = "9f8e7d6c-0000-4000-8000-000000000001"
OWN_UID = "1a2b3c4d-0000-4000-8000-000000000002"


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (None, OWN_UID),  # an ordinary job: its own uid
        ({}, OWN_UID),
        ({"team": "a"}, OWN_UID),
        ({HUB_JOB_UID_LABEL: HUB_UID}, HUB_UID),  # a hub's copy: the hub job's uid
        ({HUB_JOB_UID_LABEL: HUB_UID, "team": "a"}, HUB_UID),
        ({HUB_JOB_UID_LABEL: ""}, OWN_UID),  # not a uid: not used
        ({HUB_JOB_UID_LABEL: "9f8e7d6c"}, OWN_UID),
        ({HUB_JOB_UID_LABEL: HUB_UID.upper()}, OWN_UID),
        ({HUB_JOB_UID_LABEL: HUB_UID + "0"}, OWN_UID),
        ({HUB_JOB_UID_LABEL: "0" + HUB_UID}, OWN_UID),
    ],
)
def test_the_checkpoint_id_is_the_hub_job_s_uid_on_a_hub_copy(
    labels: dict[str, str] | None, expected: str
) -> None:
    assert checkpoint_id(OWN_UID, labels) == expected


def test_two_copies_of_one_hub_job_share_the_checkpoint_dir_and_keep_their_owners() -> None:
    template = {"spec": {"containers": [{"name": "c"}]}}
    slot = ReplicaSlot(0, "n", (0, 1, 2, 3))

    def built(copy_uid: str) -> tuple[str, str]:
        gang = replace(
            spec(template),
            job_uid=copy_uid,
            checkpoint_id=checkpoint_id(copy_uid, {HUB_JOB_UID_LABEL: HUB_UID}),
        )
        pod = build_pod(gang, slot, world_size=1)
        env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
        return env["SUANLI_CHECKPOINT_DIR"], pod["metadata"]["ownerReferences"][0]["uid"]

    first, second = built(OWN_UID), built("55555555-0000-4000-8000-000000000003")
    assert first[0] == second[0] == "/checkpoints/team/train-9f8e7d6c"
    assert (first[1], second[1]) == (OWN_UID, "55555555-0000-4000-8000-000000000003")
