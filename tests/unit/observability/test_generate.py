"""The generated files: committed copies in sync, and shaped as Grafana and Prometheus expect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from suanli.observability.alerts import prometheus_rule, rule_groups
from suanli.observability.dashboards import DASHBOARDS
from suanli.observability.generate import generated_files

ROOT = Path(__file__).resolve().parents[3]
FILES = generated_files()
OWNED = (
    "deploy/monitoring/",
    "charts/suanli/dashboards/",
    "charts/suanli/templates/prometheusrule.yaml",
    "charts/suanli/templates/grafana-dashboards.yaml",
)


@pytest.mark.parametrize("path", sorted(FILES))
def test_committed_file_matches_its_source(path: str) -> None:
    committed = ROOT / path
    assert committed.exists(), f"{path} missing: run `make generate`"
    assert committed.read_text(encoding="utf-8") == FILES[path], f"{path} drifted: `make generate`"


def test_generation_is_deterministic_and_stays_in_its_directories() -> None:
    assert generated_files() == FILES
    assert all(path.startswith(OWNED) for path in FILES)


def test_four_dashboards_with_unique_uids_and_panel_ids() -> None:
    uids = set()
    for spec in DASHBOARDS:
        dashboard = json.loads(FILES[f"deploy/monitoring/dashboards/{spec.filename}"])
        assert (
            FILES[f"charts/suanli/dashboards/{spec.filename}"]
            == json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        )
        uids.add(dashboard["uid"])
        ids = [panel["id"] for panel in dashboard["panels"] if panel["type"] != "row"]
        assert len(ids) == len(set(ids))
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            ref_ids = [target["refId"] for target in panel["targets"]]
            assert ref_ids and len(ref_ids) == len(set(ref_ids)), panel["title"]
            assert panel["gridPos"]["w"] <= 24
    assert uids == {
        "suanli-centre-overview",
        "suanli-tenants",
        "suanli-scheduler-health",
        "suanli-compute-network",
    }


def test_rules_file_and_prometheus_rule_carry_the_same_groups() -> None:
    rules = yaml.safe_load(FILES["deploy/monitoring/suanli-rules.yaml"])
    manifest = yaml.safe_load(FILES["deploy/monitoring/prometheusrule.yaml"])
    assert rules == rule_groups()
    assert manifest == prometheus_rule()
    assert manifest["spec"] == rules
    assert manifest["kind"] == "PrometheusRule"
