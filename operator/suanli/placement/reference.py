"""Pure-Python reference of the placement core: the test oracle and the readable algorithm.

Why it exists: the compiled core (``suanli.placement._core``) is fast but dense; this module is
the same algorithm written plainly, with the same API and the same integer scores, so property
tests can demand that both make identical decisions. It is never used as a silent fallback.

The algorithm, in short:

* A node has CPU, memory, pod slots and ``n`` devices of one class, each with free milli-units.
  Devices are cut into interconnect groups of ``min(group_size, n)``.
* A replica asking for ``c`` devices of ``m`` milli can take: one device with ``free >= m``
  (shares, ``m < 1000``); ``c`` wholly free devices inside one group (``c <= group``); or
  ``c / group`` wholly free groups. Every such choice is a *candidate*.
* Each candidate gets an integer key, smaller is better; a node's key is its best candidate's,
  and the node with the smallest key wins (ties: lowest slot, i.e. the oldest node).

  - ``best_fit``: (how empty the node is left, ppm of each resource; leftover on the devices).
  - ``spread``: the negation.
  - ``fragmentation_aware``: (increase of the node's *expected fragmentation* + balance, then
    best_fit). Expected fragmentation (after FGD, ATC '23): for each shape of the workload mix,
    the free milli on the node that shape could not use, weighted by how often the shape occurs.
    For shares, the per-shape term is replaced by a *waste curve* (``suanli.placement.mix``):
    how much of a device's free milli is expected never to be allocated over many future
    requests, not just the next one, read at the node's free-CPU level (+0.3 points).
    Balance (our addition): ``|free CPU share - free device share|`` the node is left with,
    weighted by the square of the cluster's device utilisation. FGD only notices CPU stranding
    once a node has too little CPU for a shape; keeping the two in proportion, more strongly as
    the cluster fills, avoids it earlier (+0.7 points allocation on the Alibaba trace).

* A gang places its replicas greedily, one at a time, each seeing the state the previous ones
  left; on failure everything is rolled back. Topology wishes run the greedy pass once per rack
  or super-node and keep the best domain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from suanli.placement.mix import MixTable, RecentMix
from suanli.placement.model import (
    BALANCE_WEIGHT,
    WHOLE,
    ClassCapacity,
    DeviceClass,
    Failure,
    Gang,
    GangOption,
    Placement,
    Policy,
    ReplicaAssignment,
    TopologyLevel,
    TopologyMode,
    WorkloadShape,
)
from suanli.placement.validation import (
    check_node_args,
    failure_insufficient,
    failure_topology,
    illegal_options_failure,
    legal_options,
)

PPM = 1_000_000
Key = tuple[int, ...]


@dataclass(slots=True)
class _Node:
    name: str
    device_class: int  # index into the registered device classes, -1 for none
    cpu_cap: int
    mem_cap: int
    pods_cap: int
    group: int
    labels: dict[str, str]
    rack: str
    super_node: str
    schedulable: bool
    cpu_free: int = 0
    mem_free: int = 0
    pods_free: int = 0
    dev_free: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Pod:
    slot: int
    cpu: int
    mem: int
    devices: tuple[int, ...]
    milli: int


def enumerate_candidates(free: Sequence[int], group: int, count: int, milli: int) -> list[Key]:
    """Every distinct device choice for one replica, in a fixed order (see the module doc).

    Fractional choices on devices that are indistinguishable (same group, same free milli) are
    listed once: taking either leaves the same node state.
    """
    if count == 0:
        return [()]
    n = len(free)
    if count > n:
        return []
    if milli < WHOLE:
        chosen: list[Key] = []
        for i in range(n):
            if free[i] < milli:
                continue
            start = i - i % group
            if any(free[j] == free[i] for j in range(start, i)):
                continue
            chosen.append((i,))
        return chosen
    if count <= group:
        chosen = []
        for start in range(0, n, group):
            whole = [i for i in range(start, start + group) if free[i] == WHOLE]
            if len(whole) >= count:
                chosen.append(tuple(whole[:count]))
        return chosen
    full_groups = [
        start
        for start in range(0, n, group)
        if all(free[i] == WHOLE for i in range(start, start + group))
    ]
    needed = count // group
    if len(full_groups) < needed:
        return []
    return [tuple(i for start in full_groups[:needed] for i in range(start, start + group))]


def usable_milli(free: Sequence[int], group: int, count: int, milli: int) -> int:
    """Free milli on a node that some legal choice of (count, milli) could include."""
    n = len(free)
    if count > n:
        return 0
    if milli < WHOLE:
        return sum(f for f in free if f >= milli)
    if count <= group:
        usable = 0
        for start in range(0, n, group):
            whole = sum(1 for i in range(start, start + group) if free[i] == WHOLE)
            if whole >= count:
                usable += whole
        return usable * WHOLE
    full = sum(
        1
        for start in range(0, n, group)
        if all(free[i] == WHOLE for i in range(start, start + group))
    )
    return full * group * WHOLE if full >= count // group else 0


def expected_fragmentation(
    mix: MixTable,
    device_class: int,
    *,
    cpu: int,
    mem: int,
    pods: int,
    free: Sequence[int],
    group: int,
) -> int:
    """Mix-weighted free milli the shapes of the mix could not use on a node in this state."""
    total = sum(free)
    if total == 0 or device_class < 0:
        return 0
    frag = mix.const_weight[device_class] * total
    curves = mix.waste[device_class]
    if curves:
        fitting = [waste for level, waste in curves if pods >= 1 and level <= cpu]
        if fitting:
            frag += sum(fitting[-1][f] for f in free)
        else:
            frag += mix.dead_weight * total
    for s_cpu, s_mem, s_count, s_milli, weight in mix.shapes[device_class]:
        if pods < 1 or cpu < s_cpu or mem < s_mem:
            frag += weight * total
        elif curves and s_milli < WHOLE:
            continue  # the waste curve accounts for shares
        else:
            usable = usable_milli(free, group, s_count, s_milli)
            frag += weight * (total - usable if usable else total)
    return frag


class ClusterState:
    """A long-lived cluster model, updated incrementally, that places gangs."""

    def __init__(
        self,
        device_classes: Iterable[DeviceClass] = (),
        policy: Policy | str = Policy.FRAGMENTATION_AWARE,
        class_policies: Mapping[str, Policy | str] | None = None,
        track_recent_mix: bool = True,
    ) -> None:
        self._classes: list[DeviceClass] = []
        self._class_index: dict[str, int] = {}
        self._policy = Policy(policy)
        self._class_policy: list[Policy] = []
        self._nodes: list[_Node | None] = []
        self._free_slots: list[int] = []
        self._slot_of: dict[str, int] = {}
        self._pods: dict[str, _Pod] = {}
        self._pods_on: dict[int, set[str]] = {}
        self._gangs: dict[str, list[str]] = {}
        self._dev_total = 0  # milli-devices on live nodes, for the utilisation
        self._dev_free = 0
        self._recent = RecentMix() if track_recent_mix else None
        self._mix = MixTable.empty(0)
        for device_class in device_classes:
            self.register_device_class(device_class)
        for name, class_policy in (class_policies or {}).items():
            self.set_policy(class_policy, name)

    # --- configuration ---------------------------------------------------------------------
    def register_device_class(self, device_class: DeviceClass) -> None:
        if device_class.name in self._class_index:
            raise ValueError(f"device class {device_class.name!r} is already registered")
        self._class_index[device_class.name] = len(self._classes)
        self._classes.append(device_class)
        self._class_policy.append(self._policy)
        self._mix = self._mix.resized(self._classes)

    def set_policy(self, policy: Policy | str, device_class: str | None = None) -> None:
        """Set the policy for one device class, or for all classes when none is named."""
        chosen = Policy(policy)
        if device_class is None:
            self._policy = chosen
            self._class_policy = [chosen] * len(self._classes)
        else:
            self._class_policy[self._class_id(device_class)] = chosen

    def set_workload_mix(self, shapes: Iterable[WorkloadShape]) -> None:
        """Measure fragmentation against this mix from now on (stops recent-mix tracking)."""
        self._recent = None
        self._mix = MixTable.build(list(shapes), self._classes)

    # --- nodes -----------------------------------------------------------------------------
    def add_node(
        self,
        name: str,
        device_class: str | None,
        cpu_milli: int,
        memory_mib: int,
        pods: int,
        *,
        devices: int = 0,
        labels: Mapping[str, str] | None = None,
        rack: str = "",
        super_node: str = "",
        schedulable: bool = True,
    ) -> None:
        if name in self._slot_of:
            raise ValueError(f"node {name!r} already exists")
        class_id = self._node_class(name, device_class, devices)
        check_node_args(name, cpu_milli, memory_mib, pods)
        group = min(self._classes[class_id].group_size, devices) if class_id >= 0 else 1
        node = _Node(
            name, class_id, cpu_milli, memory_mib, pods, group, dict(labels or {}), rack,
            super_node, schedulable, cpu_milli, memory_mib, pods, [WHOLE] * devices,
        )  # fmt: skip
        slot = self._free_slots.pop() if self._free_slots else len(self._nodes)
        if slot == len(self._nodes):
            self._nodes.append(node)
        else:
            self._nodes[slot] = node
        self._slot_of[name] = slot
        self._pods_on[slot] = set()
        self._dev_total += devices * WHOLE
        self._dev_free += devices * WHOLE

    def update_node(
        self,
        name: str,
        device_class: str | None,
        cpu_milli: int,
        memory_mib: int,
        pods: int,
        *,
        devices: int = 0,
        labels: Mapping[str, str] | None = None,
        rack: str = "",
        super_node: str = "",
        schedulable: bool = True,
    ) -> None:
        """Change a node in place; pods bound to it stay bound (free may go negative)."""
        node = self._node(name)
        class_id = self._node_class(name, device_class, devices)
        check_node_args(name, cpu_milli, memory_mib, pods)
        used_devices = [i for i, f in enumerate(node.dev_free) if f < WHOLE]
        if (class_id != node.device_class or devices != len(node.dev_free)) and used_devices:
            raise ValueError(
                f"node {name!r}: cannot change device class or count while devices "
                f"{used_devices} are allocated"
            )
        node.cpu_free += cpu_milli - node.cpu_cap
        node.mem_free += memory_mib - node.mem_cap
        node.pods_free += pods - node.pods_cap
        node.cpu_cap, node.mem_cap, node.pods_cap = cpu_milli, memory_mib, pods
        if devices != len(node.dev_free):
            self._dev_total += (devices - len(node.dev_free)) * WHOLE
            self._dev_free += (devices - len(node.dev_free)) * WHOLE
            node.dev_free = [WHOLE] * devices
        node.device_class = class_id
        node.group = min(self._classes[class_id].group_size, devices) if class_id >= 0 else 1
        node.labels = dict(labels or {})
        node.rack, node.super_node, node.schedulable = rack, super_node, schedulable

    def remove_node(self, name: str) -> None:
        """Forget a node and every pod bound to it."""
        node = self._node(name)
        slot = self._slot_of.pop(name)
        self._dev_total -= len(node.dev_free) * WHOLE
        self._dev_free -= sum(node.dev_free)
        for key in self._pods_on.pop(slot):
            del self._pods[key]
        self._nodes[slot] = None
        self._free_slots.append(slot)

    # --- pods ------------------------------------------------------------------------------
    def bind(
        self,
        pod_key: str,
        node: str,
        cpu_milli: int,
        memory_mib: int,
        *,
        devices: Sequence[int] | int = 0,
        milli: int = WHOLE,
    ) -> tuple[int, ...]:
        """Record an existing pod; with a device count (no indices) pick them deterministically.

        Returns the device indices used. CPU and memory may be overcommitted (the kubelet has
        the last word on pods that already run); devices may not.
        """
        if pod_key in self._pods:
            raise ValueError(f"pod {pod_key!r} is already bound")
        slot = self._slot_of.get(node)
        target = self._nodes[slot] if slot is not None else None
        if target is None or slot is None:
            raise ValueError(f"bind {pod_key!r}: unknown node {node!r}")
        if not 0 < milli <= WHOLE:
            raise ValueError(f"bind {pod_key!r}: milli must be 1..{WHOLE}, got {milli}")
        if isinstance(devices, int):
            chosen = self._pick_for_bind(pod_key, target, devices, milli)
        else:
            chosen = tuple(devices)
            for i in chosen:
                if not 0 <= i < len(target.dev_free) or target.dev_free[i] < milli:
                    raise ValueError(
                        f"bind {pod_key!r}: device {i} on {node!r} does not have {milli} milli free"
                    )
            if len(set(chosen)) != len(chosen):
                raise ValueError(f"bind {pod_key!r}: device indices repeat: {chosen}")
        self._apply(slot, cpu_milli, memory_mib, chosen, milli=milli, sign=-1)
        self._pods[pod_key] = _Pod(slot, cpu_milli, memory_mib, chosen, milli)
        self._pods_on[slot].add(pod_key)
        return chosen

    def release(self, pod_key: str) -> None:
        pod = self._pods.pop(pod_key, None)
        if pod is None:
            raise KeyError(f"release: unknown pod {pod_key!r}")
        self._apply(pod.slot, pod.cpu, pod.mem, pod.devices, milli=pod.milli, sign=+1)
        self._pods_on[pod.slot].discard(pod_key)

    def release_gang(self, gang_id: str) -> None:
        """Roll back every replica of an assumed gang (pods already gone are skipped)."""
        keys = self._gangs.pop(gang_id, None)
        if keys is None:
            raise KeyError(f"release_gang: unknown gang {gang_id!r}")
        for key in keys:
            if key in self._pods:
                self.release(key)

    # --- placement -------------------------------------------------------------------------
    def place(self, gang: Gang) -> Placement | Failure:
        if gang.id in self._gangs:
            raise ValueError(f"gang {gang.id!r} is already placed")
        self._refresh_mix()
        legal, problems = legal_options(gang, self._class_index, self._classes)
        if not legal:
            return illegal_options_failure(gang, problems)
        best: tuple[int, Key, int, list[tuple[int, Key]]] | None = None
        most_fit, unconstrained_fit, first_wanted = 0, False, 0
        for index in legal:
            option = gang.options[index]
            want, need = gang.replicas_for(option), gang.min_replicas_for(option)
            first_wanted = first_wanted or want
            placed, score, free_fit = self._try_option(gang, option, want)
            most_fit = max(most_fit, len(placed))
            unconstrained_fit = unconstrained_fit or free_fit >= need
            if len(placed) < need:
                continue
            candidate = (-len(placed), score, index, placed)
            if best is None or candidate[:3] < best[:3]:
                best = candidate
            if not gang.choose_best_option:
                break
        if best is None:
            option = gang.options[legal[0]]
            if gang.topology == TopologyMode.REQUIRE and unconstrained_fit:
                return failure_topology(gang, option, first_wanted, most_fit)
            return failure_insufficient(
                gang, option, first_wanted, most_fit, self._free_whole(option)
            )
        _, _, index, placed = best
        return self._commit(gang, index, placed)

    def _try_option(
        self, gang: Gang, option: GangOption, want: int
    ) -> tuple[list[tuple[int, Key]], Key, int]:
        """Best greedy result for an option (state left unchanged), and the unconstrained fit."""
        free_run = self._greedy(gang, option, want, None)
        if gang.topology == TopologyMode.NONE:
            return free_run[0], free_run[1], len(free_run[0])
        best: tuple[int, Key, str, list[tuple[int, Key]]] | None = None
        for domain in self._domains(gang.topology_level):
            placed, score = self._greedy(gang, option, want, domain)
            candidate = (-len(placed), score, domain, placed)
            if best is None or candidate[:3] < best[:3]:
                best = candidate
        need = gang.min_replicas_for(option)
        if best is not None and -best[0] >= need:
            return best[3], best[1], len(free_run[0])
        if gang.topology == TopologyMode.PREFER:
            return free_run[0], free_run[1], len(free_run[0])
        return (best[3] if best else []), (), len(free_run[0])

    def _greedy(
        self, gang: Gang, option: GangOption, want: int, domain: str | None
    ) -> tuple[list[tuple[int, Key]], Key]:
        placed: list[tuple[int, Key]] = []
        total: list[int] = []
        for _ in range(want):
            found = self._best_node(gang, option, domain)
            if found is None:
                break
            slot, devices, key = found
            self._apply(
                slot, option.cpu_milli, option.memory_mib, devices, milli=option.milli, sign=-1
            )
            placed.append((slot, devices))
            total = [a + b for a, b in zip(total, key, strict=True)] if total else list(key)
        for slot, devices in reversed(placed):
            self._apply(
                slot, option.cpu_milli, option.memory_mib, devices, milli=option.milli, sign=+1
            )
        return placed, tuple(total)

    def _best_node(
        self, gang: Gang, option: GangOption, domain: str | None
    ) -> tuple[int, Key, Key] | None:
        class_id = -1 if option.device_class is None else self._class_index[option.device_class]
        policy = self._policy if class_id < 0 else self._class_policy[class_id]
        balance = self._balance_weight() if policy == Policy.FRAGMENTATION_AWARE else 0
        best: tuple[Key, int, Key] | None = None
        for slot, node in enumerate(self._nodes):
            if node is None or not node.schedulable:
                continue
            if class_id >= 0 and node.device_class != class_id:
                continue
            if domain is not None and self._domain_of(node, gang.topology_level) != domain:
                continue
            if gang.node_selector and any(node.labels.get(k) != v for k, v in gang.node_selector):
                continue
            scored = self._score_node(node, option, policy, balance)
            if scored is not None and (best is None or scored[0] < best[0]):
                best = (scored[0], slot, scored[1])
        return None if best is None else (best[1], best[2], best[0])

    def _score_node(
        self, node: _Node, option: GangOption, policy: Policy, balance: int
    ) -> tuple[Key, Key] | None:
        """The node's best candidate as (key, device indices), or None when nothing fits."""
        cpu, mem = option.cpu_milli, option.memory_mib
        if node.pods_free < 1 or node.cpu_free < cpu or node.mem_free < mem:
            return None
        count, milli = option.devices_per_replica, option.milli
        frag_before = 0
        if policy == Policy.FRAGMENTATION_AWARE:
            frag_before = self._frag(
                node, node.cpu_free, node.mem_free, node.pods_free, node.dev_free
            )
        best: tuple[Key, Key] | None = None
        for devices in enumerate_candidates(node.dev_free, node.group, count, milli):
            after = list(node.dev_free)
            for i in devices:
                after[i] -= milli
            cpu_after, mem_after = node.cpu_free - cpu, node.mem_free - mem
            fit = self._fit_ppm(node, sum(after), cpu_after, mem_after)
            leftover = self._leftover(node, devices, milli, after)
            key: Key
            if policy == Policy.BEST_FIT:
                key = (fit, leftover)
            elif policy == Policy.SPREAD:
                key = (-fit, -leftover)
            else:
                frag_after = self._frag(node, cpu_after, mem_after, node.pods_free - 1, after)
                penalty = 0
                if node.dev_free:
                    share_gap = abs(
                        cpu_after * PPM // node.cpu_cap - sum(after) * PPM // (len(after) * WHOLE)
                    )
                    penalty = balance * share_gap // PPM
                key = (frag_after - frag_before + penalty, fit, leftover)
            if best is None or key < best[0]:
                best = (key, devices)
        return best

    def _balance_weight(self) -> int:
        """BALANCE_WEIGHT x mix weight x utilisation^2 (ppm); integer steps fixed for twins."""
        if self._dev_total == 0:
            return 0
        used_ppm = (self._dev_total - self._dev_free) * PPM // self._dev_total
        return self._mix.total_weight * BALANCE_WEIGHT * (used_ppm * used_ppm // PPM) // PPM

    @staticmethod
    def _fit_ppm(node: _Node, dev_free: int, cpu_free: int, mem_free: int) -> int:
        """How empty a node is, in parts per million of each capacity (smaller = fuller)."""
        devices = len(node.dev_free)
        fit = dev_free * PPM // (devices * WHOLE) if devices else 0
        return fit + cpu_free * PPM // node.cpu_cap + mem_free * PPM // node.mem_cap

    @staticmethod
    def _leftover(node: _Node, devices: Key, milli: int, after: Sequence[int]) -> int:
        """Tie-break inside a node: shares go to the tightest device, whole devices to the
        group with the fewest whole devices left (keeping other groups whole)."""
        if milli < WHOLE:
            return sum(after[i] for i in devices)
        touched = {i - i % node.group for i in devices}
        return WHOLE * sum(
            1 for start in touched for i in range(start, start + node.group) if after[i] == WHOLE
        )

    def _refresh_mix(self) -> None:
        if self._recent is not None and self._recent.dirty:
            self._mix = self._recent.table(self._classes)

    def _frag(self, node: _Node, cpu: int, mem: int, pods: int, free: Sequence[int]) -> int:
        return expected_fragmentation(
            self._mix, node.device_class, cpu=cpu, mem=mem, pods=pods, free=free, group=node.group
        )

    def _commit(self, gang: Gang, index: int, placed: list[tuple[int, Key]]) -> Placement:
        option = gang.options[index]
        keys: list[str] = []
        assignments: list[ReplicaAssignment] = []
        for replica, (slot, devices) in enumerate(placed):
            key = f"{gang.id}/{replica}"
            self._apply(
                slot, option.cpu_milli, option.memory_mib, devices, milli=option.milli, sign=-1
            )
            self._pods[key] = _Pod(slot, option.cpu_milli, option.memory_mib, devices, option.milli)
            self._pods_on[slot].add(key)
            keys.append(key)
            node = self._nodes[slot]
            assert node is not None
            assignments.append(ReplicaAssignment(node.name, devices, option.milli))
        self._gangs[gang.id] = keys
        if self._recent is not None:
            self._recent.observe(option, len(placed))
        return Placement(gang.id, index, option.device_class, tuple(assignments))

    # --- reporting -------------------------------------------------------------------------
    def capacity_summary(self) -> dict[str, ClassCapacity]:
        self._refresh_mix()
        totals = {dc.name: [0, 0, 0, 0, 0, 0, 0] for dc in self._classes}
        for node in self._nodes:
            if node is None or node.device_class < 0:
                continue
            row = totals[self._classes[node.device_class].name]
            free = sum(node.dev_free)
            row[0] += 1
            row[1] += len(node.dev_free)
            row[2] += len(node.dev_free) * WHOLE - free
            row[3] += free
            row[4] += sum(1 for f in node.dev_free if f == WHOLE)
            row[5] += self._unusable(node)
            row[6] += self._frag(node, node.cpu_free, node.mem_free, node.pods_free, node.dev_free)
        weights = self._mix.total_weight
        return {
            name: ClassCapacity(
                name,
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                row[6] // weights if weights else 0,
            )
            for name, row in totals.items()
        }

    def _unusable(self, node: _Node) -> int:
        free = sum(node.dev_free)
        blocked = not node.schedulable or node.pods_free < 1 or node.cpu_free <= 0
        if blocked or node.mem_free <= 0:
            return free
        if self._classes[node.device_class].fractional:
            return 0
        return sum(f for f in node.dev_free if f < WHOLE)

    def node_free(self, name: str) -> tuple[int, int, int, tuple[int, ...]]:
        """(cpu, memory, pod slots, per-device milli) still free on a node."""
        node = self._node(name)
        return node.cpu_free, node.mem_free, node.pods_free, tuple(node.dev_free)

    def node_names(self) -> list[str]:
        return [node.name for node in self._nodes if node is not None]

    def pod_keys(self) -> list[str]:
        return sorted(self._pods)

    def gang_pods(self, gang_id: str) -> list[str]:
        return list(self._gangs.get(gang_id, []))

    # --- helpers ---------------------------------------------------------------------------
    def _class_id(self, name: str) -> int:
        try:
            return self._class_index[name]
        except KeyError:
            raise ValueError(f"unknown device class {name!r}") from None

    def _node_class(self, name: str, device_class: str | None, devices: int) -> int:
        if device_class is None:
            if devices:
                raise ValueError(f"node {name!r}: devices={devices} needs a device_class")
            return -1
        class_id = self._class_id(device_class)
        limit = self._classes[class_id].devices_per_node
        if not 0 <= devices <= limit:
            raise ValueError(f"node {name!r}: devices must be 0..{limit} for {device_class}")
        return class_id

    def _node(self, name: str) -> _Node:
        slot = self._slot_of.get(name)
        node = None if slot is None else self._nodes[slot]
        if node is None:
            raise KeyError(f"unknown node {name!r}")
        return node

    def _apply(
        self, slot: int, cpu: int, mem: int, devices: Sequence[int], *, milli: int, sign: int
    ) -> None:
        node = self._nodes[slot]
        assert node is not None
        node.cpu_free += sign * cpu
        node.mem_free += sign * mem
        node.pods_free += sign
        for i in devices:
            node.dev_free[i] += sign * milli
        self._dev_free += sign * milli * len(devices)

    def _pick_for_bind(self, pod_key: str, node: _Node, count: int, milli: int) -> Key:
        candidates = enumerate_candidates(node.dev_free, node.group, count, milli)
        if candidates:
            return candidates[0]
        loose = tuple(i for i, f in enumerate(node.dev_free) if f >= milli)[:count]
        if len(loose) < count:
            raise ValueError(
                f"bind {pod_key!r}: node {node.name!r} has {len(loose)} devices with {milli} "
                f"milli free, the pod needs {count}"
            )
        return loose

    def _domains(self, level: TopologyLevel) -> list[str]:
        found = {self._domain_of(n, level) for n in self._nodes if n is not None}
        found.discard("")
        return sorted(found)

    @staticmethod
    def _domain_of(node: _Node, level: TopologyLevel) -> str:
        return node.rack if level == TopologyLevel.RACK else node.super_node

    def _free_whole(self, option: GangOption) -> int:
        if option.device_class is None:
            return 0
        class_id = self._class_index[option.device_class]
        return sum(
            1
            for node in self._nodes
            if node is not None and node.device_class == class_id and node.schedulable
            for f in node.dev_free
            if f == WHOLE
        )
