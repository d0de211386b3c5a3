"""The gRPC edge of the device plugin: serves ``v1beta1.DevicePlugin`` on a socket in kubelet's
device-plugin directory, registers with kubelet, and re-registers when kubelet restarts (kubelet
removes the plugin sockets when it starts, so a vanished socket means: serve and register again).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from suanli.deviceplugin import api_pb2, api_pb2_grpc
from suanli.deviceplugin.chips import ASCEND_REAL_ANNOTATION, Allocation, Vendor, choose

API_VERSION = "v1beta1"
DEVICE_PLUGIN_DIR = Path("/var/lib/kubelet/device-plugins")
KUBELET_SOCKET = "kubelet.sock"
LOG = logging.getLogger("suanli.deviceplugin")

PendingPods = Callable[[], Sequence[Mapping[str, Any]]]
Annotate = Callable[[tuple[str, str], Mapping[str, str]], None]


class FakeDevicePlugin(api_pb2_grpc.DevicePluginServicer):
    """``count`` healthy fake devices of one vendor; Allocate decides with :func:`chips.choose`."""

    def __init__(
        self, vendor: Vendor, count: int, pending_pods: PendingPods, annotate: Annotate
    ) -> None:
        self.vendor = vendor
        self.count = count
        self.pending_pods = pending_pods
        self.annotate = annotate
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        # pods already served: excluded even before their annotation is visible in a listing
        self.served: set[tuple[str, str]] = set()

    def GetDevicePluginOptions(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC name)
        return api_pb2.DevicePluginOptions(
            pre_start_required=False, get_preferred_allocation_available=False
        )

    def ListAndWatch(self, request: Any, context: Any) -> Iterator[Any]:  # noqa: N802 (gRPC name)
        devices = [
            api_pb2.Device(ID=device_id, health="Healthy")
            for device_id in self.vendor.device_ids(self.count)
        ]
        yield api_pb2.ListAndWatchResponse(devices=devices)
        while not self.stopped.wait(1.0) and context.is_active():
            pass

    def GetPreferredAllocation(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC name)
        return api_pb2.PreferredAllocationResponse()

    def Allocate(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC name)
        responses = []
        with self.lock:  # one pod at a time: the annotation written below marks it as served
            for container in request.container_requests:
                requested = list(container.devices_ids)
                allocation = choose(self.vendor, requested, self._pending())
                if allocation.pod is not None:
                    self.served.add(allocation.pod)
                    self.annotate(
                        allocation.pod, {ASCEND_REAL_ANNOTATION: ",".join(allocation.device_ids)}
                    )
                LOG.info(
                    "allocate %s -> %s (pod %s)", requested, allocation.device_ids, allocation.pod
                )
                responses.append(self._response(allocation))
        return api_pb2.AllocateResponse(container_responses=responses)

    def PreStartContainer(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC name)
        return api_pb2.PreStartContainerResponse()

    def _pending(self) -> Sequence[Mapping[str, Any]]:
        if self.vendor.resource != "huawei.com/Ascend910":
            return []
        return [
            pod
            for pod in self.pending_pods()
            if (
                str((pod.get("metadata") or {}).get("namespace")),
                str((pod.get("metadata") or {}).get("name")),
            )
            not in self.served
        ]

    def _response(self, allocation: Allocation) -> Any:
        return api_pb2.ContainerAllocateResponse(envs=allocation.envs(self.vendor))


def serve(plugin: FakeDevicePlugin, socket_path: Path) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    api_pb2_grpc.add_DevicePluginServicer_to_server(plugin, server)  # type: ignore[no-untyped-call]
    socket_path.unlink(missing_ok=True)
    server.add_insecure_port(f"unix://{socket_path}")
    server.start()
    return server


def register(kubelet_socket: Path, endpoint: str, resource: str, timeout: float = 10.0) -> None:
    with grpc.insecure_channel(f"unix://{kubelet_socket}") as channel:
        stub = api_pb2_grpc.RegistrationStub(channel)  # type: ignore[no-untyped-call]
        stub.Register(
            api_pb2.RegisterRequest(
                version=API_VERSION,
                endpoint=endpoint,
                resource_name=resource,
                options=api_pb2.DevicePluginOptions(),
            ),
            timeout=timeout,
        )


def run_forever(plugin: FakeDevicePlugin, directory: Path = DEVICE_PLUGIN_DIR) -> None:
    """Serve, register, and start over whenever kubelet wipes the directory (it restarted)."""
    endpoint = f"suanli-{plugin.vendor.name}.sock"
    socket_path = directory / endpoint
    kubelet = directory / KUBELET_SOCKET
    while not plugin.stopped.is_set():
        while not kubelet.exists() and not plugin.stopped.wait(0.5):
            pass
        server = serve(plugin, socket_path)
        try:
            register(kubelet, endpoint, plugin.vendor.resource)
            LOG.info("registered %s x%d at %s", plugin.vendor.resource, plugin.count, socket_path)
            while socket_path.exists() and not plugin.stopped.wait(1.0):
                pass
        except grpc.RpcError as exc:
            LOG.warning("registration with kubelet failed (%s); retrying", exc)
            time.sleep(1.0)
        finally:
            server.stop(grace=None)
            with contextlib.suppress(OSError):
                socket_path.unlink()
