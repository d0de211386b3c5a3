"""``python -m suanli.controller``: run the operator.

Kopf serves liveness on ``--health-port`` (``/healthz``); Prometheus metrics are served on
``--metrics-port`` (``/metrics``). ``--standalone`` skips Kopf peering (tests, single replica).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys

import kopf
from prometheus_client import start_http_server

from suanli import __version__
from suanli.controller import handlers  # registers the Kopf handlers on import
from suanli.controller.loop import Settings
from suanli.metrics import Metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="suanli-operator", description=__doc__)
    parser.add_argument("--health-port", type=int, default=8080)
    parser.add_argument("--metrics-port", type=int, default=9090)
    parser.add_argument("--bind-address", default="0.0.0.0")
    parser.add_argument("--standalone", action="store_true", help="no peering (single replica)")
    parser.add_argument("--priority", type=int, default=0, help="peering priority")
    parser.add_argument(
        "--gang-start-timeout",
        type=float,
        default=300.0,
        help="seconds an admitted gang may take until all its pods run, else it is requeued",
    )
    parser.add_argument(
        "--requeue-backoff",
        type=float,
        default=10.0,
        help="seconds a requeued job waits before it is considered again",
    )
    parser.add_argument("--max-overtakes", type=int, default=8)
    parser.add_argument(
        "--leader-election",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="hold a Lease so only one replica schedules (default on)",
    )
    parser.add_argument("--lease-namespace", default=os.environ.get("POD_NAMESPACE", "default"))
    parser.add_argument("--lease-seconds", type=int, default=15)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handlers.SETTINGS = Settings(
        gang_start_timeout=args.gang_start_timeout,
        requeue_backoff=args.requeue_backoff,
        max_overtakes=args.max_overtakes,
    )
    handlers.METRICS = Metrics(__version__)
    if args.leader_election:
        identity = f"{socket.gethostname()}-{os.getpid()}"
        handlers.LEASE.update(
            namespace=args.lease_namespace, identity=identity, seconds=args.lease_seconds
        )
    # Kopf logs every handler run at INFO; our handlers only feed the cache.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    start_http_server(args.metrics_port, addr=args.bind_address, registry=handlers.METRICS.registry)
    kopf.run(
        clusterwide=True,
        standalone=args.standalone,
        priority=args.priority,
        liveness_endpoint=f"http://{args.bind_address}:{args.health_port}/healthz",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
