"""The plugin over real gRPC on unix sockets: it registers with a kubelet-shaped Registration
server, advertises its chips through ListAndWatch, and Allocate answers with the annotated chips."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from suanli.deviceplugin import api_pb2, api_pb2_grpc
from suanli.deviceplugin.chips import ASCEND_REAL_ANNOTATION, VENDORS
from suanli.deviceplugin.server import FakeDevicePlugin, run_forever


class Kubelet(api_pb2_grpc.RegistrationServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.registered = threading.Event()

    def Register(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        self.registered.set()
        return api_pb2.Empty()


@pytest.fixture
def plugin_dir() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dp-") as tmp:  # short: unix socket paths are limited
        yield Path(tmp)


def test_register_list_and_allocate(plugin_dir: Path) -> None:
    kubelet = Kubelet()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    api_pb2_grpc.add_RegistrationServicer_to_server(kubelet, server)
    server.add_insecure_port(f"unix://{plugin_dir / 'kubelet.sock'}")
    server.start()
    pending = [
        {"metadata": {"name": "job-0", "namespace": "team", "creationTimestamp": "t1",
                      "annotations": {"huawei.com/Ascend910": "Ascend910-2,Ascend910-5"}}},
    ]  # fmt: skip
    patches: list[tuple[tuple[str, str], Mapping[str, str]]] = []

    def annotate(ref: tuple[str, str], annotations: Mapping[str, str]) -> None:
        patches.append((ref, annotations))
        pending.clear()  # the pod now carries AscendReal: no longer a candidate

    plugin = FakeDevicePlugin(VENDORS["huawei"], 8, lambda: list(pending), annotate)
    thread = threading.Thread(target=run_forever, args=(plugin, plugin_dir), daemon=True)
    thread.start()
    try:
        assert kubelet.registered.wait(10), "the plugin never registered"
        request = kubelet.requests[0]
        assert (request.version, request.resource_name) == ("v1beta1", "huawei.com/Ascend910")
        with grpc.insecure_channel(f"unix://{plugin_dir / request.endpoint}") as channel:
            stub = api_pb2_grpc.DevicePluginStub(channel)
            stream = stub.ListAndWatch(api_pb2.Empty())
            first = next(stream)
            assert [d.ID for d in first.devices] == [f"Ascend910-{i}" for i in range(8)]
            assert {d.health for d in first.devices} == {"Healthy"}
            stream.cancel()
            answer = stub.Allocate(
                api_pb2.AllocateRequest(
                    container_requests=[
                        api_pb2.ContainerAllocateRequest(devices_ids=["Ascend910-0", "Ascend910-1"])
                    ]
                )
            )
            envs = dict(answer.container_responses[0].envs)
            assert envs["ASCEND_VISIBLE_DEVICES"] == "2,5"
            assert patches == [
                (("team", "job-0"), {ASCEND_REAL_ANNOTATION: "Ascend910-2,Ascend910-5"})
            ]
            # the next container, with no annotated pod left, gets what kubelet chose
            answer = stub.Allocate(
                api_pb2.AllocateRequest(
                    container_requests=[
                        api_pb2.ContainerAllocateRequest(devices_ids=["Ascend910-7"])
                    ]
                )
            )
            assert dict(answer.container_responses[0].envs)["ASCEND_VISIBLE_DEVICES"] == "7"
    finally:
        plugin.stopped.set()
        thread.join(10)
        server.stop(grace=None)
    assert not thread.is_alive()
    assert not (plugin_dir / "suanli-huawei.sock").exists()
