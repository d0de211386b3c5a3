"""Every PromQL expression the dashboards and alerts use, with where it is used.

Why: the integration test evaluates each of them against a real Prometheus scraping the running
operator and expects data; the unit tests check each names only metrics ``suanli.metrics``
defines. Both need one list that cannot miss a panel, so it is read from the built dashboards and
the alert rules rather than kept by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from suanli.observability.alerts import ALERTS
from suanli.observability.dashboards import DASHBOARDS, build
from suanli.observability.promql import substitute_grafana_variables

_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<selector>.+?)\s*,\s*(?P<label>\w+)\s*\)\s*$")


@dataclass(frozen=True)
class QueryUse:
    """One expression: ``source`` as written, ``expression`` ready to send to Prometheus."""

    kind: Literal["panel", "variable", "alert"]
    used_in: str
    source: str
    expression: str
    scrape: str = "operator"  # whose /metrics it reads: a member "operator" or the "hub"


def all_expressions(rate_interval: str = "1m", range_: str = "1h") -> list[QueryUse]:
    """Dashboard targets, dashboard variable selectors and alert expressions.

    Grafana variables are substituted: ``$__rate_interval`` by ``rate_interval``, ``$__range``
    by ``range_``, dashboard variables by ``.*`` (their "All" value).
    """
    values = {"__rate_interval": rate_interval, "__interval": rate_interval, "__range": range_}
    uses: list[QueryUse] = []
    for spec in DASHBOARDS:
        dashboard = build(spec)
        where = f"dashboard {spec.uid}"
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") != "query":
                continue
            match = _LABEL_VALUES.match(str(variable["query"]))
            if match is None:
                raise ValueError(
                    f"{where}: variable {variable['name']!r} query must be "
                    f"label_values(<selector>, <label>), got {variable['query']!r}"
                )
            selector = match.group("selector")
            uses.append(
                QueryUse(
                    "variable",
                    f"{where} variable {variable['name']}",
                    selector,
                    substitute_grafana_variables(selector, values),
                    spec.scrape,
                )
            )
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                expr = str(target["expr"])
                uses.append(
                    QueryUse(
                        "panel",
                        f"{where} panel {panel['title']!r} target {target.get('refId', '?')}",
                        expr,
                        substitute_grafana_variables(expr, values),
                        spec.scrape,
                    )
                )
    for alert in ALERTS:
        uses.append(QueryUse("alert", f"alert {alert.name}", alert.expr, alert.expr, alert.scrape))
    return uses


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Panels of a dashboard, including those nested in collapsed rows."""
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found
