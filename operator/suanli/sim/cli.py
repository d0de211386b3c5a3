"""``suanli-sim``: replay a trace against a placement policy and print allocation figures.

Example::

    suanli-sim trace --nodes openb_node_list_gpu_node.csv --pods openb_pod_list_default.csv \\
        --policy fragmentation_aware --seeds 42-51 --demand 1.3 --json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from suanli.placement.model import Policy
from suanli.sim.replay import IMPLEMENTATIONS, SeedResult, replay
from suanli.sim.trace import read_nodes, read_pods

CHECKPOINTS = (50, 80, 90, 100, 110, 120, 130)


def parse_seeds(text: str) -> list[int]:
    """ "42-51" or "42,45,50" or "42"."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.partition("-")
            seeds.extend(range(int(low), int(high or low) + 1))
    except ValueError:
        message = f"--seeds: expected like 42-51 or 42,43, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if not seeds:
        raise argparse.ArgumentTypeError("--seeds: no seeds")
    return seeds


def fgd_reference(pods_path: Path) -> dict[str, dict[str, float]]:
    """The FGD authors' mean allocation per policy for this pod list, if the summary is there."""
    summary = pods_path.parent / "fgd-reference-results" / "summary_alloc_ratio.csv"
    if not summary.exists():
        return {}
    found: dict[str, dict[str, float]] = {}
    with summary.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["workload"] != pods_path.stem:
                continue
            found[row["policy"]] = {
                key.removeprefix("alloc_pct_at_demand_"): float(value)
                for key, value in row.items()
                if key.startswith("alloc_pct_at_demand_")
            }
    return found


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def run_trace(args: argparse.Namespace) -> dict[str, object]:
    nodes = read_nodes(Path(args.nodes))
    pods = read_pods(Path(args.pods))
    policy = Policy(args.policy)
    started = time.perf_counter()
    results: list[SeedResult] = [
        replay(
            nodes,
            pods,
            policy,
            seed,
            demand=args.demand,
            checkpoints=CHECKPOINTS,
            implementation=args.implementation,
        )
        for seed in args.seeds
    ]
    elapsed = time.perf_counter() - started
    levels = sorted(results[0].alloc_pct)
    return {
        "nodes": str(args.nodes),
        "pods": str(args.pods),
        "policy": policy.value,
        "implementation": args.implementation,
        "demand": args.demand,
        "seeds": args.seeds,
        "gpu_capacity": sum(n.gpus for n in nodes),
        "alloc_pct_mean": {
            str(k): round(_mean([r.alloc_pct[k] for r in results]), 3) for k in levels
        },
        "per_seed": [
            {
                "seed": r.seed,
                "alloc_pct": {str(k): round(v, 3) for k, v in sorted(r.alloc_pct.items())},
                "arrived": r.arrived,
                "placed": r.placed,
                "failed": r.failed,
                "failures_by_reason": r.failures_by_reason,
            }
            for r in results
        ],
        "fgd_reference": fgd_reference(Path(args.pods)),
        "seconds": round(elapsed, 2),
    }


def _print_table(report: dict[str, object]) -> None:
    means = report["alloc_pct_mean"]
    assert isinstance(means, dict)
    print(f"{report['pods']}  policy={report['policy']}  seeds={report['seeds']}")
    print("demand %   " + "  ".join(f"{k:>7}" for k in means))
    print("suanli     " + "  ".join(f"{v:7.2f}" for v in means.values()))
    reference = report["fgd_reference"]
    assert isinstance(reference, dict)
    for name, values in reference.items():
        print(f"{name:<10} " + "  ".join(f"{values.get(k, float('nan')):7.2f}" for k in means))
    print(f"({report['seconds']} s)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="suanli-sim", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    trace = commands.add_parser("trace", help="replay an openb node list and pod list")
    trace.add_argument(
        "--nodes", required=True, help="node list CSV (sn,cpu_milli,memory_mib,gpu,model)"
    )
    trace.add_argument("--pods", required=True, help="pod list CSV (openb_pod_list_*.csv)")
    trace.add_argument(
        "--policy", default=Policy.FRAGMENTATION_AWARE.value, choices=[p.value for p in Policy]
    )
    trace.add_argument("--seeds", type=parse_seeds, default=parse_seeds("42-51"))
    trace.add_argument("--demand", type=float, default=1.3, help="arrived GPU demand / capacity")
    trace.add_argument("--implementation", default="compiled", choices=IMPLEMENTATIONS)
    trace.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        report = run_trace(args)
    except (OSError, ValueError) as error:
        print(f"suanli-sim: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
