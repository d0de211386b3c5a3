"""The pod template inside a TrainingJob: structural where suanli reads it, open where it does not.

Why not the full core/v1 PodTemplateSpec schema: it is thousands of lines, changes with every
Kubernetes release and would make the CRD larger than the fields suanli actually needs. Why not
``x-kubernetes-preserve-unknown-fields`` on the whole template: then ``kubectl explain`` shows
nothing, typos in container names or images pass silently and CEL cannot see the containers.

So the parts the operator reads or rewrites (containers, their image, command, env, resources,
volume mounts) are typed; the large unions it only copies into the pods (volume sources,
security contexts, probes, env valueFrom) keep their unknown fields, each with a comment saying
why. Fields the pod builder never copies (nodeSelector, affinity, schedulerName...) are not in
the schema at all, so the API server refuses them by name instead of suanli ignoring them.

Tenants share nodes, so the pod builder (``suanli.workload.pods``) takes template fields through
an allow-list and refuses privileged ones with the ``ForbiddenPodField`` reason. The
descriptions below say which values are allowed; a unit test keeps them in step with the
builder's lists.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from .common import DNS_LABEL_PATTERN, ApiModel, Quantity

_PRESERVE: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}

# The allow-lists the pod builder (suanli.workload.pods) applies: defined here, once, so the
# schema's descriptions and the builder cannot disagree.
ALLOWED_VOLUME_SOURCES = (
    "emptyDir",
    "configMap",
    "secret",
    "persistentVolumeClaim",
    "downwardAPI",
    "projected",
    "ephemeral",
)
# Volume kinds that reach servers outside the cluster: only where the quota allows them
# (ComputeQuota spec.allowedVolumeKinds).
QUOTA_GATED_VOLUME_SOURCES = ("csi", "nfs")
ALLOWED_POD_SECURITY = (
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "fsGroup",
    "fsGroupChangePolicy",
    "supplementalGroups",
    "seccompProfile",
)
ALLOWED_CONTAINER_SECURITY = (
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "readOnlyRootFilesystem",
    "seccompProfile",
)
ALLOWED_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
FORBIDDEN = "refused with the ForbiddenPodField reason"


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
    """CPU, memory and ephemeral storage for one container.

    Accelerators (huawei.com/..., nvidia.com/...) are not requested here: suanli adds them from
    the chosen accelerator option when it creates the pods.
    """

    requests: dict[str, Quantity] | None = Field(
        default=None,
        description="Minimum resources, for example cpu: 16, memory: 128Gi. Only "
        + ", ".join(ALLOWED_CONTAINER_RESOURCES)
        + " reach the pod.",
    )
    limits: dict[str, Quantity] | None = Field(
        default=None,
        description="Maximum resources: "
        + ", ".join(ALLOWED_CONTAINER_RESOURCES)
        + f"; anything else (accelerators included) is {FORBIDDEN}.",
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
        description="Container image. An accelerator option's image, when set, replaces the "
        "first container's.",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None, description="When to pull the image."
    )
    command: list[str] | None = Field(default=None, description="Entrypoint.")
    args: list[str] | None = Field(default=None, description="Arguments to the entrypoint.")
    working_dir: str | None = Field(default=None, description="Working directory.")
    env: list[EnvVar] | None = Field(
        default=None,
        description="Environment variables. suanli appends the rendezvous variables and the "
        "chosen accelerator option's env; on a name clash those win.",
        json_schema_extra=ENV_LIST_EXTRA,
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="CPU and memory; accelerators are added by suanli."
    )
    volume_mounts: list[VolumeMount] | None = Field(default=None, description="Volume mounts.")
    ports: list[ContainerPort] | None = Field(default=None, description="Ports.")
    # Security contexts and probes are large, version-dependent structs; the pod builder filters
    # security contexts through its allow-list and copies probes as they are.
    security_context: dict[str, Any] | None = Field(
        default=None,
        description="Container security context. Allowed: "
        + ", ".join(ALLOWED_CONTAINER_SECURITY)
        + f" (privileged and allowPrivilegeEscalation only as false); anything else is "
        f"{FORBIDDEN}.",
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

    A volume source is a union of about thirty kinds. suanli does not interpret the allowed ones
    (the API server validates them on the pods) and refuses the others, hostPath among them.
    """

    model_config = ConfigDict(extra="allow", json_schema_extra=_PRESERVE)

    name: str = Field(
        min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN, description="Volume name."
    )


_BY_NAME: dict[str, Any] = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}


class PodSpec(ApiModel):
    """The pod spec each replica runs. suanli sets node, devices, service account and
    tolerations itself."""

    containers: list[Container] = Field(
        min_length=1,
        max_length=16,
        description="Containers of each pod; the first one gets the accelerator devices.",
        json_schema_extra=_BY_NAME,
    )
    init_containers: list[Container] | None = Field(
        default=None,
        max_length=16,
        description="Init containers, as in a Pod.",
        json_schema_extra=_BY_NAME,
    )
    volumes: list[Volume] | None = Field(
        default=None,
        description="Volumes, each with one source: "
        + ", ".join(ALLOWED_VOLUME_SOURCES)
        + "; "
        + " or ".join(QUOTA_GATED_VOLUME_SOURCES)
        + " only where the namespace's ComputeQuota lists it in spec.allowedVolumeKinds. Any "
        f"other source (hostPath...) is {FORBIDDEN}.",
        json_schema_extra=_BY_NAME,
    )
    image_pull_secrets: list[dict[str, str]] | None = Field(
        default=None, description="Secrets for pulling images: [{name: ...}]."
    )
    security_context: dict[str, Any] | None = Field(
        default=None,
        description="Pod security context. Allowed: "
        + ", ".join(ALLOWED_POD_SECURITY)
        + f"; anything else is {FORBIDDEN}.",
        json_schema_extra=_PRESERVE,
    )
    termination_grace_period_seconds: int | None = Field(
        default=None, ge=0, description="Seconds to wait after SIGTERM."
    )
    # The next three are accepted only so that the operator, not a schema error, explains the
    # multi-tenant rule (the ForbiddenPodField condition names the field and says why).
    service_account_name: str | None = Field(
        default=None,
        description="Pods always run as the namespace's default service account; any other "
        f"value is {FORBIDDEN}.",
    )
    tolerations: list[dict[str, Any]] | None = Field(
        default=None,
        description="Not for tenants: the operator gives the pods the one toleration they "
        f"need (the accelerator resource's NoSchedule taint); a job that sets any is {FORBIDDEN}.",
    )
    host_network: bool | None = Field(
        default=None, description=f"Not for tenants: true is {FORBIDDEN}."
    )


class TemplateMetadata(ApiModel):
    """Labels and annotations copied onto every pod."""

    labels: dict[str, str] | None = Field(default=None, description="Pod labels.")
    annotations: dict[str, str] | None = Field(default=None, description="Pod annotations.")


class PodTemplate(ApiModel):
    """What every replica's pod looks like, before suanli adds devices and a node."""

    metadata: TemplateMetadata | None = Field(default=None, description="Pod labels/annotations.")
    spec: PodSpec = Field(description="Pod spec.")
