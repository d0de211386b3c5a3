"""Same-run comparison: our placement core against the FGD authors' policies on every pod list.

Why: the issue asks for suanli and FGD side by side on the same simulator and the same draws,
and for each re-implemented policy to be checked against the authors' published mean. The pod
lists in ``../shared`` are a sample of a larger family, so they are split once, here, into a
*tune* half (the lists the placement core's constants and this simulator's choices were looked
at on) and a *report* half (lists whose result is read, never tuned on); every table says which
half a list is in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from suanli.sim.replay import SeedResult
from suanli.sim.trace import TraceNode, TracePod, read_nodes, read_pods

TUNE_LISTS = (
    "openb_pod_list_default",
    "openb_pod_list_cpu050",
    "openb_pod_list_cpu200",
    "openb_pod_list_gpushare40",
    "openb_pod_list_gpuspec10",
    "openb_pod_list_multigpu20",
    "openb_pod_list_multigpu40",
    "openb_pod_list_cpu0",
    "openb_pod_list_cpu072",
    "openb_pod_list_gpushare20",
)
"""The tune half: the default list and cpu200 (where the core's constants were tuned), and, to
make ten, one list of each family picked before any result of this comparison was seen."""

OURS = "fragmentation_aware"

Runner = Callable[[list[TraceNode], list[TracePod], str, int], SeedResult]


@dataclass(slots=True)
class ListResult:
    pod_list: str
    half: str
    seeds: list[int]
    mean_130: dict[str, float] = field(default_factory=dict)
    per_seed_130: dict[str, list[float]] = field(default_factory=dict)
    published_130: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def lead(self) -> float | None:
        """Our mean minus the re-implemented FGD's, at 130 % demand (points)."""
        if OURS in self.mean_130 and "fgd" in self.mean_130:
            return self.mean_130[OURS] - self.mean_130["fgd"]
        return None


def half_of(pod_list: str) -> str:
    return "tune" if pod_list in TUNE_LISTS else "report"


def compare_list(
    nodes: list[TraceNode],
    pods_path: Path,
    policies: Sequence[str],
    seeds: Sequence[int],
    run: Runner,
    published: dict[str, dict[str, float]],
) -> ListResult:
    pods = read_pods(pods_path)
    result = ListResult(pods_path.stem, half_of(pods_path.stem), list(seeds))
    for policy in policies:
        started = time.perf_counter()
        values = [run(nodes, pods, policy, seed).alloc_pct[130] for seed in seeds]
        result.seconds[policy] = round(time.perf_counter() - started, 1)
        result.per_seed_130[policy] = [round(v, 3) for v in values]
        result.mean_130[policy] = round(sum(values) / len(values), 3)
    from suanli.sim.policies import PUBLISHED_NAMES

    for policy in policies:
        label = PUBLISHED_NAMES.get(policy)
        if label and label in published:
            result.published_130[policy] = published[label]["130"]
    return result


def format_table(results: Sequence[ListResult], policies: Sequence[str]) -> str:
    """Markdown: per list, each policy's mean at 130 % (published mean in brackets), and Δ."""
    header = ["pod list", "half", *policies, "suanli − FGD"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in results:
        cells = [r.pod_list.removeprefix("openb_pod_list_"), r.half]
        for policy in policies:
            value = r.mean_130.get(policy)
            text = "—" if value is None else f"{value:.2f}"
            if policy in r.published_130:
                text += f" ({r.published_130[policy]:.2f})"
            cells.append(text)
        lead = r.lead
        cells.append("—" if lead is None else f"{lead:+.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_compare(
    trace_dir: Path,
    policies: Sequence[str],
    seeds: Sequence[int],
    run: Runner,
    lists: Sequence[str] = (),
    progress: Callable[[ListResult], None] | None = None,
) -> list[ListResult]:
    from suanli.sim.cli import fgd_reference

    nodes = read_nodes(trace_dir / "openb_node_list_gpu_node.csv")
    paths = sorted(trace_dir.glob("openb_pod_list_*.csv"))
    if lists:
        wanted = {name if name.startswith("openb_") else f"openb_pod_list_{name}" for name in lists}
        paths = [p for p in paths if p.stem in wanted]
        missing = wanted - {p.stem for p in paths}
        if missing:
            raise ValueError(f"--lists: no such pod list in {trace_dir}: {sorted(missing)}")
    if not paths:
        raise ValueError(f"{trace_dir}: no openb_pod_list_*.csv files")
    results = []
    for path in paths:
        result = compare_list(nodes, path, policies, seeds, run, fgd_reference(path))
        results.append(result)
        if progress:
            progress(result)
    return results


def write_json(results: Sequence[ListResult], path: Path) -> None:
    rows = [
        {
            "pod_list": r.pod_list,
            "half": r.half,
            "seeds": r.seeds,
            "mean_130": r.mean_130,
            "per_seed_130": r.per_seed_130,
            "published_130": r.published_130,
            "lead_over_fgd": None if r.lead is None else round(r.lead, 3),
            "seconds": r.seconds,
        }
        for r in results
    ]
    path.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
