"""The Grafana dashboards of the centre and of a compute-network hub (Grafana Foundation SDK).

Why vendor-neutral: every panel groups by the ``vendor`` and ``class`` labels rather than
per-vendor metrics, so Ascend NPUs and NVIDIA GPUs sit on the same axes in devices and in
normalised PFLOPS. The dashboards are generated (``make generate``) into
``deploy/monitoring/dashboards`` and the Helm chart; never edit the JSON by hand.

The SDK is a dev-time dependency (``pip install -e '.[dev]'``); the operator never imports this
module.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DatasourceVariable,
    QueryVariable,
    Row,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as StatPanel
from grafana_foundation_sdk.builders.timeseries import Panel as TimeseriesPanel
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh, VariableSort

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["suanli"]


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class PanelSpec:
    """A panel: ``kind`` is ``timeseries`` or ``stat``; ``span`` is in 1/24ths of the width."""

    title: str
    description: str
    unit: str
    queries: Sequence[Query]
    kind: str = "timeseries"
    span: int = 12
    height: int = 8
    stacked: bool = False


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    description: str
    filename: str
    variables: Sequence[tuple[str, str, str]]  # (name, label, label_values query)
    rows: Sequence[tuple[str, Sequence[PanelSpec]]] = field(default_factory=tuple)
    scrape: str = "operator"  # whose metrics: "operator" (a member centre) or "hub"


# Selectors reused by panels; the variables are multi-valued with "All", hence =~.
CAP = 'vendor=~"$vendor", class=~"$class"'
TEN = 'quota=~"$quota", class=~"$class"'
RATE = "$__rate_interval"

CENTRE_OVERVIEW = DashboardSpec(
    uid="suanli-centre-overview",
    title="suanli / Centre overview",
    description="Capacity and allocation of the whole centre by vendor and accelerator class, "
    "in devices and normalised PFLOPS; fragmentation; the admission queue.",
    filename="centre-overview.json",
    variables=(
        ("vendor", "Vendor", "label_values(suanli_capacity_total_devices, vendor)"),
        (
            "class",
            "Accelerator class",
            'label_values(suanli_capacity_total_devices{vendor=~"$vendor"}, class)',
        ),
    ),
    rows=(
        (
            "Capacity",
            (
                PanelSpec(
                    "Accelerators",
                    "Devices on schedulable nodes.",
                    "none",
                    (Query(f"sum(suanli_capacity_total_devices{{{CAP}}})"),),
                    kind="stat",
                    span=6,
                    height=4,
                ),
                PanelSpec(
                    "Allocated",
                    "Share of devices held by pods.",
                    "percentunit",
                    (
                        Query(
                            f"sum(suanli_capacity_allocated_devices{{{CAP}}})"
                            f" / sum(suanli_capacity_total_devices{{{CAP}}})"
                        ),
                    ),
                    kind="stat",
                    span=6,
                    height=4,
                ),
                PanelSpec(
                    "Compute",
                    "Normalised PFLOPS on schedulable nodes.",
                    "none",
                    (Query(f"sum(suanli_capacity_total_pflops{{{CAP}}})"),),
                    kind="stat",
                    span=6,
                    height=4,
                ),
                PanelSpec(
                    "Free but unusable",
                    "Free devices that no legal request shape of their class can use.",
                    "none",
                    (Query(f"sum(suanli_capacity_fragmented_devices{{{CAP}}})"),),
                    kind="stat",
                    span=6,
                    height=4,
                ),
                PanelSpec(
                    "Devices by vendor",
                    "Total, allocated and free devices per vendor.",
                    "none",
                    (
                        Query(
                            f"sum by (vendor) (suanli_capacity_total_devices{{{CAP}}})",
                            "{{vendor}} total",
                        ),
                        Query(
                            f"sum by (vendor) (suanli_capacity_allocated_devices{{{CAP}}})",
                            "{{vendor}} allocated",
                        ),
                        Query(
                            f"sum by (vendor) (suanli_capacity_free_devices{{{CAP}}})",
                            "{{vendor}} free",
                        ),
                    ),
                ),
                PanelSpec(
                    "PFLOPS by vendor",
                    "Total and allocated normalised PFLOPS per vendor.",
                    "none",
                    (
                        Query(
                            f"sum by (vendor) (suanli_capacity_total_pflops{{{CAP}}})",
                            "{{vendor}} total",
                        ),
                        Query(
                            f"sum by (vendor) (suanli_capacity_allocated_pflops{{{CAP}}})",
                            "{{vendor}} allocated",
                        ),
                    ),
                ),
                PanelSpec(
                    "Allocation by class",
                    "Share of each class's devices held by pods.",
                    "percentunit",
                    (
                        Query(
                            f"sum by (class) (suanli_capacity_allocated_devices{{{CAP}}})"
                            f" / sum by (class) (suanli_capacity_total_devices{{{CAP}}})",
                            "{{class}}",
                        ),
                    ),
                ),
                PanelSpec(
                    "Allocated PFLOPS by class",
                    "Normalised PFLOPS held by pods, stacked by class.",
                    "none",
                    (
                        Query(
                            f"sum by (class) (suanli_capacity_allocated_pflops{{{CAP}}})",
                            "{{class}}",
                        ),
                    ),
                    stacked=True,
                ),
            ),
        ),
        (
            "Fragmentation",
            (
                PanelSpec(
                    "Free but unusable devices by class",
                    "Free devices no legal request shape can use (e.g. a lone chip where the "
                    "class only admits whole HCCS rings).",
                    "none",
                    (
                        Query(
                            f"sum by (class, vendor) (suanli_capacity_fragmented_devices{{{CAP}}})",
                            "{{class}} ({{vendor}})",
                        ),
                    ),
                ),
                PanelSpec(
                    "Fragmented share of free devices",
                    "Fragmented / free, per class. Alerted above 50%.",
                    "percentunit",
                    (
                        Query(
                            f"sum by (class) (suanli_capacity_fragmented_devices{{{CAP}}})"
                            f" / sum by (class) (suanli_capacity_free_devices{{{CAP}}})",
                            "{{class}}",
                        ),
                    ),
                ),
            ),
        ),
        (
            "Queue and nodes",
            (
                PanelSpec(
                    "Pending jobs by class",
                    "TrainingJobs waiting for admission.",
                    "none",
                    (
                        Query(
                            'sum by (class) (suanli_queue_pending_jobs{class=~"$class"})',
                            "{{class}}",
                        ),
                    ),
                    span=8,
                ),
                PanelSpec(
                    "Pending demand by class",
                    "Devices requested by waiting TrainingJobs.",
                    "none",
                    (
                        Query(
                            'sum by (class) (suanli_quota_pending_devices{class=~"$class"})',
                            "{{class}}",
                        ),
                    ),
                    span=8,
                ),
                PanelSpec(
                    "Nodes by readiness",
                    "Nodes carrying accelerators, ready and not ready.",
                    "none",
                    (
                        Query(
                            f"sum by (vendor, state) (suanli_nodes{{{CAP}}})",
                            "{{vendor}} {{state}}",
                        ),
                    ),
                    span=8,
                ),
                PanelSpec(
                    "Jobs by phase",
                    "All TrainingJobs in the centre by phase.",
                    "none",
                    (Query("sum by (phase) (suanli_jobs)", "{{phase}}"),),
                    span=24,
                    stacked=True,
                ),
            ),
        ),
    ),
)

TENANTS = DashboardSpec(
    uid="suanli-tenants",
    title="suanli / Tenants",
    description="Per-quota use of the centre: share, borrowing, waits and metered "
    "accelerator-hours (the billing view).",
    filename="tenants.json",
    variables=(
        ("quota", "Quota", "label_values(suanli_quota_nominal_devices, quota)"),
        (
            "class",
            "Accelerator class",
            'label_values(suanli_quota_nominal_devices{quota=~"$quota"}, class)',
        ),
    ),
    rows=(
        (
            "Quota use",
            (
                PanelSpec(
                    "Used and nominal devices",
                    "Devices held by the quota's jobs against its guaranteed share.",
                    "none",
                    (
                        Query(
                            f"sum by (quota, class) (suanli_quota_used_devices{{{TEN}}})",
                            "{{quota}} / {{class}} used",
                        ),
                        Query(
                            f"sum by (quota, class) (suanli_quota_nominal_devices{{{TEN}}})",
                            "{{quota}} / {{class}} nominal",
                        ),
                    ),
                ),
                PanelSpec(
                    "Share used",
                    "Used / nominal devices; above 100% means borrowing.",
                    "percentunit",
                    (
                        Query(
                            f"sum by (quota, class) (suanli_quota_used_devices{{{TEN}}})"
                            f" / (sum by (quota, class) (suanli_quota_nominal_devices{{{TEN}}})"
                            " > 0)",
                            "{{quota}} / {{class}}",
                        ),
                    ),
                ),
                PanelSpec(
                    "Borrowed and lent devices",
                    "Borrowed: used above nominal from others' idle share. Lent: own nominal "
                    "share used by others.",
                    "none",
                    (
                        Query(
                            f"sum by (quota) (suanli_quota_borrowed_devices{{{TEN}}})",
                            "{{quota}} borrowed",
                        ),
                        Query(
                            f"-sum by (quota) (suanli_quota_lent_devices{{{TEN}}})",
                            "{{quota}} lent",
                        ),
                    ),
                ),
                PanelSpec(
                    "Used and pending PFLOPS",
                    "Normalised PFLOPS held and waiting per quota.",
                    "none",
                    (
                        Query(
                            f"sum by (quota) (suanli_quota_used_pflops{{{TEN}}})",
                            "{{quota}} used",
                        ),
                        Query(
                            f"sum by (quota) (suanli_quota_pending_pflops{{{TEN}}})",
                            "{{quota}} pending",
                        ),
                    ),
                ),
            ),
        ),
        (
            "Waiting",
            (
                PanelSpec(
                    "Queue wait (p50, p90)",
                    "Time from entering the queue to admission.",
                    "s",
                    (
                        Query(
                            "histogram_quantile(0.5, sum by (quota, le) "
                            f"(rate(suanli_queue_wait_seconds_bucket{{{TEN}}}[{RATE}])))",
                            "{{quota}} p50",
                        ),
                        Query(
                            "histogram_quantile(0.9, sum by (quota, le) "
                            f"(rate(suanli_queue_wait_seconds_bucket{{{TEN}}}[{RATE}])))",
                            "{{quota}} p90",
                        ),
                    ),
                    span=8,
                ),
                PanelSpec(
                    "Oldest pending job",
                    "How long the longest-waiting job has waited. Alerted above one hour.",
                    "s",
                    (
                        Query(
                            "max by (quota, class) "
                            f"(suanli_queue_oldest_pending_age_seconds{{{TEN}}})",
                            "{{quota}} / {{class}}",
                        ),
                    ),
                    span=8,
                ),
                PanelSpec(
                    "Jobs by phase",
                    "TrainingJobs of each quota by phase.",
                    "none",
                    (
                        Query(
                            'sum by (quota, phase) (suanli_jobs{quota=~"$quota"})',
                            "{{quota}} {{phase}}",
                        ),
                    ),
                    span=8,
                    stacked=True,
                ),
                PanelSpec(
                    "Admission decisions",
                    "Admissions, rejections and evictions per second, by reason.",
                    "ops",
                    (
                        Query(
                            f"sum by (reason) (rate(suanli_admissions_total{{{TEN}}}[{RATE}]))",
                            "admitted: {{reason}}",
                        ),
                        Query(
                            f"sum by (reason) (rate(suanli_rejections_total{{{TEN}}}[{RATE}]))",
                            "rejected: {{reason}}",
                        ),
                        Query(
                            f"sum by (reason) (rate(suanli_evictions_total{{{TEN}}}[{RATE}]))",
                            "evicted: {{reason}}",
                        ),
                    ),
                ),
                PanelSpec(
                    "Preemptions and gang restarts",
                    "Per second, per quota (preemptions are counted for the preempting quota).",
                    "ops",
                    (
                        Query(
                            f"sum by (quota) (rate(suanli_preemptions_total{{{TEN}}}[{RATE}]))",
                            "{{quota}} preemptions",
                        ),
                        Query(
                            f"sum by (quota) (rate(suanli_gang_restarts_total{{{TEN}}}[{RATE}]))",
                            "{{quota}} gang restarts",
                        ),
                    ),
                ),
            ),
        ),
        (
            "Metering",
            (
                PanelSpec(
                    "Accelerator-hours in range",
                    "Device-hours consumed in the selected time range (billing).",
                    "none",
                    (
                        Query(
                            "sum by (quota, class) "
                            f"(increase(suanli_metered_device_seconds_total{{{TEN}}}[$__range]))"
                            " / 3600",
                            "{{quota}} / {{class}}",
                        ),
                    ),
                    kind="stat",
                ),
                PanelSpec(
                    "PFLOP-hours in range",
                    "Normalised PFLOP-hours consumed in the selected time range (billing).",
                    "none",
                    (
                        Query(
                            "sum by (quota, class) "
                            f"(increase(suanli_metered_pflop_seconds_total{{{TEN}}}[$__range]))"
                            " / 3600",
                            "{{quota}} / {{class}}",
                        ),
                    ),
                    kind="stat",
                ),
                PanelSpec(
                    "Metered devices in use",
                    "Rate of metered device-seconds: the number of devices being billed.",
                    "none",
                    (
                        Query(
                            "sum by (quota) "
                            f"(rate(suanli_metered_device_seconds_total{{{TEN}}}[{RATE}]))",
                            "{{quota}}",
                        ),
                    ),
                    span=24,
                    stacked=True,
                ),
            ),
        ),
    ),
)

SCHEDULER_HEALTH = DashboardSpec(
    uid="suanli-scheduler-health",
    title="suanli / Scheduler health",
    description="The operator itself: leadership, scheduling cycle and placement latency, "
    "queue length and Kubernetes API errors.",
    filename="scheduler-health.json",
    variables=(),
    rows=(
        (
            "Operator",
            (
                PanelSpec(
                    "Leading replicas",
                    "Replicas reporting leadership; anything but 1 is wrong.",
                    "none",
                    (Query("sum(suanli_scheduler_leader)"),),
                    kind="stat",
                    span=6,
                    height=4,
                ),
                PanelSpec(
                    "Version",
                    "Running operator versions.",
                    "none",
                    (Query("count by (version) (suanli_build_info)", "{{version}}"),),
                    kind="stat",
                    span=6,
                    height=4,
                ),
                PanelSpec(
                    "Queue length",
                    "TrainingJobs waiting for admission.",
                    "none",
                    (Query("sum(suanli_queue_pending_jobs)"),),
                    kind="stat",
                    span=6,
                    height=4,
                ),
                PanelSpec(
                    "Cycles per second",
                    "Scheduling cycles run per second.",
                    "ops",
                    (Query(f"sum(rate(suanli_scheduler_cycle_duration_seconds_count[{RATE}]))"),),
                    kind="stat",
                    span=6,
                    height=4,
                ),
                PanelSpec(
                    "Leader by instance",
                    "Which replica leads over time.",
                    "none",
                    (Query("max by (instance) (suanli_scheduler_leader)", "{{instance}}"),),
                ),
                PanelSpec(
                    "Queue length by class",
                    "TrainingJobs waiting for admission per class.",
                    "none",
                    (Query("sum by (class) (suanli_queue_pending_jobs)", "{{class}}"),),
                    stacked=True,
                ),
            ),
        ),
        (
            "Latency",
            (
                PanelSpec(
                    "Scheduling cycle duration",
                    "p50 and p99 of one scheduling cycle. Alerted when p99 exceeds 1 s.",
                    "s",
                    (
                        Query(
                            "histogram_quantile(0.5, sum by (le) "
                            f"(rate(suanli_scheduler_cycle_duration_seconds_bucket[{RATE}])))",
                            "p50",
                        ),
                        Query(
                            "histogram_quantile(0.99, sum by (le) "
                            f"(rate(suanli_scheduler_cycle_duration_seconds_bucket[{RATE}])))",
                            "p99",
                        ),
                    ),
                ),
                PanelSpec(
                    "Placement latency by class (p99)",
                    "Time the placement core takes to place one gang.",
                    "s",
                    (
                        Query(
                            "histogram_quantile(0.99, sum by (class, le) "
                            f"(rate(suanli_scheduler_placement_latency_seconds_bucket[{RATE}])))",
                            "{{class}}",
                        ),
                    ),
                ),
            ),
        ),
        (
            "Errors",
            (
                PanelSpec(
                    "Kubernetes API errors",
                    "Failed API calls per second by resource and reason (Conflicts are "
                    "retried and not alerted).",
                    "ops",
                    (
                        Query(
                            "sum by (resource, reason) "
                            f"(rate(suanli_kubernetes_api_errors_total[{RATE}]))",
                            "{{resource}} {{reason}}",
                        ),
                    ),
                    span=24,
                ),
            ),
        ),
    ),
)

CEN = 'centre=~"$centre"'

COMPUTE_NETWORK = DashboardSpec(
    uid="suanli-compute-network",
    title="suanli / Compute network",
    description="The hub of a compute network (suanli-operator --hub): each member centre's "
    "state, last contact and free capacity per class as last polled, the hub queue, dispatch "
    "latency and re-dispatches.",
    filename="compute-network.json",
    variables=(("centre", "Centre", "label_values(suanli_hub_centre_up, centre)"),),
    scrape="hub",
    rows=(
        (
            "Centres",
            (
                PanelSpec(
                    "Centres reachable",
                    "Member centres whose last poll answered within the centre-lost time.",
                    "none",
                    (Query(f"sum(suanli_hub_centre_up{{{CEN}}})"),),
                    kind="stat",
                    span=6,
                    height=4,
                ),
                PanelSpec(
                    "Hub queue",
                    "Hub jobs not dispatched to any centre yet.",
                    "none",
                    (Query("sum(suanli_hub_queue_jobs)"),),
                    kind="stat",
                    span=6,
                    height=4,
                ),
                PanelSpec(
                    "Free PFLOPS",
                    "Normalised PFLOPS not held by suanli pods, in the selected centres.",
                    "none",
                    (Query(f"sum(suanli_hub_centre_free_pflops{{{CEN}}})"),),
                    kind="stat",
                    span=6,
                    height=4,
                ),
                PanelSpec(
                    "Re-dispatches in range",
                    "Hub jobs moved to another centre in the selected time range.",
                    "none",
                    (Query(f"sum(increase(suanli_hub_redispatches_total{{{CEN}}}[$__range]))"),),
                    kind="stat",
                    span=6,
                    height=4,
                ),
                PanelSpec(
                    "State by centre",
                    "The state the hub gives each centre (1 = current). Unreachable for 10 "
                    "minutes is alerted.",
                    "none",
                    (
                        Query(
                            f"max by (centre, state) (suanli_hub_centre_state{{{CEN}}}) > 0",
                            "{{centre}} {{state}}",
                        ),
                    ),
                ),
                PanelSpec(
                    "Time since last contact",
                    "Seconds since each centre last answered a poll.",
                    "s",
                    (
                        Query(
                            "time() - max by (centre) "
                            f"(suanli_hub_centre_last_contact_timestamp_seconds{{{CEN}}})",
                            "{{centre}}",
                        ),
                    ),
                ),
            ),
        ),
        (
            "Capacity",
            (
                PanelSpec(
                    "Free devices by centre and class",
                    "Devices not held by suanli pods, as last polled.",
                    "none",
                    (
                        Query(
                            f"sum by (centre, class) (suanli_hub_centre_free_devices{{{CEN}}})",
                            "{{centre}} / {{class}}",
                        ),
                    ),
                ),
                PanelSpec(
                    "Devices by centre and class",
                    "All devices of each class in each centre, as last polled.",
                    "none",
                    (
                        Query(
                            f"sum by (centre, class) (suanli_hub_centre_devices{{{CEN}}})",
                            "{{centre}} / {{class}}",
                        ),
                    ),
                ),
                PanelSpec(
                    "PFLOPS by centre",
                    "Total and free normalised PFLOPS per centre.",
                    "none",
                    (
                        Query(
                            f"sum by (centre) (suanli_hub_centre_pflops{{{CEN}}})",
                            "{{centre}} total",
                        ),
                        Query(
                            f"sum by (centre) (suanli_hub_centre_free_pflops{{{CEN}}})",
                            "{{centre}} free",
                        ),
                    ),
                ),
                PanelSpec(
                    "Hub jobs by centre",
                    "Hub jobs whose current copy is in each centre.",
                    "none",
                    (
                        Query(
                            f"sum by (centre) (suanli_hub_centre_jobs{{{CEN}}})",
                            "{{centre}}",
                        ),
                    ),
                    stacked=True,
                ),
            ),
        ),
        (
            "Dispatch",
            (
                PanelSpec(
                    "Hub queue by reason",
                    "Hub jobs waiting for a centre, by the reason the hub recorded.",
                    "none",
                    (Query("sum by (reason) (suanli_hub_queue_jobs)", "{{reason}}"),),
                    span=8,
                    stacked=True,
                ),
                PanelSpec(
                    "Dispatch latency (p50, p90)",
                    "From the hub creating a copy in a member to the hub seeing it admitted.",
                    "s",
                    (
                        Query(
                            "histogram_quantile(0.5, sum by (le) (rate("
                            f"suanli_hub_dispatch_latency_seconds_bucket{{{CEN}}}[{RATE}])))",
                            "p50",
                        ),
                        Query(
                            "histogram_quantile(0.9, sum by (le) (rate("
                            f"suanli_hub_dispatch_latency_seconds_bucket{{{CEN}}}[{RATE}])))",
                            "p90",
                        ),
                    ),
                    span=8,
                ),
                PanelSpec(
                    "Dispatches, withdrawals, re-dispatches",
                    "Per second, per centre: copies created, copies withdrawn after the "
                    "dispatch timeout, jobs moved away from the centre.",
                    "ops",
                    (
                        Query(
                            f"sum by (centre) (rate(suanli_hub_dispatches_total{{{CEN}}}[{RATE}]))",
                            "{{centre}} dispatched",
                        ),
                        Query(
                            "sum by (centre) "
                            f"(rate(suanli_hub_withdrawals_total{{{CEN}}}[{RATE}]))",
                            "{{centre}} withdrawn",
                        ),
                        Query(
                            "sum by (centre) "
                            f"(rate(suanli_hub_redispatches_total{{{CEN}}}[{RATE}]))",
                            "{{centre}} re-dispatched",
                        ),
                    ),
                    span=8,
                ),
                PanelSpec(
                    "Hub cycle duration (p99)",
                    "One hub cycle: poll every centre, dispatch, mirror, write status.",
                    "s",
                    (
                        Query(
                            "histogram_quantile(0.99, sum by (le) "
                            f"(rate(suanli_hub_cycle_duration_seconds_bucket[{RATE}])))",
                            "p99",
                        ),
                    ),
                    span=24,
                ),
            ),
        ),
    ),
)

DASHBOARDS: tuple[DashboardSpec, ...] = (
    CENTRE_OVERVIEW,
    TENANTS,
    SCHEDULER_HEALTH,
    COMPUTE_NETWORK,
)


def _panel(spec: PanelSpec, panel_id: int) -> StatPanel | TimeseriesPanel:
    panel: StatPanel | TimeseriesPanel
    if spec.kind == "stat":
        panel = StatPanel()
    elif spec.kind == "timeseries":
        panel = TimeseriesPanel()
        if spec.stacked:
            panel.fill_opacity(40)
    else:
        raise ValueError(f"PanelSpec.kind of {spec.title!r} must be stat or timeseries")
    panel.id(panel_id).title(spec.title).description(spec.description).unit(spec.unit)
    panel.datasource(DATASOURCE).span(spec.span).height(spec.height)
    for index, query in enumerate(spec.queries):
        target = Dataquery().expr(query.expr).ref_id(chr(ord("A") + index))
        if query.legend:
            target.legend_format(query.legend)
        panel.with_target(target)
    return panel


def build(spec: DashboardSpec) -> dict[str, Any]:
    """The dashboard as the JSON object Grafana imports."""
    dashboard = (
        Dashboard(spec.title)
        .uid(spec.uid)
        .description(spec.description)
        .tags(TAGS)
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
    )
    for name, label, query in spec.variables:
        dashboard.with_variable(
            QueryVariable(name)
            .label(label)
            .datasource(DATASOURCE)
            .query(query)
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    panel_id = 0
    for title, panels in spec.rows:
        dashboard.with_row(Row(title))
        for panel_spec in panels:
            panel_id += 1
            dashboard.with_panel(_panel(panel_spec, panel_id))
    encoded: dict[str, Any] = json.loads(json.dumps(dashboard.build(), cls=JSONEncoder))
    return encoded


def render(spec: DashboardSpec) -> str:
    """Stable JSON text of the dashboard (sorted keys, two-space indent, final newline)."""
    return json.dumps(build(spec), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
