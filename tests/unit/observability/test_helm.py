"""The chart's dashboard ConfigMaps and PrometheusRule render to exactly the generated files.

Rendered with the real helm binary (built by `make tools`, found on PATH or via
`hack/build-tools.sh paths`), in a scratch chart holding only the observability templates, so the
test does not depend on the rest of the chart being finished.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from suanli.observability.alerts import rule_groups
from suanli.observability.dashboards import DASHBOARDS

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "suanli"


def find_helm() -> str | None:
    found = shutil.which("helm")
    if found:
        return found
    paths = subprocess.run(
        ["bash", str(ROOT / "hack" / "build-tools.sh"), "paths"],
        capture_output=True, text=True, check=False, timeout=30,
    ).stdout.split()  # fmt: skip
    candidates = [Path(directory) / "helm" for directory in paths]
    return next((str(path) for path in candidates if path.is_file()), None)


HELM = find_helm()
pytestmark = pytest.mark.skipif(HELM is None, reason="helm not built: run `make tools`")


def render(tmp_path: Path, *settings: str) -> list[dict[str, object]]:
    chart = tmp_path / "suanli"
    (chart / "templates").mkdir(parents=True)
    shutil.copytree(CHART / "dashboards", chart / "dashboards")
    for template in ("grafana-dashboards.yaml", "prometheusrule.yaml"):
        shutil.copy(CHART / "templates" / template, chart / "templates" / template)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: suanli\nversion: 0.1.0\n")
    command = [str(HELM), "template", "demo", str(chart), "--namespace", "centre"]
    command += ["--kube-version", "1.34.0"]
    for setting in settings:
        command += ["--set", setting]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_nothing_renders_unless_enabled(tmp_path: Path) -> None:
    assert render(tmp_path) == []


def test_prometheus_rule_renders_the_generated_rules_verbatim(tmp_path: Path) -> None:
    [rule] = render(
        tmp_path,
        "monitoring.prometheusRule.enabled=true",
        "monitoring.prometheusRule.labels.release=kube-prometheus-stack",
    )
    assert rule["kind"] == "PrometheusRule"
    metadata = rule["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["namespace"] == "centre"
    assert metadata["labels"]["release"] == "kube-prometheus-stack"
    # {{ $labels.quota }} survives Helm: the annotations are exactly the generated ones.
    assert rule["spec"] == rule_groups()


def test_dashboards_render_as_sidecar_configmaps(tmp_path: Path) -> None:
    maps = render(tmp_path, "monitoring.grafanaDashboards.enabled=true")
    assert len(maps) == len(DASHBOARDS)
    by_file = {}
    for config_map in maps:
        assert config_map["kind"] == "ConfigMap"
        metadata = config_map["metadata"]
        assert isinstance(metadata, dict)
        assert metadata["labels"]["grafana_dashboard"] == "1"
        assert metadata["namespace"] == "centre"
        data = config_map["data"]
        assert isinstance(data, dict)
        by_file.update(data)
    for spec in DASHBOARDS:
        committed = (CHART / "dashboards" / spec.filename).read_text(encoding="utf-8")
        assert json.loads(by_file[spec.filename]) == json.loads(committed)


def test_dashboard_label_and_namespace_are_configurable(tmp_path: Path) -> None:
    maps = render(
        tmp_path,
        "monitoring.grafanaDashboards.enabled=true",
        "monitoring.grafanaDashboards.namespace=grafana",
        "monitoring.grafanaDashboards.label=dashboards",
        "monitoring.grafanaDashboards.labelValue=suanli",
    )
    for config_map in maps:
        metadata = config_map["metadata"]
        assert isinstance(metadata, dict)
        assert metadata["namespace"] == "grafana"
        assert metadata["labels"]["dashboards"] == "suanli"
