"""Every PromQL expression of the dashboards and alerts selects metrics that really exist."""

from __future__ import annotations

import pytest

from suanli.metrics import all_series_names, hub_series_names, operator_series_names
from suanli.observability.alerts import ALERTS
from suanli.observability.dashboards import DASHBOARDS, build
from suanli.observability.promql import metric_names, substitute_grafana_variables
from suanli.observability.queries import QueryUse, all_expressions

USES = all_expressions()


@pytest.mark.parametrize("use", USES, ids=[use.used_in for use in USES])
def test_expression_names_only_defined_metrics(use: QueryUse) -> None:
    names = metric_names(use.source)
    assert names, f"{use.used_in}: selects no metric at all: {use.source}"
    unknown = names - all_series_names()
    assert not unknown, f"{use.used_in}: unknown metric(s) {sorted(unknown)} in {use.source}"


def test_every_panel_target_variable_and_alert_is_listed() -> None:
    targets = 0
    variables = 0
    for spec in DASHBOARDS:
        dashboard = build(spec)
        targets += sum(len(panel.get("targets", [])) for panel in dashboard["panels"])
        variables += sum(1 for v in dashboard["templating"]["list"] if v["type"] == "query")
    kinds = [use.kind for use in USES]
    assert kinds.count("panel") == targets > 30
    assert kinds.count("variable") == variables == 5
    assert kinds.count("alert") == len(ALERTS) == 8


def test_hub_expressions_read_only_hub_metrics_and_member_ones_none() -> None:
    hub = hub_series_names()
    scrapes = {use.scrape for use in USES}
    assert scrapes == {"operator", "hub"}
    for use in USES:
        names = metric_names(use.source)
        if use.scrape == "hub":
            assert names <= hub, use.used_in
        else:
            assert not names & (hub - operator_series_names()), use.used_in


def test_expressions_are_ready_for_prometheus() -> None:
    for use in all_expressions(rate_interval="30s", range_="2h"):
        assert "$" not in use.expression.replace('"$1"', ""), use.used_in
    rated = [
        use for use in all_expressions(rate_interval="30s") if "$__rate_interval" in use.source
    ]
    assert rated
    assert all("[30s]" in use.expression for use in rated)


def test_metric_names_ignores_functions_labels_keywords_and_strings() -> None:
    expr = (
        'sum by (quota, le) (rate(a_bucket{quota=~"$quota", class="x"}[$__rate_interval]))'
        " / on (quota) group_left (class) b offset 5m > bool 1e3"
        ' or label_replace(c, "dst", "$1", "src", "(.*)") unless absent(d_total)'
    )
    assert metric_names(expr) == {"a_bucket", "b", "c", "d_total"}


def test_substitution_keeps_regex_backreferences() -> None:
    expr = 'label_replace(x{q=~"$quota"}, "a", "$1", "b", "(.*)")[${__range}]'
    assert (
        substitute_grafana_variables(expr)
        == 'label_replace(x{q=~".*"}, "a", "$1", "b", "(.*)")[1h]'
    )
