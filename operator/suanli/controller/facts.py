"""Read the cache's plain objects into the pure modules' inputs: one job's view and its facts.

Why a module of its own: the lifecycle and the scheduling cycle decide from plain dataclasses;
how those are read off a TrainingJob, its pods and the nodes (which label is the attempt, which
taints only mirror the Ready condition, what counts as a usable admission) is written here once
and used by the loop, the applier and the CLI alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from suanli.api.trainingjob import Phase, TrainingJob
from suanli.constants import ATTEMPT_LABEL, REPLICA_INDEX_LABEL
from suanli.controller.cache import Object
from suanli.controller.conditions import epoch_seconds
from suanli.controller.inventory import CONDITION_TAINTS, CatalogueEntry
from suanli.controller.lifecycle import JobFacts, NodeFacts, PodFacts
from suanli.scheduling.model import JobRequest
from suanli.workload.pods import published_device_ips


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@dataclass
class JobView:
    """One valid TrainingJob as this cycle sees it: the object, its parsed spec, its request to
    the scheduler, its pods (every attempt) and the quota serving its namespace."""

    key: str
    body: Object
    job: TrainingJob
    request: JobRequest
    pods: list[Object] = field(default_factory=list)
    quota: str | None = None

    @property
    def status(self) -> Mapping[str, Any]:
        return self.body.get("status") or {}

    @property
    def namespace(self) -> str:
        return self.request.namespace

    @property
    def name(self) -> str:
        return self.request.name

    @property
    def generation(self) -> int | None:
        generation = self.body.get("metadata", {}).get("generation")
        return None if generation is None else int(generation)

    @property
    def attempt(self) -> int:
        return _int(self.status.get("attempt"))

    @property
    def next_attempt(self) -> int:
        """The number the next admission gets: 0 for the first, then one more each time."""
        recorded = self.status.get("attempt")
        return 0 if recorded is None else _int(recorded) + 1

    @property
    def phase(self) -> Phase | None:
        phase = self.status.get("phase")
        return Phase(str(phase)) if phase in tuple(Phase) else None


def job_facts(view: JobView) -> JobFacts:
    status = view.status
    spec = view.job.spec
    chosen = status.get("chosenOption") or {}
    placement = sorted(status.get("placement") or [], key=lambda r: _int(r.get("replica")))
    admitted = bool(chosen) and bool(placement)
    return JobFacts(
        key=view.key,
        name=view.name,
        phase=view.phase,
        suspend=spec.suspend,
        restart_policy=spec.restart_policy,
        restart_limit=spec.restart_limit,
        restart_count=_int(status.get("restartCount")),
        start_timeouts=_int(status.get("startTimeouts")),
        # no admission yet is -1, never 0: 0 is the first admission's number, and a job whose
        # watch lags its pods' must not take that admission's new pods for leftovers
        # (an admission recorded without a number, as suanli 0.1 wrote them, is attempt 0)
        attempt=_int(status.get("attempt"), 0 if admitted else -1),
        admitted=admitted,
        placement_nodes=tuple(str(r.get("node")) for r in placement),
        admitted_at=epoch_seconds(status.get("admittedAt")),
        started_at=epoch_seconds(status.get("startedAt")),
        finished_at=epoch_seconds(status.get("finishedAt")),
        max_run_seconds=spec.max_run_seconds,
        ttl_seconds_after_finished=spec.ttl_seconds_after_finished,
    )


def pod_facts(pod: Object) -> PodFacts:
    metadata = pod["metadata"]
    labels = metadata.get("labels") or {}
    status = pod.get("status") or {}
    disrupted = any(
        c.get("type") == "DisruptionTarget" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return PodFacts(
        name=str(metadata["name"]),
        attempt=_int(labels.get(ATTEMPT_LABEL), -1),
        replica=_int(labels.get(REPLICA_INDEX_LABEL), -1),
        phase=status.get("phase"),
        node=(pod.get("spec") or {}).get("nodeName"),
        deleting=bool(metadata.get("deletionTimestamp")),
        started=bool(status.get("startTime")),
        disrupted=disrupted,
    )


NODE_FACTS_LIMIT = 50_000
_NODE_FACTS: dict[str, tuple[Any, frozenset[str], NodeFacts]] = {}
"""The last facts read per node name, with the resourceVersion and accelerator resources they
were read for: every cycle reads every node, and only a few change between two cycles."""


def node_facts(node: Object, catalogue: Mapping[str, CatalogueEntry]) -> NodeFacts:
    """What the lifecycle needs of a node. The taints suanli's pods tolerate (the accelerator
    resources') and those that only mirror the Ready condition do not count."""
    metadata = node.get("metadata") or {}
    version = metadata.get("resourceVersion")
    resources = frozenset(entry.resource_name for entry in catalogue.values())
    seen = _NODE_FACTS.get(str(metadata.get("name", "")))
    if version is not None and seen is not None and seen[0] == version and seen[1] == resources:
        return seen[2]
    facts = _node_facts(node, resources)
    if version is not None:
        if len(_NODE_FACTS) > NODE_FACTS_LIMIT:  # names of nodes long gone
            _NODE_FACTS.clear()
        _NODE_FACTS[facts.name] = (version, resources, facts)
    return facts


def _node_facts(node: Object, resources: frozenset[str]) -> NodeFacts:
    metadata = node.get("metadata") or {}
    spec = node.get("spec") or {}
    ready, since = False, None
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            ready = condition.get("status") == "True"
            since = None if ready else epoch_seconds(condition.get("lastTransitionTime"))
    taints = [
        t
        for t in spec.get("taints") or []
        if t.get("key") not in CONDITION_TAINTS
        and not (t.get("key") in resources and t.get("effect") == "NoSchedule")
    ]
    return NodeFacts(
        name=str(metadata.get("name", "")),
        ready=ready,
        not_ready_since=since,
        unschedulable=bool(spec.get("unschedulable"))
        or any(t.get("effect") == "NoSchedule" for t in taints),
        no_execute=any(t.get("effect") == "NoExecute" for t in taints),
        device_ips=published_device_ips(metadata.get("annotations")),
    )
