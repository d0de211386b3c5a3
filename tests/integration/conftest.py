"""Fixtures that run a real control plane (etcd, kube-apiserver, kube-controller-manager, kwok)
on loopback for the whole test session, and the operator as a real subprocess against it.

Nothing here is mocked: if the binaries cannot be built or started, the session errors out.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from suanli.localcluster import LocalCluster
from suanli.localcluster.cli import install_api, start_operator
from suanli.localcluster.cluster import TransientAPIError


@contextlib.contextmanager
def private_cluster(
    tmp_path_factory: pytest.TempPathFactory, name: str, nodes: bool = True, api: bool = True
) -> Iterator[LocalCluster]:
    """A control plane of its own (CRDs and catalogue installed), stopped afterwards."""
    local = LocalCluster(tmp_path_factory.mktemp(name))
    try:
        local.up(nodes=nodes)
        if api:
            install_api(local)
        yield local
    finally:
        local.down()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The shared control plane; a module that needs its own overrides this fixture."""
    with private_cluster(tmp_path_factory, "control-plane") as local:
        yield local


OPERATOR_ARGS = ("--standalone", "--gang-start-timeout=30", "--requeue-backoff=1")


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, request: pytest.FixtureRequest) -> Iterator[dict[str, int]]:
    """The operator as a real process, authenticated as the chart's ServiceAccount with the
    chart's RBAC; a module may set OPERATOR_ARGS to change its flags."""
    ports = start_operator(
        cluster,
        getattr(request.module, "OPERATOR_ARGS", OPERATOR_ARGS),
        as_service_account=True,
    )
    try:
        yield ports
    finally:
        cluster.stop_process("operator")


INTEGRATION_TIMEOUT = 600
"""Seconds an integration test may take when nothing else bounds it (pytest-timeout)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every integration test runs under a pytest-timeout bound: pyproject's ``timeout``, a
    ``--timeout`` option, its own ``@pytest.mark.timeout``, or else INTEGRATION_TIMEOUT. A hung
    call then fails that one test instead of the whole run."""
    if float(config.getini("timeout") or 0) > 0 or config.getoption("timeout") is not None:
        return
    for item in items:
        if item.get_closest_marker("integration") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(INTEGRATION_TIMEOUT))


OPERATOR_LOG_LINES = 40


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed integration test's report carries the end of the operator's log (its cycles,
    warnings and errors up to the failure): CI keeps no cluster directory to read it from."""
    outcome: Any = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    cluster = getattr(item, "funcargs", {}).get("cluster")
    if isinstance(cluster, LocalCluster):
        attach_log_tail(report, cluster.logs_dir / "operator.log")


def attach_log_tail(report: pytest.TestReport, path: Path) -> None:
    """Add the last OPERATOR_LOG_LINES lines of a log to a test's report, if the log exists."""
    if path.exists():
        lines = path.read_text(errors="replace").splitlines()[-OPERATOR_LOG_LINES:]
        report.sections.append((f"{path.name}, last {len(lines)} lines", "\n".join(lines)))


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


@pytest.fixture(scope="module")
def kubectl(cluster: LocalCluster) -> Kubectl:
    return Kubectl(cluster)


def wait_for(
    what: str, probe: Callable[[], Any], timeout: float = 60.0, interval: float = 0.5
) -> Any:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` otherwise.

    A probe that raises ``TransientAPIError`` (the apiserver gave no answer) is polled again;
    any other exception, an ``AssertionError`` above all, propagates at once: a failed check
    is never retried into a pass.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except TransientAPIError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last seen: {last!r})")


REPO = Path(__file__).resolve().parents[2]


class Tenants:
    """Creates tenant namespaces with their ComputeQuota; removes them (and their jobs) after."""

    def __init__(self, kubectl: Kubectl) -> None:
        self.kubectl = kubectl
        self.created: list[str] = []

    def add(self, name: str, resources: list[dict[str, Any]], **spec: Any) -> str:
        code, output = self.kubectl.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )
        assert code == 0, output
        self.kubectl.cluster.wait_for_default_service_account(name)
        quota = {
            "apiVersion": "suanli.io/v1alpha1",
            "kind": "ComputeQuota",
            "metadata": {"name": name},
            "spec": {"namespaces": [name], "resources": resources, **spec},
        }
        code, output = self.kubectl.apply(quota)
        assert code == 0, output
        self.created.append(name)
        return name

    def cleanup(self) -> None:
        for name in self.created:
            self.kubectl.cluster.kubectl(
                "delete",
                "trainingjobs",
                "--all",
                "-n",
                name,
                "--wait=true",
                "--timeout=60s",
                check=False,
            )
            self.kubectl.cluster.kubectl(
                "delete", "computequota", name, "--ignore-not-found", check=False
            )
            self.kubectl.cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
        wait_for(
            "the tenants' pods to be gone",
            lambda: (
                not [
                    p
                    for p in self.kubectl.get("pods", "-A")["items"]
                    if p["metadata"]["namespace"] in self.created
                ]
            ),
            timeout=60,
        )


@pytest.fixture
def tenants(kubectl: Kubectl, operator: dict[str, int]) -> Iterator[Tenants]:
    registry = Tenants(kubectl)
    try:
        yield registry
    finally:
        registry.cleanup()


def job_manifest(
    name: str,
    namespace: str,
    options: list[dict[str, Any]],
    replicas: int = 1,
    duration: str | None = None,
    exit_code: int | None = None,
    **spec: Any,
) -> dict[str, Any]:
    annotations = {}
    if duration is not None:
        annotations["suanli.io/fake-duration"] = duration
    if exit_code is not None:
        annotations["suanli.io/fake-exit-code"] = str(exit_code)
    return {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "accelerators": options,
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {
                    "containers": [
                        {
                            "name": "trainer",
                            "image": "example.invalid/train:1",
                            "resources": {"requests": {"cpu": "8", "memory": "64Gi"}},
                        }
                    ]
                },
            },
            **spec,
        },
    }


def job_status(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    status: dict[str, Any] = kubectl.get("trainingjob", name, "-n", namespace).get("status") or {}
    return status


def wait_for_phase(
    kubectl: Kubectl, namespace: str, name: str, phase: str, timeout: float = 60
) -> dict[str, Any]:
    seen: list[dict[str, Any]] = [{}]

    def probe() -> dict[str, Any] | None:
        seen[0] = job_status(kubectl, namespace, name)
        return seen[0] if seen[0].get("phase") == phase else None

    try:
        result: dict[str, Any] = wait_for(f"{namespace}/{name} to be {phase}", probe, timeout)
    except pytest.fail.Exception:
        pods = kubectl.get("pods", "-n", namespace, "-l", f"suanli.io/job-name={name}")["items"]
        states = {p["metadata"]["name"]: p.get("status", {}).get("phase") for p in pods}
        pytest.fail(f"{namespace}/{name} never {phase}: last status {seen[0]!r}, pods {states!r}")
    return result


def option(cls: str, devices: int, **extra: Any) -> dict[str, Any]:
    """One accelerator option of a TrainingJob."""
    return {"acceleratorClass": cls, "devicesPerReplica": devices, **extra}


def live_pods(kubectl: Kubectl, namespace: str, job: str) -> list[dict[str, Any]]:
    """The job's pods that are not being deleted."""
    items: list[dict[str, Any]] = kubectl.get(
        "pods", "-n", namespace, "-l", f"suanli.io/job-name={job}"
    )["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]
