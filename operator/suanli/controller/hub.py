"""The hub of the compute network: ``python -m suanli.controller --hub`` (docs/network.md).

A thin edge. Every cycle it polls each member centre (kubernetes client, bounded timeouts, one
thread per centre), reads the hub's ComputeCentres, quotas, classes and jobs, asks
:mod:`suanli.network` what to do and does it: ComputeCentre status, dispatch (hub status
first, then the copy), mirroring, withdrawal (a delete with a resourceVersion precondition),
re-dispatch, cleanup of copies whose hub job is gone or moved, and the hub quotas' usage and
metering. No Kopf: the member operator's handlers are not started in hub mode, and no code
here is async, so nothing blocks an event loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from prometheus_client import start_http_server

from suanli.api import GROUP, VERSION
from suanli.api.acceleratorclass import AcceleratorClass
from suanli.api.common import now as api_now
from suanli.constants import HUB_JOB_UID_LABEL, JOB_NAME_LABEL
from suanli.controller.kube import FencedApiClient, NotLeading
from suanli.controller.leader import LeaderElector
from suanli.controller.status import differs, invalid_job_status
from suanli.controller.validate import HubCheck, check_hub_job, usable_classes
from suanli.metrics.hub import HubCentreClass, HubCentreRow, HubMetrics, HubQueueRow
from suanli.network import (
    Action,
    CentreState,
    CentreView,
    CopySeen,
    JobOption,
    MemberMetering,
    centre_state,
    charged_devices,
    choose,
    copy_action,
    hub_queue,
    network_metering,
    queue_lengths,
    should_withdraw,
    why_not_dispatched,
)

log = logging.getLogger("suanli.hub")

HUB_LABEL = "suanli.io/hub"
HUB_OPTION_ANNOTATION = "suanli.io/hub-option-index"
TIMEOUT = (5, 10)  # connect, read: every call to a member or the hub
FINISHED = ("Succeeded", "Failed")
MIRRORED = (
    "phase",
    "reason",
    "message",
    "placement",
    "admittedAt",
    "startedAt",
    "finishedAt",
    "restartCount",
    "attempt",
    "conditions",
)
EVENT_PREFIX = "suanli-hub"


@dataclass(frozen=True)
class HubSettings:
    name: str = "hub"
    interval: float = 1.0
    lost_after: float = 30.0
    redispatch_after: float = 300.0
    dispatch_timeout: float = 30.0


@dataclass(frozen=True)
class MemberEvent:
    """An Event a member posted on a copy (the member operator's Admitted, Warning, …)."""

    uid: str
    type: str
    reason: str
    message: str
    count: int
    first: str | None
    last: str | None


@dataclass
class Poll:
    """What one member answered, and when the poll started."""

    started: float
    classes: dict[str, tuple[int, int]]  # class -> (devices, free)
    quota_room: dict[tuple[str, str], int]
    metering: list[MemberMetering]
    copies: dict[str, dict[str, Any]]  # hub job uid -> the copy
    pods: set[tuple[str, str]]  # (namespace, job name) with a pod
    serving: dict[str, str]  # namespace -> the member quota serving it
    events: dict[str, list[MemberEvent]]  # copy uid -> its Events


@dataclass(frozen=True)
class _Checks:
    """The hub's objects a hub job is checked against, read once per cycle."""

    classes: dict[str, AcceleratorClass]
    quotas: dict[str, dict[str, Any]]


@dataclass
class Member:
    kubeconfig: str
    api: client.ApiClient
    last: Poll | None = None
    last_contact: float | None = None


def _ts(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_ts(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def options_of(spec: dict[str, Any]) -> list[JobOption]:
    replicas = int(spec.get("replicas", 1))
    return [
        JobOption(
            i,
            o["acceleratorClass"],
            int(o.get("replicas") or replicas) * int(o.get("devicesPerReplica") or 1),
        )
        for i, o in enumerate(spec.get("accelerators") or [])
    ]


def _items(result: object) -> list[dict[str, Any]]:
    """The items of a custom-object LIST (the client returns a plain dict)."""
    items: list[dict[str, Any]] = cast(dict[str, Any], result)["items"]
    return items


def poll_member(api: client.ApiClient, hub: str) -> Poll:
    """One reading of a member: classes, quotas, metering, the hub's copies, their pods."""
    started = time.time()
    custom = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)
    classes: dict[str, tuple[int, int]] = {}
    for item in _items(
        custom.list_cluster_custom_object(
            GROUP, VERSION, "acceleratorclasses", _request_timeout=TIMEOUT
        )
    ):
        status = item.get("status") or {}
        devices = int(status.get("devices") or 0)
        classes[item["metadata"]["name"]] = (
            devices,
            max(devices - int(status.get("allocatedDevices") or 0), 0),
        )
    room: dict[tuple[str, str], int] = {}
    metering: list[MemberMetering] = []
    serving: dict[str, str] = {}
    for item in _items(
        custom.list_cluster_custom_object(GROUP, VERSION, "computequotas", _request_timeout=TIMEOUT)
    ):
        status = item.get("status") or {}
        used = {u["acceleratorClass"]: int(u.get("used", 0)) for u in status.get("usage") or []}
        for namespace in status.get("servedNamespaces") or []:
            serving[namespace] = item["metadata"]["name"]
            for resource in item["spec"].get("resources") or []:
                cls = resource["acceleratorClass"]
                room[(namespace, cls)] = max(int(resource.get("nominal", 0)) - used.get(cls, 0), 0)
        for entry in status.get("metering") or []:
            metering.append(
                MemberMetering(
                    centre="",
                    quota=item["metadata"]["name"],
                    accelerator_class=entry["acceleratorClass"],
                    device_seconds=float(entry.get("deviceSeconds", 0)),
                    pflop_seconds=float(entry.get("pflopSeconds", 0)),
                )
            )
    copies = {
        item["metadata"]["labels"][HUB_JOB_UID_LABEL]: item
        for item in _items(
            custom.list_cluster_custom_object(
                GROUP,
                VERSION,
                "trainingjobs",
                label_selector=f"{HUB_LABEL}={hub}",
                _request_timeout=TIMEOUT,
            )
        )
    }
    pods: set[tuple[str, str]] = set()
    for pod in core.list_pod_for_all_namespaces(
        label_selector=JOB_NAME_LABEL, _request_timeout=TIMEOUT
    ).items:
        if pod.metadata is not None:
            labels = pod.metadata.labels or {}
            pods.add((str(pod.metadata.namespace), labels.get(JOB_NAME_LABEL, "")))
    copy_uids = {c["metadata"]["uid"] for c in copies.values()}
    events: dict[str, list[MemberEvent]] = {}
    for event in core.list_event_for_all_namespaces(
        field_selector="involvedObject.kind=TrainingJob", _request_timeout=TIMEOUT
    ).items:
        target = event.involved_object.uid if event.involved_object else None
        if target not in copy_uids or event.metadata is None:
            continue
        events.setdefault(str(target), []).append(
            MemberEvent(
                uid=str(event.metadata.uid),
                type=str(event.type or "Normal"),
                reason=str(event.reason or ""),
                message=str(event.message or ""),
                count=int(event.count or 1),
                first=_stamp(event.first_timestamp or event.event_time),
                last=_stamp(event.last_timestamp or event.event_time),
            )
        )
    return Poll(started, classes, room, metering, copies, pods, serving, events)


def _stamp(value: object) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


class Hub:
    def __init__(
        self,
        settings: HubSettings,
        metrics: HubMetrics | None = None,
        may_write: Callable[[], bool] | None = None,
    ) -> None:
        self.settings = settings
        # leader election: None dispatches always; else only while it says so, and every
        # write, to the hub or to a member, is refused before it is sent once it does not
        self.may_write = may_write
        self.metrics = metrics if metrics is not None else HubMetrics("unknown")
        self.metrics.attach_state(self)
        # what the last cycle wrote, read by the metrics at scrape time (replaced whole)
        self._centre_rows: tuple[HubCentreRow, ...] = ()
        self._queue_rows: tuple[HubQueueRow, ...] = ()
        # hub job uid -> (centre, time.monotonic() of the copy's creation): dispatch latency
        self.created: dict[str, tuple[str, float]] = {}
        # hub job uid -> (centre, member event uid, count) already posted on the hub job
        self.mirrored: dict[str, set[tuple[str, str, int]]] = {}
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        self.api = self._fenced(client.Configuration.get_default_copy())
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.members: dict[str, Member] = {}
        self.tried: dict[str, set[str]] = {}  # hub job uid -> centres withdrawn from this round
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="suanli-hub")
        self.stop = threading.Event()
        self.healthy = threading.Event()

    # --- metrics (HubStateSource) ------------------------------------------------------------

    def centre_rows(self) -> tuple[HubCentreRow, ...]:
        return self._centre_rows

    def queue_rows(self) -> tuple[HubQueueRow, ...]:
        return self._queue_rows

    # --- reading -----------------------------------------------------------------------------

    def _list(self, plural: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = _items(
            self.custom.list_cluster_custom_object(GROUP, VERSION, plural, _request_timeout=TIMEOUT)
        )
        return items

    def _kubeconfig(self, centre: dict[str, Any]) -> str | None:
        ref = centre["spec"]["kubeconfigSecretRef"]
        try:
            secret = self.core.read_namespaced_secret(
                ref["name"], ref["namespace"], _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        data = (secret.data or {}).get(ref.get("key", "kubeconfig"))
        return base64.b64decode(data).decode() if data else None

    def _fenced(self, configuration: client.Configuration) -> FencedApiClient:
        api = FencedApiClient(configuration)
        api.may_write = self.may_write
        return api

    def _member(self, name: str, kubeconfig: str) -> Member:
        member = self.members.get(name)
        if member is None or member.kubeconfig != kubeconfig:
            configuration = client.Configuration()
            config.load_kube_config_from_dict(  # type: ignore[no-untyped-call]
                yaml.safe_load(kubeconfig), client_configuration=configuration
            )
            api = self._fenced(configuration)
            member = Member(
                kubeconfig, api, *(() if member is None else (member.last, member.last_contact))
            )
            self.members[name] = member
        return member

    def poll(self, centres: list[dict[str, Any]]) -> dict[str, bool]:
        """Poll every member at once; a member that does not answer in time keeps its last
        poll and last contact. Returns centre → has a usable kubeconfig."""
        usable: dict[str, bool] = {}
        futures = {}
        for centre in centres:
            name = centre["metadata"]["name"]
            try:
                text = self._kubeconfig(centre)
                member = self._member(name, text) if text else None
            except Exception as exc:
                log.warning("centre %s: kubeconfig unusable: %s", name, exc)
                member = None
            usable[name] = member is not None
            if member is not None:
                futures[name] = self.pool.submit(poll_member, member.api, self.settings.name)
        wait(futures.values(), timeout=30)
        for name, future in futures.items():
            if not future.done():
                log.warning("centre %s: poll still running after 30 s", name)
                continue
            try:
                poll = future.result()
            except Exception as exc:
                log.info("centre %s: no answer: %s", name, exc.__class__.__name__)
                continue
            member = self.members[name]
            member.last, member.last_contact = poll, time.time()
        return usable

    # --- one cycle -----------------------------------------------------------------------------

    def cycle(self) -> None:
        centres = self._list("computecentres")
        usable = self.poll(centres)
        quotas = self._list("computequotas")
        class_bodies = self._list("acceleratorclasses")
        catalogue = {c["metadata"]["name"]: float(c["spec"]["computeTFLOPS"]) for c in class_bodies}
        # what hub jobs are checked against before dispatch (invalid classes count as absent)
        checks = _Checks(
            usable_classes({c["metadata"]["name"]: c for c in class_bodies}),
            {q["metadata"]["name"]: q for q in quotas},
        )
        jobs = sorted(
            self._list("trainingjobs"),
            key=lambda j: (j["metadata"].get("creationTimestamp", ""), j["metadata"]["name"]),
        )
        now = time.time()
        states: dict[str, CentreState] = {}
        for centre in centres:
            name = centre["metadata"]["name"]
            member = self.members.get(name)
            states[name] = centre_state(
                has_kubeconfig=usable.get(name, False),
                out_of_service=bool(centre["spec"].get("outOfService")),
                last_contact=member.last_contact if member else None,
                now=now,
                lost_after=self.settings.lost_after,
            )
        serving = self._serving(quotas)
        views = self._views(centres, states, jobs)
        charged: dict[str, list[tuple[str, int]]] = {q: [] for q in {*serving.values()}}
        for job in jobs:
            status = job.get("status") or {}
            quota = serving.get(job["metadata"]["namespace"])
            if quota and status.get("centre") and status.get("phase") not in FINISHED:
                chosen = status.get("chosenOption") or {}
                opts = options_of(job["spec"])
                index = int(chosen.get("index", 0))
                if index < len(opts):
                    charged[quota].append((opts[index].accelerator_class, opts[index].devices))
        live_uids = {j["metadata"]["uid"] for j in jobs}
        current: dict[str, str] = {}
        for job in jobs:
            try:
                self._handle(job, serving, quotas, charged, views, states, now, current, checks)
            except NotLeading as exc:
                log.info("hub job %s: %s", job["metadata"]["name"], exc.reason)
            except Exception:
                log.exception(
                    "hub job %s/%s", job["metadata"]["namespace"], job["metadata"]["name"]
                )
        self._sweep(live_uids, current, states)
        for job in jobs:
            where = current.get(job["metadata"]["uid"])
            if where:
                self._mirror_events(job, where)
        for uid in set(self.mirrored) - live_uids:
            del self.mirrored[uid]
        rows = []
        for centre in centres:
            rows.append(self._centre_status(centre, states, catalogue, current))
        self._quota_status(quotas, serving, charged)
        self.metrics.initialise(r.centre for r in rows)
        self._centre_rows = tuple(rows)
        self._queue_rows = tuple(
            HubQueueRow(quota, reason, n)
            for (quota, reason), n in queue_lengths(hub_queue(jobs)).items()
        )
        for uid in set(self.created) - live_uids:
            del self.created[uid]

    def _serving(self, quotas: list[dict[str, Any]]) -> dict[str, str]:
        """namespace → hub quota: the oldest quota listing it."""
        serving: dict[str, str] = {}
        for quota in sorted(
            quotas,
            key=lambda q: (q["metadata"].get("creationTimestamp", ""), q["metadata"]["name"]),
        ):
            for namespace in quota["spec"].get("namespaces") or []:
                serving.setdefault(namespace, quota["metadata"]["name"])
        return serving

    def _views(
        self,
        centres: list[dict[str, Any]],
        states: dict[str, CentreState],
        jobs: list[dict[str, Any]],
    ) -> dict[str, CentreView]:
        """Centres as the dispatch sees them: the last poll, less what the hub sent there that
        the poll does not count yet (copies not seen admitted)."""
        views = {}
        for centre in centres:
            name = centre["metadata"]["name"]
            member = self.members.get(name)
            poll = member.last if member else None
            free = {c: f for c, (_, f) in (poll.classes if poll else {}).items()}
            room = dict(poll.quota_room) if poll else {}
            for job in jobs:
                status = job.get("status") or {}
                if status.get("centre") != name or status.get("phase") in (
                    "Admitted",
                    "Running",
                    *FINISHED,
                ):
                    continue
                opts = options_of(job["spec"])
                index = int((status.get("chosenOption") or {}).get("index", 0))
                if index < len(opts):
                    o = opts[index]
                    free[o.accelerator_class] = free.get(o.accelerator_class, 0) - o.devices
                    key = (job["metadata"]["namespace"], o.accelerator_class)
                    if key in room:
                        room[key] -= o.devices
            views[name] = CentreView(
                name=name,
                available=states[name] is CentreState.REACHABLE,
                free=free,
                devices={c: d for c, (d, _) in (poll.classes if poll else {}).items()},
                quota_room=room,
                price_per_pflop_hour=centre["spec"].get("pricePerPFLOPHour"),
            )
        return views

    def _handle(
        self,
        job: dict[str, Any],
        serving: dict[str, str],
        quotas: list[dict[str, Any]],
        charged: dict[str, list[tuple[str, int]]],
        views: dict[str, CentreView],
        states: dict[str, CentreState],
        now: float,
        current: dict[str, str],
        checks: _Checks,
    ) -> None:
        meta, status = job["metadata"], dict(job.get("status") or {})
        uid, namespace = meta["uid"], meta["namespace"]
        quota = serving.get(namespace)
        if quota is None:
            self._write_job(
                job,
                {
                    "phase": "Queued",
                    "reason": "NoQuota",
                    "message": f"no hub ComputeQuota serves namespace {namespace}",
                },
            )
            return
        centre = status.get("centre")
        if status.get("phase") in FINISHED:
            if centre:
                current[uid] = centre
            return
        if centre:
            current[uid] = centre
            member = self.members.get(centre)
            poll = member.last if member else None
            copy_obj = poll.copies.get(uid) if poll else None
            seen: CopySeen | None = None
            if poll is not None:
                if copy_obj is not None and (copy_obj.get("status") or {}).get("phase") in FINISHED:
                    seen = CopySeen.FINISHED
                elif copy_obj is not None and not copy_obj["metadata"].get("deletionTimestamp"):
                    seen = CopySeen.PRESENT
                elif copy_obj is not None or (namespace, meta["name"]) in poll.pods:
                    seen = CopySeen.DELETING
                else:
                    seen = CopySeen.GONE
            dispatched = _parse_ts(status.get("dispatchedAt")) or now
            action = copy_action(
                state=states.get(centre, CentreState.UNREACHABLE),
                seen=seen,
                observed_at=poll.started if poll else None,
                dispatched_at=dispatched,
                last_contact=member.last_contact if member else None,
                now=now,
                lost_after=self.settings.lost_after,
                redispatch_after=self.settings.redispatch_after,
            )
            if action is Action.MIRROR and copy_obj is not None:
                copy_status = copy_obj.get("status") or {}
                if should_withdraw(
                    phase=copy_status.get("phase"),
                    observed_at=poll.started if poll else None,
                    dispatched_at=dispatched,
                    now=now,
                    timeout=self.settings.dispatch_timeout,
                ):
                    self._withdraw(job, centre, copy_obj)
                    return
                self._mirror(job, copy_obj, quota)
            elif action is Action.MARK_LOST:
                contact = member.last_contact if member and member.last_contact else dispatched
                self._write_job(
                    job,
                    {
                        "reason": "CentreUnreachable",
                        "message": f"centre {centre} has not answered since {_ts(contact)}; "
                        "the copy may still run there, so the job is not dispatched "
                        "elsewhere until that is known (docs/network.md)",
                    },
                )
            elif action is Action.DELETE_COPY and copy_obj is not None and member is not None:
                self._delete_copy(member, copy_obj)
            elif action is Action.WAIT_GONE:
                self._write_job(
                    job,
                    {
                        "reason": "Redispatching",
                        "message": f"waiting for the copy in {centre} and its pods to be gone",
                    },
                )
            elif action is Action.REDISPATCH:
                current.pop(uid, None)
                self.created.pop(uid, None)
                self.metrics.count_redispatch(centre)
                self._write_job(
                    job,
                    {
                        "phase": "Queued",
                        "reason": "Redispatching",
                        "message": f"the copy in {centre} is gone (or {centre} is out of service); "
                        "dispatching again",
                        "centre": None,
                        "dispatchedAt": None,
                        "chosenOption": None,
                        "placement": None,
                        "conditions": None,
                    },
                )
            return
        # the member's checks, here: an invalid job is not dispatched (every copy would be
        # refused), and an option no copy could run is not offered to any centre
        check = check_hub_job(job, checks.classes, checks.quotas)
        if not check.ok:
            self._refuse(job, check, quota)
            return
        options = [o for o in options_of(job["spec"]) if o.index in check.usable]
        nominal = self._nominal(quotas, quota)
        charge = charged_devices(charged.get(quota, []))
        tried = self.tried.setdefault(uid, set())
        chosen = choose(namespace, options, nominal, charge, views.values(), frozenset(tried))
        if chosen is None and tried:
            tried.clear()
            chosen = choose(namespace, options, nominal, charge, views.values())
        if chosen is None:
            reason, message = why_not_dispatched(
                namespace, options, nominal, charge, list(views.values()), quota
            )
            # valid now: a Valid=False the hub wrote before a fix goes (no copy, so no other
            # conditions to keep)
            self._write_job(
                job,
                {
                    "phase": "Queued",
                    "reason": reason,
                    "message": message,
                    "quota": quota,
                    "conditions": None,
                },
            )
            return
        self._dispatch(job, chosen.centre, chosen.option, quota)
        charged.setdefault(quota, []).append(
            (chosen.option.accelerator_class, chosen.option.devices)
        )
        current[uid] = chosen.centre
        view = views[chosen.centre]
        cls = chosen.option.accelerator_class
        free = dict(view.free)
        free[cls] = free.get(cls, 0) - chosen.option.devices
        room = dict(view.quota_room)
        if (namespace, cls) in room:
            room[(namespace, cls)] -= chosen.option.devices
        views[chosen.centre] = CentreView(
            view.name, view.available, free, view.devices, room, view.price_per_pflop_hour
        )

    @staticmethod
    def _nominal(quotas: list[dict[str, Any]], name: str) -> dict[str, int]:
        for quota in quotas:
            if quota["metadata"]["name"] == name:
                return {
                    r["acceleratorClass"]: int(r.get("nominal", 0))
                    for r in quota["spec"].get("resources") or []
                }
        return {}

    # --- writing -----------------------------------------------------------------------------

    def _refuse(self, job: dict[str, Any], check: HubCheck, quota: str) -> None:
        """A job the members would refuse: the member's status (phase Queued, its reason, the
        message naming the field, Valid=False) and one Warning Event, at the hub; checked again
        every cycle, so a fixed spec is dispatched."""
        assert check.reason is not None
        current = job.get("status") or {}
        changes = invalid_job_status(
            current,
            reason=check.reason,
            message=check.message,
            generation=job["metadata"].get("generation"),
            now=api_now(),
        )
        changes["quota"] = quota
        if differs(current, changes) and self._write_job(job, changes):
            self._post_event(job, "Warning", check.reason.value, check.message)

    def _post_event(self, job: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """An Event of the hub's own on a hub job (best effort; a repeat is refused with 409)."""
        meta = job["metadata"]
        stamp = _ts(time.time())
        identity = f"{meta['uid']}/{meta.get('generation')}/{reason}/{message}"
        self._create_event(meta, identity, type_, reason, message, 1, stamp, stamp)

    def _create_event(
        self,
        meta: dict[str, Any],
        identity: str,
        type_: str,
        reason: str,
        message: str,
        count: int,
        first: str | None,
        last: str | None,
    ) -> bool:
        """Post an Event on the hub job ``meta`` names, named from ``identity``: a second post
        of the same Event (after a hub restart) is refused with 409. True when it exists now."""
        digest = hashlib.sha256(identity.encode()).hexdigest()
        body: Any = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name'][:200]}.{EVENT_PREFIX}.{digest[:16]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "TrainingJob",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "count": count,
            "firstTimestamp": first,
            "lastTimestamp": last,
            "source": {"component": "suanli-hub"},
            "reportingComponent": "suanli.io/hub",
            "reportingInstance": self.settings.name,
        }
        try:
            self.core.create_namespaced_event(meta["namespace"], body, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status != 409:
                log.debug("event %s on %s not posted: %s", reason, meta["name"], exc)
                return False
        return True

    def _write_job(self, job: dict[str, Any], changes: dict[str, Any]) -> bool:
        """Merge ``changes`` into the hub job's status, only when different, with the read
        resourceVersion as precondition. Returns whether it was written."""
        status = job.get("status") or {}
        if all(status.get(k) == v for k, v in changes.items()):
            return True
        body = {
            "metadata": {"resourceVersion": job["metadata"]["resourceVersion"]},
            "status": changes,
        }
        try:
            result = self.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                job["metadata"]["namespace"],
                "trainingjobs",
                job["metadata"]["name"],
                body,
                _request_timeout=TIMEOUT,
            )
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise
        written = cast(dict[str, Any], result)
        job["metadata"]["resourceVersion"] = written["metadata"]["resourceVersion"]
        job["status"] = written.get("status") or {}
        return True

    def _dispatch(self, job: dict[str, Any], centre: str, option: JobOption, quota: str) -> None:
        """The hub's record first (a crash after it finds no copy and dispatches again), then
        the copy with only the chosen option."""
        meta = job["metadata"]
        source = job["spec"]["accelerators"][option.index]
        recorded = self._write_job(
            job,
            {
                "phase": "Queued",
                "reason": "Dispatched",
                "message": f"dispatched to {centre} "
                f"({option.devices} × {option.accelerator_class})",
                "centre": centre,
                "dispatchedAt": _ts(time.time()),
                "quota": quota,
                "chosenOption": {
                    "index": option.index,
                    "acceleratorClass": option.accelerator_class,
                },
                "conditions": None,  # a Valid=False of the hub's, from before a fix
            },
        )
        if not recorded:
            return
        spec = copy.deepcopy(job["spec"])
        spec["accelerators"] = [source]
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "TrainingJob",
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "labels": {
                    **(meta.get("labels") or {}),
                    HUB_LABEL: self.settings.name,
                    HUB_JOB_UID_LABEL: meta["uid"],
                },
                "annotations": {HUB_OPTION_ANNOTATION: str(option.index)},
            },
            "spec": spec,
        }
        member = self.members[centre]
        try:
            client.CustomObjectsApi(member.api).create_namespaced_custom_object(
                GROUP, VERSION, meta["namespace"], "trainingjobs", body, _request_timeout=TIMEOUT
            )
            log.info("dispatched %s/%s to %s", meta["namespace"], meta["name"], centre)
            self.created[meta["uid"]] = (centre, time.monotonic())
            self.metrics.count_dispatch(centre)
        except ApiException as exc:
            if exc.status == 409:
                return  # a copy of that name exists: the next poll says whose it is
            log.warning(
                "dispatch of %s/%s to %s refused: %s",
                meta["namespace"],
                meta["name"],
                centre,
                exc.reason,
            )
            self.tried.setdefault(meta["uid"], set()).add(centre)
            self._write_job(
                job,
                {
                    "reason": "DispatchFailed",
                    "message": f"{centre} refused the copy: {exc.reason}",
                    "centre": None,
                    "dispatchedAt": None,
                    "chosenOption": None,
                },
            )
        except Exception as exc:
            log.warning(
                "dispatch of %s/%s to %s: no answer: %s",
                meta["namespace"],
                meta["name"],
                centre,
                exc.__class__.__name__,
            )

    def _withdraw(self, job: dict[str, Any], centre: str, copy_obj: dict[str, Any]) -> None:
        """Delete a copy that stayed Queued, only if it is still the version read as Queued."""
        member = self.members[centre]
        meta = copy_obj["metadata"]
        try:
            client.CustomObjectsApi(member.api).delete_namespaced_custom_object(
                GROUP,
                VERSION,
                meta["namespace"],
                "trainingjobs",
                meta["name"],
                body=client.V1DeleteOptions(
                    preconditions=client.V1Preconditions(
                        resource_version=meta["resourceVersion"], uid=meta["uid"]
                    )
                ),
                _request_timeout=TIMEOUT,
            )
        except ApiException as exc:
            if exc.status == 409:
                log.info(
                    "withdrawal of %s/%s from %s lost a race: kept",
                    meta["namespace"],
                    meta["name"],
                    centre,
                )
                return
            if exc.status != 404:
                raise
        self.tried.setdefault(job["metadata"]["uid"], set()).add(centre)
        self.created.pop(job["metadata"]["uid"], None)
        self.metrics.count_withdrawal(centre)
        log.info("withdrew %s/%s from %s (still queued)", meta["namespace"], meta["name"], centre)
        self._write_job(
            job,
            {
                "phase": "Queued",
                "reason": "Withdrawn",
                "message": f"not admitted in {centre} within "
                f"{self.settings.dispatch_timeout:.0f} s; trying another centre",
                "centre": None,
                "dispatchedAt": None,
                "chosenOption": None,
                "conditions": None,
            },
        )

    def _mirror(self, job: dict[str, Any], copy_obj: dict[str, Any], quota: str) -> None:
        source = copy_obj.get("status") or {}
        changes: dict[str, Any] = {k: source.get(k) for k in MIRRORED}
        chosen = source.get("chosenOption")
        if chosen:
            index = int(
                (copy_obj["metadata"].get("annotations") or {}).get(HUB_OPTION_ANNOTATION, 0)
            )
            changes["chosenOption"] = {**chosen, "index": index}
        if changes["phase"] is None:
            changes.update(phase="Queued", reason=source.get("reason") or "Dispatched")
        changes["quota"] = quota
        created = self.created.get(job["metadata"]["uid"])
        if self._write_job(job, changes) and created and changes.get("admittedAt"):
            # first seen admitted (or past it): the copy's dispatch latency, as the hub sees it;
            # a copy that fails without admission is not observed
            del self.created[job["metadata"]["uid"]]
            self.metrics.observe_dispatch_latency(created[0], time.monotonic() - created[1])

    def _mirror_events(self, job: dict[str, Any], centre: str) -> None:
        """Post the copy's Events on the hub job, once each (a deterministic name: a second
        post, after a hub restart, is refused with 409), the message prefixed with the
        centre; an Event whose count grew is posted again with its new count."""
        member = self.members.get(centre)
        poll = member.last if member else None
        meta = job["metadata"]
        copy_obj = poll.copies.get(meta["uid"]) if poll else None
        if poll is None or copy_obj is None:
            return
        done = self.mirrored.setdefault(meta["uid"], set())
        for event in poll.events.get(copy_obj["metadata"]["uid"], []):
            key = (centre, event.uid, event.count)
            if key in done:
                continue
            posted = self._create_event(
                meta,
                f"{centre}/{event.uid}/{event.count}",
                event.type,
                event.reason,
                f"{centre}: {event.message}",
                event.count,
                event.first,
                event.last,
            )
            if posted:
                done.add(key)

    def _delete_copy(self, member: Member, copy_obj: dict[str, Any]) -> None:
        meta = copy_obj["metadata"]
        try:
            client.CustomObjectsApi(member.api).delete_namespaced_custom_object(
                GROUP,
                VERSION,
                meta["namespace"],
                "trainingjobs",
                meta["name"],
                body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=meta["uid"])),
                _request_timeout=TIMEOUT,
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def _sweep(
        self, live: set[str], current: dict[str, str], states: dict[str, CentreState]
    ) -> None:
        """Delete copies whose hub job is gone, or which are not the job's current copy."""
        for name, member in self.members.items():
            if member.last is None or states.get(name) not in (
                CentreState.REACHABLE,
                CentreState.OUT_OF_SERVICE,
            ):
                continue
            for uid, copy_obj in member.last.copies.items():
                if copy_obj["metadata"].get("deletionTimestamp"):
                    continue
                if uid not in live or (uid in current and current[uid] != name):
                    log.info(
                        "deleting the copy %s/%s in %s (hub job gone or moved)",
                        copy_obj["metadata"]["namespace"],
                        copy_obj["metadata"]["name"],
                        name,
                    )
                    try:
                        self._delete_copy(member, copy_obj)
                    except Exception as exc:
                        log.warning("centre %s: delete failed: %s", name, exc)

    def _centre_status(
        self,
        centre: dict[str, Any],
        states: dict[str, CentreState],
        catalogue: dict[str, float],
        current: dict[str, str],
    ) -> HubCentreRow:
        name = centre["metadata"]["name"]
        member = self.members.get(name)
        poll = member.last if member else None
        state = states[name]
        messages = {
            CentreState.REACHABLE: "answering",
            CentreState.UNREACHABLE: f"no answer for {self.settings.lost_after:.0f} s or more",
            CentreState.OUT_OF_SERVICE: "spec.outOfService is set",
            CentreState.NO_KUBECONFIG: "the kubeconfig Secret or its key is missing or unusable",
        }
        status: dict[str, Any] = {
            "state": str(state),
            "message": messages[state],
            "jobs": sum(1 for c in current.values() if c == name),
            "observedGeneration": centre["metadata"].get("generation"),
        }
        if member and member.last_contact:
            status["lastContact"] = _ts(member.last_contact)
        if poll:
            status["classes"] = [
                {
                    "acceleratorClass": cls,
                    "devices": d,
                    "freeDevices": f,
                    "capacityPFLOPS": d * catalogue.get(cls, 0) / 1000,
                    "freePFLOPS": f * catalogue.get(cls, 0) / 1000,
                }
                for cls, (d, f) in sorted(poll.classes.items())
                if d
            ]
            status["quotaRoom"] = [
                {"namespace": ns, "acceleratorClass": cls, "freeDevices": n}
                for (ns, cls), n in sorted(poll.quota_room.items())
            ]
        old = centre.get("status") or {}
        ready = "True" if state is CentreState.REACHABLE else "False"
        conditions = [c for c in old.get("conditions") or [] if c.get("type") == "Ready"]
        if (
            not conditions
            or conditions[0].get("status") != ready
            or conditions[0].get("reason") != str(state)
        ):
            conditions = [
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": str(state),
                    "message": messages[state],
                    "lastTransitionTime": api_now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            ]
        status["conditions"] = conditions
        row = HubCentreRow(
            centre=name,
            region=str(centre["spec"].get("region", "")),
            state=str(state),
            last_contact=member.last_contact if member else None,
            jobs=status["jobs"],
            classes=tuple(
                HubCentreClass(
                    c["acceleratorClass"],
                    c["devices"],
                    c["freeDevices"],
                    c["capacityPFLOPS"],
                    c["freePFLOPS"],
                )
                for c in status.get("classes") or []
            ),
        )
        if all(old.get(k) == v for k, v in status.items()):
            return row
        try:
            self.custom.patch_cluster_custom_object_status(
                GROUP, VERSION, "computecentres", name, {"status": status}, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            log.warning("centre %s: status write refused: %s", name, exc.reason)
        return row

    def _quota_status(
        self,
        quotas: list[dict[str, Any]],
        serving: dict[str, str],
        charged: dict[str, list[tuple[str, int]]],
    ) -> None:
        for quota in quotas:
            name = quota["metadata"]["name"]
            namespaces = {ns for ns, q in serving.items() if q == name}
            entries = []
            for centre, member in sorted(self.members.items()):
                if member.last is None:
                    continue
                member_quotas = {q for ns, q in member.last.serving.items() if ns in namespaces}
                entries += [
                    MemberMetering(
                        centre, m.quota, m.accelerator_class, m.device_seconds, m.pflop_seconds
                    )
                    for m in member.last.metering
                    if m.quota in member_quotas
                ]
            totals = network_metering(entries)
            used = charged_devices(charged.get(name, []))
            status = {
                "usage": [{"acceleratorClass": c, "used": n} for c, n in sorted(used.items())],
                "metering": [
                    {"acceleratorClass": c, "deviceSeconds": float(d), "pflopSeconds": float(p)}
                    for c, (d, p) in totals.items()
                ],
                "servedNamespaces": sorted(namespaces),
                "admittedJobs": len(charged.get(name, [])),
            }
            old = quota.get("status") or {}
            if all(old.get(k) == v for k, v in status.items()):
                continue
            try:
                self.custom.patch_cluster_custom_object_status(
                    GROUP,
                    VERSION,
                    "computequotas",
                    name,
                    {"status": status},
                    _request_timeout=TIMEOUT,
                )
            except ApiException as exc:
                log.warning("quota %s: status write refused: %s", name, exc.reason)

    # --- running -----------------------------------------------------------------------------

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                if self.may_write is None or self.may_write():
                    self.cycle()
                else:
                    # a standby keeps its view of the centres warm (reads only) and
                    # exports no centre or queue rows of its own
                    self._centre_rows, self._queue_rows = (), ()
                    self.poll(self._list("computecentres"))
                self.healthy.set()
            except Exception:
                log.exception("hub cycle failed")
            self.metrics.observe_cycle(time.monotonic() - t0)
            self.stop.wait(max(self.settings.interval - (time.monotonic() - t0), 0.05))


def serve_health(bind: str, port: int, hub: Hub) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/healthz" and hub.healthy.is_set()
            self.send_response(200 if ok else 503)
            self.end_headers()
            self.wfile.write(b"ok" if ok else b"starting")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((bind, port), Handler)
    threading.Thread(target=server.serve_forever, name="suanli-hub-health", daemon=True).start()
    return server


def _elect(elector: LeaderElector, metrics: HubMetrics) -> None:
    """The hub's Lease, renewed on an event loop of its own in this thread (the hub is not
    async; the elector is the member operator's, see leader.py)."""

    def on_change(leading: bool) -> None:
        metrics.set_leader(leading)

    asyncio.run(elector.run(on_change))


def main(
    settings: HubSettings,
    bind: str,
    health_port: int,
    metrics_port: int,
    version: str,
    lease: tuple[str, int] | None = None,
) -> int:
    """``lease``: (namespace, seconds) of the hub Lease ``suanli-hub``; None: no election."""
    metrics = HubMetrics(version)
    elector = None
    if lease is not None:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        identity = f"{socket.gethostname()}-{os.getpid()}"
        # the Lease's own client: never fenced, or a standby could never take the Lease
        elector = LeaderElector(
            client.ApiClient(client.Configuration.get_default_copy()),
            lease[0],
            identity,
            name="suanli-hub",
            lease_seconds=lease[1],
        )
    else:
        metrics.set_leader(True)
    hub = Hub(settings, metrics, elector.may_write if elector else None)
    if elector is not None:
        threading.Thread(
            target=_elect, args=(elector, metrics), name="suanli-hub-lease", daemon=True
        ).start()
    serve_health(bind, health_port, hub)
    start_http_server(metrics_port, addr=bind, registry=metrics.registry)
    log.info("suanli hub %s started", settings.name)
    with contextlib.suppress(KeyboardInterrupt):
        hub.run()
    if elector is not None:
        elector.release()
    return 0
