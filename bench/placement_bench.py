#!/usr/bin/env python3
"""Placement-core benchmark: the compiled core against the pure reference, in one run.

Why this shape: the operator's scheduling cycle is a sequence of single decisions over a loaded
cluster, so we time decisions on clusters that are already half full with pods of assorted
shapes (every node then has a distinct state, the worst case for the per-state memo). Printed:
per-decision latency and decisions per second at 1k/5k/10k/50k nodes, a 64-device gang on 5k
nodes, a pass of 10,000 pending gangs over 5,000 nodes, memory per node, and the speed ratio.
The reference is too slow for the big cases; where it is timed on a sample and extrapolated,
the table says so.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))

from suanli.placement import _core, reference
from suanli.placement.model import (
    DeviceClass,
    Gang,
    GangOption,
    Placement,
    WorkloadShape,
)

A100 = DeviceClass("nvidia-a100", 8, 8, (1, 2, 4, 8), None, True, 312.0)
ASCEND = DeviceClass("ascend-910", 8, 4, (1, 2, 4, 8), 8, False, 256.0)
MIX = [
    WorkloadShape(8000, 32768, 1, 1000, 40),
    WorkloadShape(4000, 16384, 1, 500, 30),
    WorkloadShape(2000, 8192, 1, 250, 10),
    WorkloadShape(32000, 131072, 4, 1000, 5),
    WorkloadShape(64000, 262144, 8, 1000, 5),
    WorkloadShape(16000, 65536, 2, 1000, 5, ("ascend-910",)),
    WorkloadShape(64000, 262144, 8, 1000, 5, ("ascend-910",)),
]
IMPLS: dict[str, ModuleType] = {"compiled": _core, "reference": reference}


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def build(module: ModuleType, nodes: int, fill: float, seed: int = 1) -> Any:
    """A cluster of 3/4 GPU and 1/4 NPU nodes in 32-node racks, about ``fill`` of devices
    taken (each node filled to a random level between empty and twice ``fill``)."""
    rng = random.Random(seed)
    state = module.ClusterState([A100, ASCEND], track_recent_mix=False)
    state.set_workload_mix(MIX)
    for i in range(nodes):
        cls = ASCEND.name if i % 4 == 3 else A100.name
        state.add_node(
            f"n{i}", cls, 192000, 1572864, 110, devices=8, rack=f"r{i // 32}",
            labels={"pool": "a" if i % 2 else "b"},
        )  # fmt: skip
    for i in range(nodes):
        cls = ASCEND.name if i % 4 == 3 else A100.name
        used = 0
        level = rng.random() * 2 * fill
        target = 0.0 if level < 0.2 else 8 * min(1.0, level)  # some nodes stay empty
        while used < target:
            if cls == A100.name and rng.random() < 0.4:
                milli = rng.choice([250, 500, 750])
                count = 1
            else:
                count, milli = rng.choice([1, 2, 4] if cls == ASCEND.name else [1, 2]), 1000
            try:
                state.bind(
                    f"pre-{i}-{used}", f"n{i}", rng.randrange(1000, 16000, 500),
                    rng.randrange(1024, 65536, 1024), devices=count, milli=milli,
                )  # fmt: skip
            except ValueError:
                break
            used += count
    return state


def time_decisions(state: Any, gangs: list[Gang]) -> list[float]:
    """Seconds per place() call; each placed gang is released again so the state stays put."""
    samples = []
    for gang in gangs:
        started = time.perf_counter()
        result = state.place(gang)
        samples.append(time.perf_counter() - started)
        if isinstance(result, Placement):
            state.release_gang(gang.id)
    return samples


def single_pod_gangs(count: int, seed: int) -> list[Gang]:
    rng = random.Random(seed)
    shapes = [
        GangOption(A100.name, 1, 1000, 8000, 32768),
        GangOption(A100.name, 1, 500, 4000, 16384),
        GangOption(ASCEND.name, 2, 1000, 16000, 65536),
        GangOption(A100.name, 4, 1000, 32000, 131072),
    ]
    return [Gang(f"s{i}", 1, (rng.choice(shapes),)) for i in range(count)]


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:10.1f}"


def bench_single(sizes: list[int], ref_limit: int, decisions: int) -> list[tuple[Any, ...]]:
    rows = []
    for nodes in sizes:
        row: list[Any] = [nodes]
        for name, module in IMPLS.items():
            count = decisions if name == "compiled" else max(3, min(decisions, ref_limit // nodes))
            state = build(module, nodes, 0.5)
            samples = time_decisions(state, single_pod_gangs(count, nodes))
            median = statistics.median(samples)
            row += [
                median,
                statistics.quantiles(samples, n=20)[18] if count >= 20 else max(samples),
            ]
            del state
            gc.collect()
        rows.append(tuple(row))
    return rows


def bench_big_gang(nodes: int, repeats: int) -> dict[str, tuple[float, bool]]:
    out = {}
    for name, module in IMPLS.items():
        state = build(module, nodes, 0.5)
        gangs = [
            Gang(f"big{i}", 8, (GangOption(A100.name, 8, 1000, 64000, 262144),))
            for i in range(repeats if name == "compiled" else 2)
        ]
        placed = isinstance(state.place(gangs[0]), Placement)
        state.release_gang(gangs[0].id) if placed else None
        out[name] = (statistics.median(time_decisions(state, gangs)), placed)
    return out


def bench_pass(nodes: int, gangs: int, ref_sample: int) -> dict[str, tuple[float, int, bool]]:
    """(seconds for the whole pass, gangs placed, extrapolated?) per implementation."""
    rng = random.Random(5)
    options = [
        (GangOption(A100.name, 1, 1000, 8000, 32768),),
        (GangOption(A100.name, 1, 500, 4000, 16384),),
        (GangOption(A100.name, 1, 250, 2000, 8192),),
        (GangOption(ASCEND.name, 2, 1000, 16000, 65536),),
        (
            GangOption(ASCEND.name, 8, 1000, 64000, 262144),
            GangOption(A100.name, 8, 1000, 64000, 262144),
        ),
    ]
    pending = []
    for i in range(gangs):
        opts = rng.choice(options)
        replicas = rng.choice([1, 1, 1, 2, 4]) if opts[0].devices_per_replica == 8 else 1
        pending.append(Gang(f"q{i}", replicas, opts))
    out = {}
    for name, module in IMPLS.items():
        state = build(module, nodes, 0.3)
        todo = pending if name == "compiled" else pending[:ref_sample]
        started = time.perf_counter()
        placed = sum(isinstance(state.place(g), Placement) for g in todo)
        elapsed = time.perf_counter() - started
        if len(todo) < len(pending):
            out[name] = (elapsed * len(pending) / len(todo), placed, True)
        else:
            out[name] = (elapsed, placed, False)
    return out


def bench_memory(nodes: int) -> dict[str, float]:
    out = {}
    for name, module in IMPLS.items():
        gc.collect()
        before = rss_bytes()
        state = build(module, nodes, 0.0)
        gc.collect()
        out[name] = (rss_bytes() - before) / nodes
        del state
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    sizes = [1000, 5000] if args.quick else [1000, 5000, 10000, 50000]
    decisions = 200 if args.quick else 2000
    mode = "quick" if args.quick else "full"
    print(f"placement core benchmark ({mode}); python {sys.version.split()[0]}")
    print("cluster: 3/4 A100x8 + 1/4 Ascend-910x8 nodes, 50 % of devices pre-bound with mixed")
    print("shapes (shares, 1-4 devices), fragmentation_aware policy, 7-shape workload mix\n")

    memory = bench_memory(50000 if not args.quick else 5000)
    print(
        f"0) memory per node (RSS growth building an empty cluster, measured first): "
        f"compiled {memory['compiled']:.0f} B, reference {memory['reference']:.0f} B\n"
    )

    print("1) single-pod decisions (place + release; release not timed)")
    header = ("nodes", "compiled µs", "p95 µs", "dec/s", "reference µs", "dec/s", "ratio")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (7, 12, 10, 10, 13, 9, 7), strict=True)))
    for nodes, c_med, c_p95, r_med, _ in bench_single(
        sizes, 200_000 if args.quick else 1_000_000, decisions
    ):
        print(
            f"{nodes:>7} {fmt_us(c_med):>12} {fmt_us(c_p95):>10} {1 / c_med:>10.0f} "
            f"{fmt_us(r_med):>13} {1 / r_med:>9.1f} {r_med / c_med:>6.0f}x"
        )

    big = bench_big_gang(5000 if not args.quick else 1000, 50)
    (c_big, c_ok), (r_big, r_ok) = big["compiled"], big["reference"]
    print(
        f"\n2) 64-device gang (8 x 8 A100) on {5000 if not args.quick else 1000} nodes: "
        f"compiled {c_big * 1e3:.3f} ms (placed: {c_ok}), reference {r_big * 1e3:.1f} ms "
        f"(placed: {r_ok}), ratio {r_big / c_big:.0f}x"
    )

    pass_nodes, pass_gangs = (5000, 10000) if not args.quick else (1000, 1000)
    result = bench_pass(pass_nodes, pass_gangs, 40)
    c_time, c_placed, _ = result["compiled"]
    r_time, _, extrapolated = result["reference"]
    print(f"\n3) one pass of {pass_gangs} pending gangs over {pass_nodes} nodes (30 % pre-filled):")
    print(
        f"   compiled {c_time:.2f} s ({c_placed} placed, {c_time / pass_gangs * 1e6:.0f} µs/gang); "
        f"reference {r_time:.0f} s{' (extrapolated from 40 gangs)' if extrapolated else ''}; "
        f"ratio {r_time / c_time:.0f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
