"""Markdown tables for docs/simulator.md from ``suanli-sim compare --json-out`` files.

Usage: ``python bench/sim_report.py results-a.json [results-b.json ...]`` prints (1) each of the
FGD authors' policies as re-implemented against their published mean at 130 % demand, and
(2) suanli against the re-implemented FGD on every list, tune half first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

AUTHORS = ("fgd", "authors_best_fit", "dot_product", "gpu_packing", "random")
OURS = "fragmentation_aware"


def load(paths: list[str]) -> dict[str, dict[str, object]]:
    """Rows by pod list; runs of the same policy on other seeds are pooled (mean over seeds)."""
    values: dict[str, dict[str, dict[int, float]]] = {}
    merged: dict[str, dict[str, object]] = {}
    for path in paths:
        for row in json.loads(Path(path).read_text(encoding="utf-8")):
            entry = merged.setdefault(
                row["pod_list"], {"half": row["half"], "mean": {}, "published": {}, "seeds": {}}
            )
            per_list = values.setdefault(row["pod_list"], {})
            for policy, per_seed in row["per_seed_130"].items():
                per_list.setdefault(policy, {}).update(zip(row["seeds"], per_seed, strict=True))
            entry["published"].update(row["published_130"])  # type: ignore[attr-defined]
    for name, per_list in values.items():
        for policy, by_seed in per_list.items():
            merged[name]["mean"][policy] = sum(by_seed.values()) / len(by_seed)  # type: ignore[index]
            merged[name]["seeds"][policy] = sorted(by_seed)  # type: ignore[index]
    return merged


def reproduction(rows: dict[str, dict[str, object]]) -> str:
    lines = [
        "| pod list | " + " | ".join(AUTHORS) + " |",
        "| --- |" + " ---: |" * len(AUTHORS),
    ]
    worst: dict[str, float] = {}
    gaps: dict[str, list[float]] = {}
    for name, entry in sorted(rows.items()):
        mean, published = entry["mean"], entry["published"]
        assert isinstance(mean, dict) and isinstance(published, dict)
        if not published:
            continue
        cells = []
        for policy in AUTHORS:
            if policy in mean and policy in published:
                delta = mean[policy] - published[policy]
                worst[policy] = max(worst.get(policy, 0.0), abs(delta))
                gaps.setdefault(policy, []).append(abs(delta))
                cells.append(f"{mean[policy]:.2f} ({published[policy]:.2f}, {delta:+.2f})")
            else:
                cells.append("—")
        lines.append(f"| {name.removeprefix('openb_pod_list_')} | " + " | ".join(cells) + " |")
    lines.append("| largest gap | " + " | ".join(f"{worst.get(p, 0):.2f}" for p in AUTHORS) + " |")
    mean_gap = [sum(gaps[p]) / len(gaps[p]) if gaps.get(p) else 0.0 for p in AUTHORS]
    lines.append("| mean gap | " + " | ".join(f"{g:.2f}" for g in mean_gap) + " |")
    return "\n".join(lines)


def side_by_side(rows: dict[str, dict[str, object]]) -> str:
    lines = [
        "| pod list | half | seeds | suanli | FGD (re-implemented) | FGD (published) "
        "| suanli − FGD |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    ordered = sorted(rows.items(), key=lambda item: (item[1]["half"] != "tune", item[0]))
    for name, entry in ordered:
        mean, published, seeds = entry["mean"], entry["published"], entry["seeds"]
        assert isinstance(mean, dict) and isinstance(published, dict) and isinstance(seeds, dict)
        if OURS not in mean or "fgd" not in mean:
            continue
        used = seeds["fgd"]
        label = f"{used[0]}–{used[-1]}" if used == list(range(used[0], used[-1] + 1)) else "?"
        pub = f"{published['fgd']:.2f}" if "fgd" in published else "—"
        lines.append(
            f"| {name.removeprefix('openb_pod_list_')} | {entry['half']} | {label} | "
            f"{mean[OURS]:.2f} | {mean['fgd']:.2f} | {pub} | {mean[OURS] - mean['fgd']:+.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    rows = load(argv)
    print(reproduction(rows))
    print()
    print(side_by_side(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
