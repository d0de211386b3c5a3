"""``kubectl suanli centres``: the rows read from a hub's ComputeCentres and hub jobs, and how
they print (no cluster)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from suanli.cli.render import Output, print_views
from suanli.cli.views import centres_view, hub_queue_view

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def centre(name: str, state: str | None, classes: list[dict[str, Any]], **spec: Any) -> Any:
    status: dict[str, Any] = {"state": state, "message": "answering", "jobs": 1}
    if state is not None:
        status |= {"lastContact": "2025-12-31T23:59:58Z", "classes": classes}
    return {
        "metadata": {"name": name},
        "spec": {"region": name, "labels": {"vendors": "huawei"}, **spec},
        "status": status if state is not None else None,
    }


ASCEND = {
    "acceleratorClass": "ascend-910b",
    "devices": 16,
    "freeDevices": 8,
    "capacityPFLOPS": 5.12,
    "freePFLOPS": 2.56,
}
H100 = {
    "acceleratorClass": "nvidia-h100",
    "devices": 8,
    "freeDevices": 0,
    "capacityPFLOPS": 7.912,
    "freePFLOPS": 0.0,
}
CENTRES = [
    centre("wuhan", "Reachable", [ASCEND], pricePerPFLOPHour=2.0),
    centre("nanjing", "Unreachable", [ASCEND, H100], outOfService=True),
    centre("xian", None, []),
]
JOBS = [
    {
        "metadata": {
            "name": "big",
            "namespace": "team-a",
            "creationTimestamp": "2025-12-31T23:58:00Z",
        },
        "spec": {"replicas": 4, "accelerators": [{"acceleratorClass": "ascend-910b"}]},
        "status": {
            "phase": "Queued",
            "reason": "QuotaExceeded",
            "message": "waiting for 4 × ascend-910b: hub quota team-a has 0 of 16 free",
            "quota": "team-a",
        },
    },
    {
        "metadata": {"name": "running", "namespace": "team-a"},
        "spec": {"accelerators": [{"acceleratorClass": "ascend-910b"}]},
        "status": {"phase": "Running", "centre": "wuhan"},
    },
]


def test_one_row_per_centre_and_class_in_devices_and_pflops() -> None:
    rows = centres_view(CENTRES, NOW).rows
    assert [(r["centre"], r["class"]) for r in rows] == [
        ("nanjing", "ascend-910b"),
        ("nanjing", "nvidia-h100"),
        ("wuhan", "ascend-910b"),
        ("xian", None),  # never reached: still listed
    ]
    wuhan = rows[2]
    assert wuhan["state"] == "Reachable" and wuhan["lastContact"] == "2s ago"
    assert (wuhan["devices"], wuhan["free"], wuhan["pflops"], wuhan["freePFLOPS"]) == (
        16,
        8,
        5.12,
        2.56,
    )
    assert wuhan["price"] == 2.0 and wuhan["jobs"] == 1
    assert rows[0]["outOfService"] is True and rows[2]["outOfService"] is False
    assert rows[3]["state"] == "Unknown" and rows[3]["lastContact"] == "never"


def test_the_queue_lists_only_jobs_without_a_centre() -> None:
    rows = hub_queue_view(JOBS, NOW).rows
    assert rows == [
        {
            "namespace": "team-a",
            "name": "big",
            "quota": "team-a",
            "options": "4×1 ascend-910b",
            "reason": "QuotaExceeded",
            "age": "2m0s",
            "message": "waiting for 4 × ascend-910b: hub quota team-a has 0 of 16 free",
        }
    ]


def test_both_tables_print_the_kubectl_way(capsys: pytest.CaptureFixture[str]) -> None:
    print_views([centres_view(CENTRES, NOW), hub_queue_view(JOBS, NOW)], Output.TABLE, "none")
    out = capsys.readouterr().out
    tables = out.split("\n\n")
    assert len(tables) == 2
    header = tables[0].splitlines()[0].split()
    assert header == [
        "CENTRE",
        "REGION",
        "STATE",
        "LAST-CONTACT",
        "CLASS",
        "DEVICES",
        "FREE",
        "PFLOPS",
        "FREE-PFLOPS",
        "PRICE",
        "JOBS",
    ]
    assert "wuhan" in tables[0] and "7.912" in tables[0] and "<none>" in tables[0]
    assert tables[1].splitlines()[0].split() == [
        "NAMESPACE",
        "NAME",
        "HUB-QUOTA",
        "OPTIONS",
        "REASON",
        "AGE",
    ]
    assert "QuotaExceeded" in tables[1]


def test_json_is_one_list_of_both_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    print_views([centres_view(CENTRES, NOW), hub_queue_view(JOBS, NOW)], Output.JSON, "none")
    document = json.loads(capsys.readouterr().out)
    assert document["kind"] == "List"
    kinds = [item["kind"] for item in document["items"]]
    assert kinds == ["CentreCapacity"] * 4 + ["HubQueueEntry"]


def test_no_centre_says_so_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    print_views([centres_view([], NOW), hub_queue_view([], NOW)], Output.TABLE, "No centre.")
    captured = capsys.readouterr()
    assert captured.out == "" and "No centre." in captured.err
