"""The monthly bill: accelerator-hours and PFLOP-hours per tenant and class, from Prometheus.

Why Prometheus and not the quotas alone: ``status.metering`` holds only the time of pods already
folded (finished), and only as a running total; Prometheus has the operator's metering counters
over time, so any window can be billed. Usage in a window is the counter at its end minus the
counter at its start (0 when the series did not exist yet) — the counters are derived from API
records and never reset (see ``suanli.metrics.metering``), so no rate extrapolation is needed.

The cross-check: a quota's counter now can never be below what its ``status.metering`` already
folded (the counter is folded time plus the time of pods still running). A row where it is
below is flagged: the bill and the record disagree and must not be sent.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from suanli.metrics.collector import METERED_DEVICE_SECONDS, METERED_PFLOP_SECONDS

DEVICE_SECONDS = METERED_DEVICE_SECONDS + "_total"
PFLOP_SECONDS = METERED_PFLOP_SECONDS + "_total"
UTILISATION = (
    "sum by (class) (suanli_capacity_allocated_devices)"
    " / sum by (class) (suanli_capacity_total_devices > 0)"
)
OLDEST_PENDING = "max by (quota) (suanli_queue_oldest_pending_age_seconds)"
WAIT_QUANTILE = (
    "histogram_quantile({q}, sum by (quota, le) (increase(suanli_queue_wait_seconds_bucket[{w}])))"
)
ADMITTED = "sum by (quota) (increase(suanli_queue_wait_seconds_count[{w}]))"
SERIES = (
    DEVICE_SECONDS,
    PFLOP_SECONDS,
    "suanli_capacity_allocated_devices",
    "suanli_capacity_total_devices",
    "suanli_queue_oldest_pending_age_seconds",
    "suanli_queue_wait_seconds_bucket",
    "suanli_queue_wait_seconds_count",
)
POINTS = 240
TOLERANCE_SECONDS = 1.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_WINDOW = re.compile(r"^(\d+)([smhdw])$")


class ReportError(Exception):
    """Bad input or an unreachable Prometheus, worded for the user."""


def parse_window(text: str, option: str = "--since") -> int:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` → seconds."""
    match = _WINDOW.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ReportError(
            f'invalid {option} "{text}": want a positive number followed by s, m, h, d or w '
            "(e.g. 30d)"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


class Prometheus:
    """The two calls of Prometheus's HTTP API the report needs."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ReportError(f'invalid --prometheus "{url}": want an http:// or https:// URL')
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise ReportError(
                f"Prometheus at {self.url} refused {params.get('query')}: {detail}"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            raise ReportError(
                f"cannot reach Prometheus at {self.url} (--prometheus): {error}"
            ) from None
        if body.get("status") != "success":
            raise ReportError(f"Prometheus at {self.url}: {body.get('error', body)}")
        return body["data"]["result"]

    def instant(self, query: str, at: float) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get(
            "/api/v1/query", {"query": query, "time": f"{at:.3f}"}
        )
        return result

    def series(self, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get(
            "/api/v1/query_range",
            {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        return result


@dataclass(frozen=True)
class UsageRow:
    quota: str
    accelerator_class: str
    device_hours: float
    pflop_hours: float
    total_device_hours: float
    folded_device_hours: float | None
    check: str


@dataclass(frozen=True)
class Curve:
    label: str
    times: list[float]
    values: list[float]


@dataclass
class ReportData:
    start: float
    end: float
    prometheus: str
    usage: list[UsageRow]
    utilisation: list[Curve]
    oldest_pending: list[Curve]
    wait_p50: dict[str, float]
    wait_p90: dict[str, float]
    admitted: dict[str, float]
    problems: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return all(row.check == "ok" for row in self.usage)


def _by_pair(result: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], float]:
    values = {}
    for item in result:
        labels = item["metric"]
        values[(str(labels.get("quota", "")), str(labels.get("class", "")))] = float(
            item["value"][1]
        )
    return values


def _by_label(result: Sequence[Mapping[str, Any]], label: str) -> dict[str, float]:
    values = {}
    for item in result:
        number = float(item["value"][1])
        if not math.isnan(number):  # NaN: no admissions in the window
            values[str(item["metric"].get(label, ""))] = number
    return values


def _curves(result: Sequence[Mapping[str, Any]], label: str) -> list[Curve]:
    curves = []
    for item in sorted(result, key=lambda i: str(i["metric"].get(label, ""))):
        times = [float(t) for t, _ in item["values"]]
        values = [float(v) for _, v in item["values"]]
        curves.append(Curve(str(item["metric"].get(label, "")), times, values))
    return curves


def folded_hours(quotas: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], float]:
    """Device-hours already folded into each quota's ``status.metering``."""
    folded = {}
    for quota in quotas:
        name = str(quota.get("metadata", {}).get("name", ""))
        for row in (quota.get("status") or {}).get("metering") or []:
            folded[(name, str(row["acceleratorClass"]))] = float(row["deviceSeconds"]) / 3600
    return folded


Counters = dict[tuple[str, str], float]


def usage_rows(
    device_seconds: tuple[Counters, Counters],
    pflop_seconds: tuple[Counters, Counters],
    folded: Mapping[tuple[str, str], float],
) -> list[UsageRow]:
    """Per (quota, class): the window's use (counter at end minus at start) and the check of the
    counter's total against the device-hours ``status.metering`` has folded."""
    device_start, device_end = device_seconds
    pflop_start, pflop_end = pflop_seconds
    rows = []
    for pair in sorted(set(device_end) | set(folded)):
        total = device_end.get(pair, 0.0) / 3600
        recorded = folded.get(pair)
        ok = recorded is not None and recorded <= total + TOLERANCE_SECONDS / 3600
        rows.append(
            UsageRow(
                quota=pair[0],
                accelerator_class=pair[1],
                device_hours=max(0.0, device_end.get(pair, 0.0) - device_start.get(pair, 0.0))
                / 3600,
                pflop_hours=max(0.0, pflop_end.get(pair, 0.0) - pflop_start.get(pair, 0.0)) / 3600,
                total_device_hours=total,
                folded_device_hours=recorded,
                check="ok" if ok or recorded is None else "mismatch",
            )
        )
    return rows


def gather(
    prometheus: Prometheus,
    window_seconds: int,
    quotas: Sequence[Mapping[str, Any]],
    end: float | None = None,
) -> ReportData:
    end = time.time() if end is None else end
    start = end - window_seconds
    window = f"{window_seconds}s"
    device_end = _by_pair(prometheus.instant(DEVICE_SECONDS, end))
    device_start = _by_pair(prometheus.instant(DEVICE_SECONDS, start))
    pflop_end = _by_pair(prometheus.instant(PFLOP_SECONDS, end))
    pflop_start = _by_pair(prometheus.instant(PFLOP_SECONDS, start))
    usage = usage_rows((device_start, device_end), (pflop_start, pflop_end), folded_hours(quotas))
    step = max(1.0, window_seconds / POINTS)
    problems = [
        f"{row.quota}/{row.accelerator_class}: status.metering has folded "
        f"{row.folded_device_hours:.4f} device-hours but Prometheus counts only "
        f"{row.total_device_hours:.4f}"
        for row in usage
        if row.check != "ok"
    ]
    return ReportData(
        start=start,
        end=end,
        prometheus=prometheus.url,
        usage=usage,
        utilisation=_curves(prometheus.series(UTILISATION, start, end, step), "class"),
        oldest_pending=_curves(prometheus.series(OLDEST_PENDING, start, end, step), "quota"),
        wait_p50=_by_label(prometheus.instant(WAIT_QUANTILE.format(q=0.5, w=window), end), "quota"),
        wait_p90=_by_label(prometheus.instant(WAIT_QUANTILE.format(q=0.9, w=window), end), "quota"),
        admitted=_by_label(prometheus.instant(ADMITTED.format(w=window), end), "quota"),
        problems=problems,
    )


CSV_FIELDS = (
    "quota",
    "accelerator_class",
    "device_hours",
    "pflop_hours",
    "total_device_hours",
    "folded_device_hours",
    "check",
)


def to_csv(data: ReportData) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in data.usage:
        values = asdict(row)
        for key in ("device_hours", "pflop_hours", "total_device_hours", "folded_device_hours"):
            if values[key] is not None:
                values[key] = f"{values[key]:.6f}"
        writer.writerow(values)
    return out.getvalue()


PLOT_WIDTH, PLOT_HEIGHT, DPI = 12.0, 3.6, 100


def _figure_png(draw: Any) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(PLOT_WIDTH, PLOT_HEIGHT), dpi=DPI)
    try:
        draw(axes)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        pyplot.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def time_axis(window_seconds: float) -> tuple[float, str]:
    """The unit of the x axis for a window: minutes up to 3 h, hours up to 3 days, else days."""
    if window_seconds <= 3 * 3600:
        return 60.0, "minutes since start of window"
    if window_seconds <= 3 * 86400:
        return 3600.0, "hours since start of window"
    return 86400.0, "days since start of window"


def _since_start(times: list[float], start: float, unit: float) -> list[float]:
    return [(t - start) / unit for t in times]


def plots(data: ReportData) -> dict[str, str]:
    """Three PNGs (base64): utilisation over time, per-tenant use, wait times."""
    unit, axis_label = time_axis(data.end - data.start)

    def utilisation(axes: Any) -> None:
        for curve in data.utilisation:
            axes.plot(
                _since_start(curve.times, data.start, unit),
                [100 * v for v in curve.values],
                label=curve.label,
                linewidth=2,
            )
        axes.set_title("Accelerator utilisation by class (% of devices allocated)")
        axes.set_xlabel(axis_label)
        axes.set_ylabel("%")
        axes.set_ylim(0, 105)
        axes.set_xlim(0, (data.end - data.start) / unit)
        axes.grid(alpha=0.3)
        if data.utilisation:
            axes.legend(loc="upper left")

    def tenants(axes: Any) -> None:
        quotas = sorted({r.quota for r in data.usage})
        classes = sorted({r.accelerator_class for r in data.usage})
        bottoms = [0.0] * len(quotas)
        for cls in classes:
            heights = [
                sum(
                    r.device_hours
                    for r in data.usage
                    if r.quota == q and r.accelerator_class == cls
                )
                for q in quotas
            ]
            axes.bar(quotas, heights, bottom=bottoms, label=cls)
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        axes.set_title("Accelerator-hours per tenant in the window, by class")
        axes.set_ylabel("device-hours")
        axes.grid(alpha=0.3, axis="y")
        if classes:
            axes.legend(loc="upper right")

    def waits(axes: Any) -> None:
        for curve in data.oldest_pending:
            axes.plot(
                _since_start(curve.times, data.start, unit),
                [v / 60 for v in curve.values],
                label=curve.label,
                linewidth=2,
            )
        axes.set_title("Wait times: longest-waiting pending job per quota (minutes)")
        axes.set_xlabel(axis_label)
        axes.set_ylabel("minutes")
        axes.set_xlim(0, (data.end - data.start) / unit)
        axes.grid(alpha=0.3)
        if data.oldest_pending:
            axes.legend(loc="upper left")

    return {
        "utilisation": _figure_png(utilisation),
        "tenants": _figure_png(tenants),
        "waits": _figure_png(waits),
    }


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def _number(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


STYLE = """
body { margin: 0; font-family: 'DejaVu Sans', sans-serif; color: #222; background: #fff; }
header { height: 120px; overflow: hidden; padding: 16px 40px; box-sizing: border-box;
         border-bottom: 1px solid #ddd; }
header h1 { margin: 0 0 8px 0; font-size: 26px; }
header p { margin: 2px 0; font-size: 14px; color: #555; }
.plot { display: block; width: 1200px; height: 360px; margin: 10px 40px; }
section { margin: 20px 40px; }
table { border-collapse: collapse; font-size: 14px; }
th, td { padding: 4px 12px; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
.mismatch { color: #b00020; font-weight: bold; }
"""


def to_html(data: ReportData, pngs: Mapping[str, str]) -> str:
    """A self-contained page: the three plots first (at fixed places), then the tables."""
    rows = []
    for row in data.usage:
        css = "" if row.check == "ok" else ' class="mismatch"'
        rows.append(
            f"<tr{css}><td>{html.escape(row.quota)}</td>"
            f"<td>{html.escape(row.accelerator_class)}</td>"
            f"<td>{_number(row.device_hours)}</td><td>{_number(row.pflop_hours)}</td>"
            f"<td>{_number(row.total_device_hours)}</td>"
            f"<td>{_number(row.folded_device_hours)}</td><td>{row.check}</td></tr>"
        )
    waits = []
    for quota in sorted(set(data.wait_p50) | set(data.admitted)):
        waits.append(
            f"<tr><td>{html.escape(quota)}</td><td></td>"
            f"<td>{_number(data.admitted.get(quota), 0)}</td>"
            f"<td>{_number(data.wait_p50.get(quota), 1)}</td>"
            f"<td>{_number(data.wait_p90.get(quota), 1)}</td></tr>"
        )
    verdict = (
        "all rows agree with the quotas' status.metering"
        if data.consistent
        else "MISMATCH with status.metering: " + "; ".join(data.problems)
    )
    images = "\n".join(
        f'<img class="plot" id="plot-{name}" alt="{name}" src="data:image/png;base64,{png}">'
        for name, png in pngs.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>suanli usage report</title>
<style>{STYLE}</style></head>
<body>
<header><h1>suanli usage report</h1>
<p>{_stamp(data.start)} — {_stamp(data.end)} · source: Prometheus {html.escape(data.prometheus)}</p>
<p>Cross-check: {html.escape(verdict)}</p></header>
{images}
<section><h2>Usage per tenant and class</h2>
<table><tr><th>quota</th><th>class</th><th>device-hours</th><th>PFLOP-hours</th>
<th>device-hours ever (Prometheus)</th><th>folded in status.metering</th><th>check</th></tr>
{"".join(rows)}</table></section>
<section><h2>Queue waits in the window</h2>
<table><tr><th>quota</th><th></th><th>admissions</th><th>p50 wait (s)</th><th>p90 wait (s)</th></tr>
{"".join(waits)}</table></section>
</body></html>
"""
