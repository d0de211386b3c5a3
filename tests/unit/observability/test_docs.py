from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from suanli.metrics import HubMetrics, Metrics
from suanli.metrics.collector import ClusterStateCollector
from suanli.metrics.hub import HubStateCollector
from tests.unit.metrics.fakes import FakeSource

ROOT = Path(__file__).resolve().parents[3]


def test_every_metric_is_documented() -> None:
    text = (ROOT / "docs" / "observability.md").read_text(encoding="utf-8")
    metrics = Metrics(version="docs", registry=CollectorRegistry())
    families = [family for family in metrics.registry.collect()]
    families += list(ClusterStateCollector(FakeSource()).describe())
    families += [f for f in HubMetrics("docs").registry.collect() if f.name != "suanli_build"]
    families += list(HubStateCollector(FakeSource()).describe())  # type: ignore[arg-type]
    missing = []
    for family in families:
        exposed = {
            "counter": family.name + "_total",
            "info": family.name + "_info",
        }.get(family.type, family.name)
        if f"`{exposed}`" not in text:
            missing.append(exposed)
    assert len(families) > 30
    assert not missing, f"docs/observability.md does not mention {missing}"
