"""The pod template inside a TrainingJob: structural where suanli reads it, open where it does not.

Why not the full core/v1 PodTemplateSpec schema: it is thousands of lines, changes with every
Kubernetes release and would make the CRD larger than the fields suanli actually needs. Why not
``x-kubernetes-preserve-unknown-fields`` on the whole template: then ``kubectl explain`` shows
nothing, typos in container names or images pass silently and CEL cannot see the containers.

So the parts the operator reads or rewrites (containers, their image, command, env, resources,
volume mounts, node selector, tolerations) are typed; the large unions the operator only copies
into the pod it creates (volume sources, affinity, security contexts, probes, env valueFrom) keep
their unknown fields, each with a comment saying why.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from .common import DNS_LABEL_PATTERN, ApiModel, Quantity

_PRESERVE: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}


class EnvVar(ApiModel):
    """An environment variable for a container."""

    name: str = Field(min_length=1, max_length=256, description="Variable name.")
    value: str | None = Field(default=None, description="Literal value.")
    # valueFrom is a union of field, resource, ConfigMap and Secret references: copied verbatim
    # into the pod, validated by the API server when the pod is created.
    value_from: dict[str, Any] | None = Field(
        default=None,
        description="Where to read the value from (fieldRef, resourceFieldRef, "
        "configMapKeyRef, secretKeyRef), exactly as in a Pod.",
        json_schema_extra=_PRESERVE,
    )


ENV_LIST_EXTRA: dict[str, Any] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
}


class ResourceRequirements(ApiModel):
    """CPU, memory and other resources for one container.

    Leave accelerator resources (huawei.com/..., nvidia.com/...) out: suanli adds them from the
    chosen accelerator option when it creates the pods.
    """

    requests: dict[str, Quantity] | None = Field(
        default=None, description="Minimum resources, for example cpu: 16, memory: 128Gi."
    )
    limits: dict[str, Quantity] | None = Field(
        default=None, description="Maximum resources the container may use."
    )


class VolumeMount(ApiModel):
    """Where a volume appears inside a container."""

    name: str = Field(min_length=1, description="Name of a volume in spec.template.spec.volumes.")
    mount_path: str = Field(min_length=1, description="Path inside the container.")
    sub_path: str | None = Field(default=None, description="Sub-path inside the volume.")
    read_only: bool | None = Field(default=None, description="Mount read-only.")


class ContainerPort(ApiModel):
    """A port a container listens on."""

    container_port: int = Field(ge=1, le=65535, description="Port number.")
    name: str | None = Field(default=None, max_length=15, description="Port name.")
    protocol: Literal["TCP", "UDP", "SCTP"] | None = Field(default=None, description="Protocol.")


class Container(ApiModel):
    """One container of every replica's pod."""

    name: str = Field(
        min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN, description="Container name."
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        description="Container image. An accelerator option's image, when set, replaces it.",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None, description="When to pull the image."
    )
    command: list[str] | None = Field(default=None, description="Entrypoint.")
    args: list[str] | None = Field(default=None, description="Arguments to the entrypoint.")
    working_dir: str | None = Field(default=None, description="Working directory.")
    env: list[EnvVar] | None = Field(
        default=None,
        description="Environment variables. An accelerator option's env is appended to these.",
        json_schema_extra=ENV_LIST_EXTRA,
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="CPU and memory; accelerators are added by suanli."
    )
    volume_mounts: list[VolumeMount] | None = Field(default=None, description="Volume mounts.")
    ports: list[ContainerPort] | None = Field(default=None, description="Ports.")
    # Security contexts and probes are large, version-dependent structs that suanli never reads;
    # they are copied into the pod and validated there.
    security_context: dict[str, Any] | None = Field(
        default=None,
        description="Container security context, as in a Pod.",
        json_schema_extra=_PRESERVE,
    )
    liveness_probe: dict[str, Any] | None = Field(
        default=None, description="Liveness probe, as in a Pod.", json_schema_extra=_PRESERVE
    )
    readiness_probe: dict[str, Any] | None = Field(
        default=None, description="Readiness probe, as in a Pod.", json_schema_extra=_PRESERVE
    )


class Volume(ApiModel):
    """A volume for the pods. Only the name is typed; the source is copied as written.

    A volume source is a union of about thirty kinds (persistentVolumeClaim, configMap, hostPath,
    emptyDir, csi...). suanli never interprets it, and the API server validates it on the pods.
    """

    model_config = ConfigDict(extra="allow", json_schema_extra=_PRESERVE)

    name: str = Field(
        min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN, description="Volume name."
    )


class Toleration(ApiModel):
    """A toleration for node taints."""

    key: str | None = Field(default=None, description="Taint key; empty matches every key.")
    operator: Literal["Exists", "Equal"] | None = Field(default=None, description="Operator.")
    value: str | None = Field(default=None, description="Taint value.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to tolerate; empty matches every effect."
    )
    toleration_seconds: int | None = Field(default=None, description="For NoExecute taints.")


class PodSpec(ApiModel):
    """The pod spec each replica runs. suanli sets nodeName and accelerator resources itself."""

    containers: list[Container] = Field(
        min_length=1,
        max_length=16,
        description="Containers of each pod; the first one gets the accelerator devices.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    init_containers: list[Container] | None = Field(
        default=None,
        max_length=16,
        description="Init containers, as in a Pod.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    volumes: list[Volume] | None = Field(
        default=None,
        description="Volumes; each keeps its source (persistentVolumeClaim, configMap, ...) "
        "as written.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    node_selector: dict[str, str] | None = Field(
        default=None, description="Extra node labels every pod's node must carry."
    )
    tolerations: list[Toleration] | None = Field(default=None, description="Tolerations.")
    # Affinity is three nested selector languages; suanli chooses nodes itself and copies any
    # affinity given here into the pods only as a further constraint.
    affinity: dict[str, Any] | None = Field(
        default=None, description="Extra affinity rules, as in a Pod.", json_schema_extra=_PRESERVE
    )
    service_account_name: str | None = Field(default=None, description="Service account.")
    image_pull_secrets: list[dict[str, str]] | None = Field(
        default=None, description="Secrets for pulling images: [{name: ...}]."
    )
    security_context: dict[str, Any] | None = Field(
        default=None, description="Pod security context, as in a Pod.", json_schema_extra=_PRESERVE
    )
    termination_grace_period_seconds: int | None = Field(
        default=None, ge=0, description="Seconds to wait after SIGTERM."
    )
    host_network: bool | None = Field(
        default=None, description="Use the node's network namespace (RDMA setups often do)."
    )
    scheduler_name: str | None = Field(
        default=None, description="Ignored: suanli binds the pods it creates itself."
    )


class TemplateMetadata(ApiModel):
    """Labels and annotations copied onto every pod."""

    labels: dict[str, str] | None = Field(default=None, description="Pod labels.")
    annotations: dict[str, str] | None = Field(default=None, description="Pod annotations.")


class PodTemplate(ApiModel):
    """What every replica's pod looks like, before suanli adds devices and a node."""

    metadata: TemplateMetadata | None = Field(default=None, description="Pod labels/annotations.")
    spec: PodSpec = Field(description="Pod spec.")
