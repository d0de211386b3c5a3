"""The compute network on loopback: three member centres, each a real control plane with its
kwok nodes and its own operator, and a hub cluster running ``suanli-operator --hub``.

One module-scoped network; the tests run in order and build on each other (dispatch, fallback,
hub quota, deletion, metering, a centre going away). docs/network.md describes the rules.
"""

from __future__ import annotations

import base64
import contextlib
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from suanli.localcluster import LocalCluster
from suanli.localcluster.cli import start_operator
from suanli.localcluster.fakenodes import MODELS, node_manifest

from .conftest import OPERATOR_ARGS, Kubectl, job_manifest, option, private_cluster, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

NS = "team-a"
# name -> (node kinds, price per PFLOP-hour)
MEMBERS: dict[str, tuple[tuple[str, ...], float | None]] = {
    "guangzhou": (("nvidia-h100",), 1.0),
    "wuhan": (("ascend-910b",), 2.0),
    "nanjing": (("ascend-910b", "nvidia-h100"), 3.0),
}
HUB_ARGS = (
    "--hub",
    "--hub-interval=0.5",
    "--centre-lost-after=5",
    "--redispatch-after=10",
    "--dispatch-timeout=20",
)
LATENCIES: list[float] = []


def embedded_kubeconfig(cluster: LocalCluster) -> str:
    """The member's admin kubeconfig with its certificates inline (a Secret holds no paths)."""
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    entry = config["clusters"][0]["cluster"]
    entry["certificate-authority-data"] = base64.b64encode(
        Path(entry.pop("certificate-authority")).read_bytes()
    ).decode()
    user = config["users"][0]["user"]
    for key in ("client-certificate", "client-key"):
        user[f"{key}-data"] = base64.b64encode(Path(user.pop(key)).read_bytes()).decode()
    return yaml.safe_dump(config)


def apply(kubectl: Kubectl, manifest: dict[str, Any]) -> None:
    code, output = kubectl.apply(manifest)
    assert code == 0, output


def tenant(kubectl: Kubectl, resources: dict[str, int]) -> None:
    apply(kubectl, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    apply(
        kubectl,
        {
            "apiVersion": "suanli.io/v1alpha1",
            "kind": "ComputeQuota",
            "metadata": {"name": NS},
            "spec": {
                "namespaces": [NS],
                "resources": [
                    {"acceleratorClass": c, "nominal": n} for c, n in sorted(resources.items())
                ],
            },
        },
    )


class Network:
    def __init__(self, hub: LocalCluster, members: dict[str, LocalCluster]) -> None:
        self.hub = Kubectl(hub)
        self.hub_cluster = hub
        self.members = {name: Kubectl(c) for name, c in members.items()}
        self.clusters = members

    def hub_job(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.hub.get("trainingjob", name, "-n", NS).get("status") or {}
        return status

    def member_jobs(self, centre: str) -> list[str]:
        items = self.members[centre].get("trainingjobs", "-n", NS)["items"]
        return [j["metadata"]["name"] for j in items if not j["metadata"].get("deletionTimestamp")]


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with contextlib.ExitStack() as stack:
        members: dict[str, LocalCluster] = {}
        for name, (kinds, _) in MEMBERS.items():
            nodes = [
                node_manifest(f"{name}-{kind}-{i}", MODELS[kind], "rack-1")
                for i, kind in enumerate(kinds)
            ]
            member = stack.enter_context(private_cluster(tmp_path_factory, name, nodes=False))
            member.apply_objects(nodes)
            tenant(Kubectl(member), {"ascend-910b": 16, "nvidia-h100": 16})
            start_operator(member, OPERATOR_ARGS, as_service_account=True)
            stack.callback(member.stop_process, "operator")
            members[name] = member
        hub = stack.enter_context(private_cluster(tmp_path_factory, "hub", nodes=False))
        hub_kubectl = Kubectl(hub)
        # the tenant's network-wide share: 16 Ascend, 8 H100
        tenant(hub_kubectl, {"ascend-910b": 16, "nvidia-h100": 8})
        for name, member in members.items():
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"centre-{name}", "namespace": "default"},
                "stringData": {"kubeconfig": embedded_kubeconfig(member)},
            }
            apply(hub_kubectl, secret)
            apply(
                hub_kubectl,
                {
                    "apiVersion": "suanli.io/v1alpha1",
                    "kind": "ComputeCentre",
                    "metadata": {"name": name},
                    "spec": {
                        "region": name,
                        "kubeconfigSecretRef": {"name": f"centre-{name}", "namespace": "default"},
                        "labels": {"vendors": ",".join(MEMBERS[name][0])},
                        "pricePerPFLOPHour": MEMBERS[name][1],
                    },
                },
            )
        start_operator(hub, HUB_ARGS, name="hub-operator")
        stack.callback(hub.stop_process, "hub-operator")
        net = Network(hub, members)

        def all_reachable() -> bool:
            centres = net.hub.get("computecentres")["items"]
            return len(centres) == 3 and all(
                (c.get("status") or {}).get("state") == "Reachable"
                and any(x.get("devices") for x in (c.get("status") or {}).get("classes") or [])
                for c in centres
            )

        wait_for("every centre Reachable with its devices", all_reachable, timeout=120)
        yield net
        if LATENCIES:
            print(
                f"\ndispatch latency (hub create -> member admitted, mirrored to the hub): "
                f"n={len(LATENCIES)} median {statistics.median(LATENCIES):.2f} s "
                f"max {max(LATENCIES):.2f} s"
            )


def submit(net: Network, name: str, cls: str, devices: int, duration: str = "600s") -> float:
    apply(net.hub, job_manifest(name, NS, [option(cls, devices)], duration=duration))
    return time.monotonic()


def wait_admitted(net: Network, name: str, created: float, timeout: float = 90) -> dict[str, Any]:
    status: dict[str, Any] = wait_for(
        f"hub job {name} admitted in a member",
        lambda: (s := net.hub_job(name)).get("phase") in ("Admitted", "Running") and s,
        timeout=timeout,
    )
    latency = time.monotonic() - created
    LATENCIES.append(latency)
    print(f"{name}: dispatched to {status.get('centre')}, admitted after {latency:.2f} s")
    return status


def test_centres_report_capacity(network: Network) -> None:
    wuhan = network.hub.get("computecentre", "wuhan")["status"]
    assert [c["acceleratorClass"] for c in wuhan["classes"]] == ["ascend-910b"]
    assert wuhan["classes"][0]["devices"] == 8
    assert wuhan["classes"][0]["capacityPFLOPS"] > 0
    assert {"namespace": NS, "acceleratorClass": "ascend-910b", "freeDevices": 16} in wuhan[
        "quotaRoom"
    ]
    columns = network.hub.run("get", "computecentres")
    assert "Reachable" in columns and "guangzhou" in columns


def test_an_ascend_only_job_goes_to_an_ascend_centre(network: Network) -> None:
    created = submit(network, "ascend-one", "ascend-910b", 8)
    status = wait_admitted(network, "ascend-one", created)
    # guangzhou is cheapest but has no Ascend; wuhan is cheaper than nanjing
    assert status["centre"] == "wuhan"
    assert status["chosenOption"]["acceleratorClass"] == "ascend-910b"
    assert status["quota"] == NS
    assert network.member_jobs("wuhan") == ["ascend-one"]
    assert network.member_jobs("nanjing") == [] and network.member_jobs("guangzhou") == []
    wait_for("the hub job Running", lambda: network.hub_job("ascend-one").get("phase") == "Running")
    table = network.hub.run("get", "tj", "-n", NS)
    assert "CENTRE" in table and "wuhan" in table


def test_an_nvidia_job_goes_to_the_cheapest_centre_with_h100(network: Network) -> None:
    created = submit(network, "h100-one", "nvidia-h100", 8)
    assert wait_admitted(network, "h100-one", created)["centre"] == "guangzhou"


def test_a_job_falls_back_when_the_first_centre_is_full(network: Network) -> None:
    created = submit(network, "ascend-two", "ascend-910b", 8)
    status = wait_admitted(network, "ascend-two", created)
    assert status["centre"] == "nanjing"  # wuhan's 8 chips are taken
    assert network.member_jobs("wuhan") == ["ascend-one"]


def test_the_hub_quota_is_enforced_at_the_hub(network: Network) -> None:
    submit(network, "ascend-three", "ascend-910b", 8)
    status = wait_for(
        "ascend-three held at the hub",
        lambda: (s := network.hub_job("ascend-three")).get("reason") == "QuotaExceeded" and s,
        timeout=30,
    )
    assert "hub quota team-a has 0 of 16 free" in status["message"]
    assert status.get("centre") is None
    for centre in MEMBERS:
        assert "ascend-three" not in network.member_jobs(centre)
    network.hub.run("delete", "trainingjob", "ascend-three", "-n", NS)


def test_deleting_the_hub_job_removes_its_copy(network: Network) -> None:
    network.hub.run("delete", "trainingjob", "ascend-one", "-n", NS)
    wait_for("the copy in wuhan gone", lambda: network.member_jobs("wuhan") == [], timeout=60)
    wait_for(
        "its pods gone from wuhan",
        lambda: not network.members["wuhan"].get("pods", "-n", NS)["items"],
        timeout=60,
    )


def test_hub_metering_is_the_sum_of_the_members(network: Network) -> None:
    def members_total() -> dict[str, tuple[float, float]]:
        total: dict[str, tuple[float, float]] = {}
        for kubectl in network.members.values():
            quota = kubectl.get("computequota", NS)
            for entry in (quota.get("status") or {}).get("metering") or []:
                d, p = total.get(entry["acceleratorClass"], (0.0, 0.0))
                total[entry["acceleratorClass"]] = (
                    d + entry["deviceSeconds"],
                    p + entry["pflopSeconds"],
                )
        return total

    def hub_total() -> dict[str, tuple[float, float]]:
        quota = network.hub.get("computequota", NS)
        return {
            e["acceleratorClass"]: (e["deviceSeconds"], e["pflopSeconds"])
            for e in (quota.get("status") or {}).get("metering") or []
        }

    wait_for(
        "wuhan to bill the deleted job's pod",
        lambda: members_total().get("ascend-910b", (0, 0))[0] > 0,
        timeout=60,
    )

    def equal() -> tuple[Any, Any] | None:
        members, hub = members_total(), hub_total()
        return (members, hub) if members and hub == members else None

    members, hub = wait_for("hub metering equal to the members' sum", equal, timeout=30)
    print(f"metering: members {members}, hub {hub}")
    assert all(float(d).is_integer() for d, _ in hub.values())


def test_a_centre_going_away_mid_run(network: Network) -> None:
    assert network.hub_job("ascend-two")["centre"] == "nanjing"
    network.clusters["nanjing"].stop_process("operator")
    network.clusters["nanjing"].stop_process("kube-apiserver")
    status = wait_for(
        "ascend-two marked CentreUnreachable",
        lambda: (s := network.hub_job("ascend-two")).get("reason") == "CentreUnreachable" and s,
        timeout=30,
    )
    assert status["centre"] == "nanjing" and status["phase"] == "Running"
    nanjing = network.hub.get("computecentre", "nanjing")["status"]
    assert nanjing["state"] == "Unreachable"
    # unreachable for longer than --redispatch-after alone is no proof the copy stopped
    time.sleep(12)
    status = network.hub_job("ascend-two")
    assert status["centre"] == "nanjing" and status["reason"] == "CentreUnreachable"
    assert network.member_jobs("wuhan") == []
    # a platform engineer asserts the centre's work is stopped: dispatched again, to wuhan
    network.hub.run(
        "patch", "computecentre", "nanjing", "--type=merge", "-p", '{"spec":{"outOfService":true}}'
    )
    moved = wait_for(
        "ascend-two re-dispatched and admitted in wuhan",
        lambda: (
            (s := network.hub_job("ascend-two")).get("centre") == "wuhan"
            and s.get("phase") in ("Admitted", "Running")
            and s
        ),
        timeout=60,
    )
    assert moved["chosenOption"]["acceleratorClass"] == "ascend-910b"
    assert network.member_jobs("wuhan") == ["ascend-two"]
