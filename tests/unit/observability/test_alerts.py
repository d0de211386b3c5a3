"""Alerts: complete annotations, a runbook section each, promtool cases for each."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from suanli.observability.alerts import ALERTS, RUNBOOK_BASE_URL, AlertRule, rule_groups

ROOT = Path(__file__).resolve().parents[3]
RUNBOOKS = ROOT / "docs" / "runbooks.md"
PROMTOOL_TESTS = sorted((ROOT / "tests" / "promtool").glob("*.test.yaml"))
ALERT_NAMES = [alert.name for alert in ALERTS]


def github_anchor(heading: str) -> str:
    """How GitHub turns a Markdown heading into an anchor."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def test_the_issue_asks_for_these_alerts() -> None:
    assert set(ALERT_NAMES) == {
        "SuanliJobPendingTooLong",
        "SuanliQuotaExhaustedWhileDemandWaits",
        "SuanliFragmentationHigh",
        "SuanliNoActiveOperator",
        "SuanliSchedulingCycleSlow",
        "SuanliKubernetesAPIErrors",
        "SuanliNodesLost",
        "SuanliCentreUnreachable",
    }
    assert len(set(ALERT_NAMES)) == len(ALERT_NAMES)


@pytest.mark.parametrize("alert", ALERTS, ids=ALERT_NAMES)
def test_every_alert_has_its_runbook_section(alert: AlertRule) -> None:
    anchors = {
        github_anchor(line.lstrip("#"))
        for line in RUNBOOKS.read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    }
    assert alert.runbook_anchor in anchors
    assert alert.runbook_url == f"{RUNBOOK_BASE_URL}#{alert.runbook_anchor}"


def test_every_runbook_section_belongs_to_an_alert() -> None:
    headings = [
        line[3:].strip()
        for line in RUNBOOKS.read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    ]
    assert sorted(headings) == sorted(ALERT_NAMES)


def test_rules_carry_severity_summary_description_and_runbook() -> None:
    for rule in rule_groups()["groups"][0]["rules"]:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}


def _alert_cases() -> dict[str, dict[str, int]]:
    cases: dict[str, dict[str, int]] = {name: {"firing": 0, "silent": 0} for name in ALERT_NAMES}
    for path in PROMTOOL_TESTS:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for test in document["tests"]:
            for case in test.get("alert_rule_test", []):
                kind = "firing" if case.get("exp_alerts") else "silent"
                cases.setdefault(case["alertname"], {"firing": 0, "silent": 0})[kind] += 1
    return cases


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_promtool_has_a_firing_and_a_not_yet_firing_case(name: str) -> None:
    assert PROMTOOL_TESTS, "no tests/promtool/*.test.yaml"
    cases = _alert_cases()[name]
    assert cases["firing"] >= 1, f"{name}: no promtool case where it fires"
    assert cases["silent"] >= 1, f"{name}: no promtool case where it must not fire yet"


def test_promtool_tests_name_no_unknown_alert() -> None:
    assert set(_alert_cases()) == set(ALERT_NAMES)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "PendingTooLong"}, "AlertRule.name"),
        ({"for_": "five minutes"}, "AlertRule.for_"),
        ({"severity": "page"}, "AlertRule.severity"),
        ({"summary": " "}, "AlertRule.summary"),
    ],
)
def test_bad_alert_definitions_fail_naming_the_field(change: dict[str, str], field: str) -> None:
    values = {
        "name": "SuanliExample",
        "expr": "vector(1)",
        "for_": "5m",
        "severity": "warning",
        "summary": "s",
        "description": "d",
    }
    values.update(change)
    with pytest.raises(ValueError, match=field):
        AlertRule(**values)  # type: ignore[arg-type]
