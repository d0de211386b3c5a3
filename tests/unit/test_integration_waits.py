"""The integration suite's waiting rules, checked without a cluster.

``wait_for`` polls again when the apiserver gave no answer, and never when a check failed;
``LocalCluster.kubectl`` bounds every call and tells a transient error from a refusal. A fake
kubectl (a shell script) stands in for the binary so every branch can be made to happen.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from suanli.localcluster.cluster import ClusterError, LocalCluster, Tools, TransientAPIError
from tests.integration.conftest import wait_for


def test_a_probe_that_raises_a_transient_error_is_polled_again() -> None:
    calls: list[int] = []

    def probe() -> str | None:
        calls.append(1)
        if len(calls) < 3:
            raise TransientAPIError("kubectl get pods failed: connection refused")
        return "ready"

    assert wait_for("a flaky probe", probe, timeout=10, interval=0.01) == "ready"
    assert len(calls) == 3


def test_a_failed_assertion_is_never_retried() -> None:
    calls: list[int] = []

    def probe() -> bool:
        calls.append(1)
        raise AssertionError("phase is Failed")

    with pytest.raises(AssertionError, match="phase is Failed"):
        wait_for("a broken check", probe, timeout=10, interval=0.01)
    assert len(calls) == 1


def test_a_refusal_by_the_apiserver_is_not_retried() -> None:
    calls: list[int] = []

    def probe() -> bool:
        calls.append(1)
        raise ClusterError('kubectl get tj x failed: trainingjobs "x" not found')

    with pytest.raises(ClusterError, match="not found"):
        wait_for("a missing object", probe, timeout=10, interval=0.01)
    assert len(calls) == 1


def test_a_probe_that_stays_transient_times_out_naming_the_last_error() -> None:
    def probe() -> bool:
        raise TransientAPIError("kubectl get pods failed: i/o timeout")

    with pytest.raises(pytest.fail.Exception, match=r"waiting for the pods .*i/o timeout"):
        wait_for("the pods", probe, timeout=0.2, interval=0.01)


def fake_cluster(tmp_path: Path, script: str) -> LocalCluster:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IXUSR)
    missing = tmp_path / "missing"
    tools = Tools(missing, missing, missing, missing, kubectl, missing, missing, None)
    return LocalCluster(tmp_path, tools)


def test_a_hanging_kubectl_is_killed_and_reported_as_transient(tmp_path: Path) -> None:
    cluster = fake_cluster(tmp_path, "exec sleep 30\n")
    result = cluster.kubectl("get", "pods", check=False, timeout=0.5)
    assert result.returncode == 124
    assert "kubectl get pods timed out after 0.5 s" in result.stderr
    with pytest.raises(TransientAPIError, match="timed out"):
        cluster.kubectl("get", "pods", timeout=0.5)


def test_connection_errors_are_transient_and_refusals_are_not(tmp_path: Path) -> None:
    refused = fake_cluster(
        tmp_path,
        'echo "The connection to the server 127.0.0.1:6443 was refused - did you specify the '
        'right host or port? dial tcp: connect: connection refused" >&2; exit 1\n',
    )
    with pytest.raises(TransientAPIError, match="connection refused"):
        refused.kubectl("get", "pods")
    not_found = fake_cluster(
        tmp_path, "echo 'Error from server (NotFound): pods \"x\" not found' >&2; exit 1\n"
    )
    with pytest.raises(ClusterError, match="not found") as caught:
        not_found.kubectl("get", "pod", "x")
    assert not isinstance(caught.value, TransientAPIError)
    assert not_found.kubectl("get", "pod", "x", check=False).returncode == 1
