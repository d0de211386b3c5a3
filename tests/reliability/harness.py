"""What every reliability item shares: tenants, batched job submission, operators started and
killed by name, the end-of-run settle (every job done, deleted, every pod billed and gone) and
the figure each item prints and leaves in ``build/reliability/<item>.json`` for
``tests/reliability/report.py`` (``make chaos`` writes them into docs/reliability.md).

``SUANLI_CHAOS=long`` selects the long versions; anything else the bounded ones ``make test`` runs.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from suanli.localcluster import LocalCluster
from suanli.localcluster.cli import start_operator
from suanli.localcluster.cluster import ClusterError
from tests.integration.conftest import REPO, job_manifest, wait_for
from tests.reliability.watcher import InvariantWatcher

FIGURES_DIR = REPO / "build" / "reliability"


def long_run() -> bool:
    return os.environ.get("SUANLI_CHAOS", "") == "long"


def record_figure(figure: dict[str, Any]) -> None:
    """Print the item's figure and keep it for the report."""
    figure = {**figure, "version": "long" if long_run() else "bounded", "at": time.time()}
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    (FIGURES_DIR / f"{figure['item']}-{figure['version']}.json").write_text(
        json.dumps(figure, indent=2, sort_keys=True)
    )
    print(f"\nFIGURE {json.dumps(figure, sort_keys=True)}")


class Harness:
    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.namespaces: set[str] = set()

    # --- tenants and jobs ---------------------------------------------------------------------
    def tenant(self, name: str, resources: list[dict[str, Any]], **spec: Any) -> str:
        self.apply_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}])
        self.cluster.wait_for_default_service_account(name)
        self.apply_all(
            [
                {
                    "apiVersion": "suanli.io/v1alpha1",
                    "kind": "ComputeQuota",
                    "metadata": {"name": name},
                    "spec": {"namespaces": [name], "resources": resources, **spec},
                }
            ]
        )
        self.namespaces.add(name)
        return name

    def apply_all(self, objects: Sequence[dict[str, Any]], attempts: int = 30) -> None:
        """``kubectl create`` of many objects at once, retried while the apiserver is away;
        an object that already exists (an earlier try got through) is fine."""
        text = yaml.safe_dump_all(list(objects), sort_keys=False)
        for _ in range(attempts):
            result = self.cluster.kubectl(
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                "-",
                input_text=text,
                check=False,
            )
            if result.returncode == 0:
                return
            time.sleep(2)
        raise ClusterError(f"could not apply {len(objects)} objects: {result.stderr[-2000:]}")

    def job(
        self,
        name: str,
        namespace: str,
        klass: str,
        devices: int,
        replicas: int = 1,
        seconds: float = 3,
        exit_code: int | None = None,
        **spec: Any,
    ) -> dict[str, Any]:
        option = [{"acceleratorClass": klass, "devicesPerReplica": devices}]
        return job_manifest(
            name, namespace, option, replicas, f"{seconds:g}s", exit_code=exit_code, **spec
        )

    def jobs(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(
            self.cluster.kubectl("get", "trainingjobs", "-A", "-o", "json").stdout
        )["items"]
        return [j for j in items if j["metadata"]["namespace"] in self.namespaces]

    # --- operators ----------------------------------------------------------------------------
    def start(
        self,
        name: str,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        server: str | None = None,
    ) -> bool:
        """Start an operator; False if it died before it was healthy (an armed crash point)."""
        try:
            start_operator(
                self.cluster,
                args,
                name=name,
                as_service_account=True,
                server=server,
                extra_env=env,
            )
        except ClusterError:
            if self.alive(name):
                raise
            self.cluster.stop_process(name)
            return False
        return True

    def alive(self, name: str) -> bool:
        child = self.cluster._children.get(name)
        return child is not None and child.poll() is None

    def pid(self, name: str) -> int:
        return int(self.cluster.read_state()["processes"][name]["pid"])

    def signal(self, name: str, signum: signal.Signals) -> None:
        os.kill(self.pid(name), signum)

    def identity(self, name: str) -> str:
        """The operator's identity, as its writes' userAgent carries it."""
        import socket

        return f"{socket.gethostname()}-{self.pid(name)}"

    def log_tail(self, name: str, size: int = 3000) -> str:
        return (self.cluster.logs_dir / f"{name}.log").read_text(errors="replace")[-size:]

    # --- the end ------------------------------------------------------------------------------
    def wait_settled(self, timeout: float, finished_only: Iterable[str] = ()) -> None:
        """Until every job is finished, or Queued with a reason (a job that cannot run)."""
        must_finish = set(finished_only)

        def settled() -> bool:
            for job in self.jobs():
                status = job.get("status") or {}
                phase = status.get("phase")
                if phase in ("Succeeded", "Failed"):
                    continue
                if (
                    phase == "Queued"
                    and status.get("reason")
                    and job["metadata"]["name"] not in must_finish
                ):
                    continue
                return False
            return True

        wait_for("every job to settle", settled, timeout=timeout, interval=2)

    def delete_all_and_drain(self, timeout: float | None = None) -> None:
        """Delete every job; the garbage collector deletes their pods, suanli bills and
        releases them; wait until no pod of the tenants is left."""
        for namespace in sorted(self.namespaces):
            self.cluster.kubectl(
                "delete", "trainingjobs", "--all", "-n", namespace, "--wait=false", check=False
            )

        def drained() -> bool:
            pods = json.loads(self.cluster.kubectl("get", "pods", "-A", "-o", "json").stdout)
            return not [p for p in pods["items"] if p["metadata"]["namespace"] in self.namespaces]

        bound = timeout if timeout is not None else (1200 if long_run() else 180)
        wait_for("every pod billed and gone", drained, timeout=bound, interval=2)

    def finish(self, watcher: InvariantWatcher, bills: int) -> None:
        """The end-of-run checks: final states, then (after the drain) metering exactly."""
        watcher.check_final_states()
        self.delete_all_and_drain()
        time.sleep(2 * watcher.interval + 1)  # the watch has seen the last DELETED events
        watcher.check_metering_exact(bills)


def new_watcher(
    cluster: LocalCluster, harness: Harness, gang_start_timeout: float
) -> InvariantWatcher:
    return InvariantWatcher(
        Path(cluster.kubeconfig), gang_start_timeout, namespaces=harness.namespaces
    )
