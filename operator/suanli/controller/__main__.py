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
from suanli.api.manifests import WEBHOOK_PORT
from suanli.controller import admission, handlers  # noqa: F401  (registers the Kopf handlers)
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
    parser.add_argument(
        "--gang-start-limit",
        type=int,
        default=3,
        help="gang-start timeouts after which a job fails (GangStartLimitExceeded); counted "
        "apart from restartLimit, since a gang that cannot start is the centre's fault",
    )
    parser.add_argument(
        "--not-ready-grace",
        type=float,
        default=300.0,
        help="seconds a node may be NotReady before the gangs on it are restarted elsewhere "
        "(cordoned or NoSchedule-tainted nodes only stop new placements)",
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
    parser.add_argument(
        "--webhook",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="serve the validating webhook over TLS (every replica; default off)",
    )
    parser.add_argument("--webhook-port", type=int, default=WEBHOOK_PORT)
    parser.add_argument(
        "--webhook-host",
        action="append",
        default=[],
        help="a name or IP the apiserver uses for the webhook (URL mode), added to the "
        "serving certificate; repeatable",
    )
    hub = parser.add_argument_group("compute-network hub (docs/network.md)")
    hub.add_argument(
        "--hub",
        action="store_true",
        help="run as the hub of a compute network: dispatch TrainingJobs to the member "
        "centres named by ComputeCentres instead of scheduling them here",
    )
    hub.add_argument("--hub-name", default="hub", help="label value marking this hub's copies")
    hub.add_argument("--hub-interval", type=float, default=1.0, help="seconds between cycles")
    hub.add_argument(
        "--centre-lost-after",
        type=float,
        default=30.0,
        help="seconds without an answer after which a centre is Unreachable and its jobs marked",
    )
    hub.add_argument(
        "--redispatch-after",
        type=float,
        default=300.0,
        help="seconds after a centre's last answer before its jobs may be dispatched "
        "elsewhere, and then only when the centre is out of service or the copy is seen gone",
    )
    hub.add_argument(
        "--dispatch-timeout",
        type=float,
        default=30.0,
        help="seconds a copy may stay queued in a member before it is withdrawn",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.hub:
        from suanli.controller import hub as network_hub

        return network_hub.main(
            network_hub.HubSettings(
                name=args.hub_name,
                interval=args.hub_interval,
                lost_after=args.centre_lost_after,
                redispatch_after=args.redispatch_after,
                dispatch_timeout=args.dispatch_timeout,
            ),
            args.bind_address,
            args.health_port,
            args.metrics_port,
            __version__,
            (args.lease_namespace, args.lease_seconds) if args.leader_election else None,
        )
    metrics = Metrics(__version__)
    identity = f"{socket.gethostname()}-{os.getpid()}"
    memo = kopf.Memo(
        settings=Settings(
            gang_start_timeout=args.gang_start_timeout,
            gang_start_limit=args.gang_start_limit,
            requeue_backoff=args.requeue_backoff,
            not_ready_grace=args.not_ready_grace,
            max_overtakes=args.max_overtakes,
        ),
        metrics=metrics,
        identity=identity,
        lease={"namespace": args.lease_namespace, "seconds": args.lease_seconds}
        if args.leader_election
        else None,
    )
    if args.webhook:
        memo["webhook_options"] = admission.WebhookOptions(
            port=args.webhook_port,
            bind=args.bind_address,
            hosts=tuple(args.webhook_host),
            namespace=args.lease_namespace,
        )
    # Kopf logs every handler run at INFO; our handlers only feed the cache.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    start_http_server(args.metrics_port, addr=args.bind_address, registry=metrics.registry)
    kopf.run(
        memo=memo,
        clusterwide=True,
        standalone=args.standalone,
        priority=args.priority,
        liveness_endpoint=f"http://{args.bind_address}:{args.health_port}/healthz",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
