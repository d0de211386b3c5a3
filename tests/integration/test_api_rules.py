"""The CEL rules and the examples as the real kube-apiserver enforces them (no operator needed).

It checks on a live apiserver what the
unit tests can only check on the generated schema: every file in examples/refused/ is refused
naming its field, examples/tenants and examples/jobs are accepted, the AcceleratorClass and
ComputeQuota CEL rules hold, and a TrainingJob's admission shape is frozen while it runs unless
it is suspended first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

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


def test_admission_shape_is_frozen_while_running_until_suspended(
    cluster: LocalCluster, examples_applied: None
) -> None:
    job = ("-n", "team-vision", "trainingjob", "illegal-shape-910b")
    code, output = patch(
        cluster, *job, "--subresource=status", body={"status": {"phase": "Running"}}
    )
    assert code == 0, output
    code, output = patch(cluster, *job, body={"spec": {"replicas": 2}})
    assert code != 0 and "immutable while the job is admitted or running" in output
    code, output = patch(cluster, *job, body={"spec": {"suspend": True}})
    assert code == 0, output
    code, output = patch(cluster, *job, body={"spec": {"replicas": 2}})
    assert code == 0, output


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"spec": {"vendor": "nvidia"}}, "spec.vendor is immutable"),
        ({"spec": {"devicesPerNode": 4}}, "must not exceed spec.devicesPerNode"),
        ({"spec": {"topology": {"groupSize": 3}}}, "groupSize must divide"),
        ({"spec": {"topology": {"allowedDeviceCounts": [1, 2, 4, 6]}}}, "whole number of groups"),
    ],
)
def test_accelerator_class_rules(
    cluster: LocalCluster, examples_applied: None, body: object, words: str
) -> None:
    code, output = patch(cluster, "acceleratorclass", "ascend-910a", body=body)
    assert code != 0 and words in output, output


def test_lending_limit_above_nominal_is_refused(
    cluster: LocalCluster, examples_applied: None
) -> None:
    quota = yaml.safe_load((EXAMPLES / "tenants" / "team-vision.yaml").read_text().split("---")[1])
    quota["metadata"]["name"] = "lending-check"
    quota["spec"]["namespaces"] = ["lending-check"]
    quota["spec"]["resources"][1]["lendingLimit"] = 99
    result = cluster.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(quota), check=False)
    assert result.returncode != 0
    assert "spec.resources[1].lendingLimit" in result.stderr


def test_template_fields_suanli_would_ignore_are_refused_by_name(
    cluster: LocalCluster, examples_applied: None
) -> None:
    job = yaml.safe_load((EXAMPLES / "jobs" / "vision-finetune-a100.yaml").read_text())
    job["metadata"]["name"] = "with-node-selector"
    job["spec"]["template"]["spec"]["nodeSelector"] = {"rack": "a"}
    result = cluster.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(job), check=False)
    assert result.returncode != 0
    assert 'unknown field "spec.template.spec.nodeSelector"' in result.stderr
