"""Control-plane faults for the reliability items: restart kube-apiserver, stop etcd, read the
operator's own view of its leadership, and read the apiserver's audit log."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from suanli.localcluster import LocalCluster
from suanli.localcluster.pki import ensure_pki

WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


def restart_apiserver(cluster: LocalCluster) -> float:
    """Stop kube-apiserver and start it again on the same port; the seconds it was away."""
    started = time.monotonic()
    cluster.stop_process("kube-apiserver")
    pki = ensure_pki(cluster.state_dir / "pki", {"admin": "system:masters"})
    cluster._start_apiserver(cluster.tools, pki, cluster.read_state()["ports"])
    return time.monotonic() - started


def stop_etcd(cluster: LocalCluster, seconds: float) -> float:
    """Stop etcd for ``seconds`` (the apiserver stays up and answers errors), then start it."""
    started = time.monotonic()
    cluster.stop_process("etcd")
    time.sleep(seconds)
    cluster._start_etcd(cluster.tools, cluster.read_state()["ports"])
    return time.monotonic() - started


def leader_gauge(port: int) -> float | None:
    """The replica's own ``suanli_scheduler_leader`` (None: it did not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith("suanli_scheduler_leader "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class Write:
    at: float
    identity: str
    verb: str
    resource: str
    name: str
    code: int


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def operator_writes(
    cluster: LocalCluster, since: float = 0.0, writes_only: bool = True
) -> list[Write]:
    """Every write (or, ``writes_only=False``, every request) a suanli operator made, from the
    apiserver's audit log (userAgent ``suanli-operator/<identity>``), in the order the
    apiserver received them."""
    writes = []
    paths = sorted(cluster.audit_log.parent.glob(cluster.audit_log.name + "*"))
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            try:
                event: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            agent = str(event.get("userAgent") or "")
            if not agent.startswith("suanli-operator/"):
                continue
            if writes_only and event.get("verb") not in WRITE_VERBS:
                continue
            at = _stamp(event["requestReceivedTimestamp"])
            if at < since:
                continue
            ref = event.get("objectRef") or {}
            writes.append(
                Write(
                    at=at,
                    identity=agent.split("/", 1)[1].split(" ", 1)[0],
                    verb=str(event["verb"]),
                    resource=str(ref.get("resource", "")),
                    name=f"{ref.get('namespace', '')}/{ref.get('name', '')}",
                    code=int((event.get("responseStatus") or {}).get("code") or 0),
                )
            )
    return sorted(writes, key=lambda w: w.at)
