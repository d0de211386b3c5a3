#!/usr/bin/env python3
"""Mutation testing of the pure packages with mutmut, in a private copy of the tree.

Why a copy: mutmut writes mutated sources next to the tests it runs, and several people (and CI)
share this working tree; the run happens under ``build/mutation/`` and never touches
``operator/``. mutmut expects the code under ``src/``, so the copy is laid out that way, and it
selects for every mutant only the unit tests that call the mutated function.

Each package runs in its own copy against its own unit tests. Usage: ``hack/mutation.py``
(every mutant) or ``hack/mutation.py --sample 0.1 --seed 17`` (a fixed-seed sample of each
package). Prints killed / survived / timeout per package and writes the surviving mutants'
names and diffs to ``build/mutation/survivors.txt``.
``--fail-under`` makes the exit status fail when a package's kill rate is below it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "operator" / "suanli"

# package (as reported) -> (source paths relative to operator/suanli, unit-test directories)
TARGETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "suanli.scheduling": (("scheduling",), ("tests/unit/scheduling",)),
    # the twin-agreement tests compare the compiled core with it on every decision
    "suanli.placement.reference": (("placement/reference.py",), ("tests/unit/placement",)),
    "suanli.workload": (("workload",), ("tests/unit/workload",)),
    # the controller's pure modules, when they are in the tree
    "suanli.controller.lifecycle": (
        ("controller/lifecycle.py",),
        (
            "tests/unit/controller/test_lifecycle.py",
            "tests/unit/controller/test_lifecycle_messages.py",
        ),
    ),
    "suanli.controller.validate": (
        ("controller/validate.py",),
        (
            "tests/unit/controller/test_validate.py",
            "tests/unit/controller/test_validate_details.py",
            "tests/unit/controller/test_validate_boundaries.py",
            "tests/unit/controller/test_validate_hub.py",
        ),
    ),
}

# directories of the tree, besides operator/suanli and the tests, that tests read
DATA = ("deploy/catalogue",)

# mutmut's exit-code vocabulary (mutmut.stats.status_by_exit_code), folded into our columns
KILLED, SURVIVED, TIMEOUT, NO_TESTS, OTHER = "killed", "survived", "timeout", "no tests", "other"
NOT_RUN = "not run"
STATUS = {1: KILLED, 3: KILLED, 0: SURVIVED, 36: TIMEOUT, 24: TIMEOUT, -24: TIMEOUT}
STATUS |= {152: TIMEOUT, 255: TIMEOUT, 33: NO_TESTS, 5: NO_TESTS, 37: KILLED}


def present_targets() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    return {
        name: (paths, tests)
        for name, (paths, tests) in TARGETS.items()
        if all((SOURCE / p).exists() for p in paths)
    }


def prepare(work: Path, paths: tuple[str, ...], tests: tuple[str, ...]) -> None:
    if work.exists():
        shutil.rmtree(work)
    ignore = shutil.ignore_patterns("__pycache__", "*.c", "*.html")
    shutil.copytree(SOURCE, work / "src" / "suanli", ignore=ignore)
    for rel in ("tests/__init__.py", "tests/unit/__init__.py", "tests/conftest.py"):
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, work / rel)
    # data the tests read from the tree: the shipped catalogue (the validation corpus and the
    # operator-path tests validate against deploy/catalogue/*.yaml)
    for rel in DATA:
        shutil.copytree(ROOT / rel, work / rel, ignore=ignore, dirs_exist_ok=True)
    for rel in tests:  # a test file is copied with its directory (conftest, helpers, data)
        directory = Path(rel) if (ROOT / rel).is_dir() else Path(rel).parent
        shutil.copytree(ROOT / directory, work / directory, ignore=ignore, dirs_exist_ok=True)
    only = [f"src/suanli/{p}" + ("" if p.endswith(".py") else "/*") for p in paths]
    (work / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\n"
        'addopts = "-p no:cacheprovider -q"\n'
        'filterwarnings = ["error"]\n'
        "timeout = 600\n"
        '\n[tool.mutmut]\nsource_paths = ["src"]\n'
        f"only_mutate = {json.dumps(only)}\n"
        f"also_copy = {json.dumps(list(DATA))}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(list(tests))}\n"
        'pytest_add_cli_args = ["-x"]\n'
        "use_git_change_detection = false\n"
        "timeout_multiplier = 10.0\n",
        encoding="utf-8",
    )


def mutmut(work: Path, args: list[str], jobs: int, quiet: bool = False) -> str:
    """Run mutmut; returns the end of its output when ``quiet`` (its progress spinner would
    fill a CI log), shown only if the run produced no results."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *args]
    if not quiet:
        subprocess.run(command, cwd=work, env=env, check=False)
        return ""
    done = subprocess.run(
        command, cwd=work, env=env, check=False, capture_output=True, text=True, errors="replace"
    )
    return "\n".join((done.stdout + done.stderr).replace("\r", "\n").splitlines()[-40:])


def results(work: Path) -> dict[str, int | None]:
    found: dict[str, int | None] = {}
    for meta in sorted((work / "mutants").rglob("*.meta")):
        found |= json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=float, default=1.0, help="fraction of mutants to run")
    parser.add_argument("--seed", type=int, default=17, help="seed of the sample")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once")
    parser.add_argument("--fail-under", type=float, default=0.0, help="minimum kill % per package")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "mutation")
    parser.add_argument("--packages", nargs="*", help="only these packages (default: all)")
    parser.add_argument(
        "--report", action="store_true", help="tabulate an earlier (or interrupted) run only"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep a package's generated mutants and test map"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no mutmut progress output (shown only on errors)"
    )
    args = parser.parse_args()
    table: dict[str, Counter[str]] = {}
    survivors: list[tuple[Path, str, str]] = []
    for package, (paths, tests) in present_targets().items():
        if args.packages and package not in args.packages:
            continue
        work = args.work / package
        reuse = args.reuse and (work / "mutants" / "mutmut-stats.json").exists()
        output = ""
        if not (args.report or reuse):
            prepare(work, paths, tests)
            # First pass: generate the mutants and map each function to the tests that call
            # it. A name that matches nothing stops mutmut right after that, running no mutant.
            output = mutmut(work, ["suanli.no_such_module.x_none__mutmut_1"], args.jobs, args.quiet)
        every = sorted(results(work)) if work.exists() else []
        if not every:
            if args.report:
                continue
            print(f"mutation: mutmut generated no mutants for {package}", file=sys.stderr)
            if output:
                print(output, file=sys.stderr)
            return 1
        chosen = every
        if args.sample < 1.0:
            count = max(1, round(len(every) * args.sample))
            chosen = sorted(random.Random(args.seed).sample(every, count))
        print(
            f"mutation: {package}: {len(chosen)} of {len(every)} mutants (seed {args.seed})",
            flush=True,
        )
        if not args.report:
            mutmut(work, chosen, args.jobs, args.quiet)
        outcome = results(work)
        counts: Counter[str] = Counter()
        for name in chosen:
            if outcome.get(name) is None:
                counts[NOT_RUN] += 1
                continue
            status = STATUS.get(outcome.get(name), OTHER)  # type: ignore[arg-type]
            counts[status] += 1
            if status in (SURVIVED, NO_TESTS, OTHER):
                survivors.append((work, name, status))
        table[package] = counts

    failed = False
    print(
        f"\n{'package':30} {'mutants':>7} {'killed':>7} {'survived':>8} {'timeout':>7} "
        f"{'no tests':>8} {'killed %':>8} {'not run':>7}"
    )
    for package, counts in table.items():
        total = sum(counts.values()) - counts[NOT_RUN]
        # a timeout is a detected mutant (the tests never finished): counted with the killed
        rate = 100.0 * (counts[KILLED] + counts[TIMEOUT]) / total if total else 100.0
        failed |= rate < args.fail_under
        print(
            f"{package:30} {total:7} {counts[KILLED]:7} {counts[SURVIVED]:8} "
            f"{counts[TIMEOUT]:7} {counts[NO_TESTS]:8} {rate:7.1f}% {counts[NOT_RUN]:7}"
        )
    report = args.work / "survivors.txt"
    with report.open("w", encoding="utf-8") as out:
        for work, name, status in survivors:
            diff = subprocess.run(
                [sys.executable, "-m", "mutmut", "show", name],
                cwd=work,
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            out.write(f"# {name}: {status}\n{diff.stdout}\n")
    print(f"\nmutation: {len(survivors)} surviving mutants listed in {report}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
