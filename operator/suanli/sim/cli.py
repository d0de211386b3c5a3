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
from suanli.sim.trace import TraceNode, TracePod, read_nodes, read_pods

AUTHORS_POLICIES = ("fgd", "authors_best_fit", "dot_product", "gpu_packing", "random")
"""The FGD authors' policies (``suanli.sim.policies``; imported lazily, they need numpy)."""

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


def run_policy(
    nodes: list[TraceNode],
    pods: list[TracePod],
    policy: str,
    seed: int,
    *,
    demand: float = 1.3,
    implementation: str = "compiled",
    memory: str = "filter",
) -> SeedResult:
    """One seed of one policy: ours (the placement core) or one of the FGD authors'."""
    if policy in AUTHORS_POLICIES:
        from suanli.sim.policies import replay_authors

        return replay_authors(
            nodes, pods, policy, seed, demand=demand, checkpoints=CHECKPOINTS, memory=memory
        )
    return replay(
        nodes,
        pods,
        Policy(policy),
        seed,
        demand=demand,
        checkpoints=CHECKPOINTS,
        implementation=implementation,
    )


def run_trace(args: argparse.Namespace) -> dict[str, object]:
    nodes = read_nodes(Path(args.nodes))
    pods = read_pods(Path(args.pods))
    policy = args.policy
    started = time.perf_counter()
    results: list[SeedResult] = [
        run_policy(
            nodes,
            pods,
            policy,
            seed,
            demand=args.demand,
            implementation=args.implementation,
            memory=args.memory,
        )
        for seed in args.seeds
    ]
    elapsed = time.perf_counter() - started
    levels = sorted(results[0].alloc_pct)
    return {
        "nodes": str(args.nodes),
        "pods": str(args.pods),
        "policy": policy,
        "implementation": args.implementation,
        "memory": args.memory,
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
        "--policy",
        default=Policy.FRAGMENTATION_AWARE.value,
        choices=[p.value for p in Policy] + list(AUTHORS_POLICIES),
    )
    trace.add_argument(
        "--memory",
        default="filter",
        choices=("filter", "ignore"),
        help="the FGD authors' policies: memory as a hard filter, or not modelled at all",
    )
    trace.add_argument("--seeds", type=parse_seeds, default=parse_seeds("42-51"))
    trace.add_argument("--demand", type=float, default=1.3, help="arrived GPU demand / capacity")
    trace.add_argument("--implementation", default="compiled", choices=IMPLEMENTATIONS)
    trace.add_argument("--json", action="store_true", help="print the report as JSON")
    compare = commands.add_parser(
        "compare", help="suanli vs the FGD authors' policies on every pod list of a trace dir"
    )
    compare.add_argument("--trace-dir", required=True, help="directory of the openb CSV files")
    compare.add_argument(
        "--policies",
        default="fragmentation_aware,fgd,authors_best_fit,dot_product,gpu_packing,random",
        help="comma-separated policy names",
    )
    compare.add_argument("--lists", default="", help="comma-separated pod lists (default: all)")
    compare.add_argument("--seeds", type=parse_seeds, default=parse_seeds("42-51"))
    compare.add_argument("--memory", default="filter", choices=("filter", "ignore"))
    compare.add_argument("--json-out", help="also write the results as JSON to this file")
    jobs = commands.add_parser(
        "jobs", help="job-level replay: queueing, quotas, gangs; FIFO, best-fit, Kueue, suanli"
    )
    jobs.add_argument("--trace-dir", required=True, help="directory of the openb CSV files")
    jobs.add_argument("--pods", default="openb_pod_list_default.csv", help="pod list in it")
    jobs.add_argument("--runtimes", required=True, help="philly_runtime.csv (run times, s)")
    jobs.add_argument("--model", default="G2", help="GPU model of the nodes to use")
    jobs.add_argument("--nodes", type=int, default=32, help="how many nodes of that model")
    jobs.add_argument("--jobs", type=int, default=2000)
    jobs.add_argument("--load", type=float, default=1.3, help="offered GPU load / capacity")
    jobs.add_argument("--max-runtime", type=float, default=21_600.0, help="seconds")
    jobs.add_argument("--seed", type=int, default=1)
    jobs.add_argument(
        "--schedulers",
        default="fifo,best_fit,kueue,suanli",
        help="comma-separated; suanli:N runs suanli with max_overtakes N",
    )
    jobs.add_argument("--max-overtakes", type=int, default=8, help="suanli's bound (operator: 8)")
    jobs.add_argument("--plots", help="write PNG plots into this directory")
    jobs.add_argument("--json-out", help="also write the summaries as JSON to this file")
    args = parser.parse_args(argv)
    try:
        if args.command == "compare":
            return _compare(args)
        if args.command == "jobs":
            return _jobs(args)
        report = run_trace(args)
    except (OSError, ValueError) as error:
        print(f"suanli-sim: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
    return 0


def _jobs(args: argparse.Namespace) -> int:
    from suanli.sim import jobreplay

    trace_dir = Path(args.trace_dir)
    nodes = [n for n in read_nodes(trace_dir / "openb_node_list_gpu_node.csv") if n.gpus]
    nodes = [n for n in nodes if n.model == args.model][: args.nodes]
    if not nodes:
        raise ValueError(f"--model: no node of model {args.model!r} in {trace_dir}")
    pods_path = trace_dir / args.pods
    workload = jobreplay.make_workload(
        nodes,
        read_pods(pods_path),
        jobreplay.arrival_gaps(pods_path),
        jobreplay.read_runtimes(Path(args.runtimes)),
        jobs=args.jobs,
        seed=args.seed,
        load=args.load,
        max_runtime=args.max_runtime,
    )
    results = []
    summaries: dict[str, dict[str, float]] = {}
    for spec in [s for s in args.schedulers.split(",") if s]:
        name, _, bound = spec.partition(":")  # "suanli:64": suanli with max_overtakes 64
        started = time.perf_counter()
        result = jobreplay.replay_jobs(
            workload, name, max_overtakes=int(bound) if bound else args.max_overtakes
        )
        result.scheduler = spec
        summary = result.summary()
        summary["seconds"] = round(time.perf_counter() - started, 1)
        summaries[spec] = summary
        results.append(result)
        print(f"{spec}: {summary}", flush=True)
    print(
        f"\n{len(nodes)} × {args.model} nodes ({workload.capacity_milli // 1000} GPUs), "
        f"{args.jobs} jobs, load {args.load}, seed {args.seed}, "
        f"max_overtakes {args.max_overtakes}\n"
    )
    print(jobreplay.format_summaries(summaries))
    if args.plots:
        from suanli.sim.plots import plot_replay

        for path in plot_replay(results, Path(args.plots)):
            print(f"wrote {path}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summaries, indent=2) + "\n", encoding="utf-8")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from suanli.sim.compare import format_table, run_compare, write_json

    policies = [p for p in args.policies.split(",") if p]
    known = [p.value for p in Policy] + list(AUTHORS_POLICIES)
    for policy in policies:
        if policy not in known:
            raise ValueError(f"--policies: unknown policy {policy!r} (known: {', '.join(known)})")

    def run(nodes: list[TraceNode], pods: list[TracePod], policy: str, seed: int) -> SeedResult:
        return run_policy(nodes, pods, policy, seed, memory=args.memory)

    results = run_compare(
        Path(args.trace_dir),
        policies,
        args.seeds,
        run,
        [name for name in args.lists.split(",") if name],
        progress=lambda r: print(f"{r.pod_list}: {r.mean_130} ({r.seconds} s)", flush=True),
    )
    print(f"\nallocation at 130 % demand, seeds {args.seeds}, memory={args.memory}")
    print("(in brackets: the FGD authors' published mean for the same policy and list)\n")
    print(format_table(results, policies))
    if args.json_out:
        write_json(results, Path(args.json_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
