"""Every object of a gang, compared whole with the Kubernetes object it must be.

The other workload tests check the values suanli chooses; these pin the shape around them too
(apiVersion, kind, metadata keys, the init containers, the device request, the visible-device
list, the owner reference), so a misspelt key or a dropped field fails here and not on a real
API server (found missing by mutation testing).
"""

from __future__ import annotations

from typing import Any

from suanli.workload.pods import (
    ReplicaSlot,
    build_pod,
    build_rank_table,
    build_service,
    template_violations,
)

from .test_pods import spec

OWNER = {
    "apiVersion": "suanli.io/v1alpha1",
    "kind": "TrainingJob",
    "name": "train",
    "uid": "0123456789abcdef",
    "controller": True,
    "blockOwnerDeletion": True,
}
RESTRICTED = {
    "privileged": False,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}
TEMPLATE: dict[str, Any] = {
    "spec": {
        "containers": [{"name": "c", "image": "i"}],
        "initContainers": [{"name": "init", "image": "busybox", "command": ["true"]}],
    }
}


def env(**values: str) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in values.items()]


def test_an_ascend_pod_is_exactly_this_pod() -> None:
    pod = build_pod(spec(TEMPLATE), ReplicaSlot(1, "n1", (4, 5, 6, 7)), world_size=2)
    assert pod == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "train-a2-1",
            "namespace": "team",
            "labels": {
                "suanli.io/job-name": "train",
                "suanli.io/attempt": "2",
                "app.kubernetes.io/managed-by": "suanli",
                "suanli.io/replica-index": "1",
            },
            "annotations": {
                "suanli.io/device-indices": "4,5,6,7",
                "suanli.io/accelerator-class": "ascend-910b",
                "huawei.com/Ascend910": "Ascend910-4,Ascend910-5,Ascend910-6,Ascend910-7",
            },
            "ownerReferences": [OWNER],
            "finalizers": ["suanli.io/metering"],
        },
        "spec": {
            "nodeName": "n1",
            "hostname": "train-1",
            "subdomain": "train",
            "restartPolicy": "Never",
            "serviceAccountName": "default",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "containers": [
                {
                    "name": "c",
                    "image": "override:1",
                    "securityContext": RESTRICTED,
                    "resources": {
                        "requests": {"huawei.com/Ascend910": "4"},
                        "limits": {"huawei.com/Ascend910": "4"},
                    },
                    "env": env(
                        MASTER_ADDR="train-0.train.team.svc",
                        MASTER_PORT="29500",
                        WORLD_SIZE="2",
                        RANK="1",
                        NODE_RANK="1",
                        LOCAL_WORLD_SIZE="4",
                        SUANLI_JOB="team/train",
                        SUANLI_ATTEMPT="2",
                        SUANLI_ACCELERATOR_CLASS="ascend-910b",
                        SUANLI_CHECKPOINT_DIR="/checkpoints/team/train-01234567",
                        RANK_TABLE_FILE="/etc/hccl/rank_table.json",
                        RANK_SIZE="8",
                        ASCEND_VISIBLE_DEVICES="4,5,6,7",
                        HCCL_BUFFSIZE="200",
                    ),
                    "volumeMounts": [
                        {"name": "suanli-hccl", "mountPath": "/etc/hccl", "readOnly": True}
                    ],
                }
            ],
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [
                {
                    "name": "init",
                    "image": "busybox",
                    "command": ["true"],
                    "securityContext": RESTRICTED,
                    "resources": {"requests": {}, "limits": {}},
                }
            ],
            "volumes": [{"name": "suanli-hccl", "configMap": {"name": "train-a2-hccl"}}],
        },
    }


def test_the_service_is_exactly_this_headless_service() -> None:
    assert build_service(spec(TEMPLATE)) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "train",
            "namespace": "team",
            "labels": {"suanli.io/job-name": "train", "app.kubernetes.io/managed-by": "suanli"},
            "ownerReferences": [OWNER],
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {"suanli.io/job-name": "train"},
            "ports": [{"name": "rendezvous", "port": 29500}],
        },
    }


def test_the_rank_table_is_a_config_map_of_this_attempt() -> None:
    config_map = build_rank_table(spec(TEMPLATE), [ReplicaSlot(0, "n1", (0,))])
    assert set(config_map["data"]) == {"rank_table.json"}
    assert {k: v for k, v in config_map.items() if k != "data"} == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "train-a2-hccl",
            "namespace": "team",
            "labels": {
                "suanli.io/job-name": "train",
                "suanli.io/attempt": "2",
                "app.kubernetes.io/managed-by": "suanli",
            },
            "ownerReferences": [OWNER],
        },
    }


def test_a_resource_that_is_not_an_accelerator_is_refused_for_what_it_is() -> None:
    template = {
        "spec": {"containers": [{"name": "c", "resources": {"limits": {"hugepages-2Mi": "1"}}}]}
    }
    assert template_violations(template) == [
        "spec.template.spec.containers[0].resources.limits.hugepages-2Mi: only cpu, memory, "
        "ephemeral-storage reach the pods"
    ]


def test_the_template_s_metadata_and_env_reach_the_pod_without_duplicating_ours() -> None:
    template = {
        "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "env": [{"name": "RANK", "value": "9"}, {"name": "MINE", "value": "1"}],
                }
            ]
        },
    }
    pod = build_pod(spec(template), ReplicaSlot(0, "n0", (0, 1, 2, 3)), world_size=1)
    assert pod["metadata"]["labels"]["team"] == "a"
    assert pod["metadata"]["annotations"]["note"] == "x"
    names = [e["name"] for e in pod["spec"]["containers"][0]["env"]]
    assert names.count("RANK") == 1 and names.count("MINE") == 1
    assert {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}["RANK"] == "0"


def test_an_init_container_may_not_escalate_either() -> None:
    template = {
        "spec": {
            "containers": [{"name": "c"}],
            "initContainers": [{"name": "i", "securityContext": {"privileged": True}}],
        }
    }
    assert template_violations(template) == [
        "spec.template.spec.initContainers[0].securityContext.privileged: not allowed"
    ]
