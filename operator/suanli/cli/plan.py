"""The operator's next scheduling cycle, recomputed from a live snapshot without writing anything.

Why recompute instead of reading the job's status: the status says what the operator decided at
its last cycle; a tenant asking "why" wants the numbers behind it — what is free, what is
borrowable, which node comes closest. Those are only exact if they come from the very code the
operator runs, so this module builds the inputs the way ``suanli.controller.loop`` does (the
same translation helpers, the same ``Inventory``) and runs ``suanli.scheduling.cycle.run_cycle``
with preemption off on a private ``Inventory`` that exists only in this process.

What it cannot see: the operator's in-memory overtaking counters and requeue back-offs; a job
the operator holds back for a few seconds after a failed apply counts as pending here.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from suanli.api.acceleratorclass import AcceleratorClass
from suanli.api.computequota import ComputeQuota
from suanli.api.trainingjob import Phase, TrainingJob
from suanli.constants import ATTEMPT_LABEL, JOB_NAME_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE
from suanli.controller import translate
from suanli.controller.conditions import epoch_seconds
from suanli.controller.inventory import CatalogueEntry, Inventory, sync_admissions
from suanli.controller.translate import (
    catalogue_entry,
    job_request,
    quota_spec,
    recorded_admission,
)
from suanli.controller.world import serve_namespaces
from suanli.placement.model import ClassCapacity, DeviceClass
from suanli.scheduling.cycle import (
    Admit,
    CycleConfig,
    CycleResult,
    Wait,
    build_book,
    run_cycle,
)
from suanli.scheduling.model import Admission, JobRequest, QuotaSpec
from suanli.scheduling.quota import QuotaBook
from suanli.workload.pods import template_violations

PENDING_PHASES = (None, Phase.QUEUED.value, Phase.PREEMPTED.value, Phase.SUSPENDED.value)
ADMITTED_PHASES = (Phase.ADMITTED.value, Phase.RUNNING.value)
FINISHED_PHASES = (Phase.SUCCEEDED.value, Phase.FAILED.value)


@dataclass(frozen=True)
class ClusterObjects:
    """Everything the operator's cache holds, as plain API dictionaries."""

    classes: Sequence[Mapping[str, Any]]
    quotas: Sequence[Mapping[str, Any]]
    jobs: Sequence[Mapping[str, Any]]
    nodes: Sequence[Mapping[str, Any]]
    pods: Sequence[Mapping[str, Any]]


@dataclass
class JobEntry:
    key: str
    body: Mapping[str, Any]
    job: TrainingJob | None
    request: JobRequest | None
    problem: str | None = None

    @property
    def status(self) -> Mapping[str, Any]:
        return self.body.get("status") or {}

    @property
    def phase(self) -> str:
        return str(self.status.get("phase") or Phase.QUEUED.value)

    @property
    def expected_end(self) -> float | None:
        """When ``spec.maxRunSeconds`` ends the job at the latest (None: no limit or not begun)."""
        if self.job is None or self.job.spec.max_run_seconds is None:
            return None
        begun = epoch_seconds(self.status.get("startedAt") or self.status.get("admittedAt"))
        return None if begun is None else begun + self.job.spec.max_run_seconds


@dataclass
class Plan:
    """The inputs of one cycle and its result; ``inventory.state`` holds the cycle's placements."""

    catalogue: dict[str, CatalogueEntry]
    inventory: Inventory
    quotas: list[QuotaSpec]
    jobs: dict[str, JobEntry]
    pending: list[JobRequest]
    admitted: list[Admission]
    capacity: dict[str, ClassCapacity]
    node_free: dict[str, tuple[int, int, int, tuple[int, ...]]]
    book_now: QuotaBook
    result: CycleResult
    warnings: list[str] = field(default_factory=list)

    @property
    def classes(self) -> dict[str, DeviceClass]:
        return {name: entry.device_class for name, entry in self.catalogue.items()}

    def quota_of(self, namespace: str) -> QuotaSpec | None:
        return self.book_now.quota_for_namespace(namespace)

    def decision(self, key: str) -> Admit | Wait | None:
        decision = self.result.decision_for(key)
        return decision if isinstance(decision, Admit | Wait) else None


def option_problems(job: TrainingJob, classes: Mapping[str, DeviceClass]) -> list[Any]:
    """The operator's per-option check: ``translate.option_problems``, or, in a tree where
    ``controller/convert.py`` is not yet merged into ``translate.py``, the same function there."""
    source = (
        translate
        if hasattr(translate, "option_problems")
        else importlib.import_module("suanli.controller.convert")
    )
    problems: list[Any] = source.option_problems(job, classes)
    return problems


def covered_pods(
    pods: Iterable[Mapping[str, Any]], admitted: Iterable[Admission], jobs: Mapping[str, JobEntry]
) -> frozenset[str]:
    """Keys of the pods that admitted jobs' recorded placements already account for: suanli's
    pods of each admitted job's current attempt."""
    attempts = {}
    for admission in admitted:
        status = jobs[admission.job.key].status
        attempt = status.get("attempt", status.get("restartCount")) or 0
        attempts[admission.job.key] = str(attempt)
    covered = set()
    for pod in pods:
        metadata = pod.get("metadata", {})
        labels = metadata.get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE or JOB_NAME_LABEL not in labels:
            continue
        job_key = f"{metadata.get('namespace')}/{labels[JOB_NAME_LABEL]}"
        if attempts.get(job_key) == labels.get(ATTEMPT_LABEL):
            covered.add(_key(pod))
    return frozenset(covered)


def _name(body: Mapping[str, Any]) -> str:
    return str(body.get("metadata", {}).get("name", ""))


def _key(body: Mapping[str, Any]) -> str:
    metadata = body.get("metadata", {})
    return f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"


def read_catalogue(
    classes: Iterable[Mapping[str, Any]], warnings: list[str]
) -> dict[str, CatalogueEntry]:
    entries = {}
    for body in sorted(classes, key=_name):
        try:
            entries[_name(body)] = catalogue_entry(AcceleratorClass.model_validate(body))
        except (ValidationError, ValueError) as exc:
            warnings.append(f"AcceleratorClass {_name(body)} ignored: {exc}")
    return entries


def read_quotas(quotas: Iterable[Mapping[str, Any]], warnings: list[str]) -> list[QuotaSpec]:
    """The operator's rule (:func:`suanli.controller.world.serve_namespaces`): invalid quotas
    are ignored; a namespace stays with the quota whose status says it serves it, else goes to
    the oldest quota that lists it; a quota keeps the rest of its namespaces."""
    bodies: dict[str, Mapping[str, Any]] = {}
    valid: dict[str, ComputeQuota] = {}
    for body in quotas:
        name = _name(body)
        bodies[name] = body
        try:
            valid[name] = ComputeQuota.model_validate(body)
        except (ValidationError, ValueError) as exc:
            warnings.append(f"ComputeQuota {name} ignored: {exc}")
    served = serve_namespaces(bodies, valid, {})
    warnings.extend(f"ComputeQuota {name}: {text}" for name, text in served.conflicts.items())
    return [quota_spec(model) for model in served.models.values()]


def read_job(body: Mapping[str, Any], classes: Mapping[str, DeviceClass]) -> JobEntry:
    """A job as the operator parses it; ``problem`` says why it can never run as written."""
    key = _key(body)
    try:
        job = TrainingJob.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return JobEntry(key, body, None, None, f"spec is not valid: {where}: {first['msg']}")
    request = job_request(job, body)
    violations = template_violations(job.spec.template.model_dump(by_alias=True, exclude_none=True))
    if violations:
        return JobEntry(key, body, job, request, "; ".join(violations))
    problems = option_problems(job, classes)
    if len(problems) == len(job.spec.accelerators):
        text = "no accelerator option can ever run: " + "; ".join(p.message for p in problems)
        return JobEntry(key, body, job, request, text)
    return JobEntry(key, body, job, request)


def build_plan(
    objects: ClusterObjects,
    extra_jobs: Sequence[Mapping[str, Any]] = (),
    *,
    preemption: bool = False,
) -> Plan:
    """Snapshot → the operator's inputs → one cycle, all in this process.

    ``extra_jobs`` are jobs that do not exist (``simulate``): they join the queue as if just
    created. ``preemption`` is off by default, so the result says what fits without evicting;
    with it on, the result's ``preemptions`` are the evictions the operator would start (they
    are only computed, never applied).
    """
    warnings: list[str] = []
    catalogue = read_catalogue(objects.classes, warnings)
    inventory = Inventory()
    inventory.set_catalogue(catalogue)
    inventory.sync_nodes(objects.nodes)
    quotas = read_quotas(objects.quotas, warnings)
    classes = {name: entry.device_class for name, entry in catalogue.items()}
    jobs: dict[str, JobEntry] = {}
    for body in [*objects.jobs, *extra_jobs]:
        if body.get("metadata", {}).get("deletionTimestamp"):
            continue
        jobs[_key(body)] = read_job(body, classes)
    pending: list[JobRequest] = []
    admitted: list[Admission] = []
    for entry in jobs.values():
        if entry.request is None or entry.job is None or entry.phase in FINISHED_PHASES:
            continue
        recorded = recorded_admission(entry.request, entry.status)
        if entry.job.spec.suspend:
            continue
        if entry.phase in ADMITTED_PHASES and recorded is not None:
            admitted.append(recorded)
        elif entry.phase in PENDING_PHASES and entry.problem is None:
            pending.append(entry.request)
    for key in sync_admissions(inventory, admitted):
        warnings.append(f"job {key}: its recorded placement conflicts with the cluster")
    # after the admissions, as the operator does: a released gang's pods still hold their chips
    pods = {_key(pod): pod for pod in objects.pods}
    if "covered" in inspect.signature(inventory.sync_foreign_pods).parameters:
        inventory.sync_foreign_pods(pods, covered=covered_pods(objects.pods, admitted, jobs))
    else:  # an inventory that counts only pods suanli did not create
        inventory.sync_foreign_pods(pods)
    state = inventory.state
    capacity = dict(state.capacity_summary())
    node_free = {name: state.node_free(name) for name in state.node_names()}
    book_now = build_book(quotas, classes.values(), admitted)
    result = run_cycle(
        pending,
        admitted,
        quotas,
        classes.values(),
        state,
        config=CycleConfig(preemption=preemption),
    )
    return Plan(
        catalogue=catalogue,
        inventory=inventory,
        quotas=quotas,
        jobs=jobs,
        pending=pending,
        admitted=admitted,
        capacity=capacity,
        node_free=node_free,
        book_now=book_now,
        result=result,
        warnings=warnings,
    )
