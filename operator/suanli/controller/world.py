"""One cycle's reading of the snapshot: the catalogue, the quotas, the jobs and the nodes.

Why a module of its own: everything the cycle decides from is read here, once, from the cache's
plain objects and the verdicts the cache's checks left beside them — so the loop only
orchestrates. What cannot take part is set aside here with its reason: an invalid job (the
field named), a job that no accelerator option could ever run, a quota that claims a namespace
an older quota already serves (the older claim keeps it; the newer quota gets a Conflict
condition naming both and serves the rest of its namespaces).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from suanli.api.acceleratorclass import AcceleratorClass
from suanli.api.computequota import ComputeQuota
from suanli.api.trainingjob import Phase, TrainingJob
from suanli.constants import (
    ACCELERATOR_CLASS_ANNOTATION,
    ATTEMPT_LABEL,
    DEVICE_INDICES_ANNOTATION,
    JOB_NAME_LABEL,
)
from suanli.controller.cache import Kind, Object, Snapshot, object_key
from suanli.controller.facts import JobView, node_facts
from suanli.controller.inventory import CatalogueEntry, is_suanli_pod
from suanli.controller.lifecycle import FINISHED_PHASES, HOLDING_PHASES, NodeFacts
from suanli.controller.translate import (
    catalogue_entry,
    job_request,
    option_problems,
    quota_spec,
    recorded_admission,
)
from suanli.controller.validate import check_class_against
from suanli.reasons import Reason
from suanli.scheduling.cycle import CycleResult
from suanli.scheduling.model import Admission, JobRequest, QuotaSpec
from suanli.workload.pods import template_violations

log = logging.getLogger("suanli.world")

LEGACY_JOB_FINALIZER = "suanli.io/finalizer"  # Kopf's, on jobs created by suanli ≤ 0.1
PENDING_PHASES = (None, Phase.QUEUED, Phase.PREEMPTED, Phase.SUSPENDED)
# A pod still terminating this long after its grace period ended is taken as stuck (a node that
# does not answer): it no longer counts as capacity on its way back.
STUCK_AFTER_SECONDS = 60.0


@dataclass(frozen=True)
class Problem:
    """Why a job cannot take part in scheduling (the message names the field)."""

    reason: Reason
    message: str


@dataclass
class World:
    catalogue: dict[str, CatalogueEntry] = field(default_factory=dict)
    quotas: list[QuotaSpec] = field(default_factory=list)
    quota_models: dict[str, ComputeQuota] = field(default_factory=dict)
    conflicts: dict[str, str] = field(default_factory=dict)
    quota_of_namespace: dict[str, str] = field(default_factory=dict)
    views: dict[str, JobView] = field(default_factory=dict)
    invalid: dict[str, Problem] = field(default_factory=dict)
    pending: list[JobRequest] = field(default_factory=list)
    admitted: list[Admission] = field(default_factory=list)
    nodes: dict[str, NodeFacts] = field(default_factory=dict)
    covered_pods: frozenset[str] = frozenset()
    folded_recorded: set[str] = field(default_factory=set)
    live_uids: set[str] = field(default_factory=set)
    legacy_finalized: list[Object] = field(default_factory=list)
    invalid_quotas: dict[str, str] = field(default_factory=dict)  # name -> what is wrong
    invalid_classes: dict[str, str] = field(default_factory=dict)
    # device class -> chips still held by pods no admission covers (evicted, restarted or
    # deleted jobs' pods on their way out): capacity that is coming back by itself
    releasing: dict[str, int] = field(default_factory=dict)

    @property
    def invalid_objects(self) -> dict[Kind, dict[str, str]]:
        """Quotas and classes that cannot be used, by kind: name -> what is wrong."""
        return {
            Kind.COMPUTE_QUOTA: self.invalid_quotas,
            Kind.ACCELERATOR_CLASS: self.invalid_classes,
        }

    @property
    def invalid_phases(self) -> dict[str, str]:
        return {key: Phase.QUEUED.value for key in self.invalid}

    def volumes_of(self, view: JobView) -> frozenset[str]:
        """The quota-gated volume kinds (nfs, csi) the job's quota allows."""
        quota = self.quota_models.get(view.quota or "")
        return frozenset(quota.spec.allowed_volume_kinds or ()) if quota else frozenset()

    @staticmethod
    def decided(result: CycleResult) -> set[str]:
        """Jobs admitted this cycle: their snapshot is older than their admission."""
        return {admit.job.key for admit in result.admitted}


def _age(body: Object) -> tuple[str, str]:
    metadata = body.get("metadata", {})
    return (str(metadata.get("creationTimestamp") or ""), str(metadata.get("name") or ""))


def _catalogue(snapshot: Snapshot, world: World) -> None:
    """Valid classes, oldest first; a class whose node selector overlaps an older class's is
    set aside (it would silently take that class's nodes and strand its tenants)."""
    accepted: dict[str, AcceleratorClass] = {}
    classes = snapshot.of(Kind.ACCELERATOR_CLASS)
    for name, _ in sorted(classes.items(), key=lambda i: _age(i[1])):
        verdict = snapshot.verdict(Kind.ACCELERATOR_CLASS, name)
        if verdict is None or not isinstance(verdict.model, AcceleratorClass):
            if verdict is not None:
                world.invalid_classes[name] = verdict.message()
            continue
        overlaps = check_class_against(verdict.model, None, accepted, {})
        if overlaps:
            world.invalid_classes[name] = "; ".join(p.message for p in overlaps)
            continue
        accepted[name] = verdict.model
        world.catalogue[name] = catalogue_entry(verdict.model)


def served_before(quotas: Mapping[str, Object], previous: Mapping[str, str]) -> dict[str, str]:
    """Namespace → the quota that served it: the previous cycle's assignment (``previous``),
    else what the quotas' own ``status.servedNamespaces`` record (the first cycle after a
    restart). Where two statuses claim one namespace, the older quota's claim counts."""
    recorded: dict[str, str] = {}
    for name, body in sorted(quotas.items(), key=lambda i: _age(i[1])):
        for namespace in (body.get("status") or {}).get("servedNamespaces") or []:
            recorded.setdefault(str(namespace), name)
    return {**recorded, **previous}


@dataclass
class Served:
    """Who serves which namespace: ``models`` are the valid quotas (oldest first) with only the
    namespaces they serve; ``conflicts`` say, per quota, which listed namespaces another keeps."""

    quota_of_namespace: dict[str, str]
    models: dict[str, ComputeQuota]
    conflicts: dict[str, str]


def serve_namespaces(
    bodies: Mapping[str, Object], valid: Mapping[str, ComputeQuota], previous: Mapping[str, str]
) -> Served:
    """The one rule, also what ``kubectl suanli`` recomputes: a namespace stays with the quota
    that served it (:func:`served_before`) while that quota still lists it, else goes to the
    oldest valid quota that lists it (creation time, then name: the API server keeps creation
    times to the second). ``bodies``: every quota object; ``valid``: those usable."""
    ordered = sorted(valid, key=lambda name: _age(bodies[name]))
    claimed: dict[str, str] = {
        namespace: owner
        for namespace, owner in served_before(bodies, previous).items()
        if owner in valid and namespace in valid[owner].spec.namespaces
    }
    for name in ordered:
        for namespace in valid[name].spec.namespaces:
            claimed.setdefault(namespace, name)
    served = Served(claimed, {}, {})
    for name in ordered:
        model = valid[name]
        taken = sorted(ns for ns in model.spec.namespaces if claimed[ns] != name)
        if taken:
            owners = ", ".join(sorted({f"ComputeQuota {claimed[ns]}" for ns in taken}))
            served.conflicts[name] = (
                f"namespaces {', '.join(taken)} are already served by {owners}, which claimed "
                f"them first; ComputeQuota {name} does not serve them"
            )
            model = model.model_copy(
                update={
                    "spec": model.spec.model_copy(
                        update={"namespaces": [n for n in model.spec.namespaces if n not in taken]}
                    )
                }
            )
        served.models[name] = model
    return served


def _quotas(snapshot: Snapshot, world: World, previous: Mapping[str, str]) -> None:
    """Valid quotas, and who serves which namespace (:func:`serve_namespaces`)."""
    quotas = snapshot.of(Kind.COMPUTE_QUOTA)
    valid: dict[str, ComputeQuota] = {}
    for name in quotas:
        verdict = snapshot.verdict(Kind.COMPUTE_QUOTA, name)
        if verdict is None or not isinstance(verdict.model, ComputeQuota):
            if verdict is not None:
                world.invalid_quotas[name] = verdict.message()
            continue
        valid[name] = verdict.model
    served = serve_namespaces(quotas, valid, previous)
    world.conflicts.update(served.conflicts)
    for name, model in served.models.items():
        world.quotas.append(quota_spec(model))
        world.quota_models[name] = model
    world.quota_of_namespace = served.quota_of_namespace


def _cannot_run(
    job: TrainingJob, world: World, quota: str | None, priorities: Mapping[str, int]
) -> Problem | None:
    """What keeps a valid job from ever running *now* — re-checked every cycle, since another
    object (a class, the quota, a PriorityClass) may change."""
    classes = {name: entry.device_class for name, entry in world.catalogue.items()}
    problems = option_problems(job, classes)
    if len(problems) == len(job.spec.accelerators):
        kinds = {p.reason for p in problems}
        reason = (
            Reason.UNKNOWN_ACCELERATOR_CLASS
            if kinds == {Reason.UNKNOWN_ACCELERATOR_CLASS}
            else Reason.ILLEGAL_SHAPE
        )
        message = "no accelerator option can ever run: " + "; ".join(p.message for p in problems)
        return Problem(reason, message)
    allowed = world.quota_models[quota].spec.allowed_volume_kinds or [] if quota else []
    violations = template_violations(
        job.spec.template.model_dump(by_alias=True, exclude_none=True), frozenset(allowed)
    )
    if violations:
        return Problem(Reason.FORBIDDEN_POD_FIELD, "; ".join(violations))
    name = job.spec.priority_class_name
    if name is not None and name not in priorities:
        return Problem(
            Reason.UNKNOWN_PRIORITY_CLASS,
            f"spec.priorityClassName: no PriorityClass named {name!r}; the job waits until "
            "one exists",
        )
    return None


def observe(
    snapshot: Snapshot,
    not_before: Mapping[str, float],
    now: float,
    previous: Mapping[str, str] | None = None,
) -> World:
    """``previous``: the namespace → quota assignment of the last cycle (kept on conflicts)."""
    world = World()
    _catalogue(snapshot, world)
    _quotas(snapshot, world, previous or {})
    priorities = {
        name: int(body.get("value") or 0) for name, body in snapshot.of(Kind.PRIORITY_CLASS).items()
    }
    world.nodes = {
        name: node_facts(body, world.catalogue) for name, body in snapshot.of(Kind.NODE).items()
    }
    pods_by_job: dict[str, list[Object]] = {}
    for body in snapshot.of(Kind.POD).values():
        metadata = body["metadata"]
        world.live_uids.add(str(metadata.get("uid")))
        if is_suanli_pod(body):
            job_key = f"{metadata['namespace']}/{metadata['labels'][JOB_NAME_LABEL]}"
            pods_by_job.setdefault(job_key, []).append(body)
    for body in snapshot.of(Kind.COMPUTE_QUOTA).values():
        world.folded_recorded.update((body.get("status") or {}).get("foldedPods") or [])
    covered: set[str] = set()
    for key, body in snapshot.of(Kind.TRAINING_JOB).items():
        metadata = body.get("metadata", {})
        if metadata.get("deletionTimestamp"):
            if LEGACY_JOB_FINALIZER in (metadata.get("finalizers") or []):
                world.legacy_finalized.append(body)
            continue
        view = _view(snapshot, key, body, world, priorities, pods_by_job.get(key, []))
        if view is None:
            continue
        world.views[key] = view
        phase = view.phase
        admission = recorded_admission(view.request, view.status)
        if phase in HOLDING_PHASES and admission is not None and not view.job.spec.suspend:
            world.admitted.append(admission)
            covered.update(
                object_key(p)
                for p in view.pods
                if (p["metadata"].get("labels") or {}).get(ATTEMPT_LABEL) == str(view.attempt)
            )
        elif (
            phase in PENDING_PHASES
            and not view.job.spec.suspend
            and not_before.get(key, 0.0) <= now
            and not any(_still_running(p) for p in view.pods)
        ):
            # (a released gang is placed again only once its old pods are gone: they hold
            # their chips, and their hostnames, until the kubelet has stopped them)
            world.pending.append(view.request)
    world.covered_pods = frozenset(covered)
    for pods in pods_by_job.values():
        for pod in pods:
            if object_key(pod) not in covered and _releasing(pod, now):
                annotations = pod["metadata"].get("annotations") or {}
                chips = str(annotations.get(DEVICE_INDICES_ANNOTATION) or "")
                device_class = str(annotations.get(ACCELERATOR_CLASS_ANNOTATION) or "")
                count = len([c for c in chips.split(",") if c.strip()])
                if device_class and count:
                    world.releasing[device_class] = world.releasing.get(device_class, 0) + count
    return world


def _releasing(pod: Object, now: float) -> bool:
    """A pod that still holds its chips and will give them back by itself."""
    if not _still_running(pod):
        return False
    deleting = pod["metadata"].get("deletionTimestamp")
    if not deleting:
        return True
    try:
        ends = datetime.fromisoformat(str(deleting).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    return now - ends < STUCK_AFTER_SECONDS


def _still_running(pod: Object) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _view(
    snapshot: Snapshot,
    key: str,
    body: Object,
    world: World,
    priorities: Mapping[str, int],
    pods: list[Object],
) -> JobView | None:
    verdict = snapshot.verdict(Kind.TRAINING_JOB, key)
    phase = (body.get("status") or {}).get("phase")
    finished = phase in FINISHED_PHASES
    job = verdict.model if verdict is not None else None
    if not isinstance(job, TrainingJob):
        if not finished:
            if verdict is None:
                world.invalid[key] = Problem(Reason.INVALID, "the job was not checked")
            else:
                world.invalid[key] = Problem(verdict.reason, verdict.message())
        return None
    namespace = key.split("/", 1)[0]
    quota = world.quota_of_namespace.get(namespace)
    if phase not in HOLDING_PHASES | FINISHED_PHASES:
        problem = _cannot_run(job, world, quota, priorities)
        if problem is not None and not job.spec.suspend:
            world.invalid[key] = problem
            return None
    request = job_request(job, body)
    name = job.spec.priority_class_name
    if name is not None and name in priorities:
        request = replace(request, priority=priorities[name])
    return JobView(key, body, job, request, pods, quota)
