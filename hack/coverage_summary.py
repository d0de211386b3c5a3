#!/usr/bin/env python3
"""Print branch coverage per package from the combined data of ``make coverage``.

Why per package: the targets differ (the pure packages >= 90 %, the controller >= 80 %), and a
single total hides a package that is barely tested behind one that is tested thoroughly.
The figure counts statements and branches together, as coverage.py's own total does.
``--check`` fails when a package with a target is below it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RCFILE = ROOT / "hack" / "coverage.ini"
TARGETS = {
    "suanli.placement": 90.0,
    "suanli.scheduling": 90.0,
    "suanli.sim": 90.0,
    "suanli.workload": 90.0,
    "suanli.controller": 80.0,
}


def package_of(path: str) -> str:
    parts = Path(path).with_suffix("").parts
    index = parts.index("suanli")
    rest = parts[index:]
    return ".".join(rest[:2]) if len(rest) > 2 else "suanli"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "build" / "coverage" / "data")
    parser.add_argument("--check", action="store_true", help="fail below a package's target")
    args = parser.parse_args()
    report = args.data.parent / "coverage.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "coverage",
            "json",
            f"--rcfile={RCFILE}",
            f"--data-file={args.data}",
            "-o",
            str(report),
            "-q",
        ],
        check=True,
        cwd=ROOT,
    )
    files = json.loads(report.read_text(encoding="utf-8"))["files"]
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for path, data in files.items():
        summary = data["summary"]
        row = totals[package_of(path)]
        row[0] += summary["num_statements"]
        row[1] += summary["covered_lines"]
        row[2] += summary["num_branches"]
        row[3] += summary["covered_branches"]
    failed = []
    print(f"{'package':24} {'statements':>10} {'branches':>9} {'covered':>8} {'target':>7}")
    for package in sorted(totals):
        statements, lines, branches, covered_branches = totals[package]
        total = statements + branches
        percent = 100.0 * (lines + covered_branches) / total if total else 100.0
        target = TARGETS.get(package)
        mark = ""
        if target is not None:
            mark = f"{target:6.0f}%" + ("" if percent >= target else "  BELOW")
            if percent < target:
                failed.append(package)
        print(f"{package:24} {statements:10} {branches:9} {percent:7.1f}% {mark}")
    if failed and args.check:
        print(f"coverage: below target: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
