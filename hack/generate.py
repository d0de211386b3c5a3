#!/usr/bin/env python3
"""Write (or, with --check, verify) every generated file in the repository.

Each generator module exposes ``generated_files() -> dict[str, str]`` mapping a path relative to
the repository root to its full text. One source, many artifacts: the pydantic models produce
the CRDs and their chart/deploy copies; the observability code produces dashboards and alerts.
``--check`` fails, naming each drifted file, when a committed artifact differs from its source.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATORS = ("suanli.api.generate", "suanli.observability.generate", "suanli.cli.reference")


def collect() -> dict[str, str]:
    files: dict[str, str] = {}
    for name in GENERATORS:
        module = importlib.import_module(name)
        for path, text in module.generated_files().items():
            if path in files:
                raise SystemExit(f"generate: {path} is produced by two generators")
            files[path] = text
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail on drift instead of writing")
    args = parser.parse_args()
    drifted = []
    for rel, text in sorted(collect().items()):
        target = ROOT / rel
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        if args.check:
            drifted.append(rel)
            diff = difflib.unified_diff(
                (current or "").splitlines(),
                text.splitlines(),
                f"{rel} (committed)",
                f"{rel} (generated)",
                lineterm="",
                n=1,
            )
            print("\n".join(list(diff)[:20]), file=sys.stderr)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            print(f"wrote {rel}")
    if drifted:
        print(
            f"\ngenerated files out of date ({len(drifted)}): run `make generate`", file=sys.stderr
        )
        for rel in drifted:
            print(f"  {rel}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "operator"))
    sys.exit(main())
