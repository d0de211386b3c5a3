"""Hypothesis strategies for suanli objects: the valid space, and hostile changes inside the
schema-valid space (what the CRD schema lets through but the Pods or other objects cannot take).

Used by the unit tests (valid objects pass every check; every hostile change is refused naming
its field), by ``generate.py`` (the stored part of the corpus) and by the integration fuzz test
(thousands of schema-valid objects applied while a canary tenant's jobs keep being admitted).
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from suanli.workload.pods import MAX_JOB_NAME_LENGTH
from tests.unit.controller.corpus import bases, set_pointer

ALPHANUM = "abcdefghijklmnopqrstuvwxyz0123456789"
# The default catalogue's legal shapes (deploy/catalogue): class -> (legal counts, multi-replica).
SHAPES: dict[str, tuple[tuple[int, ...], int | None]] = {
    "ascend-910b": ((1, 2, 4, 8), None),
    "ascend-910a": ((1, 2, 4, 8), 8),
    "ascend-310p": ((1, 2, 3, 4, 5, 6, 7, 8), None),
    "nvidia-a100": ((1, 2, 3, 4, 5, 6, 7, 8), None),
    "nvidia-h100": ((1, 2, 3, 4, 5, 6, 7, 8), None),
    "nvidia-l40s": ((1, 2, 3, 4, 8), None),
}


@st.composite
def dns_labels(draw: st.DrawFn, max_size: int = 20, prefix: str = "") -> str:
    body = draw(st.text(ALPHANUM + "-", min_size=0, max_size=max_size - len(prefix) - 2))
    first = draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz"))
    last = draw(st.sampled_from(ALPHANUM))
    return f"{prefix}{first}{body.replace('--', '-')}{last}"[:max_size].rstrip("-")


def quantities(low: int, high: int, suffixes: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.builds(lambda n, s: f"{n}{s}", st.integers(low, high), st.sampled_from(suffixes))


@st.composite
def containers(draw: st.DrawFn, name: str, volumes: list[str]) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": draw(st.sampled_from(["example.invalid/train:1", "registry.local/a/b@sha256:00"])),
    }
    requests = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "cpu": quantities(1, 64, ("", "m")),
                "memory": quantities(1, 512, ("Mi", "Gi")),
                "ephemeral-storage": quantities(1, 100, ("Gi",)),
            },
        )
    )
    if requests:
        container["resources"] = {"requests": requests}
    env_names = draw(st.lists(st.from_regex(r"[A-Z_][A-Z0-9_]{0,12}", fullmatch=True), max_size=3))
    if env_names:
        container["env"] = [
            {"name": n, "value": draw(st.text(max_size=40))} for n in dict.fromkeys(env_names)
        ]
    if volumes:
        mounts = draw(st.lists(st.sampled_from(volumes), unique=True, max_size=len(volumes)))
        container["volumeMounts"] = [
            {"name": v, "mountPath": f"/mnt/{i}-{v}"} for i, v in enumerate(mounts)
        ]
    if draw(st.booleans()):
        container["args"] = draw(st.lists(st.text(max_size=30), max_size=3))
    return container


@st.composite
def valid_jobs(draw: st.DrawFn, namespace: str = "corpus") -> dict[str, Any]:
    """A TrainingJob every check accepts against the default catalogue."""
    replicas = draw(st.integers(1, 3))
    options = []
    for cls in draw(st.lists(st.sampled_from(sorted(SHAPES)), min_size=1, max_size=3, unique=True)):
        counts, multi = SHAPES[cls]
        devices = multi if multi is not None and replicas > 1 else draw(st.sampled_from(counts))
        options.append({"acceleratorClass": cls, "devicesPerReplica": devices})
    volumes = draw(st.lists(dns_labels(max_size=10), unique=True, max_size=2))
    spec_volumes = [{"name": v, "emptyDir": {}} for v in volumes]
    names = [
        "trainer",
        *draw(st.lists(dns_labels(max_size=12, prefix="s"), unique=True, max_size=1)),
    ]
    labels = draw(
        st.dictionaries(
            st.sampled_from(["app", "team", "example.com/tier", "run"]),
            st.from_regex(r"([a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?)?", fullmatch=True),
            max_size=3,
        )
    )
    template_spec: dict[str, Any] = {
        "containers": [draw(containers(n, volumes)) for n in names],
    }
    if spec_volumes:
        template_spec["volumes"] = spec_volumes
    job: dict[str, Any] = {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {
            "name": draw(dns_labels(max_size=MAX_JOB_NAME_LENGTH)),
            "namespace": namespace,
        },
        "spec": {
            "replicas": replicas,
            "accelerators": options,
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "suanli.io/fake-duration": draw(st.sampled_from(["5s", "30s"]))
                    },
                },
                "spec": template_spec,
            },
        },
    }
    if draw(st.booleans()):
        job["spec"]["minReplicas"] = draw(st.integers(1, replicas))
    if draw(st.booleans()):
        job["spec"]["priority"] = draw(st.integers(-100, 100))
    return job


@st.composite
def valid_quotas(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(dns_labels(max_size=30, prefix="q"))
    rows = draw(st.lists(st.sampled_from(sorted(SHAPES)), unique=True, max_size=3))
    cohort = draw(st.none() | st.just("fuzz"))
    resources = []
    for cls in rows:
        nominal = draw(st.integers(0, 64))
        row: dict[str, Any] = {"acceleratorClass": cls, "nominal": nominal}
        if cohort is not None and draw(st.booleans()):
            row["lendingLimit"] = draw(st.integers(0, nominal))
        resources.append(row)
    spec: dict[str, Any] = {"namespaces": [name], "resources": resources}
    if cohort:
        spec["cohort"] = cohort
    if draw(st.booleans()):
        spec["cpu"] = draw(quantities(1, 4096, ("",)))
        spec["memory"] = draw(quantities(1, 64, ("Ti", "Gi")))
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "ComputeQuota",
        "metadata": {"name": name},
        "spec": spec,
    }


@st.composite
def valid_classes(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(dns_labels(max_size=30, prefix="c"))
    vendor = draw(st.sampled_from(["huawei", "nvidia"]))
    resource = {"huawei": "huawei.com/Ascend910", "nvidia": "nvidia.com/gpu"}[vendor]
    per_node = draw(st.sampled_from([1, 2, 4, 8, 16]))
    group = draw(
        st.sampled_from([g for g in (1, 2, 4, 8, 16) if g <= per_node and per_node % g == 0])
    )
    legal = [c for c in range(1, per_node + 1) if c <= group or c % group == 0]
    counts = sorted(draw(st.lists(st.sampled_from(legal), min_size=1, unique=True)))
    topology: dict[str, Any] = {"groupSize": group, "allowedDeviceCounts": counts}
    if draw(st.booleans()):
        topology["multiReplicaDeviceCount"] = draw(st.sampled_from(counts))
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "AcceleratorClass",
        "metadata": {"name": name},
        "spec": {
            "vendor": vendor,
            "resourceName": resource,
            "nodeLabels": {"suanli.io/fuzz-class": name},
            "devicesPerNode": per_node,
            "deviceMemoryGiB": draw(st.sampled_from([32, 64, 80])),
            "computeTFLOPS": draw(st.sampled_from([256, 312, 989])),
            "topology": topology,
        },
    }


# --- hostile changes inside the schema-valid space -----------------------------------------------
_C0 = "/spec/template/spec/containers/0"


def _job_changes() -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """(field refused, {JSON pointer: value}) pairs applied to the corpus's job base."""
    long_name = st.integers(MAX_JOB_NAME_LENGTH + 1, 200).map(lambda n: "j" * n)
    bad_start = st.builds(lambda d, s: d + s, st.sampled_from("0123456789"), dns_labels(10))
    huge_cpu = st.sampled_from(["1e30", "1e100", "5000", "1E", "99999999"]) | st.integers(
        4097, 10**40
    ).map(str)
    negative = st.integers(1, 10**6).map(lambda n: f"-{n}")
    huge_memory = st.sampled_from(["1e30", "1e100", "65Ti", "1Ei", "8Pi"])
    accelerator = st.sampled_from(
        ["nvidia.com/gpu", "huawei.com/Ascend910", "huawei.com/Ascend310P", "example.com/fpga"]
    )
    part = st.sampled_from(["requests", "limits"])
    label_value = st.integers(64, 3000).map(lambda n: "v" * n) | st.sampled_from(
        ["a b", "-x", "x-", "a/b", "é"]
    )
    env_value = st.integers(128 * 1024 + 1, 200 * 1024).map(lambda n: "e" * n)

    def gpu(resource: str, where: str) -> tuple[str, dict[str, Any]]:
        field = f"spec.template.spec.containers[0].resources.{where}.{resource}"
        return field, {f"{_C0}/resources/{where}": {"cpu": "1", resource: 1}}

    def init_gpu(resource: str, where: str) -> tuple[str, dict[str, Any]]:
        field = f"spec.template.spec.initContainers[0].resources.{where}.{resource}"
        init = {"name": "init", "image": "x.invalid/i:1", "resources": {where: {resource: 1}}}
        return field, {"/spec/template/spec/initContainers": [init]}

    request = f"{_C0}/resources/requests"
    requests_field = "spec.template.spec.containers[0].resources.requests"
    return st.one_of(
        long_name.map(lambda n: ("metadata.name", {"/metadata/name": n})),
        bad_start.map(lambda n: ("metadata.name", {"/metadata/name": n})),
        huge_cpu.map(lambda v: (f"{requests_field}.cpu", {f"{request}/cpu": v})),
        negative.map(lambda v: (f"{requests_field}.cpu", {f"{request}/cpu": v})),
        negative.map(lambda v: (f"{requests_field}.memory", {f"{request}/memory": v + "Gi"})),
        huge_memory.map(lambda v: (f"{requests_field}.memory", {f"{request}/memory": v})),
        st.builds(gpu, accelerator, part),
        st.builds(init_gpu, accelerator, part),
        label_value.map(
            lambda v: (
                "spec.template.metadata.labels.app",
                {"/spec/template/metadata/labels/app": v},
            )
        ),
        env_value.map(
            lambda v: (
                "spec.template.spec.containers[0].env[0].value",
                {f"{_C0}/env": [{"name": "BIG", "value": v}]},
            )
        ),
        st.sampled_from([3, 5, 6, 7]).map(
            lambda n: (
                "spec.accelerators[0].devicesPerReplica",
                {"/spec/accelerators/0/devicesPerReplica": n},
            )
        ),
        dns_labels(20, prefix="nope-").map(
            lambda n: (
                "spec.accelerators[0].acceleratorClass",
                {"/spec/accelerators/0/acceleratorClass": n},
            )
        ),
        st.sampled_from(["1234", "Bad_Name", "a--b", "-a"]).map(
            lambda n: (
                "spec.template.spec.containers[0].ports[0].name",
                {f"{_C0}/ports": [{"containerPort": 8080, "name": n}]},
            )
        ),
    )


def _quota_changes() -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    return st.one_of(
        st.integers(1, 10**6).map(lambda n: ("spec.cpu", {"/spec/cpu": f"-{n}"})),
        st.sampled_from(["1e100", "1e30"]).map(lambda v: ("spec.cpu", {"/spec/cpu": v})),
        st.integers(1, 10**6).map(lambda n: ("spec.memory", {"/spec/memory": f"-{n}Mi"})),
        dns_labels(20, prefix="gone-").map(
            lambda n: (
                "spec.resources[0].acceleratorClass",
                {"/spec/resources/0/acceleratorClass": n},
            )
        ),
        st.integers(10**8, 10**15).map(
            lambda n: ("spec.resources[0].nominal", {"/spec/resources/0/nominal": n})
        ),
    )


def _class_changes() -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    return st.one_of(
        st.sampled_from(["huawei.com/Ascend910", "example.com/gpu", "amd.com/gpu"]).map(
            lambda r: ("spec.resourceName", {"/spec/resourceName": r})
        ),
        st.sampled_from(
            [
                {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB", "extra.io/x": "y"},
                {"nvidia.com/gpu.product": "NVIDIA-L40S"},
            ]
        ).map(lambda labels: ("spec.nodeLabels", {"/spec/nodeLabels": labels})),
    )


@st.composite
def hostile_entries(draw: st.DrawFn) -> dict[str, Any]:
    """A corpus entry (base, field, set) in the schema-valid space that a check must refuse."""
    base = draw(st.sampled_from(["job", "job", "job", "quota", "class"]))
    changes = {"job": _job_changes, "quota": _quota_changes, "class": _class_changes}[base]()
    field, patch = draw(changes)
    return {"base": base, "field": field, "set": patch}


def hostile_object(entry: dict[str, Any], name: str) -> dict[str, Any]:
    """The object of a hostile entry, named ``name`` (for the fuzz test)."""
    manifest = copy.deepcopy(bases()[entry["base"]])
    manifest["metadata"]["name"] = name
    if manifest["kind"] == "ComputeQuota":
        manifest["spec"]["namespaces"] = [name]
    if manifest["kind"] == "AcceleratorClass":
        manifest["spec"]["nodeLabels"] = {"suanli.io/corpus-class": name}
    for pointer, value in entry["set"].items():
        set_pointer(manifest, pointer, value)
    return manifest
