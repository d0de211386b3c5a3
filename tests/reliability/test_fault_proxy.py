"""The fault proxy itself, against a loopback echo server: each fault does what it says."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from suanli.localcluster.faultproxy import FaultProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def echo() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=pump, args=(conn,), daemon=True).start()

    def pump(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the proxy resets it: the point of a test
            while data := conn.recv(4096):
                conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield port
    server.close()


@pytest.fixture
def proxy(echo: int) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(echo)
    fault_proxy.start()
    yield fault_proxy
    fault_proxy.stop()


def roundtrip(sock: socket.socket, data: bytes = b"ping") -> bytes:
    sock.sendall(data)
    return sock.recv(4096)


def test_pass_forwards_and_reset_aborts(proxy: FaultProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
        assert roundtrip(sock) == b"ping"
        proxy.set_mode("reset")
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            roundtrip(sock)
            roundtrip(sock)
    # a new connection is aborted as soon as the proxy accepts it: on a busy machine that can
    # already happen while connecting
    with (
        pytest.raises((ConnectionResetError, BrokenPipeError)),
        socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock,
    ):
        roundtrip(sock)
        roundtrip(sock)
    proxy.set_mode("pass")
    # the proxy's loop takes the new mode a moment later (seconds on a loaded machine)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
                assert roundtrip(sock) == b"ping"
            break
        except (ConnectionResetError, BrokenPipeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert proxy.stats.resets >= 2 and proxy.stats.faults == {"reset": 1}


def test_stall_holds_bytes_until_healed_and_slow_delays(proxy: FaultProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        assert roundtrip(sock) == b"ping"
        proxy.set_mode("stall")
        sock.settimeout(1)
        sock.sendall(b"held")
        with pytest.raises(TimeoutError):
            sock.recv(4096)
        proxy.set_mode("pass")
        sock.settimeout(5)
        assert sock.recv(4096) == b"held"
        proxy.set_mode("slow", delay=0.4)
        started = time.monotonic()
        assert roundtrip(sock) == b"ping"
        slow = time.monotonic() - started
        proxy.set_mode("pass")
        started = time.monotonic()
        assert roundtrip(sock) == b"ping"
        print(f"slow round trip {slow:.2f} s, healed {time.monotonic() - started:.3f} s")
        assert slow >= 0.4  # two chunks of one round trip each held 0.4 s at least once


def test_half_close_gives_the_client_eof_and_freeze_silences_old_connections(
    proxy: FaultProxy,
) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        assert roundtrip(sock) == b"ping"
        proxy.set_mode("half-close")
        assert sock.recv(4096) == b""  # EOF from the proxy's side
    proxy.set_mode("pass")
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as old:
        assert roundtrip(old) == b"ping"
        assert proxy.freeze() == 1
        old.settimeout(1)
        old.sendall(b"lost")
        with pytest.raises(TimeoutError):
            old.recv(4096)
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as new:
            assert roundtrip(new) == b"ping"


def test_only_loopback() -> None:
    with pytest.raises(ValueError, match="not a loopback"):
        FaultProxy(443, upstream_host="192.0.2.1")
    proxy = FaultProxy(443)
    try:
        with pytest.raises(ValueError, match="mode must be one of"):
            proxy.set_mode("drop")
    finally:
        proxy.stop()
