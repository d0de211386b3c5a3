"""Just enough PromQL reading to check expressions against the metrics we define.

Why not a real parser: the only question asked here is "which metric names does this expression
select?"; Prometheus itself (promtool, and the integration test's server) checks the syntax. The
approach strips what can contain identifiers that are not metric names — string literals, label
matchers, range and subquery brackets, grouping label lists, Grafana variables — and keeps the
remaining identifiers that are not functions or keywords.
"""

from __future__ import annotations

import re

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$\{[A-Za-z_]\w*(?::\w+)?\}|\$[A-Za-z_]\w*")
_LABEL_MATCHERS = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])[A-Za-z_:][\w:]*(?![\w:])(?!\s*\()")
_KEYWORDS = frozenset(
    {
        "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
        "group_left", "group_right", "inf", "nan", "start", "end", "atan2",
    }
)  # fmt: skip

GRAFANA_DEFAULTS: dict[str, str] = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
}
"""What Grafana's built-in variables become when an expression is run outside Grafana."""


def metric_names(expression: str) -> frozenset[str]:
    """Metric names selected by a PromQL expression (Grafana variables allowed)."""
    text = _STRING.sub('""', expression)
    text = _GRAFANA_VARIABLE.sub("", text)
    text = _LABEL_MATCHERS.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    return frozenset(name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS)


def substitute_grafana_variables(
    expression: str, values: dict[str, str] | None = None, match_all: str = ".*"
) -> str:
    """Replace ``$var`` / ``${var}`` so Prometheus can run the expression directly.

    Built-in interval variables get ``GRAFANA_DEFAULTS`` (or ``values``); dashboard variables,
    which appear only inside ``=~"$var"`` matchers, become ``match_all``.
    """
    known = {**GRAFANA_DEFAULTS, **(values or {})}

    def replace(match: re.Match[str]) -> str:
        name = match.group(0).strip("${}").split(":", 1)[0]
        return known.get(name, match_all)

    return _GRAFANA_VARIABLE.sub(replace, expression)
