"""Determinism across processes and hash seeds, not only within one process.

The operator restarts, fails over to a standby replica and is replayed by the simulator: every
one of those is a new process with a new string-hash seed. The same inputs must give the same
decisions, byte for byte, in each of them (see determinism_probe.py for the scenario).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import suanli

from .determinism_probe import trace

REPO = Path(__file__).resolve().parents[3]
SEEDS = ("0", "1", "2654435761")


def run_probe(implementation: str, seed: str) -> str:
    # the subprocess imports suanli from where this process did (a mutation run's copy too)
    source = str(Path(suanli.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=path)
    result = subprocess.run(
        [sys.executable, "-m", "tests.unit.scheduling.determinism_probe", implementation],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("implementation", ["_core", "reference"])
def test_decisions_are_identical_under_every_hash_seed(implementation: str) -> None:
    outputs = {seed: run_probe(implementation, seed) for seed in SEEDS}
    here = "\n".join(trace(implementation)) + "\n"
    first = outputs[SEEDS[0]]
    # the scenario really schedules: admissions, waits and at least one preemption
    assert "Admit(" in first and "Wait(" in first and "Preempt(" in first
    for seed, output in outputs.items():
        assert output == first, f"PYTHONHASHSEED={seed} decided differently from seed {SEEDS[0]}"
    assert here == first, "this process decided differently from the subprocesses"


def test_compiled_core_and_reference_agree_across_processes() -> None:
    assert run_probe("_core", "3") == run_probe("reference", "4")
