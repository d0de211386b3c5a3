"""The centre's alert rules, as data: one source for the rules file and the PrometheusRule.

Why these alerts: each one is a condition an SRE of a shared NPU/GPU centre must act on, and each
has a runbook section in ``docs/runbooks.md`` (the ``runbook_url`` points at its anchor). The
expressions stay within PromQL as Prometheus 2.42 understands it (Debian's package, which the
promtool tests and the integration test run against).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

RUNBOOK_BASE_URL = "https://github.com/suanli-io/suanli/blob/main/docs/runbooks.md"
RULE_GROUP = "suanli.rules"

Severity = Literal["critical", "warning", "info"]
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_ALERT_NAME = re.compile(r"^Suanli[A-Z][A-Za-z]+$")


@dataclass(frozen=True)
class AlertRule:
    """One alert; ``for_`` is the Prometheus ``for`` duration."""

    name: str
    expr: str
    for_: str
    severity: Severity
    summary: str
    description: str
    scrape: str = "operator"  # whose metrics it reads: "operator" (a member centre) or "hub"

    def __post_init__(self) -> None:
        if not _ALERT_NAME.match(self.name):
            raise ValueError(f"AlertRule.name must look like 'SuanliSomething', got {self.name!r}")
        if not _DURATION.match(self.for_):
            raise ValueError(f"AlertRule.for_ of {self.name} is not a duration: {self.for_!r}")
        if self.severity not in ("critical", "warning", "info"):
            raise ValueError(f"AlertRule.severity of {self.name} is invalid: {self.severity!r}")
        for field in ("expr", "summary", "description"):
            if not getattr(self, field).strip():
                raise ValueError(f"AlertRule.{field} of {self.name} must not be empty")

    @property
    def runbook_anchor(self) -> str:
        """GitHub's anchor for the runbook heading, which is the alert name itself."""
        return self.name.lower()

    @property
    def runbook_url(self) -> str:
        return f"{RUNBOOK_BASE_URL}#{self.runbook_anchor}"

    def as_rule(self) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": self.runbook_url,
            },
        }


ALERTS: tuple[AlertRule, ...] = (
    AlertRule(
        name="SuanliJobPendingTooLong",
        expr="max by (quota, class) (suanli_queue_oldest_pending_age_seconds) > 3600",
        for_="5m",
        severity="warning",
        summary="A TrainingJob of quota {{ $labels.quota }} has waited over an hour for "
        "{{ $labels.class }}.",
        description="The oldest pending TrainingJob of quota {{ $labels.quota }} on class "
        "{{ $labels.class }} has been waiting {{ $value | humanizeDuration }} for admission.",
    ),
    AlertRule(
        name="SuanliQuotaExhaustedWhileDemandWaits",
        expr=(
            "(max by (quota, class) (suanli_quota_pending_devices) > 0)"
            " and on (quota, class) "
            "(max by (quota, class) (suanli_quota_used_devices)"
            " >= max by (quota, class) (suanli_quota_nominal_devices))"
        ),
        for_="30m",
        severity="info",
        summary="Quota {{ $labels.quota }} is exhausted on {{ $labels.class }} while its jobs "
        "wait.",
        description="Quota {{ $labels.quota }} uses at least its nominal share of "
        "{{ $labels.class }} and still has {{ $value }} devices of demand waiting.",
    ),
    AlertRule(
        name="SuanliFragmentationHigh",
        expr=(
            "sum by (class, vendor) (suanli_capacity_fragmented_devices)"
            " / sum by (class, vendor) (suanli_capacity_free_devices) > 0.5"
            " and on (class, vendor) "
            "sum by (class, vendor) (suanli_capacity_fragmented_devices) >= 8"
        ),
        for_="30m",
        severity="warning",
        summary="Most free {{ $labels.class }} accelerators cannot be used by any legal request.",
        description="{{ $value | humanizePercentage }} of the free {{ $labels.class }} "
        "({{ $labels.vendor }}) devices are fragmented: free, but no legal request shape fits.",
    ),
    AlertRule(
        name="SuanliNoActiveOperator",
        expr="sum(suanli_scheduler_leader) < 1 or absent(suanli_scheduler_leader)",
        for_="5m",
        severity="critical",
        summary="No suanli operator replica is leading: nothing is being scheduled.",
        description="No scraped suanli operator reports suanli_scheduler_leader=1 (or none is "
        "scraped at all). TrainingJobs are neither admitted nor restarted.",
    ),
    AlertRule(
        name="SuanliSchedulingCycleSlow",
        expr=(
            "histogram_quantile(0.99, sum by (le) "
            "(rate(suanli_scheduler_cycle_duration_seconds_bucket[5m]))) > 1"
        ),
        for_="15m",
        severity="warning",
        summary="suanli scheduling cycles are slow (p99 above one second).",
        description="The 99th percentile scheduling cycle took {{ $value | humanizeDuration }} "
        "over the last 5 minutes.",
    ),
    AlertRule(
        name="SuanliKubernetesAPIErrors",
        expr=(
            "sum by (resource, reason) "
            '(rate(suanli_kubernetes_api_errors_total{reason!="Conflict"}[5m])) > 0.05'
        ),
        for_="10m",
        severity="warning",
        summary="suanli's calls to the Kubernetes API on {{ $labels.resource }} are failing "
        "({{ $labels.reason }}).",
        description='{{ printf "%.2f" $value }} errors per second on {{ $labels.resource }} with '
        "reason {{ $labels.reason }} over the last 5 minutes.",
    ),
    AlertRule(
        name="SuanliNodesLost",
        expr=(
            'max by (class, vendor) (suanli_nodes{state="not_ready"}) > 0'
            " or (max by (class, vendor) "
            '(max_over_time(suanli_nodes{state="ready"}[1h]))'
            ' - max by (class, vendor) (suanli_nodes{state="ready"})) > 0'
        ),
        for_="5m",
        severity="warning",
        summary="{{ $labels.class }} nodes are NotReady or gone.",
        description="{{ $value }} {{ $labels.class }} ({{ $labels.vendor }}) nodes are NotReady "
        "or disappeared within the last hour; their accelerators are out of the pool.",
    ),
    AlertRule(
        name="SuanliCentreUnreachable",
        expr=(
            "max by (centre, state) "
            '(suanli_hub_centre_state{state=~"Unreachable|NoKubeconfig"}) == 1'
        ),
        for_="10m",
        severity="warning",
        summary="The hub cannot reach member centre {{ $labels.centre }} ({{ $labels.state }}).",
        description="The compute-network hub has had no answer from centre "
        "{{ $labels.centre }} for the centre-lost time plus 10 minutes (state "
        "{{ $labels.state }}). Nothing new is dispatched there; its jobs are not moved unless "
        "their copies are seen gone or the centre is set outOfService.",
        scrape="hub",
    ),
)


def rule_groups() -> dict[str, Any]:
    """The ``groups:`` document shared by the rules file and the PrometheusRule spec."""
    return {"groups": [{"name": RULE_GROUP, "rules": [alert.as_rule() for alert in ALERTS]}]}


def prometheus_rule(namespace: str = "suanli-system") -> dict[str, Any]:
    """A prometheus-operator PrometheusRule carrying the same groups."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "suanli",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "suanli", "app.kubernetes.io/component": "alerts"},
        },
        "spec": rule_groups(),
    }
