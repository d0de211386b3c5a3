"""Write the figures of the last reliability run (``build/reliability/*.json``, one per item and
version) into docs/reliability.md between its ``figures`` markers. ``make chaos`` runs it."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIGURES = REPO / "build" / "reliability"
DOC = REPO / "docs" / "reliability.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
ORDER = ("crash-points", "control-plane", "two-replicas", "load", "metering")
DETAIL = {
    "crash-points": ("points", "jobs", "points_not_reached"),
    "control-plane": ("recovery_seconds", "leader_while_cut_off", "problems"),
    "two-replicas": (
        "takeover_seconds", "takeover_bound_seconds", "audited_writes", "both_acted",
        "refused_after_handover",
    ),
    "load": (
        "jobs", "tenants", "nodes", "admission_p50_s", "admission_p99_s", "cycle_p50_ms",
        "cycle_p99_ms", "api_requests_per_pod", "peak_rss_mb", "cpu_seconds",
    ),
    "metering": ("faults",),
}  # fmt: skip


def table(figures: list[dict[str, object]]) -> str:
    rows = [
        "| item | version | when (UTC) | runs | faults injected | samples | pods seen | "
        "violations | largest metering error (device-s) | details |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for figure in figures:
        item = str(figure["item"])
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(float(str(figure["at"]))))
        details = "; ".join(
            f"{key} {json.dumps(figure[key])}" for key in DETAIL.get(item, ()) if key in figure
        )
        if figure.get("violations"):
            details += "; violations: " + json.dumps(figure.get("violation_examples"))
        rows.append(
            f"| {item} | {figure['version']} | {when} | {figure.get('runs')} | "
            f"{figure.get('faults_injected')} | {figure.get('samples')} | "
            f"{figure.get('pods_seen')} | {figure.get('violations')} | "
            f"{figure.get('metering_largest_error')} | {details.replace('|', '/')} |"
        )
    return "\n".join(rows)


def main() -> int:
    figures = [json.loads(p.read_text()) for p in sorted(FIGURES.glob("*.json"))]
    if not figures:
        print(f"no figures in {FIGURES}: run the reliability suite first", file=sys.stderr)
        return 1
    figures.sort(key=lambda f: (ORDER.index(f["item"]) if f["item"] in ORDER else 99, f["version"]))
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        print(f"{DOC} has no {BEGIN} … {END} block", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{table(figures)}\n{END}{tail}")
    print(f"wrote {len(figures)} figures into {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
