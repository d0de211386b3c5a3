"""The CEL rules and the examples as the real kube-apiserver enforces them (no operator needed).

It checks on a live apiserver what the unit tests can only check on the generated schema: every
file in examples/refused/ is refused naming its field, examples/tenants and examples/jobs are
accepted, and every CEL rule of the three CRDs, collected from the generated schemas (so from
the pydantic models), refuses an object that breaks it, naming the field, and accepts a close
one that keeps it. A rule without a case fails the suite. The transition rules are checked on
stored objects: an AcceleratorClass's vendor is immutable, and every field a TrainingJob's
admission depends on is frozen while it is Admitted or Running, unless it is suspended first.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from suanli.api.common import API_VERSION
from suanli.api.generate import RESOURCES, catalogue_documents, custom_resource_definition
from suanli.localcluster import LocalCluster
from tests.integration.conftest import Kubectl, private_cluster

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"

# The field each refused example must be refused for (its comment says why).
REFUSED = {
    "replicas-zero.yaml": "spec.replicas",
    "unknown-field.yaml": 'unknown field "spec.gpus"',
    "negative-devices.yaml": "spec.accelerators[0].devicesPerReplica",
    "min-replicas-above-replicas.yaml": "spec.minReplicas",
    "borrowing-without-cohort.yaml": "spec.resources",
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A control plane of its own, with no operator: these tests write statuses by hand."""
    with private_cluster(tmp_path_factory, "rules-control-plane", nodes=False) as local:
        yield local


@pytest.fixture(scope="module")
def examples_applied(cluster: LocalCluster) -> None:
    for directory in ("tenants", "jobs"):
        cluster.kubectl("apply", "-f", str(EXAMPLES / directory))


def test_every_refused_example_is_refused_naming_the_field(
    kubectl: Kubectl, examples_applied: None
) -> None:
    assert sorted(REFUSED) == sorted(p.name for p in (EXAMPLES / "refused").glob("*.yaml"))
    for name, field in REFUSED.items():
        code, output = kubectl.apply((EXAMPLES / "refused" / name).read_text())
        assert code != 0, f"{name} was accepted"
        assert field in output, f"{name}: {field!r} not in {output}"


def test_examples_are_accepted_and_listed_in_the_suanli_category(
    cluster: LocalCluster, examples_applied: None
) -> None:
    output = cluster.kubectl("get", "suanli", "-A", "-o", "name").stdout
    for name in (
        "trainingjob.suanli.io/llm-sft-fallback",
        "computequota.suanli.io/team-llm",
        "acceleratorclass.suanli.io/ascend-910b",
    ):
        assert name in output


def test_wide_columns(cluster: LocalCluster, examples_applied: None) -> None:
    header = cluster.kubectl("get", "tj", "-A", "-o", "wide").stdout.splitlines()[0].split()
    for column in ("CLASS", "REPLICAS", "PHASE", "REASON", "QUOTA", "POSITION", "DEVICES", "NODE"):
        assert column in header


def patch(cluster: LocalCluster, *args: str, body: object) -> tuple[int, str]:
    result = cluster.kubectl("patch", *args, "--type=merge", "-p", json.dumps(body), check=False)
    return result.returncode, result.stdout + result.stderr


def test_template_fields_suanli_would_ignore_are_refused_by_name(
    cluster: LocalCluster, examples_applied: None
) -> None:
    job = yaml.safe_load((EXAMPLES / "jobs" / "vision-finetune-a100.yaml").read_text())
    job["metadata"]["name"] = "with-node-selector"
    job["spec"]["template"]["spec"]["nodeSelector"] = {"rack": "a"}
    result = cluster.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(job), check=False)
    assert result.returncode != 0
    assert 'unknown field "spec.template.spec.nodeSelector"' in result.stderr


# --- every CEL rule of the CRDs, generated from the rule list of the pydantic models -----------


def schema_rules() -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, error path, rule) for every x-kubernetes-validations rule the CRDs carry."""
    found: list[tuple[str, str, dict[str, Any]]] = []

    def walk(kind: str, schema: dict[str, Any], path: str) -> None:
        for rule in schema.get("x-kubernetes-validations", []):
            found.append((kind, (path + rule.get("fieldPath", "")).lstrip("."), rule))
        if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
            walk(kind, schema["items"], path + "[0]")
        for name, sub in schema.get("properties", {}).items():
            walk(kind, sub, f"{path}.{name}" if path else name)

    for resource in RESOURCES:
        crd = custom_resource_definition(resource)
        walk(resource.KIND, crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], "")
    return found


def merged(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``change`` merged in (JSON merge patch: None deletes, lists replace)."""
    out = copy.deepcopy(base)
    for key, value in change.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


RULES_NAMESPACE = "rules"
TEMPLATE = {"spec": {"containers": [{"name": "trainer", "image": "example.invalid/train:1"}]}}


def base_object(kind: str, name: str) -> dict[str, Any]:
    if kind == "AcceleratorClass":
        (document,) = (d for d in catalogue_documents() if d["metadata"]["name"] == "ascend-910a")
        return merged(document, {"metadata": {"name": name}})
    if kind == "ComputeCentre":
        spec = {
            "region": "wuhan",
            "kubeconfigSecretRef": {"name": "centre-wuhan", "namespace": "default"},
        }
        return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}
    if kind == "ComputeQuota":
        spec = {
            "namespaces": [name],
            "cohort": "rules",
            "resources": [{"acceleratorClass": "ascend-910b", "nominal": 8}],
        }
        return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}
    spec = {
        "replicas": 2,
        "minReplicas": 1,
        "template": TEMPLATE,
        "accelerators": [
            {"acceleratorClass": "ascend-910b", "devicesPerReplica": 8, "replicas": 2},
            {"acceleratorClass": "nvidia-h100", "devicesPerReplica": 8},
        ],
    }
    metadata = {"name": name, "namespace": RULES_NAMESPACE}
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


@dataclass(frozen=True)
class RuleCase:
    """A change to the base object that breaks the rule, and a close one that keeps it."""

    violate: dict[str, Any]
    satisfy: dict[str, Any]


def topology(**counts: Any) -> dict[str, Any]:
    return {"spec": {"topology": counts}}


# Keyed by the rule's message. A rule added to the models without a case here fails
# test_every_rule_has_a_case, so no rule can go untested on the apiserver.
STATIC_CASES: dict[str, RuleCase] = {
    "spec.topology.allowedDeviceCounts must not exceed spec.devicesPerNode": RuleCase(
        {"spec": {"devicesPerNode": 4, "topology": {"allowedDeviceCounts": [1, 2, 4, 8]}}},
        {
            "spec": {
                "devicesPerNode": 4,
                "topology": {"allowedDeviceCounts": [1, 2, 4], "multiReplicaDeviceCount": 4},
            }
        },
    ),
    "spec.topology.groupSize must divide spec.devicesPerNode": RuleCase(
        topology(groupSize=3, allowedDeviceCounts=[1, 2, 3], multiReplicaDeviceCount=3),
        topology(groupSize=2, allowedDeviceCounts=[1, 2, 4, 8], multiReplicaDeviceCount=8),
    ),
    "spec.topology.allowedDeviceCounts: a count above groupSize must be a whole number of "
    "groups": RuleCase(
        topology(allowedDeviceCounts=[1, 2, 4, 6, 8]),
        topology(allowedDeviceCounts=[1, 2, 3, 4, 8]),
    ),
    "spec.topology.multiReplicaDeviceCount must be one of spec.topology.allowedDeviceCounts": (
        RuleCase(
            topology(allowedDeviceCounts=[1, 2, 4], multiReplicaDeviceCount=8),
            topology(allowedDeviceCounts=[1, 2, 4], multiReplicaDeviceCount=4),
        )
    ),
    "lendingLimit must not exceed nominal": RuleCase(
        {
            "spec": {
                "resources": [{"acceleratorClass": "ascend-910b", "nominal": 8, "lendingLimit": 9}]
            }
        },
        {
            "spec": {
                "resources": [{"acceleratorClass": "ascend-910b", "nominal": 8, "lendingLimit": 8}]
            }
        },
    ),
    "spec.resources[].borrowingLimit and lendingLimit need spec.cohort": RuleCase(
        {
            "spec": {
                "cohort": None,
                "resources": [
                    {"acceleratorClass": "ascend-910b", "nominal": 8, "borrowingLimit": 4}
                ],
            }
        },
        {
            "spec": {
                "resources": [
                    {"acceleratorClass": "ascend-910b", "nominal": 8, "borrowingLimit": 4}
                ]
            }
        },
    ),
    "spec.minReplicas must not exceed spec.replicas": RuleCase(
        {"spec": {"minReplicas": 3}}, {"spec": {"minReplicas": 2}}
    ),
    "spec.minReplicas must not exceed spec.accelerators[].replicas": RuleCase(
        {"spec": {"replicas": 4, "minReplicas": 3}}, {"spec": {"replicas": 4, "minReplicas": 2}}
    ),
    "set spec.priority or spec.priorityClassName, not both": RuleCase(
        {"spec": {"priority": 5, "priorityClassName": "high"}}, {"spec": {"priority": 5}}
    ),
    "spec.restartLimit needs spec.restartPolicy OnFailure": RuleCase(
        {"spec": {"restartPolicy": "Never", "restartLimit": 2}},
        {"spec": {"restartPolicy": "OnFailure", "restartLimit": 2}},
    ),
    "spec.topology.level is required when spec.topology.mode is Prefer or Require": RuleCase(
        {"spec": {"topology": {"mode": "Require"}}},
        {"spec": {"topology": {"mode": "Require", "level": "superNode"}}},
    ),
}
VENDOR_RULE = "spec.vendor is immutable: create a new AcceleratorClass instead"
FROZEN_RULE_START = "spec.replicas, spec.minReplicas and the class, devicesPerReplica and replicas"
REGION_RULE = "spec.region is immutable: a centre that moves is a new ComputeCentre"
TRANSITION_RULES = {VENDOR_RULE, FROZEN_RULE_START, REGION_RULE}


def rule_key(message: str) -> str:
    return FROZEN_RULE_START if message.startswith(FROZEN_RULE_START) else message


RULES = schema_rules()


def test_every_rule_has_a_case() -> None:
    messages = {rule_key(rule["message"]) for _, _, rule in RULES}
    assert len(RULES) == len(messages), "two rules share a message"
    assert messages == set(STATIC_CASES) | TRANSITION_RULES
    for _, _, rule in RULES:
        # the transition rules, and only they, compare with the stored object
        assert ("oldSelf" in rule["rule"]) == (rule_key(rule["message"]) in TRANSITION_RULES)


@pytest.fixture(scope="module")
def rules_namespace(cluster: LocalCluster) -> str:
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RULES_NAMESPACE}}
    cluster.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(manifest))
    return RULES_NAMESPACE


def dry_run(cluster: LocalCluster, manifest: dict[str, Any]) -> tuple[int, str]:
    """Create ``manifest`` on the apiserver with --dry-run=server: validated, never stored."""
    result = cluster.kubectl(
        "create", "--dry-run=server", "-f", "-", input_text=yaml.safe_dump(manifest), check=False
    )
    return result.returncode, result.stdout + result.stderr


STATIC_RULES = [r for r in RULES if rule_key(r[2]["message"]) not in TRANSITION_RULES]


@pytest.mark.parametrize(
    ("kind", "path", "rule"), STATIC_RULES, ids=[r[2]["message"][:60] for r in STATIC_RULES]
)
def test_each_rule_refuses_a_violation_naming_the_field_and_accepts_its_fix(
    cluster: LocalCluster, rules_namespace: str, kind: str, path: str, rule: dict[str, Any]
) -> None:
    case = STATIC_CASES[rule["message"]]
    base = base_object(kind, "rule-check")
    code, output = dry_run(cluster, base)
    assert code == 0, f"the base {kind} must be valid: {output}"
    code, output = dry_run(cluster, merged(base, case.violate))
    assert code != 0, f"{kind} violating {rule['rule']!r} was accepted"
    assert f"{path}: " in output and rule["message"] in output, output
    code, output = dry_run(cluster, merged(base, case.satisfy))
    assert code == 0, f"{kind} satisfying {rule['rule']!r} was refused: {output}"


def apply_object(cluster: LocalCluster, manifest: dict[str, Any]) -> tuple[int, str]:
    result = cluster.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(manifest), check=False)
    return result.returncode, result.stdout + result.stderr


def test_accelerator_class_vendor_is_immutable_and_the_rest_is_not(
    cluster: LocalCluster,
) -> None:
    base = base_object("AcceleratorClass", "rule-vendor")
    assert apply_object(cluster, base)[0] == 0
    code, output = apply_object(cluster, merged(base, {"spec": {"vendor": "nvidia"}}))
    assert code != 0 and "spec.vendor: " in output and VENDOR_RULE in output, output
    code, output = apply_object(cluster, merged(base, {"spec": {"displayName": "renamed"}}))
    assert code == 0, output
    cluster.kubectl("delete", "acceleratorclass", "rule-vendor")


def test_compute_centre_region_is_immutable_and_the_rest_is_not(cluster: LocalCluster) -> None:
    base = base_object("ComputeCentre", "rule-region")
    assert apply_object(cluster, base)[0] == 0
    code, output = apply_object(cluster, merged(base, {"spec": {"region": "nanjing"}}))
    assert code != 0 and "spec.region: " in output and REGION_RULE in output, output
    code, output = apply_object(cluster, merged(base, {"spec": {"outOfService": True}}))
    assert code == 0, output
    cluster.kubectl("delete", "computecentre", "rule-region")


def option_change(index: int, **fields: Any) -> dict[str, Any]:
    options = copy.deepcopy(base_object("TrainingJob", "x")["spec"]["accelerators"])
    options[index] = merged(options[index], fields)
    return {"spec": {"accelerators": options}}


# Every field the admission depends on, each changed on its own.
FROZEN_CHANGES = {
    "replicas": {"spec": {"replicas": 1}},
    "minReplicas": {"spec": {"minReplicas": 2}},
    "minReplicas-unset": {"spec": {"minReplicas": None}},
    "option-class": option_change(1, acceleratorClass="nvidia-a100"),
    "option-devices": option_change(0, devicesPerReplica=4),
    "option-replicas": option_change(0, replicas=3),
    "option-replicas-unset": option_change(0, replicas=None),
    "option-added": {
        "spec": {
            "accelerators": [
                *base_object("TrainingJob", "x")["spec"]["accelerators"],
                {"acceleratorClass": "nvidia-a100", "devicesPerReplica": 8},
            ]
        }
    },
}


def set_phase(cluster: LocalCluster, name: str, phase: str) -> None:
    body = json.dumps({"status": {"phase": phase}})
    cluster.kubectl(
        "patch",
        "-n",
        RULES_NAMESPACE,
        "trainingjob",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        body,
    )


@pytest.mark.parametrize("field", sorted(FROZEN_CHANGES))
def test_admission_fields_are_frozen_while_the_job_holds_quota(
    cluster: LocalCluster, rules_namespace: str, field: str
) -> None:
    name = f"frozen-{field.lower()}"
    base = base_object("TrainingJob", name)
    changed = merged(base, FROZEN_CHANGES[field])
    assert changed != base
    assert apply_object(cluster, base)[0] == 0
    for phase in ("Admitted", "Running"):
        set_phase(cluster, name, phase)
        code, output = apply_object(cluster, changed)
        assert code != 0, f"{field} changed while {phase}"
        assert "spec: Forbidden: " + FROZEN_RULE_START in output, output
    # what does not decide the admission may change while running
    image = option_change(0, image="example.invalid/cann:2")
    code, output = apply_object(cluster, merged(base, image))
    assert code == 0, output
    # suspended first, every admission field may change
    suspended = merged(base, {**image, "spec": {**image["spec"], "suspend": True}})
    assert apply_object(cluster, suspended)[0] == 0
    code, output = apply_object(cluster, merged(suspended, FROZEN_CHANGES[field]))
    assert code == 0, output
    cluster.kubectl("delete", "-n", RULES_NAMESPACE, "trainingjob", name)


@pytest.mark.parametrize("phase", ["Queued", "Succeeded", "Failed", "Preempted"])
def test_admission_fields_may_change_while_the_job_holds_no_quota(
    cluster: LocalCluster, rules_namespace: str, phase: str
) -> None:
    name = f"free-{phase.lower()}"
    base = base_object("TrainingJob", name)
    assert apply_object(cluster, base)[0] == 0
    set_phase(cluster, name, phase)
    for change in FROZEN_CHANGES.values():
        code, output = apply_object(cluster, merged(base, change))
        assert code == 0, output
        assert apply_object(cluster, base)[0] == 0
    cluster.kubectl("delete", "-n", RULES_NAMESPACE, "trainingjob", name)
