"""Prometheus's own tooling judges the rules and every dashboard expression.

Needs promtool (Debian's prometheus package: `sudo bash hack/install-prometheus.sh`); the tests
fail, not skip, without it, because a green suite must mean the rules were really checked.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from suanli.observability.queries import all_expressions

ROOT = Path(__file__).resolve().parents[3]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool not found: run `sudo bash hack/install-prometheus.sh`")
    return found


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    promtool()
    result = subprocess.run(
        ["bash", str(ROOT / "hack" / "promtool-test.sh")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout
    assert "SUCCESS" in result.stdout.split("promtool test rules")[-1]


def test_every_dashboard_expression_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses recording rules with the same PromQL parser as the server (2.42 here).
    uses = [use for use in all_expressions() if use.kind != "alert"]
    rules = [
        {"record": f"suanli:check:{index}", "expr": use.expression}
        for index, use in enumerate(uses)
    ]
    path = tmp_path / "dashboard-expressions.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_promtool_rejects_a_broken_expression(tmp_path: Path) -> None:
    # Guards the test above: promtool really parses what it is given.
    path = tmp_path / "broken.yaml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "r", "expr": "sum(("}]}]})
    )
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
