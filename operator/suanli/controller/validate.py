"""Complete checks of one suanli object, and of one object against the others.

Why one pure module for both the cache and the webhook: what the validating webhook refuses at
``kubectl apply`` and what the controller quarantines with an ``Invalid`` condition must be the
same rules, or a tenant sees an object accepted that then never runs (or the other way round).
So every rule lives here once, as a function of plain mappings, with no I/O: the webhook passes
the operator cache's current view, the controller passes its snapshot.

"Complete" means what the objects *built from* a TrainingJob need as well: the Pods, headless
Service and rank-table ConfigMap get names, labels, annotations, quantities and strings from it,
and an apiserver refusal of one of those (422) must be caught here, naming the TrainingJob's
field, instead of surfacing as a create that fails for ever.

Every :class:`Problem` names its field in the API's camelCase (``spec.accelerators[0].
devicesPerReplica``) and its message starts with that path, so the text can be shown as is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from suanli.api.acceleratorclass import AcceleratorClass
from suanli.api.common import DNS_SUBDOMAIN_PATTERN
from suanli.api.computequota import ComputeQuota
from suanli.api.podtemplate import ALLOWED_CONTAINER_RESOURCES, QUOTA_GATED_VOLUME_SOURCES
from suanli.api.trainingjob import Phase, TrainingJob
from suanli.constants import HUB_JOB_UID_LABEL
from suanli.controller.translate import device_class
from suanli.placement.model import MAX_DEVICES_PER_NODE, DeviceClass, check_shape
from suanli.quantity import parse_quantity
from suanli.reasons import Reason
from suanli.workload.pods import (
    MAX_JOB_NAME_LENGTH,
    MAX_NAME_SUFFIX,
    UID_PATTERN,
    template_violations,
)

M = TypeVar("M", bound=BaseModel)

# --- bounds (documented in docs/admission.md) --------------------------------------------------
MAX_POD_CPU = Decimal(4096)
"""CPUs one pod may request: more than the largest servers sold (2 × 192-core, 768 threads)
by a wide margin, and far below what overflows the scheduler's milli-CPU integers."""
MAX_POD_MEMORY = Decimal(64 * 2**40)
"""Bytes of memory one pod may request: 64 TiB, the largest single-system image on the market."""
MAX_POD_EPHEMERAL_STORAGE = Decimal(2**50)
"""Bytes of node-local scratch one pod may request: 1 PiB."""
POD_BOUNDS = {
    "cpu": (MAX_POD_CPU, "4096 CPUs"),
    "memory": (MAX_POD_MEMORY, "64Ti"),
    "ephemeral-storage": (MAX_POD_EPHEMERAL_STORAGE, "1Pi"),
}
MAX_QUOTA_NODES = 100_000
"""A ComputeQuota's CPU and memory may be at most this many nodes' worth of the per-pod bounds."""
MAX_QUOTA_DEVICES = MAX_QUOTA_NODES * MAX_DEVICES_PER_NODE
MAX_PFLOPS = 1e9
MAX_FAIR_SHARE_WEIGHT = 1e6
MAX_DEVICE_TFLOPS = 1e6
MAX_DEVICE_MEMORY_GIB = 1e6

MAX_ANNOTATIONS_BYTES = 256 * 1024
"""Kubernetes' total annotation size per object (keys and values)."""
ANNOTATIONS_RESERVED_BYTES = 4 * 1024
"""Room kept for the annotations suanli adds to every pod (device indices, class, chip names)."""
MAX_ARG_BYTES = 128 * 1024
"""Linux's MAX_ARG_STRLEN: exec fails for any one argument or environment string longer."""
MAX_EXEC_BYTES = 1024 * 1024
"""Command, arguments and environment of one container together: half of Linux's usual ARG_MAX
(2 MiB), leaving the other half for the variables suanli adds and the image's own."""
MAX_IMAGE_LENGTH = 1024
MAX_PATH_LENGTH = 4096
RESERVED_VOLUME = "suanli-hccl"
RESERVED_MOUNT_PATH = "/etc/hccl"

_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(DNS_SUBDOMAIN_PATTERN)
_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_ENV_VALUE_SOURCES = frozenset(
    {"fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef"}
)
_HOLDS_QUOTA = frozenset({Phase.ADMITTED.value, Phase.RUNNING.value})
_VENDOR_DOMAIN = {"huawei": "huawei.com", "nvidia": "nvidia.com"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an object: the field (camelCase path) and a message starting with it."""

    field: str
    message: str
    reason: Reason = Reason.INVALID  # ForbiddenPodField for what tenants may not have


@dataclass(frozen=True)
class Verdict(Generic[M]):
    """The outcome of checking one object.

    ``model`` is the parsed object only when there is no problem at all; ``parsed`` is the parsed
    object whenever the schema accepted it (for callers that still need, say, its phase).
    """

    model: M | None
    problems: tuple[Problem, ...]
    parsed: M | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    def message(self) -> str:
        """Every problem's message, joined for a condition or an admission response."""
        return "; ".join(p.message for p in self.problems)

    @property
    def reason(self) -> Reason:
        """ForbiddenPodField when every problem is a field tenants may not use, else Invalid."""
        forbidden = self.problems and all(
            p.reason is Reason.FORBIDDEN_POD_FIELD for p in self.problems
        )
        return Reason.FORBIDDEN_POD_FIELD if forbidden else Reason.INVALID


def _problem(path: str, detail: str) -> Problem:
    return Problem(path, f"{path}: {detail}")


def _verdict(parsed: M | None, problems: Iterable[Problem]) -> Verdict[M]:
    found = tuple(dict.fromkeys(problems))  # drop exact repeats, keep order
    return Verdict(None if found else parsed, found, parsed)


def join_path(parts: Iterable[str | int]) -> str:
    """``("spec", "accelerators", 0, "devicesPerReplica")`` → ``spec.accelerators[0].…``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _schema_problems(exc: ValidationError, body: Mapping[str, Any]) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = [p for p in error["loc"] if isinstance(p, str | int)]
        detail = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            detail = "unknown field"
        # A model-level rule ("minReplicas must not exceed replicas") names its field first.
        named = re.match(r"^[a-z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)*", detail)
        for part in named.group(0).split(".") if named else ():
            if part not in _at(body, loc):
                break
            loc.append(part)
        problems.append(_problem(join_path(loc) or "object", detail))
    return problems


def _at(body: Any, loc: Sequence[str | int]) -> Mapping[str, Any]:
    for part in loc:
        try:
            body = body[part]
        except (KeyError, IndexError, TypeError):
            return {}
    return body if isinstance(body, Mapping) else {}


def _parse(model: type[M], body: Mapping[str, Any]) -> tuple[M | None, list[Problem]]:
    try:
        return model.model_validate(body), []
    except ValidationError as exc:
        return None, _schema_problems(exc, body)
    except (TypeError, ValueError) as exc:  # not even a mapping of the right shape
        return None, [_problem("object", str(exc))]


# --- small syntax checks -------------------------------------------------------------------------
def qualified_name_problem(key: str) -> str | None:
    """Why ``key`` is not a Kubernetes label or annotation key (``[prefix/]name``), or None."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and not prefix:
        return "the prefix before '/' must not be empty"
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return "the prefix must be a DNS subdomain of at most 253 characters (example.com)"
    if not name or len(name) > 63 or not _NAME_PART.match(name):
        return (
            "the name must be 1-63 characters of letters, digits, '-', '_' or '.', starting and "
            "ending with a letter or digit"
        )
    return None


def label_value_problem(value: str) -> str | None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return (
            "a label value must be at most 63 characters of letters, digits, '-', '_' or '.', "
            f"starting and ending with a letter or digit (got {_preview(value)})"
        )
    return None


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…") + f" ({len(text)} characters)"


def _labels(path: str, labels: Mapping[str, str] | None) -> list[Problem]:
    problems = []
    for key, value in (labels or {}).items():
        why = qualified_name_problem(key)
        if why:
            problems.append(_problem(f"{path}.{key}", f"invalid label key: {why}"))
        why = label_value_problem(value)
        if why:
            problems.append(_problem(f"{path}.{key}", why))
    return problems


def _annotations(path: str, annotations: Mapping[str, str] | None) -> list[Problem]:
    problems = []
    total = 0
    for key, value in (annotations or {}).items():
        why = qualified_name_problem(key)
        if why:
            problems.append(_problem(f"{path}.{key}", f"invalid annotation key: {why}"))
        total += len(key.encode()) + len(value.encode())
    limit = MAX_ANNOTATIONS_BYTES - ANNOTATIONS_RESERVED_BYTES
    if total > limit:
        problems.append(
            _problem(
                path,
                f"annotations total {total} bytes; at most {limit} (Kubernetes allows 256 KiB "
                "per object and suanli adds up to 4 KiB to every pod)",
            )
        )
    return problems


def _quantity(
    path: str, value: object, bound: Decimal, bound_text: str
) -> tuple[Decimal, list[Problem]]:
    """The quantity's value, and the problems with it (non-finite, negative, beyond ``bound``)."""
    try:
        number = parse_quantity(str(value))
    except (ValueError, InvalidOperation):
        return Decimal(0), [_problem(path, f"{value!r} is not a Kubernetes quantity")]
    if not number.is_finite():
        return Decimal(0), [_problem(path, f"{value} is not a finite quantity")]
    if number < 0:
        return Decimal(0), [_problem(path, f"{value} is negative; quantities must be >= 0")]
    if number > bound:
        return Decimal(0), [
            _problem(path, f"{value} is more than any node offers: at most {bound_text}")
        ]
    return number, []


# --- TrainingJob ---------------------------------------------------------------------------------
def _job_name(metadata: Mapping[str, Any]) -> list[Problem]:
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        generate = metadata.get("generateName")
        if not isinstance(generate, str) or not generate:
            return []  # the apiserver insists on one of the two
        path, name, extra = "metadata.generateName", generate + "xxxxx", 5
    else:
        path, extra = "metadata.name", 0
    problems = []
    if not _DNS_1035.match(name):
        problems.append(
            _problem(
                path,
                f"{_preview(name[: len(name) - extra] if extra else name)} cannot name the "
                "job's headless Service and pod hostnames: use lowercase letters, digits and "
                "'-', starting with a letter and ending with a letter or digit (DNS-1035)",
            )
        )
    if len(name) > MAX_JOB_NAME_LENGTH:
        problems.append(
            _problem(
                path,
                f"{len(name) - extra} characters{' (+5 generated)' if extra else ''}; at most "
                f"{MAX_JOB_NAME_LENGTH - extra}: the pods' hostnames are "
                f"<name>-<replica> (up to {len(MAX_NAME_SUFFIX)} more characters) and must fit "
                "a 63-character DNS label",
            )
        )
    return problems


def _exec_strings(path: str, container: Mapping[str, Any]) -> list[Problem]:
    problems = []
    total = 0
    for key in ("command", "args"):
        for index, text in enumerate(container.get(key) or []):
            size = len(str(text).encode())
            total += size
            if size > MAX_ARG_BYTES:
                problems.append(
                    _problem(
                        f"{path}.{key}[{index}]",
                        f"{size} bytes; at most {MAX_ARG_BYTES} (Linux refuses to start a "
                        "process with a longer argument)",
                    )
                )
    problems += _env(f"{path}.env", container.get("env") or [])
    total += sum(
        len(str(e.get("name", "")).encode()) + len(str(e.get("value") or "").encode()) + 1
        for e in container.get("env") or []
    )
    if total > MAX_EXEC_BYTES:
        problems.append(
            _problem(
                path,
                f"command, args and env add up to {total} bytes; at most {MAX_EXEC_BYTES} "
                "(the rest of Linux's 2 MiB ARG_MAX is left for suanli's and the image's "
                "variables)",
            )
        )
    return problems


def _env(path: str, env: Sequence[Mapping[str, Any]]) -> list[Problem]:
    problems = []
    for index, variable in enumerate(env):
        here = f"{path}[{index}]"
        name = str(variable.get("name", ""))
        if not name or "=" in name or any(not " " <= c <= "~" for c in name):
            problems.append(
                _problem(
                    f"{here}.name",
                    f"{_preview(name)} is not an environment variable name: printable ASCII "
                    "characters except '='",
                )
            )
        value = variable.get("value")
        if value is not None and len(str(value).encode()) > MAX_ARG_BYTES:
            problems.append(
                _problem(
                    f"{here}.value",
                    f"{len(str(value).encode())} bytes; at most {MAX_ARG_BYTES} (Linux refuses "
                    "to start a process with a longer environment string)",
                )
            )
        source = variable.get("valueFrom")
        if source is not None:
            if value:
                problems.append(_problem(f"{here}.valueFrom", "set value or valueFrom, not both"))
            kinds = sorted(source) if isinstance(source, Mapping) else []
            if len(kinds) != 1 or kinds[0] not in _ENV_VALUE_SOURCES:
                problems.append(
                    _problem(
                        f"{here}.valueFrom",
                        "needs exactly one of " + ", ".join(sorted(_ENV_VALUE_SOURCES)),
                    )
                )
    return problems


def _image(path: str, image: object) -> list[Problem]:
    if image is None:
        return []
    text = str(image)
    if not text.strip():
        return [_problem(path, "an image is required")]
    if text != text.strip() or any(c.isspace() for c in text):
        return [_problem(path, f"{_preview(text)} must not contain whitespace")]
    if len(text) > MAX_IMAGE_LENGTH:
        return [_problem(path, f"{len(text)} characters; at most {MAX_IMAGE_LENGTH}")]
    return []


def _resources(path: str, resources: Mapping[str, Any]) -> tuple[dict[str, Decimal], list[Problem]]:
    """The container's effective requests (a missing request defaults to the limit)."""
    problems: list[Problem] = []
    values: dict[str, dict[str, Decimal]] = {}
    for part in ("requests", "limits"):
        for name, raw in (resources.get(part) or {}).items():
            if name not in ALLOWED_CONTAINER_RESOURCES:
                continue  # template_violations names it
            bound, text = POD_BOUNDS.get(name, (MAX_POD_MEMORY, "64Ti"))
            number, found = _quantity(f"{path}.{part}.{name}", raw, bound, text)
            problems += found
            if not found:
                values.setdefault(part, {})[name] = number
    requests, limits = values.get("requests", {}), values.get("limits", {})
    for name, request in requests.items():
        if name in limits and request > limits[name]:
            problems.append(
                _problem(
                    f"{path}.requests.{name}",
                    f"{resources['requests'][name]} is more than the limit "
                    f"({resources['limits'][name]})",
                )
            )
    return {**limits, **requests}, problems


def _containers(
    base: str, spec: Mapping[str, Any], volume_names: set[str], first_image_optional: bool
) -> list[Problem]:
    problems: list[Problem] = []
    totals: dict[str, Decimal] = {}
    init_peak: dict[str, Decimal] = {}
    seen: dict[str, str] = {}
    for group in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(group) or []):
            path = f"{base}.{group}[{index}]"
            name = str(container.get("name", ""))
            if name in seen:
                problems.append(
                    _problem(f"{path}.name", f"{name!r} is already the name of {seen[name]}")
                )
            seen.setdefault(name, path)
            image = container.get("image")
            if image is None and not (
                group == "containers" and index == 0 and first_image_optional
            ):
                problems.append(
                    _problem(
                        f"{path}.image",
                        "an image is required (only the first container's may come from every "
                        "accelerator option's image)",
                    )
                )
            problems += _image(f"{path}.image", image)
            problems += _exec_strings(path, container)
            if len(str(container.get("workingDir") or "")) > MAX_PATH_LENGTH:
                problems.append(_problem(f"{path}.workingDir", f"at most {MAX_PATH_LENGTH} chars"))
            mounts: set[str] = set()
            for m_index, mount in enumerate(container.get("volumeMounts") or []):
                m_path = f"{path}.volumeMounts[{m_index}]"
                if mount.get("name") not in volume_names:
                    known = ", ".join(sorted(volume_names)) or "none"
                    problems.append(
                        _problem(
                            f"{m_path}.name",
                            f"no volume named {mount.get('name')!r} in {base}.volumes "
                            f"(known: {known})",
                        )
                    )
                mount_path = str(mount.get("mountPath", "")).rstrip("/") or "/"
                if mount_path in mounts:
                    problems.append(
                        _problem(f"{m_path}.mountPath", f"{mount_path} is mounted twice")
                    )
                mounts.add(mount_path)
                if mount_path == RESERVED_MOUNT_PATH:
                    problems.append(
                        _problem(
                            f"{m_path}.mountPath",
                            f"{RESERVED_MOUNT_PATH} is where suanli mounts the HCCL rank table",
                        )
                    )
                if len(mount_path) > MAX_PATH_LENGTH:
                    problems.append(_problem(f"{m_path}.mountPath", f"at most {MAX_PATH_LENGTH}"))
                sub = mount.get("subPath")
                if sub and (str(sub).startswith("/") or ".." in str(sub).split("/")):
                    problems.append(
                        _problem(f"{m_path}.subPath", "must be a relative path without '..'")
                    )
            for p_index, port in enumerate(container.get("ports") or []):
                port_name = port.get("name")
                if port_name is not None and not (
                    _PORT_NAME.match(port_name)
                    and "--" not in port_name
                    and any(c.isalpha() for c in port_name)
                ):
                    problems.append(
                        _problem(
                            f"{path}.ports[{p_index}].name",
                            f"{port_name!r} is not a port name: at most 15 lowercase letters, "
                            "digits and single '-', with at least one letter",
                        )
                    )
            effective, found = _resources(f"{path}.resources", container.get("resources") or {})
            problems += found
            for name, value in effective.items():
                if group == "containers":
                    totals[name] = totals.get(name, Decimal(0)) + value
                else:
                    init_peak[name] = max(init_peak.get(name, Decimal(0)), value)
    for name, (bound, text) in POD_BOUNDS.items():
        needed = max(totals.get(name, Decimal(0)), init_peak.get(name, Decimal(0)))
        if needed > bound:
            problems.append(
                _problem(
                    f"{base}.containers",
                    f"each pod would request {needed.normalize():f} {name} in total; at most "
                    f"{text} (more than any node offers)",
                )
            )
    return problems


def _template(job: TrainingJob) -> list[Problem]:
    template = job.spec.template.model_dump(by_alias=True, exclude_none=True)
    base = "spec.template.spec"
    spec = template.get("spec") or {}
    metadata = template.get("metadata") or {}
    problems = [
        replace(_problem(*text.split(": ", 1)), reason=Reason.FORBIDDEN_POD_FIELD)
        for text in template_violations(template, allowed_volume_kinds=QUOTA_GATED_VOLUME_SOURCES)
    ]
    problems += _labels("spec.template.metadata.labels", metadata.get("labels"))
    problems += _annotations("spec.template.metadata.annotations", metadata.get("annotations"))
    volume_names = set()
    for index, volume in enumerate(spec.get("volumes") or []):
        name = volume.get("name")
        volume_names.add(name)
        if name == RESERVED_VOLUME:
            problems.append(
                _problem(
                    f"{base}.volumes[{index}].name",
                    f"{RESERVED_VOLUME} is the volume suanli adds for the HCCL rank table",
                )
            )
        kinds = [k for k in volume if k != "name"]
        if len(kinds) != 1:
            problems.append(
                _problem(
                    f"{base}.volumes[{index}]",
                    f"needs exactly one volume source, has {len(kinds)}"
                    + (f" ({', '.join(kinds)})" if kinds else ""),
                )
            )
    every_option_has_image = all(o.image for o in job.spec.accelerators)
    problems += _containers(base, spec, volume_names, every_option_has_image)
    return problems


def _hub_job_uid(metadata: Mapping[str, Any]) -> list[Problem]:
    """The hub-job-uid label names the job's checkpoint directory (pods.checkpoint_id): it must
    be a uid, as the hub writes it."""
    labels = metadata.get("labels")
    value = labels.get(HUB_JOB_UID_LABEL) if isinstance(labels, Mapping) else None
    if value is None or (isinstance(value, str) and UID_PATTERN.match(value)):
        return []
    return [
        _problem(
            f"metadata.labels.{HUB_JOB_UID_LABEL}",
            f"{_preview(str(value))} is not a uid (the hub sets this label on its copies to the "
            "hub job's uid, and it names SUANLI_CHECKPOINT_DIR)",
        )
    ]


def check_training_job(body: Mapping[str, Any]) -> Verdict[TrainingJob]:
    """Everything one TrainingJob can say about itself, including what its Pods, headless
    Service and rank-table ConfigMap will need."""
    metadata = body.get("metadata") if isinstance(body, Mapping) else None
    problems = _job_name(metadata) + _hub_job_uid(metadata) if isinstance(metadata, Mapping) else []
    job, schema = _parse(TrainingJob, body)
    problems += schema
    if job is None:
        return _verdict(None, problems)
    problems += _template(job)
    for index, option in enumerate(job.spec.accelerators):
        path = f"spec.accelerators[{index}]"
        problems += _image(f"{path}.image", option.image)
        problems += _env(f"{path}.env", [e.model_dump(by_alias=True) for e in option.env or []])
    name = job.spec.priority_class_name
    if name is not None and (len(name) > 253 or not _DNS_SUBDOMAIN.match(name)):
        problems.append(
            _problem("spec.priorityClassName", f"{_preview(name)} is not a PriorityClass name")
        )
    return _verdict(job, problems)


# --- ComputeQuota and AcceleratorClass alone -----------------------------------------------------
def _bounded(path: str, value: float | int | None, high: float) -> list[Problem]:
    if value is None:
        return []
    if not math.isfinite(value):
        return [_problem(path, f"{value} is not a finite number")]
    if value < 0:
        return [_problem(path, f"{value} is negative")]
    if value > high:
        return [
            _problem(path, f"{value} is more than this centre could ever have (at most {high:g})")
        ]
    return []


def check_compute_quota(body: Mapping[str, Any]) -> Verdict[ComputeQuota]:
    quota, problems = _parse(ComputeQuota, body)
    if quota is None:
        return _verdict(None, problems)
    spec = quota.spec
    for name, quantity in (("cpu", spec.cpu), ("memory", spec.memory)):
        if quantity is not None:
            bound, text = POD_BOUNDS[name]
            _, found = _quantity(
                f"spec.{name}",
                quantity,
                bound * MAX_QUOTA_NODES,
                f"{MAX_QUOTA_NODES} nodes of {text}",
            )
            problems += found
    for index, row in enumerate(spec.resources):
        for key, value in (
            ("nominal", row.nominal),
            ("borrowingLimit", row.borrowing_limit),
            ("lendingLimit", row.lending_limit),
        ):
            problems += _bounded(f"spec.resources[{index}].{key}", value, MAX_QUOTA_DEVICES)
    problems += _bounded("spec.computeBudgetPFLOPS", spec.compute_budget_pflops, MAX_PFLOPS)
    problems += _bounded("spec.fairShareWeight", spec.fair_share_weight, MAX_FAIR_SHARE_WEIGHT)
    return _verdict(quota, problems)


def check_accelerator_class(body: Mapping[str, Any]) -> Verdict[AcceleratorClass]:
    accelerator_class, problems = _parse(AcceleratorClass, body)
    if accelerator_class is None:
        return _verdict(None, problems)
    spec = accelerator_class.spec
    domain = _VENDOR_DOMAIN[spec.vendor]
    if not spec.resource_name.startswith(domain + "/"):
        problems.append(
            _problem(
                "spec.resourceName",
                f"{spec.resource_name!r} is not a {spec.vendor} resource: {spec.vendor} devices "
                f"are advertised as {domain}/<name> (vendor {spec.vendor} ↔ {domain}/*)",
            )
        )
    problems += _labels("spec.nodeLabels", spec.node_labels)
    if spec.devices_per_node > MAX_DEVICES_PER_NODE:
        problems.append(
            _problem(
                "spec.devicesPerNode",
                f"{spec.devices_per_node} is more than the placement core supports "
                f"(at most {MAX_DEVICES_PER_NODE} devices per node)",
            )
        )
    problems += _bounded("spec.computeTFLOPS", spec.compute_tflops, MAX_DEVICE_TFLOPS)
    problems += _bounded("spec.deviceMemoryGiB", spec.device_memory_gi_b, MAX_DEVICE_MEMORY_GIB)
    if not accelerator_class.metadata.name:  # a file checked offline; the apiserver names all
        problems.append(
            _problem(
                "metadata.name",
                "an AcceleratorClass needs a name: jobs and quotas refer to the class by it",
            )
        )
    if not problems:
        try:
            device_class(accelerator_class)
        except ValueError as exc:  # a rule of the core not restated above
            problems.append(_problem("spec.topology", str(exc)))
    return _verdict(accelerator_class, problems)


# --- against the other objects -------------------------------------------------------------------
Classes = Mapping[str, Mapping[str, Any] | AcceleratorClass]
"""AcceleratorClasses keyed by name: raw cache objects, or models already checked (a caller that
checks many jobs in one cycle parses the catalogue once with :func:`usable_classes`)."""


def usable_classes(classes: Classes) -> dict[str, AcceleratorClass]:
    """The usable classes of a cache view (keyed by name); invalid ones count as absent."""
    usable = {}
    for key, body in classes.items():
        if isinstance(body, AcceleratorClass):
            usable[body.metadata.name or key] = body
            continue
        verdict = check_accelerator_class(body)
        if verdict.model is not None:
            usable[verdict.model.metadata.name or key] = verdict.model
    return usable


def options_with_problems(problems: Iterable[Problem]) -> frozenset[int]:
    """Indices of the accelerator options that :func:`check_job_against` found unusable."""
    found = set()
    for problem in problems:
        match = re.match(r"^spec\.accelerators\[(\d+)\]", problem.field)
        if match:
            found.add(int(match.group(1)))
    return frozenset(found)


def _serving_quota(namespace: str, quotas: Mapping[str, Mapping[str, Any]]) -> ComputeQuota | None:
    claims = []
    for body in quotas.values():
        verdict = check_compute_quota(body)
        if verdict.model is not None and namespace in verdict.model.spec.namespaces:
            claims.append((_age_key(body), verdict.model))
    return min(claims, key=lambda c: c[0])[1] if claims else None


def check_job_against(
    job: TrainingJob,
    classes: Classes,
    *,
    quotas: Mapping[str, Mapping[str, Any]] | None = None,
    capacity: bool = True,
) -> tuple[Problem, ...]:
    """What the job's options say about the catalogue: each option names a class that exists,
    asks for a legal shape on it and (``capacity``) fits the class's observed capacity.

    With ``quotas``, the quota-gated volume kinds (nfs, csi) are checked against the ComputeQuota
    serving the job's namespace. Problems of option ``i`` have fields under
    ``spec.accelerators[i]`` (see :func:`options_with_problems`)."""
    catalogue = usable_classes(classes)
    problems = []
    for index, option in enumerate(job.spec.accelerators):
        path = f"spec.accelerators[{index}]"
        found = catalogue.get(option.accelerator_class)
        if found is None:
            known = ", ".join(sorted(catalogue)) or "none"
            problems.append(
                _problem(
                    f"{path}.acceleratorClass",
                    f"no AcceleratorClass named {option.accelerator_class!r} (known: {known})",
                )
            )
            continue
        cls = device_class(found)
        replicas = job.spec.replicas_for(index)
        message = check_shape(cls, option.devices_per_replica, replicas)
        if message is not None:
            if option.devices_per_replica not in cls.allowed_counts:
                message = (
                    f"{option.devices_per_replica} is not legal for {cls.name}: legal counts are "
                    f"{_or_list(cls.allowed_counts)}"
                )
            problems.append(_problem(f"{path}.devicesPerReplica", message))
            continue
        if capacity:
            problems += _capacity(path, job, index, cls, found)
    if quotas is not None:
        problems += _gated_volumes(job, quotas)
    return tuple(problems)


def _or_list(counts: Sequence[int]) -> str:
    words = [str(c) for c in counts]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _capacity(
    path: str, job: TrainingJob, index: int, cls: DeviceClass, found: AcceleratorClass
) -> list[Problem]:
    status = found.status
    if status is None or status.devices is None or status.nodes is None:
        return []  # not observed yet: the scheduler will say Unschedulable if it never fits
    gang = job.spec.min_replicas or job.spec.replicas_for(index)
    per_node = max(1, cls.devices_per_node // job.spec.accelerators[index].devices_per_replica)
    needed_nodes = math.ceil(gang / per_node)
    devices = gang * job.spec.accelerators[index].devices_per_replica
    if devices > status.devices or needed_nodes > status.nodes:
        return [
            _problem(
                f"{path}.replicas" if job.spec.accelerators[index].replicas else "spec.replicas",
                f"a gang of {gang} × {job.spec.accelerators[index].devices_per_replica} devices "
                f"needs {devices} devices on at least {needed_nodes} nodes; {cls.name} has "
                f"{status.devices} devices on {status.nodes} nodes",
            )
        ]
    return []


def _gated_volumes(job: TrainingJob, quotas: Mapping[str, Mapping[str, Any]]) -> list[Problem]:
    namespace = job.metadata.namespace or ""
    template = job.spec.template.model_dump(by_alias=True, exclude_none=True)
    wanted = {k for v in template["spec"].get("volumes") or [] for k in v} & set(
        QUOTA_GATED_VOLUME_SOURCES
    )
    if not wanted:
        return []
    quota = _serving_quota(namespace, quotas)
    allowed = tuple(quota.spec.allowed_volume_kinds or ()) if quota is not None else ()
    problems = []
    for text in template_violations(template, allowed_volume_kinds=allowed):
        path, detail = text.split(": ", 1)
        if any(path.endswith(f".{kind}") for kind in QUOTA_GATED_VOLUME_SOURCES):
            who = (
                f"ComputeQuota {quota.metadata.name!r}"
                if quota is not None
                else f"no ComputeQuota serves namespace {namespace!r}, so none"
            )
            problems.append(_problem(path, f"{detail} ({who} allows {list(allowed)})"))
    return problems


def _age_key(body: Mapping[str, Any]) -> tuple[str, str]:
    """Older first: by creationTimestamp (RFC 3339 sorts as text), a new object last, then name."""
    metadata = body.get("metadata") or {}
    stamp = metadata.get("creationTimestamp") or "\uffff"  # not created yet: the newest
    return str(stamp), str(metadata.get("name") or "")


def check_quota_against(
    quota: Mapping[str, Any],
    other_quotas: Mapping[str, Mapping[str, Any]],
    classes: Classes,
    *,
    old: Mapping[str, Any] | None = None,
) -> tuple[Problem, ...]:
    """A namespace another ComputeQuota already serves (the older claim keeps it: by
    creationTimestamp, then name) and rows naming classes that do not exist.

    ``quota`` is the raw object (its creationTimestamp decides which claim is older); the same
    quota in ``other_quotas`` is skipped. With ``old`` (an update), a namespace the quota did not
    list before is refused when any other quota lists it, whatever their ages: a namespace stays
    with the quota that serves it."""
    verdict = check_compute_quota(quota)
    if verdict.model is None:
        return verdict.problems
    me = verdict.model
    my_age = _age_key(quota)
    before = set(((old or {}).get("spec") or {}).get("namespaces") or [])
    problems = []
    for index, namespace in enumerate(me.spec.namespaces):
        added = old is not None and namespace not in before
        claims = [
            (_age_key(body), str((body.get("metadata") or {}).get("name")))
            for body in other_quotas.values()
            if (body.get("metadata") or {}).get("name") != me.metadata.name
            and namespace in ((body.get("spec") or {}).get("namespaces") or [])
            and (added or _age_key(body) < my_age)
        ]
        if claims:
            keeper = min(claims)[1]
            problems.append(
                _problem(
                    f"spec.namespaces[{index}]",
                    f"namespace {namespace!r} is already served by ComputeQuota {keeper!r}; "
                    f"ComputeQuota {me.metadata.name!r} cannot claim it too (a namespace "
                    "belongs to one quota and stays with the one that serves it)",
                )
            )
    catalogue = usable_classes(classes)
    for index, row in enumerate(me.spec.resources):
        if row.accelerator_class not in catalogue:
            known = ", ".join(sorted(catalogue)) or "none"
            problems.append(
                _problem(
                    f"spec.resources[{index}].acceleratorClass",
                    f"no AcceleratorClass named {row.accelerator_class!r} (known: {known})",
                )
            )
    return tuple(problems)


def selectors_overlap(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """Whether two classes' nodeLabels could pick the same node: they share a key and agree on
    every key they share (so a node with the union of both label sets matches both)."""
    shared = a.keys() & b.keys()
    return bool(shared) and all(a[k] == b[k] for k in shared)


def _matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def check_class_against(
    new: AcceleratorClass,
    old: AcceleratorClass | None,
    other_classes: Classes,
    admitted_jobs: Mapping[str, Mapping[str, Any]],
    *,
    nodes: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[Problem, ...]:
    """A node selector overlapping an older class's (a node of the union matches both, or a
    node in ``nodes`` does), and changes that would strand jobs admitted on this class.

    As with quotas, the older class keeps its nodes (by creationTimestamp, then name; a class
    being created is the newest), so only the newer of two overlapping classes is refused.
    ``admitted_jobs`` may hold any TrainingJobs: only those Admitted or Running on this class
    (``status.chosenOption``) count."""
    name = new.metadata.name or ""
    my_age = _model_age(new)
    problems = []
    for other in usable_classes(other_classes).values():
        if other.metadata.name == name or _model_age(other) > my_age:
            continue
        theirs = other.spec.node_labels
        shared_node = next(
            (
                key
                for key, node in (nodes or {}).items()
                if _matches((node.get("metadata") or {}).get("labels") or {}, new.spec.node_labels)
                and _matches((node.get("metadata") or {}).get("labels") or {}, theirs)
            ),
            None,
        )
        if selectors_overlap(new.spec.node_labels, theirs) or shared_node:
            why = (
                f"node {shared_node} matches both"
                if shared_node
                else "a node with both label sets would match both"
            )
            problems.append(
                _problem(
                    "spec.nodeLabels",
                    f"{dict(sorted(new.spec.node_labels.items()))} overlaps AcceleratorClass "
                    f"{other.metadata.name!r} ({dict(sorted(theirs.items()))}): {why}; give the "
                    "classes a label key with different values",
                )
            )
    if old is None:
        return tuple(problems)
    new_class = device_class(new)
    for key, body in sorted(admitted_jobs.items()):
        status = body.get("status") or {}
        chosen = status.get("chosenOption") or {}
        if status.get("phase") not in _HOLDS_QUOTA or chosen.get("acceleratorClass") != name:
            continue
        if (body.get("spec") or {}).get("suspend"):
            continue
        devices, replicas = _admitted_shape(body)
        if devices is None:
            continue
        job = f"TrainingJob {key}"
        message = check_shape(new_class, devices, replicas)
        if message is not None:
            problems.append(
                _problem(
                    "spec.topology.allowedDeviceCounts",
                    f"would strand admitted {job} ({replicas} × {devices} devices): {message}",
                )
            )
        if new.spec.resource_name != old.spec.resource_name:
            problems.append(
                _problem(
                    "spec.resourceName",
                    f"cannot change from {old.spec.resource_name!r} while {job} holds "
                    f"{replicas} × {devices} of it",
                )
            )
        used = [i for r in status.get("placement") or [] for i in r.get("deviceIndices") or []]
        if used and max(used) >= new.spec.devices_per_node:
            problems.append(
                _problem(
                    "spec.devicesPerNode",
                    f"{new.spec.devices_per_node} would strand admitted {job}, which holds "
                    f"device index {max(used)}",
                )
            )
        for replica in status.get("placement") or []:
            node = (nodes or {}).get(str(replica.get("node")))
            labels = ((node or {}).get("metadata") or {}).get("labels")
            if labels is not None and not _matches(labels, new.spec.node_labels):
                problems.append(
                    _problem(
                        "spec.nodeLabels",
                        f"node {replica.get('node')} no longer matches, and admitted {job} "
                        "runs there",
                    )
                )
                break
    return tuple(problems)


def _model_age(model: AcceleratorClass) -> tuple[str, str]:
    return model.metadata.creation_timestamp or "\uffff", model.metadata.name or ""


def _admitted_shape(body: Mapping[str, Any]) -> tuple[int | None, int]:
    status = body.get("status") or {}
    chosen = status.get("chosenOption") or {}
    spec = body.get("spec") or {}
    options = spec.get("accelerators") or []
    index = chosen.get("index")
    option = options[index] if isinstance(index, int) and 0 <= index < len(options) else {}
    devices = chosen.get("devicesPerReplica") or option.get("devicesPerReplica")
    replicas = (
        chosen.get("replicas")
        or option.get("replicas")
        or len(status.get("placement") or [])
        or spec.get("replicas")
        or 1
    )
    return (int(devices) if devices else None), int(replicas)


# --- a hub job, before the hub dispatches it (docs/network.md) ------------------------------------
@dataclass(frozen=True)
class HubCheck:
    """What the hub may do with a job it has not dispatched: when ``reason`` is set, nothing —
    every copy would be refused by the member, for that reason and ``message`` (which names the
    field); otherwise a copy may carry any option in ``usable``."""

    reason: Reason | None
    message: str
    usable: frozenset[int]

    @property
    def ok(self) -> bool:
        return self.reason is None


def check_hub_job(
    body: Mapping[str, Any], classes: Classes, quotas: Mapping[str, Mapping[str, Any]]
) -> HubCheck:
    """The member's refusals, decided at the hub with the hub's objects: the job alone
    (:func:`check_training_job`: ``Invalid``, or ``ForbiddenPodField`` when every problem is a
    field tenants may not use); then its options against the hub's AcceleratorClasses (class
    known, legal shape; not capacity: the hub has no nodes), where an option with a problem is
    not usable and none usable is ``UnknownAcceleratorClass`` (every option names an unknown
    class) or ``IllegalShape``; then nfs/csi volumes against the hub ComputeQuota serving the
    job's namespace (``ForbiddenPodField``). PriorityClasses are the members' and are not
    checked here."""
    verdict = check_training_job(body)
    if verdict.model is None:
        return HubCheck(verdict.reason, verdict.message(), frozenset())
    job = verdict.model
    problems = check_job_against(job, classes, quotas=quotas, capacity=False)
    of_options = [p for p in problems if options_with_problems((p,))]
    others = [p for p in problems if not options_with_problems((p,))]
    usable = frozenset(range(len(job.spec.accelerators))) - options_with_problems(of_options)
    if not usable:
        unknown = all(p.field.endswith(".acceleratorClass") for p in of_options)
        return HubCheck(
            Reason.UNKNOWN_ACCELERATOR_CLASS if unknown else Reason.ILLEGAL_SHAPE,
            "no accelerator option can ever run: " + "; ".join(p.message for p in of_options),
            frozenset(),
        )
    if others:
        return HubCheck(
            Reason.FORBIDDEN_POD_FIELD, "; ".join(p.message for p in others), frozenset()
        )
    return HubCheck(None, "", usable)
