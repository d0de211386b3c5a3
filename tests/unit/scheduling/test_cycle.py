"""Scheduling cycle scenarios: option fallback, cohort borrowing and reclaim, preemption,
ordering, bounded overtaking, messages and rollback, on the placement core's cluster state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from suanli.placement.model import Placement
from suanli.scheduling.cycle import (
    Admit,
    CycleConfig,
    CycleResult,
    Preempt,
    Reason,
    Wait,
    rollback_admission,
    run_cycle,
)
from suanli.scheduling.gangs import bind_admission, gang_for, release_admission
from suanli.scheduling.model import Admission, JobRequest, QuotaSpec, ReclaimPolicy
from suanli.scheduling.model import WithinQuotaPolicy as Within
from suanli.scheduling.preemption import PreemptionKind, find_victims
from suanli.scheduling.quota import device_resource

from .helpers import ASCEND, CLASSES, H100, add_nodes, ascend, h100, job, milli, quota

ASC = device_resource("ascend-910b")
StateFactory = Callable[[], Any]


class World:
    """Pending jobs, admitted jobs and the cluster state, applied the way the operator would."""

    def __init__(self, state: Any, quotas: list[QuotaSpec], config: CycleConfig | None = None):
        self.state = state
        self.quotas = quotas
        self.config = config or CycleConfig()
        self.pending: dict[str, JobRequest] = {}
        self.admitted: dict[str, Admission] = {}
        self.overtaken: dict[str, int] = {}

    def submit(self, *jobs: JobRequest) -> None:
        for item in jobs:
            self.pending[item.key] = item

    def cycle(self) -> CycleResult:
        result = run_cycle(
            list(self.pending.values()),
            list(self.admitted.values()),
            self.quotas,
            CLASSES,
            self.state,
            overtaken=self.overtaken,
            config=self.config,
        )
        for decision in result.decisions:
            if isinstance(decision, Admit):
                del self.pending[decision.job.key]
                self.admitted[decision.job.key] = decision.admission
            elif isinstance(decision, Preempt):
                for victim in decision.victims:
                    self.finish(victim.admission.job.key)
                    self.pending[victim.admission.job.key] = victim.admission.job
        self.overtaken = result.overtaken
        return result

    def finish(self, key: str) -> None:
        self.admitted.pop(key)
        self.state.release_gang(key)


def wait_of(result: CycleResult, key: str) -> Wait:
    decision = result.decision_for(key)
    assert isinstance(decision, Wait), decision
    return decision


def admit_of(result: CycleResult, key: str) -> Admit:
    decision = result.decision_for(key)
    assert isinstance(decision, Admit), decision
    return decision


def test_falls_back_from_nvidia_to_ascend_when_the_first_option_exceeds_quota(
    new_state: StateFactory,
) -> None:
    state = new_state()
    add_nodes(state, H100, 2)
    add_nodes(state, ASCEND, 2)
    world = World(state, [quota("team-a", h100=8, ascend=16)])
    world.submit(job("team-a/llm", h100(8, 2), ascend(8, 2)))
    admit = admit_of(world.cycle(), "team-a/llm")
    assert admit.option_index == 1
    assert admit.placement.option_index == 1
    assert admit.placement.device_class == "ascend-910b"
    assert sorted(r.node for r in admit.placement.replicas) == ["ascend-910b-0", "ascend-910b-1"]


def test_falls_back_when_the_first_option_fits_quota_but_not_capacity(
    new_state: StateFactory,
) -> None:
    state = new_state()
    add_nodes(state, H100, 1)
    add_nodes(state, ASCEND, 2)
    world = World(state, [quota("team-a", h100=16, ascend=16)])
    world.submit(job("team-a/llm", h100(8, 2), ascend(8, 2)))
    result = world.cycle()
    assert admit_of(result, "team-a/llm").option_index == 1
    assert result.book.used("team-a", device_resource("nvidia-h100")) == 0
    assert result.book.used("team-a", ASC) == milli(16)


def test_waits_with_every_option_explained_when_nothing_fits(new_state: StateFactory) -> None:
    state = new_state()
    add_nodes(state, H100, 1)
    add_nodes(state, ASCEND, 2)
    world = World(state, [quota("team-a", h100=16, ascend=8)])
    world.submit(job("team-a/llm", h100(8, 2), ascend(8, 2)))
    wait = wait_of(world.cycle(), "team-a/llm")
    assert wait.reason is Reason.UNSCHEDULABLE
    first, second = wait.message.split(" | ")
    assert first.startswith("16 × nvidia-h100: ")
    assert second == "waiting for 16 × ascend-910b: quota team-a has 8 free"
    assert wait.position == 1
    assert world.state.pod_keys() == []


def test_illegal_shape_and_unknown_namespace_get_their_own_reasons(
    new_state: StateFactory,
) -> None:
    state = new_state()
    add_nodes(state, ASCEND, 2)
    world = World(state, [quota("team-a", ascend=16)])
    world.submit(job("team-a/odd", ascend(3)), job("stranger/x", ascend(1)))
    result = world.cycle()
    odd = wait_of(result, "team-a/odd")
    assert odd.reason is Reason.ILLEGAL_SHAPE
    assert "3 devices per replica is not legal for ascend-910b" in odd.message
    stranger = wait_of(result, "stranger/x")
    assert stranger.reason is Reason.NO_QUOTA
    assert stranger.message == "namespace stranger is not covered by any ComputeQuota"


def test_cohort_borrowing_then_reclaim_by_the_lender(new_state: StateFactory) -> None:
    state = new_state()
    add_nodes(state, ASCEND, 4)
    lab = [
        quota("team-a", ascend=16, cohort="lab"),
        quota("team-b", ascend=16, cohort="lab", reclaim=ReclaimPolicy.ANY),
    ]
    world = World(state, lab)
    world.submit(job("team-a/big", ascend(8, 3), created=1))
    result = world.cycle()
    assert admit_of(result, "team-a/big").borrowed == {ASC: milli(8)}
    assert result.quota_status("team-b").lent == {ASC: milli(8)}

    world.submit(job("team-b/mine", ascend(8, 2), created=2, priority=5))
    result = world.cycle()
    (preempt,) = result.preemptions
    assert preempt.job.key == "team-b/mine"
    assert [v.admission.job.key for v in preempt.victims] == ["team-a/big"]
    assert preempt.victims[0].kind is PreemptionKind.RECLAIM
    assert preempt.reason == "CohortReclaim"
    assert "lender reclaimed it for team-b/mine" in preempt.victims[0].message
    assert wait_of(result, "team-b/mine").reason is Reason.PREEMPTING

    # the victim is requeued; the lender now runs, and the victim cannot evict it back
    result = world.cycle()
    assert admit_of(result, "team-b/mine").borrowed == {}
    big = wait_of(result, "team-a/big")
    assert big.reason is Reason.QUOTA_EXCEEDED
    assert big.message == (
        "waiting for 24 × ascend-910b: quota team-a has 16 free, the cohort can lend 0"
    )
    assert result.preemptions == []
    assert world.cycle().preemptions == []


def test_reclaim_lower_priority_policy_does_not_evict_higher_priority_borrowers(
    new_state: StateFactory,
) -> None:
    state = new_state()
    add_nodes(state, ASCEND, 4)
    lab = [
        quota("team-a", ascend=16, cohort="lab"),
        quota("team-b", ascend=16, cohort="lab", reclaim=ReclaimPolicy.LOWER_PRIORITY),
    ]
    world = World(state, lab)
    world.submit(job("team-a/big", ascend(8, 3), priority=9))
    world.cycle()
    world.submit(job("team-b/mine", ascend(8, 2), priority=1))
    result = world.cycle()
    assert result.preemptions == []
    assert wait_of(result, "team-b/mine").reason is Reason.QUOTA_EXCEEDED


def test_lending_limit_is_respected_by_the_cycle(new_state: StateFactory) -> None:
    from suanli.scheduling.model import ResourceQuota

    state = new_state()
    add_nodes(state, ASCEND, 4)
    lab = [
        quota("team-a", ascend=8, cohort="lab"),
        quota("team-b", ascend=ResourceQuota(16, lending_limit=8), cohort="lab"),
    ]
    world = World(state, lab)
    world.submit(job("team-a/big", ascend(8, 3), created=1), job("team-a/fits", ascend(8, 2)))
    result = world.cycle()
    assert admit_of(result, "team-a/fits").borrowed == {ASC: milli(8)}
    assert wait_of(result, "team-a/big").message == (
        "waiting for 24 × ascend-910b: quota team-a has 0 free, the cohort can lend 0"
    )
    assert result.book.violations() == []


def test_in_quota_preemption_evicts_the_fewest_lowest_newest_jobs(
    new_state: StateFactory,
) -> None:
    state = new_state()
    add_nodes(state, ASCEND, 2)
    world = World(state, [quota("team-a", ascend=16, within=Within.LOWER_PRIORITY)])
    world.submit(*(job(f"team-a/small-{i}", ascend(4), created=i) for i in range(4)))
    assert len(world.cycle().admitted) == 4
    world_before = dict(world.admitted)
    world.submit(job("team-a/urgent", ascend(8), priority=10, created=100))
    result = world.cycle()
    (preempt,) = result.preemptions
    victims = sorted(v.admission.job.key for v in preempt.victims)
    # the 8 devices must come from one node: both jobs on the node of the newest job go, and no
    # job elsewhere (whichever way the core packed the four 4-device jobs)
    node_of = {key: a.placement.replicas[0].node for key, a in world_before.items()}
    newest_node = node_of["team-a/small-3"]
    assert victims == sorted(key for key, node in node_of.items() if node == newest_node)
    assert len(victims) == 2
    assert preempt.victims[0].message == (
        "preempted by team-a/urgent (priority 10 > 0) in quota team-a to free 4 × ascend-910b; "
        "requeued"
    )
    assert sorted(world.state.pod_keys()) == sorted(
        f"team-a/small-{i}/0" for i in range(4) if f"team-a/small-{i}" not in victims
    )
    assert admit_of(world.cycle(), "team-a/urgent").option_index == 0


def test_equal_priority_never_preempts(new_state: StateFactory) -> None:
    state = new_state()
    add_nodes(state, ASCEND, 1)
    world = World(state, [quota("team-a", ascend=16, within=Within.LOWER_PRIORITY)])
    world.submit(job("team-a/first", ascend(8), priority=3))
    world.cycle()
    world.submit(job("team-a/second", ascend(8), priority=3))
    result = world.cycle()
    assert result.preemptions == []
    assert wait_of(result, "team-a/second").reason is Reason.UNSCHEDULABLE


def test_preemption_victim_set_is_minimal(new_state: StateFactory) -> None:
    state = new_state()
    add_nodes(state, ASCEND, 2)
    world = World(state, [quota("team-a", ascend=16, within=Within.LOWER_PRIORITY)])
    sizes = [1, 2, 1, 4, 2, 2, 4]
    world.submit(*(job(f"team-a/j{i}", ascend(n), created=i) for i, n in enumerate(sizes)))
    world.cycle()
    urgent = job("team-a/urgent", ascend(8), priority=1, created=100)
    result = world.cycle()
    book = result.book
    plan = find_victims(
        urgent, 0, "team-a", book=book, state=state, admitted=list(world.admitted.values())
    )
    assert plan is not None
    assert 1 <= len(plan.victims) < len(sizes)
    before = (book.usage("team-a"), state.pod_keys())
    victims = [v.admission for v in plan.victims]
    # evicting all victims makes room; sparing any single one of them does not
    for spared in [None, *victims]:
        evicted = [v for v in victims if v is not spared]
        for victim in evicted:
            book.uncharge(victim.job.key)
            release_admission(state, victim)
        outcome = state.place(gang_for(urgent, urgent.options[0]))
        placed = isinstance(outcome, Placement)
        if placed:
            state.release_gang(urgent.key)
        fits = placed and book.fit("team-a", book.demand(urgent.options[0])).fits
        assert fits == (spared is None), spared
        for victim in evicted:
            bind_admission(state, victim)
            book.charge(victim.job.key, "team-a", book.demand(victim.charged_option))
    assert book.usage("team-a") == before[0]
    assert state.pod_keys() == before[1]


def test_order_is_priority_then_fair_share_then_age(new_state: StateFactory) -> None:
    state = new_state()
    add_nodes(state, ASCEND, 1)
    quotas = [quota("busy", ascend=8, cohort="lab"), quota("idle", ascend=8, cohort="lab")]
    world = World(state, quotas)
    world.submit(job("busy/running", ascend(4)))
    world.cycle()
    world.submit(
        job("busy/old", ascend(4), created=1),
        job("idle/new", ascend(4), created=5),
        job("idle/newer", ascend(4), created=6),
        job("busy/vip", ascend(4), created=9, priority=1),
    )
    result = world.cycle()
    # priority first, then the quota with the lower dominant share, then age
    assert [d.job.key for d in result.admitted] == ["busy/vip"]
    waits = {w.job.key: w for w in result.waiting}
    assert [d.job.key for d in result.decisions] == [
        "busy/vip",
        "idle/new",
        "idle/newer",
        "busy/old",
    ]
    assert (waits["idle/new"].position, waits["idle/newer"].position) == (1, 2)
    assert (waits["busy/old"].position, result.positions["busy/vip"]) == (2, 1)


def test_fair_share_weight_favours_the_heavier_quota(new_state: StateFactory) -> None:
    from fractions import Fraction

    state = new_state()
    add_nodes(state, ASCEND, 4)
    quotas = [
        quota("light", ascend=8, cohort="lab"),
        quota("heavy", ascend=8, cohort="lab", weight=Fraction(3)),
        quota("lender", ascend=16, cohort="lab"),
    ]
    world = World(state, quotas)
    world.submit(*(job(f"light/j{i}", ascend(8), created=i) for i in range(4)))
    world.submit(*(job(f"heavy/j{i}", ascend(8), created=i) for i in range(4)))
    world.config = CycleConfig(preemption=False)
    result = world.cycle()
    admitted = [d.job.key for d in result.admitted]
    # four 8-device slots: each quota's nominal first, then both slots borrowed from the idle
    # lender go to the weight-3 quota (its share 8/32/3, then 16/32/3, stays below light's 8/32)
    assert admitted == ["heavy/j0", "light/j0", "heavy/j1", "heavy/j2"]
    assert [dict(d.borrowed) for d in result.admitted] == [{}, {}, {ASC: 8000}, {ASC: 8000}]


def test_a_waiting_head_is_overtaken_at_most_n_times_then_reserves(
    new_state: StateFactory,
) -> None:
    state = new_state()
    add_nodes(state, ASCEND, 2)
    world = World(state, [quota("team-a", ascend=16)], CycleConfig(max_overtakes=3))
    # pods suanli did not create hold one device on each node: the 2 × 8 gang fits quota but
    # not capacity
    for index in range(2):
        state.bind(f"kube-system/foreign-{index}", f"ascend-910b-{index}", 0, 0, devices=1)
    world.submit(job("team-a/gang", ascend(8, 2), created=1))
    world.submit(*(job(f"team-a/small-{i}", ascend(1), created=10 + i) for i in range(10)))
    result = world.cycle()
    assert [d.job.key for d in result.admitted] == [f"team-a/small-{i}" for i in range(3)]
    gang = wait_of(result, "team-a/gang")
    assert (gang.reason, gang.overtaken) == (Reason.UNSCHEDULABLE, 3)
    held = wait_of(result, "team-a/small-3")
    assert held.reason is Reason.RESERVED_FOR_OLDER_JOB
    assert "ascend-910b is held for team-a/gang, which is older" in held.message
    # capacity frees up: the gang goes before any later small job
    for key in list(world.admitted):
        world.finish(key)
    for index in range(2):
        state.release(f"kube-system/foreign-{index}")
    result = world.cycle()
    assert admit_of(result, "team-a/gang").placement.device_class == "ascend-910b"
    assert "team-a/gang" not in result.overtaken


def test_a_large_gang_is_not_starved_by_a_stream_of_small_jobs(new_state: StateFactory) -> None:
    state = new_state()
    add_nodes(state, ASCEND, 2)
    world = World(state, [quota("team-a", ascend=16)], CycleConfig(max_overtakes=4))
    clock = 0
    world.submit(*(job(f"team-a/s{clock + i}", ascend(2), created=i) for i in range(8)))
    world.cycle()
    world.submit(job("team-a/gang", ascend(8, 2), created=0.5))
    for round_number in range(20):
        # every round the oldest running small job finishes and two new ones arrive
        running = sorted(k for k in world.admitted if k != "team-a/gang")
        if running:
            world.finish(running[0])
        clock = 100 + 2 * round_number
        world.submit(job(f"team-a/s{clock}", ascend(2), created=clock))
        world.submit(job(f"team-a/s{clock + 1}", ascend(2), created=clock + 1))
        world.cycle()
        if "team-a/gang" in world.admitted:
            break
    assert "team-a/gang" in world.admitted
    # one slot frees per round: at most 4 rounds of overtaking, then 8 rounds of draining
    assert round_number < 4 + 8


def test_without_a_bound_the_stream_starves_the_gang(new_state: StateFactory) -> None:
    """The control experiment for the test above: with an unbounded overtaking allowance the
    same stream keeps the gang waiting, which shows the bound is what makes it run."""
    state = new_state()
    add_nodes(state, ASCEND, 2)
    world = World(state, [quota("team-a", ascend=16)], CycleConfig(max_overtakes=10_000))
    world.submit(*(job(f"team-a/s{i}", ascend(2), created=i) for i in range(8)))
    world.cycle()
    world.submit(job("team-a/gang", ascend(8, 2), created=0.5))
    for round_number in range(20):
        running = sorted(k for k in world.admitted if k != "team-a/gang")
        world.finish(running[0])
        clock = 100 + 2 * round_number
        world.submit(job(f"team-a/s{clock}", ascend(2), created=clock))
        world.submit(job(f"team-a/s{clock + 1}", ascend(2), created=clock + 1))
        world.cycle()
    assert "team-a/gang" not in world.admitted


def test_elastic_gang_takes_the_replicas_its_quota_allows(new_state: StateFactory) -> None:
    state = new_state()
    add_nodes(state, ASCEND, 4)
    world = World(state, [quota("team-a", ascend=24)])
    world.submit(job("team-a/elastic", ascend(8, 4), min_replicas=2))
    admit = admit_of(world.cycle(), "team-a/elastic")
    assert len(admit.placement.replicas) == 3
    assert world.admitted["team-a/elastic"].replicas == 3
    # the book charges what was placed, and rebuilding from the admission charges the same
    from suanli.scheduling.cycle import build_book

    rebuilt = build_book(world.quotas, CLASSES, world.admitted.values())
    assert rebuilt.used("team-a", ASC) == milli(24)


def test_rollback_restores_book_and_state_exactly(new_state: StateFactory) -> None:
    state = new_state()
    add_nodes(state, ASCEND, 2)
    quotas = [quota("team-a", ascend=8, cohort="lab"), quota("team-b", ascend=8, cohort="lab")]
    world = World(state, quotas)
    world.submit(job("team-b/running", ascend(2)))
    world.cycle()
    free_before = {name: state.node_free(name) for name in state.node_names()}
    pods_before = state.pod_keys()
    world.submit(job("team-a/j", ascend(8, 1)), job("team-a/k", ascend(4)))
    result = world.cycle()
    usage_before_rollback = result.book.usage("team-a")
    assert usage_before_rollback == {ASC: milli(12)}
    for admit in result.admitted:
        rollback_admission(result, admit)
    assert result.book.usage("team-a") == {}
    assert result.book.lent("team-b") == {}
    assert {name: state.node_free(name) for name in state.node_names()} == free_before
    assert state.pod_keys() == pods_before
    assert result.book.violations() == []


def test_same_inputs_give_the_same_decisions(new_state: StateFactory) -> None:
    def run() -> list[tuple[str, str, object]]:
        state = new_state()
        add_nodes(state, ASCEND, 3)
        add_nodes(state, H100, 2)
        quotas = [
            quota("a", ascend=8, h100=8, cohort="lab"),
            quota("b", ascend=8, h100=8, cohort="lab", within=Within.LOWER_PRIORITY),
        ]
        world = World(state, quotas)
        jobs = [
            job(f"{'ab'[i % 2]}/j{i}", h100(1 + i % 4), ascend(2 * (1 + i % 3)), created=i % 5)
            for i in range(30)
        ]
        world.submit(*jobs)
        out = []
        for decision in world.cycle().decisions:
            detail: object = (
                decision.placement.replicas if isinstance(decision, Admit) else str(decision)
            )
            out.append((type(decision).__name__, decision.job.key, detail))
        return out

    assert run() == run()


def test_job_both_pending_and_admitted_is_refused(new_state: StateFactory) -> None:
    from suanli.scheduling.model import SchedulingInputError

    state = new_state()
    add_nodes(state, ASCEND, 1)
    world = World(state, [quota("team-a", ascend=8)])
    world.submit(job("team-a/j", ascend(2)))
    world.cycle()
    world.pending["team-a/j"] = world.admitted["team-a/j"].job
    with pytest.raises(SchedulingInputError, match="team-a/j is both pending and admitted"):
        world.cycle()


def test_twenty_tenants_five_hundred_jobs_quota_holds_and_everyone_finishes(
    new_state: StateFactory,
) -> None:
    import random

    from suanli.scheduling.model import JobOption, ResourceQuota

    rng = random.Random(20)
    state = new_state()
    add_nodes(state, ASCEND, 16)
    add_nodes(state, H100, 16)
    quotas = [
        quota(
            f"t{i}",
            h100=ResourceQuota(6, borrowing_limit=8),
            ascend=ResourceQuota(6, lending_limit=2),
            cohort=f"floor-{i % 2}",
            within=Within.LOWER_PRIORITY,
            reclaim=ReclaimPolicy.LOWER_PRIORITY,
        )
        for i in range(20)
    ]
    world = World(state, quotas)
    for n in range(500):
        devices, replicas = rng.choice([(1, 1), (2, 1), (4, 1), (8, 1), (8, 2)])
        options = (
            JobOption("nvidia-h100", devices, replicas),
            JobOption("ascend-910b", devices, replicas),
        )
        world.submit(job(f"t{rng.randrange(20)}/j{n}", *options, priority=rng.choice([0, 0, 1])))
    finished: set[str] = set()
    for _ in range(200):
        result = world.cycle()
        assert result.book.violations() == []
        for waiting in result.waiting:
            assert waiting.reason and waiting.message and waiting.position >= 1
        for key in sorted(world.admitted):  # everything admitted so far runs one round
            if key not in {a.job.key for a in result.admitted}:
                world.finish(key)
                finished.add(key)
        if not world.pending and not world.admitted:
            break
    assert not world.pending
    assert len(finished) == 500


def test_a_job_for_a_class_outside_the_catalogue_waits_with_invalid_request(
    new_state: StateFactory,
) -> None:
    from suanli.scheduling.model import JobOption

    state = new_state()
    add_nodes(state, ASCEND, 1)
    world = World(state, [quota("team-a", ascend=8)])
    world.submit(job("team-a/tpu", JobOption("tpu-v5", 4, 1)))
    wait = wait_of(world.cycle(), "team-a/tpu")
    assert wait.reason is Reason.INVALID_REQUEST
    assert wait.message == "4 × tpu-v5: device class tpu-v5 is not in the catalogue"


def test_max_overtakes_zero_means_the_head_is_never_overtaken(new_state: StateFactory) -> None:
    state = new_state()
    add_nodes(state, ASCEND, 1)
    state.bind("kube-system/foreign", "ascend-910b-0", 0, 0, devices=1)
    world = World(state, [quota("team-a", ascend=8)], CycleConfig(max_overtakes=0))
    world.submit(job("team-a/whole-node", ascend(8), created=1), job("team-a/one", ascend(1)))
    world.submit(job("team-a/later", ascend(1), created=2))
    result = world.cycle()
    # "one" is older than "whole-node" (created 0), so it legitimately goes first
    assert [d.job.key for d in result.admitted] == ["team-a/one"]
    assert wait_of(result, "team-a/later").reason is Reason.RESERVED_FOR_OLDER_JOB


def test_quota_status_shows_used_borrowed_lent_and_pending(new_state: StateFactory) -> None:
    state = new_state()
    add_nodes(state, ASCEND, 2)
    lab = [quota("team-a", ascend=4, cohort="lab"), quota("team-b", ascend=12, cohort="lab")]
    world = World(state, lab)
    world.submit(job("team-a/j", ascend(8)), job("team-a/k", ascend(8, 2), created=1))
    result = world.cycle()
    status = result.quota_status("team-a")
    assert status.used == {ASC: milli(8)}
    assert status.borrowed == {ASC: milli(4)}
    assert status.pending == {ASC: milli(16)}
    assert result.quota_status("team-b").lent == {ASC: milli(4)}


def test_an_elastic_gang_below_its_minimum_waits(new_state: StateFactory) -> None:
    state = new_state()
    add_nodes(state, ASCEND, 4)
    world = World(state, [quota("team-a", ascend=8)])
    world.submit(job("team-a/elastic", ascend(8, 4), min_replicas=2))
    wait = wait_of(world.cycle(), "team-a/elastic")
    assert wait.reason is Reason.QUOTA_EXCEEDED
    assert wait.message == "waiting for 32 × ascend-910b: quota team-a has 8 free"


def test_cpu_quota_can_block_a_job_that_has_devices(new_state: StateFactory) -> None:
    from suanli.scheduling.model import JobOption, ResourceQuota

    state = new_state()
    add_nodes(state, ASCEND, 1)
    world = World(state, [quota("team-a", ascend=8, cpu_milli=ResourceQuota(16_000))])
    world.submit(job("team-a/cpu-heavy", JobOption("ascend-910b", 8, 1, 64_000)))
    wait = wait_of(world.cycle(), "team-a/cpu-heavy")
    assert wait.message == "waiting for 64 CPU: quota team-a has 16 CPU free"


def test_a_borrowing_lender_cannot_reclaim(new_state: StateFactory) -> None:
    """Reclaim is for taking back one's own nominal: a quota that would itself be above nominal
    after admission may not evict other borrowers."""
    state = new_state()
    add_nodes(state, ASCEND, 4)
    lab = [
        quota("team-a", ascend=8, cohort="lab"),
        quota("team-b", ascend=8, cohort="lab", reclaim=ReclaimPolicy.ANY),
        quota("team-c", ascend=16, cohort="lab"),
    ]
    world = World(state, lab)
    world.submit(job("team-a/borrower", ascend(8, 3)))
    assert admit_of(world.cycle(), "team-a/borrower").borrowed == {ASC: milli(16)}
    world.submit(job("team-b/greedy", ascend(8, 2), priority=9))
    result = world.cycle()
    assert result.preemptions == []
    assert wait_of(result, "team-b/greedy").reason is Reason.QUOTA_EXCEEDED


def test_jobs_within_nominal_go_before_borrowers_in_a_cycle(new_state: StateFactory) -> None:
    """Otherwise an older borrower would take the lender's nominal, only to be reclaimed from
    in the next cycle (admitted, then evicted before it even started)."""
    state = new_state()
    add_nodes(state, ASCEND, 2)
    lab = [
        quota("team-a", ascend=8, cohort="lab", reclaim=ReclaimPolicy.ANY),
        quota("team-b", ascend=8, cohort="lab"),
    ]
    world = World(state, lab)
    world.submit(job("team-b/borrower", ascend(8, 2), created=0), job("team-a/own", ascend(8)))
    result = world.cycle()
    assert [d.job.key for d in result.admitted] == ["team-a/own"]
    borrower = wait_of(result, "team-b/borrower")
    assert borrower.message == (
        "waiting for 16 × ascend-910b: quota team-b has 8 free, the cohort can lend 0"
    )
    assert world.cycle().preemptions == []


def test_no_second_preemption_while_the_first_victims_still_hold_their_chips(
    new_state: StateFactory,
) -> None:
    """The cycle after an eviction still sees the victim's chips in use (its pods are stopping).
    Without ``releasing`` it evicts a second job for the same room; with it, the preemptor waits
    and says why, and no one else is evicted."""

    def scenario(releasing: dict[str, int] | None) -> CycleResult:
        state = new_state()
        add_nodes(state, ASCEND, 4)
        world = World(state, [quota("team-a", ascend=24, within=Within.LOWER_PRIORITY)])
        world.submit(job("team-a/big", ascend(8, 2), priority=5, created=1))
        world.cycle()
        world.submit(job("team-a/small", ascend(8), priority=0, created=2))
        world.cycle()
        assert set(world.admitted) == {"team-a/big", "team-a/small"}
        world.submit(job("team-a/urgent", ascend(8, 2), priority=10, created=3))
        first = run_cycle(
            list(world.pending.values()),
            list(world.admitted.values()),
            world.quotas,
            CLASSES,
            world.state,
        )
        (preempt,) = first.preemptions
        assert [v.admission.job.key for v in preempt.victims] == ["team-a/big"]
        # evicted: no longer admitted, but its two pods still hold their chips in the state
        world.admitted.pop("team-a/big")
        return run_cycle(
            [world.pending["team-a/urgent"]],
            list(world.admitted.values()),
            world.quotas,
            CLASSES,
            world.state,
            releasing=releasing,
        )

    blind = scenario(None)
    assert [v.admission.job.key for p in blind.preemptions for v in p.victims] == ["team-a/small"]
    aware = scenario({"ascend-910b": 16})
    assert aware.preemptions == []
    waiting = wait_of(aware, "team-a/urgent")
    assert waiting.reason is Reason.UNSCHEDULABLE
    assert (
        "no preemption for ascend-910b while 16 of its devices are still being released"
        in waiting.message
    )
    # chips coming back in another class do not hold this one's preemption back
    other = scenario({"nvidia-h100": 8})
    assert [v.admission.job.key for p in other.preemptions for v in p.victims] == ["team-a/small"]
