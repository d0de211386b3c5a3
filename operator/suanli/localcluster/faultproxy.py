"""A loopback TCP fault proxy: put it between the operator and kube-apiserver and misbehave.

Why our own and not toxiproxy: no package serves toxiproxy here, and the four faults the
reliability suite needs fit in one asyncio module. The proxy forwards bytes untouched (TLS passes
through end to end, so the apiserver still authenticates the operator) and, on request:

- ``stall``: stop reading either side — bytes wait in the kernels' buffers as in a partition that
  TCP retransmission outlives; they flow again when the mode is set back to ``pass``;
- ``reset``: abort every open connection with a TCP RST and reset each new one at once;
- ``slow``: hold every chunk ``delay`` seconds before forwarding it;
- ``half-close``: shut the apiserver → client direction (the client reads EOF) while the client's
  writes still reach the apiserver — the half-open connection a NAT or load balancer leaves;
- ``freeze()``: the connections open now go silent for ever (a dead peer behind a NAT that
  keeps no state), while new ones pass: only a client-side timeout notices.

Both ends must be loopback addresses: this is a test tool, never a way to send traffic elsewhere.
It runs its event loop in a daemon thread so a synchronous test can drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
import threading
from dataclasses import dataclass, field

MODES = ("pass", "stall", "reset", "slow", "half-close")
CHUNK = 65536


def _require_loopback(host: str) -> None:
    try:
        address = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError) as exc:
        raise ValueError(f"fault proxy: host {host!r} does not resolve: {exc}") from exc
    if not address.is_loopback:
        raise ValueError(f"fault proxy: host {host!r} ({address}) is not a loopback address")


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0: the peer gets a RST, not a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass
class ProxyStats:
    connections: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    resets: int = 0
    faults: dict[str, int] = field(default_factory=dict)


class FaultProxy:
    """``FaultProxy(upstream_port).start()`` → the local port to point a kubeconfig at."""

    def __init__(
        self, upstream_port: int, upstream_host: str = "127.0.0.1", listen_host: str = "127.0.0.1"
    ) -> None:
        _require_loopback(upstream_host)
        _require_loopback(listen_host)
        self.upstream = (upstream_host, upstream_port)
        self.listen_host = listen_host
        self.port = 0
        self.mode = "pass"
        self.delay = 0.0
        self.stats = ProxyStats()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._conns: dict[tuple[asyncio.StreamWriter, asyncio.StreamWriter], asyncio.Event] = {}

    # --- control (any thread) -------------------------------------------------------------------
    def start(self) -> int:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)
        return self.port

    def set_mode(self, mode: str, delay: float = 0.0) -> None:
        """Switch fault; ``pass`` heals. Counted in ``stats.faults`` (all but ``pass``)."""
        if mode not in MODES:
            raise ValueError(f"fault proxy: mode must be one of {MODES}, not {mode!r}")
        if delay < 0:
            raise ValueError(f"fault proxy: delay must be >= 0, not {delay}")
        asyncio.run_coroutine_threadsafe(self._set(mode, delay), self._loop).result(timeout=10)

    def freeze(self) -> int:
        """Silence every connection open now, for ever; returns how many."""
        return asyncio.run_coroutine_threadsafe(self._freeze(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()

    # --- the loop -------------------------------------------------------------------------------
    async def _serve(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, self.listen_host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _set(self, mode: str, delay: float) -> None:
        self.mode, self.delay = mode, delay
        if mode != "pass":
            self.stats.faults[mode] = self.stats.faults.get(mode, 0) + 1
        if mode == "stall":
            self._flowing.clear()
        else:
            self._flowing.set()
        if mode == "reset":
            for client, upstream in list(self._conns):
                self.stats.resets += 1
                _abort(client)
                _abort(upstream)
            self._conns.clear()
        elif mode == "half-close":
            for client, _ in list(self._conns):
                with contextlib.suppress(OSError, RuntimeError):
                    if client.can_write_eof():
                        client.write_eof()

    async def _freeze(self) -> int:
        self.stats.faults["freeze"] = self.stats.faults.get("freeze", 0) + 1
        for flow in self._conns.values():
            flow.clear()
        return len(self._conns)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for client, upstream in list(self._conns):
            _abort(client)
            _abort(upstream)
        self._conns.clear()
        # connections held by a stall or a freeze wait on their events for ever: end them here,
        # so no task is left pending when the loop stops
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        if self.mode == "reset":
            self.stats.resets += 1
            _abort(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _abort(writer)
            return
        pair = (writer, up_writer)
        flow = asyncio.Event()
        flow.set()
        self._conns[pair] = flow
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, flow, upward=True),
                self._pipe(up_reader, writer, flow, upward=False),
            )
        finally:
            self._conns.pop(pair, None)
            for end in pair:
                with contextlib.suppress(OSError, RuntimeError):
                    end.close()

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        flow: asyncio.Event,
        upward: bool,
    ) -> None:
        try:
            while True:
                await self._flowing.wait()
                await flow.wait()
                data = await source.read(CHUNK)
                if not data:
                    break
                await self._flowing.wait()
                await flow.wait()
                if self.mode == "slow" and self.delay:
                    await asyncio.sleep(self.delay)
                if self.mode == "half-close" and not upward:
                    continue  # the client's side is shut: what the apiserver says is dropped
                sink.write(data)
                await sink.drain()
                if upward:
                    self.stats.bytes_up += len(data)
                else:
                    self.stats.bytes_down += len(data)
            with contextlib.suppress(OSError, RuntimeError):
                if sink.can_write_eof():
                    sink.write_eof()
        except (ConnectionError, OSError, RuntimeError):
            for end in (sink,):
                _abort(end)
