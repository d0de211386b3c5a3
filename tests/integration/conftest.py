"""Fixtures that run a real control plane (etcd, kube-apiserver, kube-controller-manager, kwok)
on loopback for the whole test session, and the operator as a real subprocess against it.

Nothing here is mocked: if the binaries cannot be built or started, the session errors out.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from suanli.localcluster import LocalCluster
from suanli.localcluster.cli import install_api, start_operator


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("control-plane"))
    try:
        local.up()
        install_api(local)
        yield local
    finally:
        local.down()


@pytest.fixture(scope="session")
def operator(cluster: LocalCluster) -> Iterator[dict[str, int]]:
    ports = start_operator(cluster)
    try:
        yield ports
    finally:
        cluster.stop_process("operator")


class Kubectl:
    """kubectl against the test cluster, with JSON results."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster

    def apply(self, manifest: dict[str, Any] | str) -> tuple[int, str]:
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        result = self.cluster.kubectl("apply", "-f", "-", input_text=text, check=False)
        return result.returncode, result.stdout + result.stderr

    def get(self, *args: str) -> dict[str, Any]:
        result = self.cluster.kubectl("get", *args, "-o", "json")
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def run(self, *args: str) -> str:
        return self.cluster.kubectl(*args).stdout


@pytest.fixture(scope="session")
def kubectl(cluster: LocalCluster) -> Kubectl:
    return Kubectl(cluster)


def wait_for(
    what: str, probe: Callable[[], Any], timeout: float = 60.0, interval: float = 0.5
) -> Any:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last seen: {last!r})")


REPO = Path(__file__).resolve().parents[2]
