from __future__ import annotations

from suanli.controller.cache import Cache, Kind
from suanli.controller.conditions import same_ignoring_time, set_condition
from suanli.controller.status import differs as status_differs


def test_transition_time_changes_only_when_status_flips() -> None:
    first = set_condition(
        [],
        type_="Admitted",
        status=False,
        reason="QuotaExceeded",
        message="m1",
        generation=1,
        now="t1",
    )
    second = set_condition(
        first,
        type_="Admitted",
        status=False,
        reason="Unschedulable",
        message="m2",
        generation=1,
        now="t2",
    )
    assert second[0]["lastTransitionTime"] == "t1"
    third = set_condition(
        second,
        type_="Admitted",
        status=True,
        reason="Admitted",
        message="ok",
        generation=2,
        now="t3",
    )
    assert third[0]["lastTransitionTime"] == "t3"
    assert same_ignoring_time(first, [{**first[0], "lastTransitionTime": "later"}])


def test_only_real_differences_cost_a_write() -> None:
    current = {
        "phase": "Queued",
        "conditions": [{"type": "A", "status": "False", "lastTransitionTime": "t1"}],
    }
    desired = {
        "phase": "Queued",
        "conditions": [{"type": "A", "status": "False", "lastTransitionTime": "t9"}],
    }
    assert not status_differs(current, desired)
    assert status_differs(current, {**desired, "phase": "Admitted"})
    assert status_differs(current, {"placement": [1]})
    assert not status_differs(current, {"placement": None})


def test_cache_is_level_triggered_and_snapshots_are_stable() -> None:
    cache = Cache()
    pod = {"metadata": {"name": "p", "namespace": "ns", "resourceVersion": "1"}}
    cache.apply_event(Kind.POD, None, pod)
    revision = cache.revision
    cache.apply_event(Kind.POD, "MODIFIED", pod)  # same version: nothing changes
    assert cache.revision == revision
    snapshot = cache.snapshot()
    cache.apply_event(Kind.POD, "DELETED", pod)
    assert "ns/p" in snapshot.of(Kind.POD)
    assert "ns/p" not in cache.snapshot().of(Kind.POD)
    assert cache.changed.is_set()


def test_a_late_event_older_than_the_seeded_object_is_ignored() -> None:
    from suanli.controller.cache import Cache, Kind

    cache = Cache()
    newer = {"metadata": {"name": "n1", "resourceVersion": "20"}, "spec": {"unschedulable": True}}
    older = {"metadata": {"name": "n1", "resourceVersion": "7"}, "spec": {}}
    cache.apply_event(Kind.NODE, None, newer)
    cache.apply_event(Kind.NODE, None, older)  # Kopf's own initial list, arriving late
    assert cache.snapshot().of(Kind.NODE)["n1"] is newer
    cache.apply_event(Kind.NODE, "DELETED", older)
    assert "n1" in cache.snapshot().of(Kind.NODE)
    cache.apply_event(Kind.NODE, "DELETED", {"metadata": {"name": "n1", "resourceVersion": "21"}})
    assert "n1" not in cache.snapshot().of(Kind.NODE)


def test_the_cache_keeps_no_managed_fields_nor_last_applied_copy() -> None:
    from suanli.controller.cache import LAST_APPLIED

    seen: list[dict[str, object]] = []
    cache = Cache(checkers={Kind.TRAINING_JOB: lambda body: seen.append(dict(body)) or "ok"})
    job = {
        "metadata": {
            "name": "j",
            "namespace": "t",
            "resourceVersion": "3",
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            "annotations": {LAST_APPLIED: '{"spec": {}}', "team": "vision"},
            "labels": {"app": "x"},
        },
        "spec": {"replicas": 2},
    }
    cache.apply_event(Kind.TRAINING_JOB, None, job)
    stored = cache.snapshot().of(Kind.TRAINING_JOB)["t/j"]
    assert stored["metadata"] == {
        "name": "j",
        "namespace": "t",
        "resourceVersion": "3",
        "annotations": {"team": "vision"},
        "labels": {"app": "x"},
    }
    assert stored["spec"] == {"replicas": 2}
    assert "managedFields" not in seen[0]["metadata"]  # type: ignore[operator]
    # the event's own body is left as Kopf gave it
    assert "managedFields" in job["metadata"] and LAST_APPLIED in job["metadata"]["annotations"]  # type: ignore[operator]
    # an object with neither is stored as it came (no copy)
    plain = {"metadata": {"name": "n", "resourceVersion": "1"}}
    cache.apply_event(Kind.NODE, None, plain)
    assert cache.snapshot().of(Kind.NODE)["n"] is plain
