"""The webhook's decisions and its TLS: what is allowed without checks, the response shape, the
caBundle merge, and a certificate swapped into a live server (real TLS on loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import ssl
from typing import Any

from aiohttp import web
from cryptography import x509

from suanli.controller.admission import Decision, decide, review_response
from suanli.controller.cache import Cache, Kind
from suanli.controller.certs import (
    CA_LIFETIME,
    load_context,
    make_pair,
    merge_bundle,
    mounted_pair,
)
from suanli.controller.validate import Problem
from tests.unit.controller import corpus


def snapshot(with_catalogue: bool = True) -> Any:
    cache = Cache()
    if with_catalogue:
        for body in corpus.catalogue().values():
            cache.apply_event(Kind.ACCELERATOR_CLASS, "ADDED", body)
    return cache.snapshot()


def request(body: dict[str, Any], operation: str = "CREATE", old: Any = None) -> dict[str, Any]:
    return {"uid": "u-1", "operation": operation, "object": body, "oldObject": old}


def bad_job() -> dict[str, Any]:
    body = copy.deepcopy(corpus.bases()["job"])
    body["spec"]["accelerators"][0]["devicesPerReplica"] = 3
    return body


def test_a_bad_job_is_refused_with_every_field_as_a_cause() -> None:
    decision = decide("trainingjobs", request(bad_job()), snapshot())
    answer = review_response(request(bad_job()), decision)["response"]
    assert answer["uid"] == "u-1" and answer["allowed"] is False
    assert answer["status"]["code"] == 422
    (cause,) = answer["status"]["details"]["causes"]
    assert cause["field"] == "spec.accelerators[0].devicesPerReplica"
    assert cause["message"].startswith("3 is not legal for ascend-910b")
    assert answer["status"]["message"].startswith("spec.accelerators[0].devicesPerReplica: 3")


def test_updates_that_leave_the_spec_alone_and_deletions_are_allowed() -> None:
    body = bad_job()
    labelled = copy.deepcopy(body)
    labelled["metadata"]["finalizers"] = ["suanli.io/finalizer"]
    assert decide("trainingjobs", request(labelled, "UPDATE", body), snapshot()).problems == ()
    deleting = copy.deepcopy(body)
    deleting["spec"]["replicas"] = 2
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert decide("trainingjobs", request(deleting, "UPDATE", body), snapshot()).problems == ()
    changed = copy.deepcopy(body)
    changed["spec"]["priority"] = 5
    assert decide("trainingjobs", request(changed, "UPDATE", body), snapshot()).problems


def test_without_a_catalogue_only_the_object_alone_is_checked_with_a_warning() -> None:
    decision = decide("trainingjobs", request(bad_job()), snapshot(with_catalogue=False))
    assert decision.problems == () and "AcceleratorClass" in decision.warnings[0]
    long_name = bad_job()
    long_name["metadata"]["name"] = "x" * 70
    assert decide("trainingjobs", request(long_name), None).problems


def test_long_refusals_are_bounded() -> None:
    problems = tuple(Problem(f"f{i}", f"f{i}: " + "x" * 2000) for i in range(100))
    answer = review_response(request({}), Decision(problems))["response"]
    assert len(answer["status"]["message"]) < 9000
    assert len(answer["status"]["details"]["causes"]) == 50


# --- certificates ---------------------------------------------------------------------------------
def test_the_bundle_keeps_live_cas_and_drops_expired_ones() -> None:
    now = datetime.datetime.now(datetime.UTC)
    old = make_pair(["a.svc"], now=now - CA_LIFETIME - datetime.timedelta(hours=1))
    mine, theirs = make_pair(["a.svc"]), make_pair(["a.svc"])
    bundle = merge_bundle(old.ca_pem + theirs.ca_pem, [mine.ca_pem])
    kept = [c.serial_number for c in x509.load_pem_x509_certificates(bundle)]
    expected = [x509.load_pem_x509_certificate(p.ca_pem).serial_number for p in (mine, theirs)]
    assert sorted(kept) == sorted(expected)
    assert merge_bundle(bundle, [mine.ca_pem]) == bundle  # idempotent
    assert merge_bundle(b"not a certificate", [mine.ca_pem]) == mine.ca_pem


def test_the_serving_certificate_names_every_host() -> None:
    pair = make_pair(["suanli-webhook.suanli-system.svc", "127.0.0.1"])
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["suanli-webhook.suanli-system.svc"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert pair.not_before < pair.renew_after() < pair.not_after


def test_mounted_files_are_used_only_when_both_exist(tmp_path: Any) -> None:
    assert mounted_pair(tmp_path) is None
    (tmp_path / "tls.crt").write_bytes(b"c")
    assert mounted_pair(tmp_path) is None
    (tmp_path / "tls.key").write_bytes(b"k")
    assert mounted_pair(tmp_path) == (b"c", b"k")


async def _handshake(port: int, ca_pem: bytes) -> bool:
    context = ssl.create_default_context(cadata=ca_pem.decode())
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    except ssl.SSLError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


def test_a_rotated_certificate_is_served_without_restarting_the_server() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        first, second = make_pair(["127.0.0.1"]), make_pair(["127.0.0.1"])
        context = load_context(first.cert_pem, first.key_pem)
        runner = web.AppRunner(web.Application())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            before = await _handshake(port, first.ca_pem)
            load_context(second.cert_pem, second.key_pem, context=context)
            return (
                before,
                await _handshake(port, second.ca_pem),
                await _handshake(port, first.ca_pem),
            )
        finally:
            await runner.cleanup()

    trusted_before, new_trusted, old_refused = asyncio.run(scenario())
    assert trusted_before and new_trusted and not old_refused


def test_cert_manager_mode_serves_the_mounted_files_reloads_them_and_never_patches(
    tmp_path: Any,
) -> None:
    from suanli.controller.admission import WebhookOptions, WebhookServer
    from suanli.localcluster.cluster import free_port

    first, second = make_pair(["127.0.0.1"]), make_pair(["127.0.0.1"])
    (tmp_path / "tls.crt").write_bytes(first.cert_pem)
    (tmp_path / "tls.key").write_bytes(first.key_pem)
    port = free_port()
    server = WebhookServer(WebhookOptions(port=port, bind="127.0.0.1", cert_dir=tmp_path), {})  # type: ignore[arg-type]

    def no_api() -> Any:
        raise AssertionError("cert-manager mode must not touch the webhook configuration")

    server._admission_api = no_api  # type: ignore[method-assign]

    async def scenario() -> tuple[bool, bool, bool, bool]:
        await server.start()
        try:
            served_first = await _handshake(port, first.ca_pem)
            trusted = await server.refresh()  # unchanged files: nothing to do
            (tmp_path / "tls.crt").write_bytes(second.cert_pem)
            (tmp_path / "tls.key").write_bytes(second.key_pem)
            await server.refresh()
            return served_first, trusted, await _handshake(port, second.ca_pem), server.pair is None
        finally:
            assert server.runner is not None
            await server.runner.cleanup()

    served_first, trusted, served_second, no_own_ca = asyncio.run(scenario())
    assert served_first and trusted and served_second and no_own_ca


def test_health_fails_once_the_webhook_server_has_stopped() -> None:
    import kopf
    import pytest

    from suanli.controller.admission import WebhookOptions, webhook_serving

    assert webhook_serving(kopf.Memo()) == "off"
    memo = kopf.Memo(webhook_options=WebhookOptions())
    assert webhook_serving(memo) == "starting"

    async def run() -> None:
        async def crash() -> None:
            raise OSError("address already in use")

        async def forever() -> None:
            await asyncio.sleep(3600)

        memo["webhook"] = asyncio.create_task(forever())
        await asyncio.sleep(0)
        assert webhook_serving(memo) == "serving"
        memo["webhook"].cancel()
        memo["webhook"] = asyncio.create_task(crash())
        with contextlib.suppress(OSError):
            await memo["webhook"]
        with pytest.raises(kopf.PermanentError, match="stopped serving"):
            webhook_serving(memo)

    asyncio.run(run())
