"""``suanli-dev`` / ``python -m suanli.localcluster``: bring the local compute centre up or down.

``up`` goes from nothing to a working centre: control plane, fake Ascend/NVIDIA nodes, CRDs, the
default accelerator catalogue, example tenants, the operator, Prometheus and example jobs, then
shows them with ``kubectl get``. Running it again while the centre runs says so and changes nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from suanli.localcluster.cluster import (
    DEFAULT_CACHE,
    REPO_ROOT,
    ClusterError,
    LocalCluster,
    free_port,
    log,
)

DEV_DIR = DEFAULT_CACHE / "dev"


def _operator_argv(metrics_port: int, health_port: int, extra: Sequence[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "suanli.controller",
        f"--metrics-port={metrics_port}",
        f"--health-port={health_port}",
        "--bind-address=127.0.0.1",
        *extra,
    ]


OPERATOR_MANIFESTS = ("namespace", "serviceaccount", "rbac")


def service_account_kubeconfig(cluster: LocalCluster) -> Path:
    """A kubeconfig holding a TokenRequest token of the chart's ServiceAccount.

    Applies the namespace, ServiceAccount and RBAC of ``deploy/operator`` first, so the operator
    runs with exactly the permissions the chart grants, not as admin.
    """
    from suanli.api.manifests import DEFAULT_NAMESPACE, OPERATOR_NAME

    operator_dir = REPO_ROOT / "deploy" / "operator"
    cluster.apply_paths(*(operator_dir / f"{stem}.yaml" for stem in OPERATOR_MANIFESTS))
    cluster.wait_for_default_service_account(DEFAULT_NAMESPACE)
    token = cluster.kubectl(
        "create", "token", OPERATOR_NAME, "-n", DEFAULT_NAMESPACE, "--duration=24h"
    ).stdout.strip()
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": OPERATOR_NAME, "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = OPERATOR_NAME
    path = cluster.state_dir / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def start_operator(
    cluster: LocalCluster,
    extra_args: Sequence[str] = (),
    name: str = "operator",
    metrics_port: int | None = None,
    as_service_account: bool = False,
    server: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> dict[str, int]:
    """Start the operator as a real process against the cluster; wait until it is healthy.

    ``as_service_account``: authenticate as the chart's ServiceAccount (TokenRequest token) with
    the chart's RBAC, its Lease in the chart's namespace, instead of as admin.
    ``server``: reach the apiserver at this URL instead (a fault proxy in front of it);
    ``extra_env``: more environment, such as ``SUANLI_CRASH_AT`` (the reliability suite).
    """
    ports = {"metrics": metrics_port or free_port(), "health": free_port()}
    env = {"KUBECONFIG": str(cluster.kubeconfig), "PYTHONUNBUFFERED": "1"}
    if as_service_account:
        from suanli.api.manifests import DEFAULT_NAMESPACE

        env.update(
            KUBECONFIG=str(service_account_kubeconfig(cluster)), POD_NAMESPACE=DEFAULT_NAMESPACE
        )
    if server is not None:
        config = yaml.safe_load(Path(env["KUBECONFIG"]).read_text())
        config["clusters"][0]["cluster"]["server"] = server
        path = cluster.state_dir / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        env["KUBECONFIG"] = str(path)
    env.update(extra_env or {})
    cluster.start_process(
        name,
        _operator_argv(ports["metrics"], ports["health"], extra_args),
        env=env,
        cwd=REPO_ROOT,
    )
    state = cluster.read_state()
    state["ports"].update(
        {"operator_metrics": ports["metrics"], "operator_health": ports["health"]}
    )
    cluster._write_state(state)
    cluster._wait_http(f"http://127.0.0.1:{ports['health']}/healthz", name, timeout=60)
    return ports


def start_prometheus(cluster: LocalCluster, metrics_port: int) -> int:
    prometheus = cluster.tools.prometheus
    if prometheus is None:
        raise ClusterError("prometheus not found: run hack/install-prometheus.sh (Debian package)")
    port = free_port()
    config = cluster.state_dir / "prometheus.yml"
    rules = REPO_ROOT / "deploy" / "monitoring" / "suanli-rules.yaml"
    rule_files = f"rule_files: ['{rules}']\n" if rules.exists() else ""
    config.write_text(
        "global: {scrape_interval: 5s, evaluation_interval: 5s}\n"
        f"{rule_files}"
        "scrape_configs:\n"
        "- job_name: suanli-operator\n"
        f"  static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    cluster.start_process(
        "prometheus",
        [
            str(prometheus),
            f"--config.file={config}",
            f"--storage.tsdb.path={cluster.state_dir / 'prometheus'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
    )
    cluster._wait_http(f"http://127.0.0.1:{port}/-/ready", "prometheus", timeout=60)
    state = cluster.read_state()
    state["ports"]["prometheus"] = port
    cluster._write_state(state)
    return port


def install_api(cluster: LocalCluster) -> None:
    """CRDs, then the default accelerator catalogue."""
    crds = sorted((REPO_ROOT / "crds").glob("*.yaml"))
    if not crds:
        raise ClusterError(f"no CRDs in {REPO_ROOT / 'crds'}: run `make generate`")
    cluster.apply_paths(*crds)
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *[f"-f={p}" for p in crds]
    )
    catalogue = REPO_ROOT / "deploy" / "catalogue"
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(catalogue))


def show(cluster: LocalCluster) -> None:
    for args in (
        (
            "get",
            "nodes",
            "-L",
            "topology.suanli.io/rack",
            "-L",
            "node.kubernetes.io/npu.chip.name",
            "-L",
            "nvidia.com/gpu.product",
        ),
        ("get", "acceleratorclasses"),
        ("get", "computequotas"),
        ("get", "trainingjobs", "-A"),
        ("get", "pods", "-A", "-o", "wide"),
    ):
        print(f"\n$ kubectl {' '.join(args)}")
        result = cluster.kubectl(*args, check=False)
        print(result.stdout.rstrip() or result.stderr.rstrip())


def up(args: argparse.Namespace) -> int:
    cluster = LocalCluster(args.dir)
    with cluster.lock():
        if cluster.is_running():
            print(f"The local centre is already running (state in {args.dir}); nothing changed.")
            print(f"  export KUBECONFIG={cluster.kubeconfig}")
            print(f"  stop it with: {_stop_command(args.dir)}")
            return 0
        if args.dir.exists():
            cluster.down()  # leftovers of a crashed run: stop what is recorded, keep nothing else
            for leftover in ("etcd", "prometheus"):
                _remove_tree(args.dir / leftover)
        real_node = _want_real_node(args.real_node)
        if args.route_pods and not real_node:
            raise ClusterError("--route-pods needs the real node (--real-node=yes or auto)")
        try:
            cluster.up(
                scheduler=args.with_scheduler, real_node=real_node, route_pods=args.route_pods
            )
        except Exception:
            if real_node:  # never leave a half-made node's namespace, guards or cgroups behind
                cluster.down()
            raise
        install_api(cluster)
        if args.with_examples:
            cluster.apply_paths(REPO_ROOT / "examples" / "tenants")
        metrics_port = 0
        if args.with_operator:
            metrics_port = start_operator(cluster)["metrics"]
        prometheus_port = 0
        if args.with_prometheus and args.with_operator:
            prometheus_port = start_prometheus(cluster, metrics_port)
        if args.with_examples:
            cluster.apply_paths(REPO_ROOT / "examples" / "jobs")
            time.sleep(8)  # let the operator take a scheduling pass and kwok start the pods
        show(cluster)
        print("\nThe local centre is up.")
        print(f"  export KUBECONFIG={cluster.kubeconfig}")
        print(f"  kubectl: {cluster.tools.kubectl}")
        if prometheus_port:
            print(f"  Prometheus: http://127.0.0.1:{prometheus_port}")
        if metrics_port:
            print(f"  operator metrics: http://127.0.0.1:{metrics_port}/metrics")
        print(f"  logs: {cluster.logs_dir}/")
        print(f"  stop it with: {_stop_command(args.dir)}")
    return 0


def _stop_command(state_dir: Path) -> str:
    """``make dev-down`` stops the default centre; one in another directory needs its --dir."""
    if state_dir.resolve() == DEV_DIR.resolve():
        return "make dev-down"
    return f"python -m suanli.localcluster --dir {state_dir} down"


def _want_real_node(choice: str) -> bool:
    """``auto``: the real node where this machine allows it, else say why and run kwok only."""
    if choice == "no":
        return False
    from suanli.localcluster.realnode import unavailable_reason

    reason = unavailable_reason()
    if reason is None:
        return True
    if choice == "yes":
        raise ClusterError(f"--real-node=yes, but the real node cannot run here: {reason}")
    log(f"no real node (kwok nodes only): {reason}")
    return False


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def down(args: argparse.Namespace) -> int:
    cluster = LocalCluster(args.dir)
    with cluster.lock():
        running = cluster.running_processes()
        if not running:
            print(f"Nothing running in {args.dir}.")
        cluster.down()
        for name in running:
            print(f"stopped {name}")
    return 0


def status(args: argparse.Namespace) -> int:
    cluster = LocalCluster(args.dir)
    running = cluster.running_processes()
    if not running:
        print(f"The local centre is not running (state dir {args.dir}).")
        return 1
    for name, info in running.items():
        print(f"{name:26} pid {info['pid']:>7}  log {info['log']}")
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="suanli-dev", description=__doc__)
    parser.add_argument("--dir", type=Path, default=DEV_DIR, help="state directory")
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="start the local centre")
    up_parser.add_argument("--with-operator", action="store_true")
    up_parser.add_argument("--with-examples", action="store_true")
    up_parser.add_argument("--with-prometheus", action="store_true")
    up_parser.add_argument("--with-scheduler", action="store_true", help="also kube-scheduler")
    up_parser.add_argument(
        "--real-node",
        choices=("auto", "yes", "no"),
        default="no",
        help="a kubelet node in its own network namespace (auto: where root and cgroups allow)",
    )
    up_parser.add_argument(
        "--route-pods",
        action="store_true",
        help="route the real node's pod subnet from this machine and call webhooks at their "
        "endpoints, for the operator installed in a pod by its chart (one centre at a time)",
    )
    commands.add_parser("down", help="stop what `up` started")
    commands.add_parser("status", help="what is running")
    args = parser.parse_args(argv)
    try:
        handler = {"up": up, "down": down, "status": status}[args.command]
        return handler(args)
    except ClusterError as exc:
        log(f"error: {exc}")
        return 1
