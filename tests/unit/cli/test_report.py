"""The report's arithmetic, cross-check and rendering (the Prometheus part is integration)."""

from __future__ import annotations

import base64
import csv
import io
import re

import pytest

from suanli.cli.report import (
    SERIES,
    Curve,
    ReportData,
    ReportError,
    folded_hours,
    parse_window,
    plots,
    time_axis,
    to_csv,
    to_html,
    usage_rows,
)
from suanli.metrics import all_series_names

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_every_series_the_report_reads_is_one_the_operator_exposes() -> None:
    assert set(SERIES) <= all_series_names()


@pytest.mark.parametrize(
    ("text", "seconds"), [("30d", 2592000), ("12h", 43200), ("90m", 5400), ("2w", 1209600)]
)
def test_parse_window(text: str, seconds: int) -> None:
    assert parse_window(text) == seconds


@pytest.mark.parametrize("text", ["30", "0d", "-1d", "1y", "d"])
def test_parse_window_refuses_naming_the_flag(text: str) -> None:
    with pytest.raises(ReportError, match=f'--since "{re.escape(text)}"'):
        parse_window(text)


def test_usage_is_the_counter_difference_and_the_fold_is_checked() -> None:
    a, b, c = ("a", "nvidia-h100"), ("b", "ascend-910b"), ("c", "nvidia-a100")
    rows = usage_rows(
        ({a: 3600.0}, {a: 3600.0 * 5, b: 7200.0}),
        ({a: 1.0 * 3600}, {a: 4.0 * 3600, b: 0.0}),
        {a: 2.0, b: 3.0, c: 0.5},
    )
    by_pair = {(r.quota, r.accelerator_class): r for r in rows}
    # a: 5 h total, 1 h before the window, 2 h folded: fine
    assert (by_pair[a].device_hours, by_pair[a].pflop_hours, by_pair[a].check) == (4.0, 3.0, "ok")
    # b: Prometheus counts 2 h, but 3 h are already folded into status: the bill is wrong
    assert by_pair[b].check == "mismatch"
    # c: folded but no series (Prometheus never scraped it): also a mismatch
    assert (by_pair[c].device_hours, by_pair[c].check) == (0.0, "mismatch")


def test_folded_hours_reads_status_metering() -> None:
    quotas = [
        {
            "metadata": {"name": "a"},
            "status": {"metering": [{"acceleratorClass": "x", "deviceSeconds": 7200}]},
        },
        {"metadata": {"name": "b"}},
    ]
    assert folded_hours(quotas) == {("a", "x"): 2.0}


def data() -> ReportData:
    times = [1000.0 + 60 * i for i in range(30)]
    return ReportData(
        start=1000.0,
        end=1000.0 + 1800,
        prometheus="http://127.0.0.1:9090",
        usage=usage_rows(
            ({}, {("a", "nvidia-h100"): 7200.0, ("b", "ascend-910b"): 3600.0}),
            ({}, {("a", "nvidia-h100"): 7.0, ("b", "ascend-910b"): 1.0}),
            {("a", "nvidia-h100"): 1.0},
        ),
        utilisation=[Curve("nvidia-h100", times, [i / 30 for i in range(30)])],
        oldest_pending=[Curve("a", times, [30.0 * i for i in range(30)])],
        wait_p50={"a": 12.0},
        wait_p90={"a": 40.0},
        admitted={"a": 3.0},
    )


def test_csv_has_one_row_per_quota_and_class() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(data()))))
    assert [(r["quota"], r["accelerator_class"], r["device_hours"]) for r in rows] == [
        ("a", "nvidia-h100", "2.000000"),
        ("b", "ascend-910b", "1.000000"),
    ]
    assert rows[0]["folded_device_hours"] == "1.000000"
    assert rows[1]["folded_device_hours"] == ""


def test_html_embeds_three_non_blank_plots() -> None:
    pngs = plots(data())
    assert set(pngs) == {"utilisation", "tenants", "waits"}
    for png in pngs.values():
        raw = base64.b64decode(png)
        assert raw.startswith(PNG_MAGIC) and len(raw) > 10_000
    page = to_html(data(), pngs)
    assert page.count('<img class="plot"') == 3
    assert "all rows agree with the quotas" in page
    assert "<td>a</td><td>nvidia-h100</td><td>2.000</td>" in page


def test_the_time_axis_unit_follows_the_window() -> None:
    assert time_axis(1800)[1] == "minutes since start of window"
    assert time_axis(86400) == (3600.0, "hours since start of window")
    assert time_axis(30 * 86400)[0] == 86400.0
