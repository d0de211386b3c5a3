"""The real node's own network namespace: the only place where its pods, CNI bridge, kubelet,
kube-proxy and CoreDNS have any network at all.

Why a namespace: the CNI bridge plugin turns on ``net.ipv4.ip_forward`` and adds masquerade
rules; in the root namespace that would let a pod's packet leave the machine. Inside a namespace of
our own there is nothing to leave through: the namespace holds loopback, the pod bridge and one end
of a veth pair, and its routing table names exactly one address outside itself.

Addressing (one veth pair per node, no forwarding anywhere outside the node's namespace):

- root end ``slh<N>``: ``10.250.0.1/32`` (:data:`API_ADDRESS`) with a host route to the node's end
  only. The apiserver binds there and advertises it, so pods reach it through the ``kubernetes``
  Service; the root namespace delivers those packets locally and forwards nothing
  (``ip_forward`` stays as it was, 0 on these machines).
- node end ``sln<N>``: ``10.250.<N>.2/32`` with a host route to ``10.250.0.1`` only and **no
  default route**. A pod's packet to any other address outside the pod subnet finds no route.
- optionally (``route_pods``, for the operator running in a pod): the root namespace also routes
  the pod subnet via the node's end, so the apiserver can call a webhook served by a pod and tests
  can read a pod's metrics. The root namespace only originates those connections; the node
  namespace forwards them onto its bridge and conntrack sends the answers back; nothing is
  forwarded in the root namespace. All centres share the pod subnet, so only one centre on a
  machine can hold that route at a time: a second one is refused, naming the reason.

Second guards, each enough on its own: in the root namespace a chain drops every forwarded packet
in or out of the veth and to or from the pod subnet, and ``raw`` drops anything from the veth that
is not addressed to the apiserver address; in the node namespace ``mangle`` drops every packet
leaving by the veth for any address but ``10.250.0.1``. Everything here is undone by
:meth:`NodeNetwork.delete`, which deleting the namespace mostly does by itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

API_ADDRESS = "10.250.0.1"
POD_SUBNET = "10.129.0.0/24"
POD_GATEWAY = "10.129.0.1"
CLUSTER_DNS = "10.0.0.10"
# Sysctls that live outside any network namespace and that kubelet or kube-proxy write at start:
# recorded before the node starts, put back when it stops.
GLOBAL_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/netfilter/nf_conntrack_max",
)
FORWARD_SYSCTLS = ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding")


class NetworkError(RuntimeError):
    """The node's network could not be set up; the message names the command that failed."""


def run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NetworkError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result


def read_sysctl(name: str) -> str | None:
    try:
        return Path("/proc/sys", name).read_text().strip()
    except OSError:
        return None


def write_sysctl(name: str, value: str) -> None:
    with contextlib.suppress(OSError):
        Path("/proc/sys", name).write_text(value)


@dataclass(frozen=True)
class NodeNetwork:
    """One real node's namespace and veth pair; the index keeps nodes on one machine apart."""

    index: int
    saved_sysctls: dict[str, str]
    route_pods: bool = False

    @property
    def namespace(self) -> str:
        return f"suanli-node{self.index}"

    @property
    def namespace_path(self) -> Path:
        return Path("/run/netns") / self.namespace

    @property
    def host_interface(self) -> str:
        return f"slh{self.index}"

    @property
    def node_interface(self) -> str:
        return f"sln{self.index}"

    @property
    def node_address(self) -> str:
        return f"10.250.{self.index}.2"

    @property
    def guard_chain(self) -> str:
        return f"SUANLI-NODE{self.index}"

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> NodeNetwork:
        return cls(
            index=int(data["index"]),
            saved_sysctls=dict(data["saved_sysctls"]),
            route_pods=bool(data.get("route_pods", False)),
        )

    # --- commands ------------------------------------------------------------------------------
    def in_node(self, *argv: str) -> list[str]:
        """argv run inside the node's network namespace (only; mounts and pids stay ours)."""
        return ["nsenter", f"--net={self.namespace_path}", *argv]

    def exists(self) -> bool:
        return self.namespace_path.exists()

    @classmethod
    def create(cls, state_dir: Path, route_pods: bool = False) -> NodeNetwork:
        """Make the namespace, the veth pair, the routes and the guards; record the sysctls.

        ``route_pods``: also route the pod subnet from the root namespace through the node.
        """
        if route_pods:
            holder = pod_subnet_route()
            if holder:
                raise NetworkError(
                    f"another real node on this machine already routes {POD_SUBNET} ({holder}): "
                    "only one centre at a time can reach its pods from the root namespace"
                )
        saved = {
            name: value
            for name in (*GLOBAL_SYSCTLS, *FORWARD_SYSCTLS)
            if (value := read_sysctl(name)) is not None
        }
        network = cls(index=_free_index(state_dir), saved_sysctls=saved, route_pods=route_pods)
        try:
            network._create()
        except NetworkError:
            network.delete()
            raise
        return network

    def _create(self) -> None:
        host, node = self.host_interface, self.node_interface
        run(["ip", "netns", "add", self.namespace])
        run(
            [
                "ip",
                "link",
                "add",
                host,
                "type",
                "veth",
                "peer",
                "name",
                node,
                "netns",
                self.namespace,
            ]
        )
        # Root end: the apiserver's address, a route to the node's end only, no IPv6 at all.
        write_sysctl(f"net/ipv6/conf/{host}/disable_ipv6", "1")
        write_sysctl(f"net/ipv4/conf/{host}/forwarding", "0")
        run(["ip", "addr", "add", f"{API_ADDRESS}/32", "dev", host])
        run(["ip", "link", "set", host, "up"])
        run(["ip", "route", "add", f"{self.node_address}/32", "dev", host, "src", API_ADDRESS])
        if self.route_pods:
            run(["ip", "route", "add", *self._pod_route()])
        # Node end: loopback, its address, a route to the apiserver's address and nothing else.
        for sysctl in ("net/ipv6/conf/all/disable_ipv6", "net/ipv6/conf/default/disable_ipv6"):
            run(self.in_node("sh", "-c", f"echo 1 > /proc/sys/{sysctl}"))
        run(self.in_node("ip", "link", "set", "lo", "up"))
        run(self.in_node("ip", "addr", "add", f"{self.node_address}/32", "dev", node))
        run(self.in_node("ip", "link", "set", node, "up"))
        run(self.in_node("ip", "route", "add", f"{API_ADDRESS}/32", "dev", node))
        self._add_guards()

    def _add_guards(self) -> None:
        chain, host = self.guard_chain, self.host_interface
        run(["iptables", "-w", "-N", chain])
        for rule in (
            ["-i", host],
            ["-o", host],
            ["-s", POD_SUBNET],
            ["-d", POD_SUBNET],
        ):
            run(["iptables", "-w", "-A", chain, *rule, "-j", "DROP"])
        run(["iptables", "-w", "-I", "FORWARD", "1", "-j", chain])
        run(["iptables", "-w", "-t", "raw", "-I", "PREROUTING", "1", *self._raw_rule()])
        run(
            self.in_node(
                "iptables", "-w", "-t", "mangle", "-A", "POSTROUTING", "-o", self.node_interface,
                "!", "-d", f"{API_ADDRESS}/32", "-j", "DROP",
            )
        )  # fmt: skip

    def _pod_route(self) -> list[str]:
        return [POD_SUBNET, "via", self.node_address, "dev", self.host_interface,
                "src", API_ADDRESS]  # fmt: skip

    def _raw_rule(self) -> list[str]:
        return ["-i", self.host_interface, "!", "-d", f"{API_ADDRESS}/32", "-j", "DROP"]

    def delete(self) -> None:
        """Remove the namespace, the veth, the guards; put back the sysctls recorded at create."""
        if self.exists():
            run(["ip", "netns", "del", self.namespace], check=False)
        if self.route_pods and f" dev {self.host_interface} " in f" {pod_subnet_route()} ":
            run(["ip", "route", "del", *self._pod_route()], check=False)
        if run(["ip", "link", "show", self.host_interface], check=False).returncode == 0:
            run(["ip", "link", "del", self.host_interface], check=False)
        run(["iptables", "-w", "-D", "FORWARD", "-j", self.guard_chain], check=False)
        run(["iptables", "-w", "-F", self.guard_chain], check=False)
        run(["iptables", "-w", "-X", self.guard_chain], check=False)
        run(["iptables", "-w", "-t", "raw", "-D", "PREROUTING", *self._raw_rule()], check=False)
        for name, value in self.saved_sysctls.items():
            if read_sysctl(name) != value:
                write_sysctl(name, value)

    # --- what tests look at -------------------------------------------------------------------
    def routes(self) -> list[str]:
        """The node namespace's IPv4 routing table (main and local tables), one route a line."""
        main = run(self.in_node("ip", "-4", "route", "show", "table", "all")).stdout
        return [line.strip() for line in main.splitlines() if line.strip()]

    def interfaces(self) -> list[str]:
        out = run(self.in_node("ip", "-o", "link", "show")).stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def pod_subnet_route() -> str:
    """The root namespace's route to the pod subnet ("" when there is none)."""
    found = run(["ip", "-4", "-o", "route", "show", "exact", POD_SUBNET]).stdout.split("\n")[0]
    return " ".join(found.split())


def _free_index(state_dir: Path) -> int:
    """An index no other node on this machine uses, starting from one derived from the state dir."""
    start = int(hashlib.sha256(str(state_dir).encode()).hexdigest(), 16) % 250 + 1
    taken = set(run(["ip", "-o", "link", "show"]).stdout.split())
    existing = set(Path("/run/netns").iterdir()) if Path("/run/netns").exists() else set()
    for offset in range(250):
        index = (start + offset - 1) % 250 + 1
        if f"slh{index}:" in taken or Path("/run/netns") / f"suanli-node{index}" in existing:
            continue
        return index
    raise NetworkError("no free node index (250 real nodes running?)")
