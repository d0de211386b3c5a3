"""Hypothesis stateful test of the admission invariants on the pure core.

Jobs arrive, cycles run (their writes sometimes fail and are rolled back), jobs finish and
victims are requeued. After every step: quota usage never exceeds nominal + borrowing limits,
what is lent never exceeds lending limits, the book's usage is exactly the sum of the admitted
jobs' demands, the cluster state holds exactly the admitted replicas, rollbacks and releases
restore the previous state exactly, and a cycle decides the same on a state rebuilt from scratch.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from suanli.placement.model import Placement, Policy
from suanli.scheduling.cycle import (
    Admit,
    CycleConfig,
    CycleResult,
    Preempt,
    Wait,
    build_book,
    rollback_admission,
    run_cycle,
)
from suanli.scheduling.gangs import bind_admission, gang_for, pod_key
from suanli.scheduling.model import (
    Admission,
    JobOption,
    JobRequest,
    QuotaSpec,
    ReclaimPolicy,
    ResourceQuota,
    WithinQuotaPolicy,
)
from suanli.scheduling.preemption import PreemptionKind
from suanli.scheduling.quota import QuotaBook, device_resource

from .helpers import ASCEND, CLASSES, H100, add_nodes, implementations

NAMESPACES = ("a", "b", "c", "solo")
SHAPES = (1, 2, 4, 8)

share = st.builds(
    ResourceQuota,
    nominal=st.integers(0, 24),
    borrowing_limit=st.one_of(st.none(), st.integers(0, 8)),
).flatmap(
    lambda q: st.sampled_from([None, *range(q.nominal + 1)]).map(
        lambda lending: ResourceQuota(q.nominal, q.borrowing_limit, lending)
    )
)
# legal shapes only (a multi-replica gang takes whole 8-device nodes); illegal ones have their
# own scenario tests and would only dilute the search
shape = st.one_of(
    st.tuples(st.sampled_from(SHAPES), st.just(1)),
    st.tuples(st.just(8), st.integers(2, 3)),
)
option = st.builds(
    lambda device_class, size, cpu: JobOption(device_class, size[0], size[1], cpu),
    st.sampled_from(("ascend-910b", "nvidia-h100")),
    shape,
    st.sampled_from((0, 4_000, 32_000)),
)


def demand_total(book: QuotaBook, admitted: dict[str, Admission]) -> dict[str, dict[str, int]]:
    """Independent recomputation of what each quota should be charged."""
    totals: dict[str, dict[str, int]] = {}
    for admission in admitted.values():
        spec = book.quota_for_namespace(admission.job.namespace)
        assert spec is not None
        bucket = totals.setdefault(spec.name, {})
        for resource, amount in book.demand(admission.charged_option).items():
            bucket[resource] = bucket.get(resource, 0) + amount
    return totals


class AdmissionMachine(RuleBasedStateMachine):
    state_class: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.quotas: list[QuotaSpec] = []
        self.pending: dict[str, JobRequest] = {}
        self.admitted: dict[str, Admission] = {}
        self.finished: set[str] = set()
        self.overtaken: dict[str, int] = {}
        self.serial = 0
        self.state: Any = None
        self.max_overtakes = 0

    def new_state(self) -> Any:
        state = self.state_class(CLASSES, policy=Policy.BEST_FIT, track_recent_mix=False)
        add_nodes(state, ASCEND, 3)
        add_nodes(state, H100, 2)
        return state

    @initialize(
        shares=st.lists(st.tuples(share, share), min_size=4, max_size=4),
        # policies that preempt are drawn more often: preemption is what needs exercising
        within=st.lists(
            st.sampled_from([*WithinQuotaPolicy, WithinQuotaPolicy.LOWER_PRIORITY]),
            min_size=4,
            max_size=4,
        ),
        reclaim=st.lists(
            st.sampled_from([*ReclaimPolicy, ReclaimPolicy.ANY]), min_size=4, max_size=4
        ),
        cpu=st.one_of(st.none(), st.integers(0, 200_000)),
        max_overtakes=st.sampled_from((1, 3, 10_000)),
    )
    def setup(
        self,
        shares: list[tuple[ResourceQuota, ResourceQuota]],
        within: list[WithinQuotaPolicy],
        reclaim: list[ReclaimPolicy],
        cpu: int | None,
        max_overtakes: int,
    ) -> None:
        self.max_overtakes = max_overtakes
        for index, namespace in enumerate(NAMESPACES):
            asc, gpu = shares[index]
            self.quotas.append(
                QuotaSpec(
                    name=f"q-{namespace}",
                    namespaces=frozenset({namespace}),
                    devices={"ascend-910b": asc, "nvidia-h100": gpu},
                    cpu_milli=None if cpu is None or index else ResourceQuota(cpu),
                    cohort=None if namespace == "solo" else "lab",
                    within_quota=within[index],
                    reclaim_within_cohort=reclaim[index],
                )
            )
        self.state = self.new_state()

    # --- rules -------------------------------------------------------------------------------

    @rule(
        burst=st.lists(
            st.tuples(
                st.sampled_from(NAMESPACES),
                st.lists(option, min_size=1, max_size=2),
                st.integers(0, 3),
                st.booleans(),
            ),
            min_size=1,
            max_size=6,
        )
    )
    def submit(self, burst: list[tuple[str, list[JobOption], int, bool]]) -> None:
        for namespace, options, priority, elastic in burst:
            self.serial += 1
            request = JobRequest(
                namespace=namespace,
                name=f"j{self.serial}",
                priority=priority,
                created=float(self.serial),
                options=tuple(options),
                min_replicas=1 if elastic else None,
            )
            self.pending[request.key] = request

    @rule(namespace=st.sampled_from(NAMESPACES), urgent=option)
    def submit_urgent(self, namespace: str, urgent: JobOption) -> None:
        """A high-priority job arriving into a busy cluster: what preemption is for."""
        self.serial += 1
        request = JobRequest(namespace, f"u{self.serial}", 9, float(self.serial), (urgent,))
        self.pending[request.key] = request

    def run(self, state: Any) -> CycleResult:
        return run_cycle(
            list(self.pending.values()),
            list(self.admitted.values()),
            self.quotas,
            CLASSES,
            state,
            overtaken=self.overtaken,
            config=CycleConfig(max_overtakes=self.max_overtakes),
        )

    @rule(write_fails=st.booleans())
    def cycle(self, write_fails: bool) -> None:
        free_before = {n: self.state.node_free(n) for n in self.state.node_names()}
        pods_before = self.state.pod_keys()
        usage_before = build_book(self.quotas, CLASSES, self.admitted.values())

        # a restarted operator rebuilds the state from the recorded admissions: same answer
        rebuilt = self.new_state()
        for admission in self.admitted.values():
            bind_admission(rebuilt, admission)
        shadow = self.run(rebuilt)
        result = self.run(self.state)
        assert summary(result) == summary(shadow)

        keys = sorted(job.key for job in self.pending.values())
        decided = sorted(d.job.key for d in result.decisions if not isinstance(d, Preempt))
        assert decided == keys, "every pending job gets exactly one Admit or Wait"
        assert result.book.violations() == []
        assert all(count <= self.max_overtakes for count in result.overtaken.values())
        admitted_so_far = list(self.admitted.values())
        for decision in result.decisions:
            if isinstance(decision, Admit):
                admitted_so_far.append(decision.admission)
            elif isinstance(decision, Preempt):
                # judged against the book as the preemptor saw it, admissions earlier in the
                # cycle included (they may be what puts a victim's quota above nominal)
                seen = build_book(self.quotas, CLASSES, admitted_so_far)
                self.check_preemption(decision, seen)
                self.check_minimal(decision, admitted_so_far)

        if write_fails:
            for admit in result.admitted:
                rollback_admission(result, admit)
            assert {n: self.state.node_free(n) for n in self.state.node_names()} == free_before
            assert self.state.pod_keys() == pods_before
            for spec in self.quotas:
                assert result.book.usage(spec.name) == usage_before.usage(spec.name)
            return
        for decision in result.decisions:
            if isinstance(decision, Admit):
                del self.pending[decision.job.key]
                self.admitted[decision.job.key] = decision.admission
            elif isinstance(decision, Preempt):
                for victim in decision.victims:
                    key = victim.admission.job.key
                    del self.admitted[key]
                    self.state.release_gang(key)
                    self.pending[key] = victim.admission.job
        self.overtaken = result.overtaken

    def check_preemption(self, decision: Preempt, book: QuotaBook) -> None:
        preemptor = decision.job
        for victim in decision.victims:
            other = victim.admission.job
            assert victim.admission.option.device_class == (
                preemptor.options[decision.option_index].device_class
            )
            if victim.kind is PreemptionKind.WITHIN_QUOTA:
                assert victim.quota == decision.quota
                assert other.priority < preemptor.priority, "no thrashing: strictly lower"
            else:
                assert victim.quota != decision.quota
                assert book.quotas[victim.quota].cohort == book.quotas[decision.quota].cohort
                resource = device_resource(victim.admission.option.device_class)
                assert book.used(victim.quota, resource) > book.nominal(victim.quota, resource)
            assert victim.message

    def check_minimal(self, decision: Preempt, admitted: list[Admission]) -> None:
        """Evicting all victims lets the job fit quota and place; sparing any one does not.
        Checked on a state rebuilt as it was when the preemptor was considered."""
        option = decision.job.options[decision.option_index]
        victims = {v.admission.job.key for v in decision.victims}
        for spared in [None, *sorted(victims)]:
            kept = [a for a in admitted if a.job.key not in victims or a.job.key == spared]
            state = self.new_state()
            for admission in kept:
                bind_admission(state, admission)
            book = build_book(self.quotas, CLASSES, kept)
            fits = book.fit(decision.quota, book.demand(option)).fits
            placed = isinstance(state.place(gang_for(decision.job, option)), Placement)
            assert (fits and placed) == (spared is None), (spared, fits, placed)

    @precondition(lambda self: bool(self.admitted))
    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.admitted)))
        before = build_book(self.quotas, CLASSES, self.admitted.values())
        quota, amounts = before.uncharge(key)
        del self.admitted[key]
        self.state.release_gang(key)
        self.finished.add(key)
        after = build_book(self.quotas, CLASSES, self.admitted.values())
        for spec in self.quotas:
            assert after.usage(spec.name) == before.usage(spec.name), "release is exact"
        assert quota == f"q-{key.split('/')[0]}"
        assert amounts

    # --- invariants --------------------------------------------------------------------------

    @invariant()
    def quota_is_never_exceeded(self) -> None:
        if not self.quotas:
            return
        book = build_book(self.quotas, CLASSES, self.admitted.values())
        assert book.violations() == []
        expected = demand_total(book, self.admitted)
        for spec in self.quotas:
            assert book.usage(spec.name) == expected.get(spec.name, {})
            for class_name, limit in spec.devices.items():
                resource = device_resource(class_name)
                used = book.used(spec.name, resource)
                cap = limit.nominal
                if spec.cohort is not None:
                    cap += 10**9 if limit.borrowing_limit is None else limit.borrowing_limit
                assert used <= cap * 1000
                lendable = limit.nominal if limit.lending_limit is None else limit.lending_limit
                assert book.lent(spec.name).get(resource, 0) <= lendable * 1000
        for resource in (device_resource("ascend-910b"), device_resource("nvidia-h100")):
            borrowed = sum(book.borrowed(s.name).get(resource, 0) for s in self.quotas)
            lent = sum(book.lent(s.name).get(resource, 0) for s in self.quotas)
            assert borrowed == lent

    @invariant()
    def state_holds_exactly_the_admitted_replicas(self) -> None:
        if self.state is None:
            return
        expected = sorted(
            pod_key(key, index)
            for key, admission in self.admitted.items()
            for index in range(admission.replicas)
        )
        assert self.state.pod_keys() == expected

    @invariant()
    def no_job_is_lost_or_duplicated(self) -> None:
        groups = [set(self.pending), set(self.admitted), self.finished]
        assert sum(len(g) for g in groups) == len(set().union(*groups)) == self.serial


def summary(result: CycleResult) -> list[tuple[str, str, object]]:
    out: list[tuple[str, str, object]] = []
    for decision in result.decisions:
        if isinstance(decision, Admit):
            out.append(("admit", decision.job.key, decision.placement))
        elif isinstance(decision, Wait):
            out.append(("wait", decision.job.key, (decision.reason, decision.message)))
        else:
            victims = tuple(v.admission.job.key for v in decision.victims)
            out.append(("preempt", decision.job.key, victims))
    return out


SETTINGS = settings(
    max_examples=100,
    stateful_step_count=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

for _state_class in implementations():
    _name = _state_class.__module__.rsplit(".", 1)[-1].strip("_")
    _machine = type(f"AdmissionMachine_{_name}", (AdmissionMachine,), {"state_class": _state_class})
    _case = _machine.TestCase
    _case.settings = SETTINGS
    globals()[f"TestAdmissionInvariants_{_name}"] = _case
del _state_class, _name, _machine, _case
