"""The compute network on loopback: three member centres, each a real control plane with its
kwok nodes and its own operator, and a hub cluster running ``suanli-operator --hub``.

One module-scoped network; the tests run in order and build on each other (dispatch, fallback,
hub quota, deletion, metering, a centre going away). docs/network.md describes the rules.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from suanli.localcluster import LocalCluster
from suanli.localcluster.cli import start_operator
from suanli.localcluster.fakenodes import MODELS, node_manifest
from suanli.observability.promql import metric_names
from suanli.observability.queries import all_expressions

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
    "--dispatch-timeout=15",
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
        self.hub_ports: dict[str, int] = {}

    def hub_job(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.hub.get("trainingjob", name, "-n", NS).get("status") or {}
        return status

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """The hub's /metrics: sample name -> [(labels, value)]."""
        url = f"http://127.0.0.1:{self.hub_ports['metrics']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        found: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found.setdefault(sample.name, []).append((sample.labels, sample.value))
        return found

    def cli(self, *args: str) -> Any:
        """``kubectl suanli ARGS -o json`` against the hub's API server."""
        result = subprocess.run(
            [sys.executable, "-m", "suanli.cli", *args, "-o", "json"],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "KUBECONFIG": str(self.hub_cluster.kubeconfig)},
        )
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return json.loads(result.stdout)

    def hub_events(self, name: str) -> list[dict[str, Any]]:
        items = self.hub.get("events", "-n", NS, "--field-selector", f"involvedObject.name={name}")
        return list(items["items"])

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
        hub_ports = start_operator(hub, HUB_ARGS, name="hub-operator")
        stack.callback(hub.stop_process, "hub-operator")
        net = Network(hub, members)
        net.hub_ports = hub_ports

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


def test_the_copys_conditions_and_events_are_mirrored(network: Network) -> None:
    started = time.monotonic()

    def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
        return {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions") or []}

    copy = network.members["wuhan"].get("trainingjob", "ascend-one", "-n", NS)["status"]
    assert conditions(copy)["Running"][0] == "True"
    wait_for(
        "the copy's conditions on the hub job",
        lambda: (
            conditions(network.hub_job("ascend-one"))
            == conditions(
                network.members["wuhan"].get("trainingjob", "ascend-one", "-n", NS)["status"]
            )
        ),
        timeout=60,
    )
    member_reasons = {
        e["reason"]
        for e in network.members["wuhan"].get(
            "events", "-n", NS, "--field-selector", "involvedObject.name=ascend-one"
        )["items"]
    }
    assert "Admitted" in member_reasons

    def mirrored() -> list[dict[str, Any]]:
        return [e for e in network.hub_events("ascend-one") if e["reason"] in member_reasons]

    events = wait_for("the copy's Events on the hub job", mirrored, timeout=60)
    hub_uid = network.hub.get("trainingjob", "ascend-one", "-n", NS)["metadata"]["uid"]
    admitted = next(e for e in events if e["reason"] == "Admitted")
    assert admitted["message"].startswith("wuhan: ")
    assert admitted["involvedObject"]["uid"] == hub_uid
    assert admitted["source"]["component"] == "suanli-hub"
    time.sleep(1.5)  # three more hub cycles: each Event is posted once
    assert len(mirrored()) == len(events)

    # a copy its member refuses for what the hub does not check (PriorityClasses are the
    # members'): the member's reason, Valid=False and its Warning Event mirrored
    job = job_manifest(
        "no-priority",
        NS,
        [option("nvidia-h100", 1)],
        duration="600s",
        priorityClassName="no-such-priority",
    )
    apply(network.hub, job)
    refused = wait_for(
        "the member's UnknownPriorityClass verdict on the hub job",
        lambda: (s := network.hub_job("no-priority")).get("reason") == "UnknownPriorityClass" and s,
        timeout=60,
    )
    assert refused["centre"] == "guangzhou" and "no-such-priority" in refused["message"]
    assert conditions(refused)["Valid"] == ("False", "UnknownPriorityClass")
    warning = wait_for(
        "the Warning Event on the hub job",
        lambda: [e for e in network.hub_events("no-priority") if e["type"] == "Warning"],
        timeout=60,
    )
    assert warning[0]["reason"] == "UnknownPriorityClass"
    assert warning[0]["message"].startswith("guangzhou: ")
    network.hub.run("delete", "trainingjob", "no-priority", "-n", NS)
    wait_for("no-priority's copy gone", lambda: network.member_jobs("guangzhou") == [], timeout=30)
    print(f"conditions and events mirrored: checked in {time.monotonic() - started:.2f} s")


def test_an_nvidia_job_goes_to_the_cheapest_centre_with_h100(network: Network) -> None:
    created = submit(network, "h100-one", "nvidia-h100", 8)
    assert wait_admitted(network, "h100-one", created)["centre"] == "guangzhou"


def test_a_job_falls_back_when_the_first_centre_is_full(network: Network) -> None:
    created = submit(network, "ascend-two", "ascend-910b", 8)
    status = wait_admitted(network, "ascend-two", created)
    assert status["centre"] == "nanjing"  # wuhan's 8 chips are taken
    assert network.member_jobs("wuhan") == ["ascend-one"]


def test_the_hub_serves_metrics_of_the_network(network: Network) -> None:
    started = time.monotonic()

    def value(samples: list[tuple[dict[str, str], float]], **labels: str) -> float:
        [found] = [v for k, v in samples if all(k.get(n) == x for n, x in labels.items())]
        return found

    def settled() -> dict[str, list[tuple[dict[str, str], float]]] | None:
        found = network.metrics()
        free = found.get("suanli_hub_centre_free_devices", [])
        ok = value(free, centre="wuhan", **{"class": "ascend-910b"}) == 0
        return found if ok else None

    found = wait_for("the hub's metrics to show wuhan full", settled, timeout=60)
    up = found["suanli_hub_centre_up"]
    assert {(k["centre"], k["region"], v) for k, v in up} == {(name, name, 1.0) for name in MEMBERS}
    free = found["suanli_hub_centre_free_devices"]
    assert value(free, centre="guangzhou", **{"class": "nvidia-h100"}) == 0
    assert value(free, centre="nanjing", **{"class": "nvidia-h100"}) == 8
    assert (
        value(found["suanli_hub_centre_devices"], centre="wuhan", **{"class": "ascend-910b"}) == 8
    )
    assert (
        value(found["suanli_hub_centre_free_pflops"], centre="nanjing", **{"class": "nvidia-h100"})
        > 0
    )
    dispatched = {k["centre"]: v for k, v in found["suanli_hub_dispatches_total"]}
    # guangzhou also got "no-priority", which its member refused: dispatched, never admitted
    assert dispatched == {"guangzhou": 2.0, "wuhan": 1.0, "nanjing": 1.0}
    latency = {k["centre"]: v for k, v in found["suanli_hub_dispatch_latency_seconds_count"]}
    assert latency == {"guangzhou": 1.0, "wuhan": 1.0, "nanjing": 1.0}
    assert sum(v for _, v in found.get("suanli_hub_queue_jobs", [])) == 0
    print(f"hub /metrics checked in {time.monotonic() - started:.2f} s")


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
    started = time.monotonic()
    items = network.cli("centres")["items"]
    rows = {(i["centre"], i["class"]): i for i in items if i["kind"] == "CentreCapacity"}
    assert set(rows) == {
        ("guangzhou", "nvidia-h100"),
        ("wuhan", "ascend-910b"),
        ("nanjing", "ascend-910b"),
        ("nanjing", "nvidia-h100"),
    }
    wuhan = rows[("wuhan", "ascend-910b")]
    assert (wuhan["region"], wuhan["state"], wuhan["devices"], wuhan["free"]) == (
        "wuhan",
        "Reachable",
        8,
        0,
    )
    assert wuhan["price"] == 2.0 and wuhan["pflops"] > 0 and wuhan["lastContact"].endswith(" ago")
    assert rows[("nanjing", "nvidia-h100")]["free"] == 8
    assert rows[("nanjing", "nvidia-h100")]["freePFLOPS"] > 0
    queue = [i for i in items if i["kind"] == "HubQueueEntry"]
    assert [(q["name"], q["reason"], q["quota"]) for q in queue] == [
        ("ascend-three", "QuotaExceeded", NS)
    ]
    assert "hub quota team-a has 0 of 16 free" in queue[0]["message"]
    found = network.metrics()
    assert ({"quota": NS, "reason": "QuotaExceeded"}, 1.0) in found["suanli_hub_queue_jobs"]
    # every series the Compute network dashboard and the hub alert read is served
    for use in all_expressions():
        if use.scrape == "hub":
            for name in metric_names(use.source):
                assert name in found, f"{use.used_in}: {name} not on the hub's /metrics"
    print(f"kubectl suanli centres on the hub: {time.monotonic() - started:.2f} s")
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


def test_a_copy_left_queued_is_withdrawn_and_dispatched_to_the_next_centre(
    network: Network,
) -> None:
    started = time.monotonic()
    network.hub.run("delete", "trainingjob", "h100-one", "-n", NS)

    def guangzhou_free() -> bool:
        status = network.hub.get("computecentre", "guangzhou").get("status") or {}
        return any(c["freeDevices"] == 8 for c in status.get("classes") or [])

    wait_for("guangzhou's H100 free again at the hub", guangzhou_free, timeout=60)
    # guangzhou answers polls, but its operator does not run: nothing admits the copy there
    network.clusters["guangzhou"].stop_process("operator")
    created = submit(network, "h100-two", "nvidia-h100", 8)
    wait_for(
        "h100-two dispatched to guangzhou (the cheapest with H100 free)",
        lambda: network.hub_job("h100-two").get("centre") == "guangzhou",
        timeout=30,
    )
    assert network.member_jobs("guangzhou") == ["h100-two"]
    moved = wait_for(
        "h100-two withdrawn from guangzhou and admitted in nanjing",
        lambda: (
            (s := network.hub_job("h100-two")).get("centre") == "nanjing"
            and s.get("phase") in ("Admitted", "Running")
            and s
        ),
        timeout=60,
    )
    waited = time.monotonic() - created
    assert waited >= 15  # not before --dispatch-timeout
    assert moved["chosenOption"]["acceleratorClass"] == "nvidia-h100"
    assert network.member_jobs("guangzhou") == []
    assert network.member_jobs("nanjing") == ["ascend-two", "h100-two"]
    withdrawn = {k["centre"]: v for k, v in network.metrics()["suanli_hub_withdrawals_total"]}
    assert withdrawn["guangzhou"] == 1 and withdrawn["nanjing"] == 0
    print(
        f"h100-two: withdrawn from guangzhou, admitted in nanjing {waited:.2f} s after submission"
    )
    start_operator(network.clusters["guangzhou"], OPERATOR_ARGS, as_service_account=True)
    network.hub.run("delete", "trainingjob", "h100-two", "-n", NS)
    wait_for("h100-two's copy gone", lambda: network.member_jobs("nanjing") == ["ascend-two"])
    print(f"withdrawal test: {time.monotonic() - started:.2f} s")


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0].get("env") or []}


def test_a_centre_going_away_mid_run(network: Network) -> None:
    assert network.hub_job("ascend-two")["centre"] == "nanjing"
    # read while nanjing still answers: the first copy's checkpoint directory
    [first_pod] = network.members["nanjing"].get(
        "pods", "-n", NS, "-l", "suanli.io/job-name=ascend-two"
    )["items"]
    checkpoint = env_of(first_pod)["SUANLI_CHECKPOINT_DIR"]
    hub_uid = network.hub.get("trainingjob", "ascend-two", "-n", NS)["metadata"]["uid"]
    assert checkpoint == f"/checkpoints/{NS}/ascend-two-{hub_uid[:8]}"
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
    # the re-dispatched copy restarts from the same checkpoint directory (named by the hub
    # job), while its pods are owned by the copy in wuhan
    [pod] = wait_for(
        "ascend-two's pod in wuhan",
        lambda: network.members["wuhan"].get(
            "pods", "-n", NS, "-l", "suanli.io/job-name=ascend-two"
        )["items"],
        timeout=60,
    )
    assert env_of(pod)["SUANLI_CHECKPOINT_DIR"] == checkpoint
    copy_uid = network.members["wuhan"].get("trainingjob", "ascend-two", "-n", NS)["metadata"][
        "uid"
    ]
    assert pod["metadata"]["ownerReferences"][0]["uid"] == copy_uid != hub_uid


def test_an_invalid_job_is_refused_at_the_hub_until_it_is_fixed(network: Network) -> None:
    # a field the members refuse (hostNetwork): refused at the hub, no copy anywhere
    job = job_manifest("escape", NS, [option("nvidia-h100", 1)], duration="600s")
    job["spec"]["template"]["spec"]["hostNetwork"] = True
    apply(network.hub, job)
    refused = wait_for(
        "escape refused at the hub",
        lambda: (s := network.hub_job("escape")).get("reason") == "ForbiddenPodField" and s,
        timeout=60,
    )
    assert refused["phase"] == "Queued" and refused.get("centre") is None
    assert "spec.template.spec.hostNetwork" in refused["message"]
    valid = [c for c in refused.get("conditions") or [] if c["type"] == "Valid"]
    assert [(c["status"], c["reason"]) for c in valid] == [("False", "ForbiddenPodField")]
    warning = wait_for(
        "the hub's Warning Event on escape",
        lambda: [e for e in network.hub_events("escape") if e["type"] == "Warning"],
        timeout=30,
    )
    assert warning[0]["reason"] == "ForbiddenPodField"
    assert warning[0]["source"]["component"] == "suanli-hub"
    assert "hostNetwork" in warning[0]["message"]
    time.sleep(1.5)  # three more hub cycles: still not dispatched (nanjing is out of service)
    assert network.hub_job("escape").get("centre") is None
    assert "escape" not in network.member_jobs("guangzhou") + network.member_jobs("wuhan")
    queue = [i for i in network.cli("centres")["items"] if i["kind"] == "HubQueueEntry"]
    assert [(q["name"], q["reason"]) for q in queue] == [("escape", "ForbiddenPodField")]
    # fixed: dispatched (guangzhou has H100 free) and admitted
    network.hub.run(
        "patch",
        "trainingjob",
        "escape",
        "-n",
        NS,
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/spec/template/spec/hostNetwork"}]',
    )
    status = wait_admitted(network, "escape", time.monotonic())
    assert status["centre"] == "guangzhou"
    valid = [c for c in status.get("conditions") or [] if c["type"] == "Valid"]
    assert [c["status"] for c in valid] in ([], ["True"])


def hub_leader(ports: dict[str, int]) -> float:
    url = f"http://127.0.0.1:{ports['metrics']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "suanli_hub_leader":
                return float(sample.value)
    raise AssertionError("the hub exports no suanli_hub_leader")


def test_a_standby_hub_takes_over_when_the_leader_stops(network: Network) -> None:
    standby = start_operator(network.hub_cluster, HUB_ARGS, name="hub-standby")
    try:
        time.sleep(3)  # several standby rounds: it must not act while the leader renews
        assert hub_leader(standby) == 0
        assert hub_leader(network.hub_ports) == 1
        lease = network.hub.get("lease", "suanli-hub", "-n", "default")
        first = lease["spec"]["holderIdentity"]
        network.hub_cluster.stop_process("hub-operator")  # SIGTERM: the Lease is not released
        stopped = time.monotonic()
        wait_for("the standby hub leads", lambda: hub_leader(standby) == 1, timeout=60)
        took = time.monotonic() - stopped
        print(f"\nhub takeover after the leader stopped: {took:.1f} s (Lease 15 s)")
        lease = network.hub.get("lease", "suanli-hub", "-n", "default")
        assert lease["spec"]["holderIdentity"] != first
        # the new leader acts: deleting the hub job removes its copy in guangzhou
        assert "escape" in network.member_jobs("guangzhou")
        network.hub.run("delete", "trainingjob", "escape", "-n", NS)
        wait_for(
            "escape's copy removed by the new leader",
            lambda: "escape" not in network.member_jobs("guangzhou"),
            timeout=60,
        )
    finally:
        network.hub_cluster.stop_process("hub-standby")
