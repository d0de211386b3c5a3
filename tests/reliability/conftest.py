"""The reliability suite's fixtures: each module a control plane of its own (its items restart
the apiserver, stop etcd, kill operators), and the harness that drives it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from suanli.localcluster import LocalCluster
from tests.integration.conftest import private_cluster, pytest_collection_modifyitems
from tests.reliability.harness import Harness

__all__ = ["pytest_collection_modifyitems"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with private_cluster(tmp_path_factory, "reliability") as local:
        yield local


@pytest.fixture(scope="module")
def harness(cluster: LocalCluster) -> Iterator[Harness]:
    harness = Harness(cluster)
    try:
        yield harness
    finally:
        for name in list(cluster.read_state()["processes"]):
            if name.startswith("operator"):
                cluster.stop_process(name)
