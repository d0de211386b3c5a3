"""A path to the API server that goes silent costs one timeout, not one per pooled connection.

Behind the fault proxy's ``freeze`` (connections open at that moment stay open and go silent,
new ones pass) the operator's client holds several idle keep-alive connections. The first write
after the freeze times out; the writes after it must go out on fresh connections instead of
discovering the other frozen ones, one full timeout each.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import urllib3
from kubernetes import client

from suanli.controller.kube import _BoundedApiClient, _went_silent
from suanli.localcluster.faultproxy import FaultProxy

TIMEOUT = (1.0, 0.5)


class _Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client pools the connection

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(0.2)  # the warm-up requests overlap, so each takes a connection of its own
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxied_client() -> Iterator[tuple[_BoundedApiClient, FaultProxy]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = FaultProxy(server.server_address[1])
    port = proxy.start()
    configuration = client.Configuration(host=f"http://127.0.0.1:{port}")
    configuration.connection_pool_maxsize = 8
    api = _BoundedApiClient(configuration)
    try:
        yield api, proxy
    finally:
        proxy.stop()
        server.shutdown()
        server.server_close()


def _post(api: _BoundedApiClient) -> int:
    _, url, headers, body, _ = api.param_serialize(
        "POST", "/echo", header_params={"Content-Type": "application/json"}, body={}
    )
    response = api.call_api("POST", url, header_params=headers, body=body, _request_timeout=TIMEOUT)
    response.read()
    return int(response.status)


def test_one_timeout_drops_every_idle_connection(
    proxied_client: tuple[_BoundedApiClient, FaultProxy],
) -> None:
    api, proxy = proxied_client
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda _: _post(api), range(4))) == [200] * 4
    assert proxy.stats.connections == 4
    assert proxy.freeze() == 4  # four idle keep-alive connections, all silent from now on

    with pytest.raises((urllib3.exceptions.TimeoutError, urllib3.exceptions.MaxRetryError)):
        _post(api)
    # a burst of writes next: without dropping the pool, urllib3 hands out the three frozen
    # connections still idle under the slot the timed-out one left, and three writes time out
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda _: _post(api), range(4))) == [200] * 4
    assert proxy.stats.connections == 8


def test_a_refused_connection_keeps_the_pool() -> None:
    refused = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    read = urllib3.exceptions.ReadTimeoutError(None, "/", "Read timed out")  # type: ignore[arg-type]
    assert not _went_silent(refused)
    assert not _went_silent(urllib3.exceptions.MaxRetryError(None, "/", refused))  # type: ignore[arg-type]
    assert _went_silent(read)
    assert _went_silent(urllib3.exceptions.MaxRetryError(None, "/", read))  # type: ignore[arg-type]
