#!/usr/bin/env python3
"""One placement decision inside the operator's real configuration, at 5,000 nodes.

Why: the core's own benchmark (``placement_bench.py``) times the core with a fixed workload
mix; the operator configures the core differently (which classes, which mix, how it learns
it), and that configuration decides what a decision costs in production. This builds the
operator's :class:`~suanli.controller.inventory.Inventory` from the deployed catalogue and the
scale benchmark's kwok nodes, then runs the loop's own steps — learn the mix, ``run_cycle``,
bind the admissions as the next snapshot would — for a burst of the scale benchmark's gangs,
and reports the per-decision time ``run_cycle`` measures (``placement_seconds``, one gang's
``Statement.place``), beside the core's built-in recent-mix tracking the operator used before.

    .venv/bin/python bench/decision_bench.py --nodes 5000 --pods 20000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_bench import CLASSES, TENANTS, Gang, nodes, workload

from suanli.api.acceleratorclass import AcceleratorClass
from suanli.controller.inventory import Inventory, admission_signature, sync_admissions
from suanli.controller.translate import catalogue_entry
from suanli.placement import ClusterState
from suanli.scheduling.cycle import run_cycle
from suanli.scheduling.model import Admission, JobOption, JobRequest, QuotaSpec, ResourceQuota

CATALOGUE = Path(__file__).resolve().parent.parent / "deploy" / "catalogue"
BATCH = 500  # gangs a cycle sees at once (a burst of creations between two cycles)


def request(gang: Gang, created: float) -> JobRequest:
    option = JobOption(
        gang.device_class,
        gang.devices,
        gang.replicas,
        cpu_milli_per_replica=1000 * gang.cpu,
        memory_bytes_per_replica=gang.memory_gi << 30,
    )
    return JobRequest(gang.namespace, gang.name, 0, created, (option,))


def run(node_count: int, pods: int, learnt: bool) -> tuple[list[float], int]:
    inventory = Inventory()
    catalogue = {}
    for name in CLASSES:
        body = yaml.safe_load((CATALOGUE / f"{name}.yaml").read_text())
        catalogue[name] = catalogue_entry(AcceleratorClass.model_validate(body))
    inventory.set_catalogue(catalogue)
    if not learnt:  # the configuration before: the core learns the mix of recent placements
        inventory.state = ClusterState([e.device_class for e in catalogue.values()])
    ready = [
        {**n, "status": {**n["status"], "conditions": [{"type": "Ready", "status": "True"}]}}
        for n in nodes(node_count)
    ]  # as kwok reports them
    inventory.sync_nodes(ready)
    quotas = [
        QuotaSpec(t, frozenset({t}), {c: ResourceQuota(8 * node_count) for c in CLASSES})
        for t in TENANTS
    ]
    classes = [e.device_class for e in catalogue.values()]
    gangs = [request(g, float(i)) for i, g in enumerate(workload(pods))]
    admitted: list[Admission] = []
    seconds: list[float] = []
    for start in range(0, len(gangs), BATCH):
        pending = gangs[start : start + BATCH]
        if learnt:
            inventory.learn_mix([r.options[0] for r in pending] + [a.option for a in admitted])
        pending = pending + [g for g in gangs[:start] if g.key not in {a.job.key for a in admitted}]
        result = run_cycle(pending, admitted, quotas, classes, inventory.state)
        seconds.extend(s for _, s in result.placement_seconds)
        for admit in result.admitted:  # what the applier does once the status is written
            inventory.admissions[admit.job.key] = admission_signature(admit.admission)
            if result.statement is not None:
                result.statement.commit(admit.job.key)
        admitted = admitted + [a.admission for a in result.admitted]
        sync_admissions(inventory, admitted)
    return seconds, len(gangs) - len(admitted)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=20000)
    args = parser.parse_args()
    print(f"{args.nodes} nodes, {args.pods} pods in gangs of 1-8, {BATCH} gangs a cycle")
    for label, learnt in (("core recent mix (before)", False), ("learn_mix (now)", True)):
        t0 = time.perf_counter()
        seconds, unplaced = run(args.nodes, args.pods, learnt)
        us = sorted(1e6 * s for s in seconds)
        print(
            f"{label:26s} {len(us):6d} decisions: median {statistics.median(us):6.1f} µs, "
            f"mean {statistics.fmean(us):6.1f} µs, p99 {us[int(0.99 * len(us))]:7.1f} µs "
            f"({time.perf_counter() - t0:.1f} s); {unplaced} gangs left unplaced"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
