"""Build the pods of one gang attempt from the tenant's template, through an allow-list.

Why an allow-list and not a deny-list: the pod spec grows every Kubernetes release, and each new
field is one more way to escape. Only fields named here reach the pod; accelerator resources,
node, devices, service account and tolerations are always the operator's choice. Template fields
that would grant privilege are refused up front (see :func:`template_violations`) with the field
named, and stripped here as a second line of defence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from suanli.api.podtemplate import (
    ALLOWED_CONTAINER_RESOURCES,
    ALLOWED_CONTAINER_SECURITY,
    ALLOWED_POD_SECURITY,
    ALLOWED_VOLUME_SOURCES,
    QUOTA_GATED_VOLUME_SOURCES,
)
from suanli.api.trainingjob import MAX_REPLICAS
from suanli.constants import (
    ACCELERATOR_CLASS_ANNOTATION,
    ATTEMPT_LABEL,
    DEVICE_INDICES_ANNOTATION,
    HUB_JOB_UID_LABEL,
    JOB_NAME_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    REPLICA_INDEX_LABEL,
)

MASTER_PORT = 29500
CHECKPOINT_ROOT = "/checkpoints"
# Every pod suanli creates carries this finalizer, so no pod leaves the API server before its
# accelerator time is billed, whoever deletes it (suanli, a tenant, the garbage collector).
METERING_FINALIZER = "suanli.io/metering"
# The longest suffix suanli appends to a job's name in a DNS label: the pods' hostname is
# ``<job>-<replica>`` (a DNS-1123 label of at most 63 characters) and the Service is ``<job>``.
MAX_NAME_SUFFIX = f"-{MAX_REPLICAS - 1}"
MAX_JOB_NAME_LENGTH = 63 - len(MAX_NAME_SUFFIX)
CONTAINER_FIELDS = (
    "name",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "workingDir",
    "env",
    "volumeMounts",
    "ports",
    "livenessProbe",
    "readinessProbe",
)
SAFE_VOLUME_SOURCES = frozenset(ALLOWED_VOLUME_SOURCES)
QUOTA_GATED_VOLUMES = frozenset(QUOTA_GATED_VOLUME_SOURCES)
SAFE_CONTAINER_SECURITY = frozenset(ALLOWED_CONTAINER_SECURITY)
SAFE_POD_SECURITY = frozenset(ALLOWED_POD_SECURITY)
# A Kubernetes object uid as the API server writes it (RFC 4122, lowercase hex).
UID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# What the restricted Pod Security level asks of every container; the template may set the
# allowed fields (runAsUser, seccompProfile...) but cannot weaken these.
RESTRICTED_CONTAINER_SECURITY: dict[str, Any] = {
    "privileged": False,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}
RESTRICTED_POD_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def template_violations(
    template: Mapping[str, Any], allowed_volume_kinds: Collection[str] = ()
) -> list[str]:
    """Every field of a pod template that a tenant may not use, as ``field: why``.

    ``allowed_volume_kinds`` are the quota-gated volume kinds (nfs, csi) the namespace's
    ComputeQuota allows."""
    problems = []
    spec = template.get("spec") or {}
    base = "spec.template.spec"
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(f"{base}.{field}: host namespaces are not available to tenants")
    if spec.get("serviceAccountName") not in (None, "", "default"):
        problems.append(
            f"{base}.serviceAccountName: pods run as the namespace's default service account"
        )
    if spec.get("tolerations"):
        problems.append(
            f"{base}.tolerations: tolerations are granted by the AcceleratorClass, not the job"
        )
    for key in spec.get("securityContext") or {}:
        if key not in SAFE_POD_SECURITY:
            problems.append(f"{base}.securityContext.{key}: not allowed")
    for index, volume in enumerate(spec.get("volumes") or []):
        kinds = [k for k in volume if k != "name"]
        for kind in kinds:
            if kind in QUOTA_GATED_VOLUMES and kind not in allowed_volume_kinds:
                problems.append(
                    f"{base}.volumes[{index}].{kind}: {kind} volumes are allowed only where the "
                    "namespace's ComputeQuota lists them in spec.allowedVolumeKinds"
                )
            elif kind not in SAFE_VOLUME_SOURCES | QUOTA_GATED_VOLUMES:
                problems.append(f"{base}.volumes[{index}].{kind}: volume kind not allowed")
    # ephemeralContainers is not in the schema; checked anyway, as every path to a device is.
    for group in ("containers", "initContainers", "ephemeralContainers"):
        for index, container in enumerate(spec.get(group) or []):
            for key, value in (container.get("securityContext") or {}).items():
                if key not in SAFE_CONTAINER_SECURITY and not (
                    key in ("privileged", "allowPrivilegeEscalation") and value is False
                ):
                    problems.append(f"{base}.{group}[{index}].securityContext.{key}: not allowed")
            for part in ("requests", "limits"):
                for resource in (container.get("resources") or {}).get(part) or {}:
                    if resource in ALLOWED_CONTAINER_RESOURCES:
                        continue
                    why = (
                        "accelerators are requested in spec.accelerators, not in the template"
                        if "/" in resource
                        else "only " + ", ".join(ALLOWED_CONTAINER_RESOURCES) + " reach the pods"
                    )
                    problems.append(f"{base}.{group}[{index}].resources.{part}.{resource}: {why}")
    return problems


@dataclass(frozen=True)
class ReplicaSlot:
    """Where one replica goes: node and device indices chosen by the placement core.

    ``device_ips``: (device index, address) of the chips whose HCCL device IP the node
    publishes (:func:`published_device_ips`); the rank table names them, and leaves out the
    ``device_ip`` of a chip the node publishes none for.
    """

    index: int
    node: str
    device_indices: tuple[int, ...]
    device_ips: tuple[tuple[int, str], ...] = ()


# MindCluster's Ascend device plugin publishes every chip's device (RoCE) IP on its Node as a JSON
# map {"Ascend910-<physical id>": {"IP": "...", "SuperDeviceID": ...}}, under this annotation
# (older releases: the deprecated one below). It is what HCCL's rank table calls device_ip.
NPU_BASE_DEVICE_INFOS_ANNOTATION = "huawei.com/npu.base-device-infos"
DEPRECATED_BASE_DEVICE_INFOS_ANNOTATION = "baseDeviceInfos"


def published_device_ips(annotations: Mapping[str, str] | None) -> tuple[tuple[int, str], ...]:
    """The (physical device index, device IP) pairs a node's annotations publish, sorted.

    An unreadable annotation, or an entry without a numeric id or a non-empty ``IP``, publishes
    nothing for that chip: the rank table then has no ``device_ip`` for it rather than a guess.
    """
    raw = (annotations or {}).get(NPU_BASE_DEVICE_INFOS_ANNOTATION) or (annotations or {}).get(
        DEPRECATED_BASE_DEVICE_INFOS_ANNOTATION
    )
    if not raw:
        return ()
    try:
        infos = json.loads(raw)
    except ValueError:
        return ()
    if not isinstance(infos, dict):
        return ()
    found: dict[int, str] = {}
    for name, info in infos.items():
        chip = str(name).rpartition("-")[2]
        address = info.get("IP") if isinstance(info, dict) else None
        if chip.isdigit() and isinstance(address, str) and address:
            found[int(chip)] = address
    return tuple(sorted(found.items()))


@dataclass(frozen=True)
class GangSpec:
    """Everything the builder needs about the job and the admitted option."""

    namespace: str
    job_name: str
    job_uid: str
    attempt: int
    template: Mapping[str, Any]
    accelerator_class: str
    vendor: str
    resource_name: str
    devices_per_replica: int
    image: str | None = None
    extra_env: tuple[Mapping[str, Any], ...] = ()
    tolerations: tuple[Mapping[str, Any], ...] = ()
    allowed_volume_kinds: frozenset[str] = frozenset()
    # Names SUANLI_CHECKPOINT_DIR (see :func:`checkpoint_id`); empty: the job's own uid.
    checkpoint_id: str = ""


def checkpoint_id(uid: str, labels: Mapping[str, str] | None) -> str:
    """What names a job's checkpoint directory: the hub job's uid when the job is a hub's copy
    (label ``suanli.io/hub-job-uid`` holding a uid), so every copy of one hub job, in any
    centre, gets the same directory; otherwise the job's own uid. A label value that is not a
    uid is not used (the validator refuses such a job, naming the label)."""
    hub_uid = (labels or {}).get(HUB_JOB_UID_LABEL)
    if isinstance(hub_uid, str) and UID_PATTERN.match(hub_uid):
        return hub_uid
    return uid


def checkpoint_dir(spec: GangSpec) -> str:
    """``/checkpoints/<namespace>/<job>-<first 8 characters of the checkpoint id>``."""
    name = spec.checkpoint_id or spec.job_uid
    return f"{CHECKPOINT_ROOT}/{spec.namespace}/{spec.job_name}-{name[:8]}"


def pod_name(job_name: str, attempt: int, index: int) -> str:
    return f"{job_name}-a{attempt}-{index}"


def service_name(job_name: str) -> str:
    return job_name


def gang_labels(spec: GangSpec) -> dict[str, str]:
    return {
        JOB_NAME_LABEL: spec.job_name,
        ATTEMPT_LABEL: str(spec.attempt),
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
    }


def owner_reference(spec: GangSpec) -> dict[str, Any]:
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "TrainingJob",
        "name": spec.job_name,
        "uid": spec.job_uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def framework_env(spec: GangSpec, slot: ReplicaSlot, world_size: int) -> list[dict[str, Any]]:
    """The variables PyTorch (torchrun), MindSpore/HCCL and checkpointing code read."""
    master = f"{spec.job_name}-0.{service_name(spec.job_name)}.{spec.namespace}.svc"
    env = [
        {"name": "MASTER_ADDR", "value": master},
        {"name": "MASTER_PORT", "value": str(MASTER_PORT)},
        {"name": "WORLD_SIZE", "value": str(world_size)},
        {"name": "RANK", "value": str(slot.index)},
        {"name": "NODE_RANK", "value": str(slot.index)},
        {"name": "LOCAL_WORLD_SIZE", "value": str(spec.devices_per_replica)},
        {"name": "SUANLI_JOB", "value": f"{spec.namespace}/{spec.job_name}"},
        {"name": "SUANLI_ATTEMPT", "value": str(spec.attempt)},
        {"name": "SUANLI_ACCELERATOR_CLASS", "value": spec.accelerator_class},
        # Stable across gang restarts (the job's uid, not the attempt, names the directory) and,
        # for a hub's copy, across centres (the hub job's uid: :func:`checkpoint_id`).
        {"name": "SUANLI_CHECKPOINT_DIR", "value": checkpoint_dir(spec)},
    ]
    if spec.vendor == "huawei":
        env += [
            {"name": "RANK_TABLE_FILE", "value": "/etc/hccl/rank_table.json"},
            {"name": "RANK_SIZE", "value": str(world_size * spec.devices_per_replica)},
            {
                "name": "ASCEND_VISIBLE_DEVICES",
                "value": ",".join(str(i) for i in slot.device_indices),
            },
        ]
    return env


def _container(raw: Mapping[str, Any]) -> dict[str, Any]:
    container = {key: raw[key] for key in CONTAINER_FIELDS if key in raw}
    security = {
        k: v for k, v in (raw.get("securityContext") or {}).items() if k in SAFE_CONTAINER_SECURITY
    }
    container["securityContext"] = {**security, **RESTRICTED_CONTAINER_SECURITY}
    resources = raw.get("resources") or {}
    container["resources"] = {
        part: {
            k: str(v)
            for k, v in (resources.get(part) or {}).items()
            if k in ("cpu", "memory", "ephemeral-storage")
        }
        for part in ("requests", "limits")
    }
    return container


def build_pod(spec: GangSpec, slot: ReplicaSlot, world_size: int) -> dict[str, Any]:
    template_spec = spec.template.get("spec") or {}
    template_meta = spec.template.get("metadata") or {}
    containers = [_container(c) for c in template_spec.get("containers") or []]
    first = containers[0]
    if spec.image:
        first["image"] = spec.image
    devices = str(spec.devices_per_replica)
    first["resources"]["limits"][spec.resource_name] = devices
    first["resources"]["requests"][spec.resource_name] = devices
    env = framework_env(spec, slot, world_size) + [dict(e) for e in spec.extra_env]
    ours = {e["name"] for e in env}
    for container in containers:
        tenant_env = [e for e in container.get("env") or [] if e.get("name") not in ours]
        container["env"] = tenant_env + env
    labels = {
        **(template_meta.get("labels") or {}),
        **gang_labels(spec),
        REPLICA_INDEX_LABEL: str(slot.index),
    }
    indices = ",".join(str(i) for i in slot.device_indices)
    annotations = {
        **(template_meta.get("annotations") or {}),
        DEVICE_INDICES_ANNOTATION: indices,
        ACCELERATOR_CLASS_ANNOTATION: spec.accelerator_class,
    }
    volumes = [
        v
        for v in template_spec.get("volumes") or []
        if all(k == "name" or k in SAFE_VOLUME_SOURCES or k in spec.allowed_volume_kinds for k in v)
    ]
    if spec.vendor == "huawei":
        # The Ascend device plugin allocates exactly the chips this annotation names.
        prefix = spec.resource_name.split("/", 1)[1]
        annotations[spec.resource_name] = ",".join(f"{prefix}-{i}" for i in slot.device_indices)
        volumes.append({"name": "suanli-hccl", "configMap": {"name": rank_table_name(spec)}})
        first.setdefault("volumeMounts", [])
        first["volumeMounts"] = [
            *first["volumeMounts"],
            {"name": "suanli-hccl", "mountPath": "/etc/hccl", "readOnly": True},
        ]
    pod_security = {
        **RESTRICTED_POD_SECURITY,
        **{
            k: v
            for k, v in (template_spec.get("securityContext") or {}).items()
            if k in SAFE_POD_SECURITY
        },
    }
    pod_spec: dict[str, Any] = {
        "nodeName": slot.node,
        "hostname": f"{spec.job_name}-{slot.index}",
        "subdomain": service_name(spec.job_name),
        "restartPolicy": "Never",
        "serviceAccountName": "default",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": containers,
        "securityContext": pod_security,
    }
    if template_spec.get("initContainers"):
        pod_spec["initContainers"] = [_container(c) for c in template_spec["initContainers"]]
    if volumes:
        pod_spec["volumes"] = volumes
    if spec.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in spec.tolerations]
    for key in ("imagePullSecrets", "terminationGracePeriodSeconds"):
        if key in template_spec:
            pod_spec[key] = template_spec[key]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(spec.job_name, spec.attempt, slot.index),
            "namespace": spec.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(spec)],
            "finalizers": [METERING_FINALIZER],
        },
        "spec": pod_spec,
    }


def build_service(spec: GangSpec) -> dict[str, Any]:
    """Headless Service giving every replica a stable DNS name for rendezvous."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(spec.job_name),
            "namespace": spec.namespace,
            "labels": {JOB_NAME_LABEL: spec.job_name, MANAGED_BY_LABEL: MANAGED_BY_VALUE},
            "ownerReferences": [owner_reference(spec)],
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {JOB_NAME_LABEL: spec.job_name},
            "ports": [{"name": "rendezvous", "port": MASTER_PORT}],
        },
    }


def rank_table_name(spec: GangSpec) -> str:
    return f"{spec.job_name}-a{spec.attempt}-hccl"


def build_rank_table(spec: GangSpec, slots: Sequence[ReplicaSlot]) -> dict[str, Any]:
    """HCCL rank table (version 1.0 layout) as a ConfigMap mounted at /etc/hccl.

    Written before the pods exist, from the placement: one server per replica in replica
    order (``server_id``: the node's name), its chips in placement order with consecutive
    ``rank_id``s, ``device_id`` the chip's physical index and ``device_ip`` the address the
    node publishes for it (absent where it publishes none). ``container_ip`` is empty: a pod's
    IP exists only once the pod runs, and the table is not rewritten then.
    """
    servers = []
    rank = 0
    for slot in slots:
        addresses = dict(slot.device_ips)
        devices = []
        for device in slot.device_indices:
            entry = {"device_id": str(device), "rank_id": str(rank)}
            if device in addresses:
                entry["device_ip"] = addresses[device]
            devices.append(entry)
            rank += 1
        servers.append({"server_id": slot.node, "container_ip": "", "device": devices})
    table = {
        "status": "completed",
        "version": "1.0",
        "server_count": str(len(slots)),
        "server_list": servers,
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": rank_table_name(spec),
            "namespace": spec.namespace,
            "labels": gang_labels(spec),
            "ownerReferences": [owner_reference(spec)],
        },
        "data": {"rank_table.json": json.dumps(table, indent=2, sort_keys=True)},
    }


def build_gang(spec: GangSpec, slots: Sequence[ReplicaSlot]) -> list[dict[str, Any]]:
    """Every object of one attempt except the Service, in creation order: the rank table
    (Ascend) before the pods that mount it."""
    objects: list[dict[str, Any]] = []
    if spec.vendor == "huawei":
        objects.append(build_rank_table(spec, slots))
    objects += [build_pod(spec, slot, len(slots)) for slot in slots]
    return objects
