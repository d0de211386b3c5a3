"""The validating webhook: refuse at ``kubectl apply`` what could never run, naming the field.

An aiohttp server of its own rather than Kopf's ``@kopf.on.validate`` (docs/admission.md says
why in full): the TLS context is swapped in place when the certificate rotates (Kopf restarts
its server, closing the port for a moment), the URL paths are exactly ``WEBHOOK_PATHS`` that the
chart's ValidatingWebhookConfiguration names, and the refusal carries every field as a cause.

Every replica serves it, leader or not; the checks are ``suanli.controller.validate``'s, against
the operator cache's current view (``memo["controller"].cache``). Updates that leave the spec
alone (finalizers, annotations, deletion) are always allowed, so the operator's own writes and
a tenant's cleanup never depend on the webhook.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
from aiohttp import web
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from suanli.api.manifests import (
    WEBHOOK_CERT_DIR,
    WEBHOOK_CONFIGURATION,
    WEBHOOK_NAMES,
    WEBHOOK_PATHS,
    WEBHOOK_PORT,
    WEBHOOK_SERVICE,
)
from suanli.controller.cache import Kind, Snapshot
from suanli.controller.certs import (
    ServingPair,
    load_context,
    make_pair,
    merge_bundle,
    mounted_pair,
    service_hosts,
)
from suanli.controller.validate import (
    Problem,
    check_accelerator_class,
    check_class_against,
    check_compute_quota,
    check_job_against,
    check_quota_against,
    check_training_job,
)

log = logging.getLogger("suanli.admission")

MAX_MESSAGE = 8192
"""Longest refusal message (the tenant's terminal, the apiserver's audit log)."""
CHECK_INTERVAL = 60.0
"""Seconds between checks of certificate age, mounted files and the caBundle."""
RETRY_INTERVAL = 3.0
"""Seconds between tries while our CA is not yet in the caBundle (no configuration yet, a
conflicting patch): the webhook is useless until the apiserver trusts it."""


@dataclass(frozen=True)
class WebhookOptions:
    """How this replica serves the webhook (from the command line)."""

    port: int = WEBHOOK_PORT
    bind: str = "0.0.0.0"
    hosts: tuple[str, ...] = ()
    """Extra names or IPs for the serving certificate (URL mode: the address the apiserver uses)."""
    namespace: str = "suanli-system"
    service: str = WEBHOOK_SERVICE
    cert_dir: Path = Path(WEBHOOK_CERT_DIR)


# --- deciding ----------------------------------------------------------------------------------
@dataclass
class Decision:
    problems: tuple[Problem, ...] = ()
    warnings: list[str] = field(default_factory=list)


def _unchanged(request: Mapping[str, Any]) -> bool:
    new = request.get("object") or {}
    old = request.get("oldObject") or {}
    return request.get("operation") == "UPDATE" and (
        new.get("spec") == old.get("spec")
        or bool((new.get("metadata") or {}).get("deletionTimestamp"))
    )


def decide(plural: str, request: Mapping[str, Any], snapshot: Snapshot | None) -> Decision:
    """What the webhook answers for one AdmissionReview request (pure but for the snapshot)."""
    decision = Decision()
    if request.get("operation") not in ("CREATE", "UPDATE") or _unchanged(request):
        return decision
    body: Mapping[str, Any] = request.get("object") or {}
    classes = snapshot.of(Kind.ACCELERATOR_CLASS) if snapshot else {}
    cross = bool(classes)
    if not cross:
        decision.warnings.append(
            "suanli: the operator has not seen any AcceleratorClass yet; only checks of the "
            "object alone were made"
        )
    problems: list[Problem] = []
    if plural == "trainingjobs":
        job = check_training_job(body)
        problems += job.problems
        if job.parsed is not None and cross and snapshot is not None:
            problems += check_job_against(
                job.parsed, classes, quotas=snapshot.of(Kind.COMPUTE_QUOTA)
            )
    elif plural == "computequotas":
        quota = check_compute_quota(body)
        problems += quota.problems
        if quota.parsed is not None and cross and snapshot is not None:
            old = request.get("oldObject") if request.get("operation") == "UPDATE" else None
            problems += check_quota_against(
                body, snapshot.of(Kind.COMPUTE_QUOTA), classes, old=old or None
            )
    elif plural == "acceleratorclasses":
        verdict = check_accelerator_class(body)
        problems += verdict.problems
        if verdict.parsed is not None and snapshot is not None:
            old = None
            if request.get("operation") == "UPDATE":
                old = check_accelerator_class(request.get("oldObject") or {}).parsed
            problems += check_class_against(
                verdict.parsed,
                old,
                classes,
                snapshot.of(Kind.TRAINING_JOB),
                nodes=snapshot.of(Kind.NODE),
            )
    else:
        decision.warnings.append(f"suanli: no checks for {plural}")
    decision.problems = tuple(problems)
    return decision


def review_response(request: Mapping[str, Any], decision: Decision) -> dict[str, Any]:
    """The AdmissionReview answer: allowed, or refused with every field as a cause."""
    answer: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": not decision.problems}
    if decision.problems:
        message = "; ".join(p.message[:1000] for p in decision.problems)
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + f"… ({len(decision.problems)} problems in all)"
        answer["status"] = {
            "code": 422,
            "reason": "Invalid",
            "message": message,
            "details": {
                "causes": [
                    {
                        "type": "FieldValueInvalid",
                        "field": p.field[:1000],
                        # kubectl prints "<field>: <message>" for each cause
                        "message": p.message.removeprefix(p.field + ": ")[:1000],
                    }
                    for p in decision.problems[:50]
                ]
            },
        }
    if decision.warnings:
        answer["warnings"] = decision.warnings
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": answer}


# --- serving -------------------------------------------------------------------------------------
class WebhookServer:
    """Serves ``WEBHOOK_PATHS`` over TLS and keeps certificate and caBundle current."""

    def __init__(self, options: WebhookOptions, memo: kopf.Memo) -> None:
        self.options = options
        self.memo = memo
        self.context: ssl.SSLContext | None = None
        self.pair: ServingPair | None = None
        self.mounted: tuple[bytes, bytes] | None = None
        self.runner: web.AppRunner | None = None
        self._admissions: Any = None

    def snapshot(self) -> Snapshot | None:
        controller = self.memo.get("controller")
        cache = getattr(controller, "cache", None)
        return cache.snapshot() if cache is not None else None

    async def handle(self, request: web.Request) -> web.Response:
        plural = request.match_info["plural"]
        try:
            review = await request.json()
            admission_request = review["request"]
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": f"not an AdmissionReview: {exc}"}, status=400)
        try:
            decision = decide(plural, admission_request, self.snapshot())
        except Exception:  # never let one object take the webhook down: say so, allow
            log.exception("webhook check of %s crashed; allowing it", plural)
            decision = Decision(warnings=["suanli: the webhook failed to check this object"])
        if decision.problems:
            log.info(
                "refused %s %s: %s",
                plural,
                (admission_request.get("object") or {}).get("metadata", {}).get("name"),
                decision.problems[0].message[:200],
            )
        return web.json_response(review_response(admission_request, decision))

    def _hosts(self) -> list[str]:
        names = service_hosts(self.options.service, self.options.namespace)
        return [*names, *self.options.hosts]

    def _serving(self) -> tuple[bytes, bytes]:
        mounted = mounted_pair(self.options.cert_dir)
        if mounted is not None:
            self.mounted = mounted
            return mounted
        self.pair = make_pair(self._hosts())
        return self.pair.cert_pem, self.pair.key_pem

    async def start(self) -> None:
        cert, key = self._serving()
        self.context = load_context(cert, key)
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.add_routes([web.post(f"/validate/{{plural:{'|'.join(WEBHOOK_PATHS)}}}", self.handle)])
        self.runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(
            self.runner, self.options.bind, self.options.port, ssl_context=self.context
        )
        await site.start()
        mode = "cert-manager files" if self.mounted else "its own CA"
        log.info("webhook serving on %s:%d with %s", self.options.bind, self.options.port, mode)

    async def refresh(self) -> bool:
        """Rotate the certificate when due (or reload mounted files) and keep our CA trusted;
        whether the caBundle holds our CA now."""
        assert self.context is not None
        if self.mounted is not None:
            current = mounted_pair(self.options.cert_dir)
            if current is not None and current != self.mounted:
                load_context(*current, context=self.context)
                self.mounted = current
                log.info("webhook: reloaded the mounted serving certificate")
            return True
        assert self.pair is not None
        if datetime.datetime.now(datetime.UTC) >= self.pair.renew_after():
            old_ca = self.pair.ca_pem
            self.pair = make_pair(self._hosts())
            # Trust the new CA before serving with it; the old CA stays until it expires.
            await asyncio.to_thread(
                ensure_ca_bundle, self._admission_api(), [old_ca, self.pair.ca_pem]
            )
            load_context(self.pair.cert_pem, self.pair.key_pem, context=self.context)
            log.info("webhook: serving certificate rotated")
        return await asyncio.to_thread(ensure_ca_bundle, self._admission_api(), [self.pair.ca_pem])

    def _admission_api(self) -> client.AdmissionregistrationV1Api:
        if self._admissions is None:
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
            except config.ConfigException:
                config.load_kube_config()  # type: ignore[no-untyped-call]
            self._admissions = client.AdmissionregistrationV1Api(client.ApiClient())
        api: client.AdmissionregistrationV1Api = self._admissions
        return api

    async def run(self) -> None:
        await self.start()
        try:
            while True:
                trusted = False
                try:
                    trusted = await self.refresh()
                except Exception:  # the API may be away for a moment: try again soon
                    log.exception("webhook: keeping the certificate and caBundle current failed")
                await asyncio.sleep(CHECK_INTERVAL if trusted else RETRY_INTERVAL)
        finally:
            if self.runner is not None:
                await self.runner.cleanup()


def ensure_ca_bundle(api: client.AdmissionregistrationV1Api, cas: list[bytes]) -> bool:
    """Append ``cas`` to the caBundle of each of our webhooks, dropping expired certificates;
    whether they are all there now.

    A JSON patch that first tests the resourceVersion: two replicas patching at once cannot
    drop each other's CA (the loser gets 409/422 and merges again next round)."""
    try:
        configuration = api.read_validating_webhook_configuration(WEBHOOK_CONFIGURATION)
    except ApiException as exc:
        if exc.status == 404:
            log.warning(
                "webhook: ValidatingWebhookConfiguration %s not found", WEBHOOK_CONFIGURATION
            )
            return False
        raise
    ours = set(WEBHOOK_NAMES.values())
    patch: list[dict[str, Any]] = []
    for index, hook in enumerate(configuration.webhooks or []):
        if hook.name not in ours:
            continue
        encoded = hook.client_config.ca_bundle or ""
        current = base64.b64decode(encoded) if encoded else b""
        merged = merge_bundle(current, cas)
        if merged != current:
            patch.append(
                {
                    "op": "add",  # add replaces an existing member
                    "path": f"/webhooks/{index}/clientConfig/caBundle",
                    "value": base64.b64encode(merged).decode(),
                }
            )
    if not patch:
        return True  # our CA is there already
    version = configuration.metadata.resource_version if configuration.metadata else None
    patch.insert(0, {"op": "test", "path": "/metadata/resourceVersion", "value": version})
    try:
        api.patch_validating_webhook_configuration(WEBHOOK_CONFIGURATION, patch)
    except ApiException as exc:
        if exc.status in (409, 422):
            log.info("webhook: caBundle changed meanwhile; merging again next round")
            return False
        raise
    log.info("webhook: caBundle of %s updated", WEBHOOK_CONFIGURATION)
    return True


def install(memo: kopf.Memo, options: WebhookOptions) -> asyncio.Task[None]:
    """Start serving (idempotent); the task lives in ``memo["webhook"]``."""
    task = memo.get("webhook")
    if isinstance(task, asyncio.Task) and not task.done():
        return task
    server = WebhookServer(options, memo)

    async def serve() -> None:
        try:
            await server.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook: stopped serving")
            raise

    task = asyncio.create_task(serve(), name="suanli-webhook")
    memo["webhook"] = task
    return task


@kopf.on.startup(id="suanli-webhook")
async def start_webhook(memo: kopf.Memo, **_: Any) -> None:
    options = memo.get("webhook_options")  # from the command line, through Kopf's memo
    if isinstance(options, WebhookOptions):
        install(memo, options)


@kopf.on.probe(id="webhook")
def webhook_serving(memo: kopf.Memo, **_: Any) -> str:
    """Part of ``/healthz``: with the webhook on, a replica whose server task has ended is not
    healthy (with ``failurePolicy: Fail`` it would refuse every suanli object while looking
    fine). Raising makes Kopf's health endpoint answer 500, so the pod leaves the Service."""
    if not isinstance(memo.get("webhook_options"), WebhookOptions):
        return "off"
    task = memo.get("webhook")
    if not isinstance(task, asyncio.Task):
        return "starting"
    if task.done():
        raise kopf.PermanentError("the webhook server has stopped serving")
    return "serving"


@kopf.on.cleanup(id="suanli-webhook-stop")
async def stop_webhook(memo: kopf.Memo, **_: Any) -> None:
    task = memo.get("webhook")
    if isinstance(task, asyncio.Task):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
