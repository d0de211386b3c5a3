"""``python -m suanli.deviceplugin``: the fake device plugin on a real node's kubelet."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from suanli.deviceplugin.chips import VENDORS
from suanli.deviceplugin.server import DEVICE_PLUGIN_DIR, FakeDevicePlugin, run_forever


def _api(kubeconfig: Path) -> Any:
    from kubernetes import client, config

    config.load_kube_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    return client.CoreV1Api()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suanli.deviceplugin", description=__doc__)
    parser.add_argument("--vendor", choices=sorted(VENDORS), default="huawei")
    parser.add_argument("--count", type=int, default=8, help="devices to advertise (default 8)")
    parser.add_argument("--node-name", required=True, help="this node (whose pending pods to read)")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--dir", type=Path, default=DEVICE_PLUGIN_DIR, help="kubelet's socket dir")
    args = parser.parse_args(argv)
    if not 1 <= args.count <= 64:
        parser.error(f"--count must be between 1 and 64, got {args.count}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    api = _api(args.kubeconfig)

    def pending_pods() -> list[Mapping[str, Any]]:
        pods = api.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={args.node_name},status.phase=Pending"
        )
        return [api.api_client.sanitize_for_serialization(p) for p in pods.items]

    def annotate(pod: tuple[str, str], annotations: Mapping[str, str]) -> None:
        api.patch_namespaced_pod(pod[1], pod[0], {"metadata": {"annotations": dict(annotations)}})

    plugin = FakeDevicePlugin(VENDORS[args.vendor], args.count, pending_pods, annotate)
    signal.signal(signal.SIGTERM, lambda *_: plugin.stopped.set())
    run_forever(plugin, args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
