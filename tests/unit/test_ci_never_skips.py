"""The suite-wide rule of tests/conftest.py: under CI=true a skip fails, xfail stays xfail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = """
import pytest

@pytest.mark.skipif(True, reason="trace missing")
def test_marked_skip():
    pass

def test_skip_in_body():
    pytest.skip("helm missing")

@pytest.mark.xfail(reason="known", strict=True)
def test_expected_failure():
    assert False

def test_plain():
    pass
"""


def run_sample(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rA",
            str(tmp_path / "test_sample.py"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_under_ci_every_skip_fails_naming_its_reason(tmp_path: Path) -> None:
    result = run_sample(tmp_path, "true")
    assert result.returncode == 1, result.stdout
    summary = result.stdout.strip().splitlines()[-1]
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in summary, result.stdout
    assert "skipped under CI=true, which must run every test: Skipped: trace missing" in (
        result.stdout
    )
    assert "Skipped: helm missing" in result.stdout


def test_outside_ci_skips_stay_skips(tmp_path: Path) -> None:
    result = run_sample(tmp_path, None)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 2 skipped, 1 xfailed" in result.stdout.strip().splitlines()[-1]
