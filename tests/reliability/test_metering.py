"""Item 5, metering under faults: pods deleted every way a pod leaves — by the tenant
(``kubectl delete pod``), by the garbage collector after its job was deleted, by suanli's own
restart of a failed gang — while the operator is killed between billing and releasing
(``after-bill``, ``between-finalizer-releases``), kube-apiserver restarts and the fault proxy
resets the operator's connections. At the end every quota's device-seconds must equal, exactly,
what the pods' own start and finish times give; the figure reports the largest error (the same
check closes items 1–4, whose figures carry their own largest error).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator

import pytest

from suanli.localcluster.faultproxy import FaultProxy
from tests.reliability.faults import restart_apiserver
from tests.reliability.harness import Harness, long_run, new_watcher, record_figure

pytestmark = pytest.mark.integration

GANG_START_TIMEOUT = 30
ARGS = ("--standalone", f"--gang-start-timeout={GANG_START_TIMEOUT}", "--requeue-backoff=1")


@pytest.fixture
def proxy(harness: Harness) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(harness.cluster.api_port)
    fault_proxy.start()
    try:
        yield fault_proxy
    finally:
        fault_proxy.stop()


def delete_some_pods(harness: Harness, rng: random.Random) -> int:
    pods = json.loads(harness.cluster.kubectl("get", "pods", "-n", "mt-a", "-o", "json").stdout)
    running = [p for p in pods["items"] if (p.get("status") or {}).get("phase") == "Running"]
    chosen = rng.sample(running, min(2, len(running)))
    for pod in chosen:
        harness.cluster.kubectl(
            "delete", "pod", pod["metadata"]["name"], "-n", "mt-a", "--wait=false", check=False
        )
    return len(chosen)


def test_metering_is_exact_under_faults(harness: Harness, proxy: FaultProxy) -> None:
    harness.tenant(
        "mt-a",
        [
            {"acceleratorClass": "nvidia-h100", "nominal": 16},
            {"acceleratorClass": "ascend-910b", "nominal": 16},
        ],
    )
    rng = random.Random(5)
    rounds = 40 if long_run() else 6
    faults = {"crash": 0, "apiserver-restart": 0, "proxy-reset": 0, "pod-deletes": 0}
    server = f"https://127.0.0.1:{proxy.port}"
    with new_watcher(harness.cluster, harness, GANG_START_TIMEOUT) as watcher:
        for index in range(rounds):
            harness.apply_all(
                [
                    harness.job(f"long-{index}", "mt-a", "nvidia-h100", 4, replicas=2, seconds=20),
                    harness.job(f"npu-{index}", "mt-a", "ascend-910b", 8, seconds=3),
                    harness.job(
                        f"flaky-{index}", "mt-a", "nvidia-h100", 2, seconds=2, exit_code=3,
                        restartPolicy="OnFailure", restartLimit=1,
                    ),
                ]
            )  # fmt: skip
            point = ("after-bill", "between-finalizer-releases")[index % 2]
            env = {"SUANLI_CRASH_AT": point, "SUANLI_CRASH_AFTER": str(rng.randint(1, 3))}
            harness.start("operator", ARGS, env=env, server=server)
            deadline = time.monotonic() + 40
            while harness.alive("operator") and time.monotonic() < deadline:
                time.sleep(3)
                faults["pod-deletes"] += delete_some_pods(harness, rng)
                for job in harness.jobs():
                    if (job.get("status") or {}).get("phase") == "Succeeded":
                        harness.cluster.kubectl(
                            "delete", "trainingjob", job["metadata"]["name"], "-n", "mt-a",
                            "--wait=false", check=False,
                        )  # fmt: skip
            faults["crash"] += 0 if harness.alive("operator") else 1
            harness.cluster.stop_process("operator")
            if index % 3 == 1:
                restart_apiserver(harness.cluster)
                faults["apiserver-restart"] += 1
            if index % 3 == 2:
                assert harness.start("operator", ARGS, server=server)
                time.sleep(3)
                proxy.set_mode("reset")
                time.sleep(2)
                proxy.set_mode("pass")
                faults["proxy-reset"] += 1
                harness.cluster.stop_process("operator")
        assert harness.start("operator", ARGS, server=server)
        harness.wait_settled(timeout=240)
        harness.finish(watcher, bills=rounds * 20)
    figure = watcher.report(
        "metering", runs=rounds, faults_injected=sum(faults.values()), faults=faults
    )
    record_figure(figure)
    assert faults["crash"] > 0, "no crash point was reached"
    assert not watcher.violations, "\n".join(map(str, watcher.violations))
