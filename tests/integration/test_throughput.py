"""The throughput benchmark at a small size, for correctness only (``make bench-scale`` runs the
real sizes): kube-scheduler and suanli bind the same pods on the same kwok nodes in one run, and
every pod must be bound exactly once, one pod per replica, with no node over its devices, CPU or
memory. The figures are printed, never asserted: timing on a shared machine proves nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import scale_bench

pytestmark = pytest.mark.integration

NODES, PODS = 48, 96


@pytest.mark.timeout(900)
def test_every_pod_bound_once_by_both_schedulers(tmp_path: Path) -> None:
    result, problems = scale_bench.run(NODES, PODS, tmp_path / "cluster", timeout=300)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=2))
    assert problems == []
    assert result["pods"] == PODS
    assert result["nodes"] == NODES
    assert result["cycles"] > 0
    assert result["operator_peak_rss_mb"] > 0
