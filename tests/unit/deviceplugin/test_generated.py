"""The committed gRPC stubs are what grpcio-tools generates from the committed published proto."""

from __future__ import annotations

from pathlib import Path

from suanli.deviceplugin import generate


def test_stubs_match_the_proto() -> None:
    assert generate.main(["--check"]) == 0


def test_proto_is_the_kubelet_v1beta1_api() -> None:
    proto = (Path(generate.HERE) / "api.proto").read_text()
    assert "package v1beta1;" in proto
    assert 'option go_package = "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1";' in proto
    for rpc in (
        "Register",
        "ListAndWatch",
        "Allocate",
        "GetPreferredAllocation",
        "PreStartContainer",
    ):
        assert f"rpc {rpc}(" in proto
