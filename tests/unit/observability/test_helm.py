"""The chart's dashboard ConfigMaps and PrometheusRule render to exactly the generated files.

Rendered with the real helm binary (built by `make tools`, found on PATH or via
`hack/build-tools.sh paths`), in a scratch chart holding only the observability templates, so the
test does not depend on the rest of the chart being finished.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from suanli.api.manifests import all_params
from suanli.observability.alerts import rule_groups
from suanli.observability.dashboards import DASHBOARDS

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "suanli"


def find_helm() -> str | None:
    found = shutil.which("helm")
    if found:
        return found
    paths = subprocess.run(
        ["bash", str(ROOT / "hack" / "build-tools.sh"), "paths"],
        capture_output=True, text=True, check=False, timeout=30,
    ).stdout.split()  # fmt: skip
    candidates = [Path(directory) / "helm" for directory in paths]
    return next((str(path) for path in candidates if path.is_file()), None)


HELM = find_helm()
pytestmark = pytest.mark.skipif(HELM is None, reason="helm not built: run `make tools`")


def render(tmp_path: Path, *settings: str) -> list[dict[str, object]]:
    chart = tmp_path / "suanli"
    (chart / "templates").mkdir(parents=True)
    shutil.copytree(CHART / "dashboards", chart / "dashboards")
    for template in ("grafana-dashboards.yaml", "prometheusrule.yaml"):
        shutil.copy(CHART / "templates" / template, chart / "templates" / template)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: suanli\nversion: 0.1.0\n")
    command = [str(HELM), "template", "demo", str(chart), "--namespace", "centre"]
    command += ["--kube-version", "1.34.0"]
    for setting in settings:
        command += ["--set", setting]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_nothing_renders_unless_enabled(tmp_path: Path) -> None:
    assert render(tmp_path) == []


def test_prometheus_rule_renders_the_generated_rules_verbatim(tmp_path: Path) -> None:
    [rule] = render(
        tmp_path,
        "monitoring.prometheusRule.enabled=true",
        "monitoring.prometheusRule.labels.release=kube-prometheus-stack",
    )
    assert rule["kind"] == "PrometheusRule"
    metadata = rule["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["namespace"] == "centre"
    assert metadata["labels"]["release"] == "kube-prometheus-stack"
    # {{ $labels.quota }} survives Helm: the annotations are exactly the generated ones.
    assert rule["spec"] == rule_groups()


def test_dashboards_render_as_sidecar_configmaps(tmp_path: Path) -> None:
    maps = render(tmp_path, "monitoring.grafanaDashboards.enabled=true")
    assert len(maps) == len(DASHBOARDS)
    by_file = {}
    for config_map in maps:
        assert config_map["kind"] == "ConfigMap"
        metadata = config_map["metadata"]
        assert isinstance(metadata, dict)
        assert metadata["labels"]["grafana_dashboard"] == "1"
        assert metadata["namespace"] == "centre"
        data = config_map["data"]
        assert isinstance(data, dict)
        by_file.update(data)
    for spec in DASHBOARDS:
        committed = (CHART / "dashboards" / spec.filename).read_text(encoding="utf-8")
        assert json.loads(by_file[spec.filename]) == json.loads(committed)


def test_dashboard_label_and_namespace_are_configurable(tmp_path: Path) -> None:
    maps = render(
        tmp_path,
        "monitoring.grafanaDashboards.enabled=true",
        "monitoring.grafanaDashboards.namespace=grafana",
        "monitoring.grafanaDashboards.label=dashboards",
        "monitoring.grafanaDashboards.labelValue=suanli",
    )
    for config_map in maps:
        metadata = config_map["metadata"]
        assert isinstance(metadata, dict)
        assert metadata["namespace"] == "grafana"
        assert metadata["labels"]["dashboards"] == "suanli"


# --- the whole chart ----------------------------------------------------------------------------


def render_chart(*settings: str, kube_version: str | None = None) -> list[dict[str, Any]]:
    """``helm template`` of the real chart; without ``kube_version`` as GitOps tools run it
    offline (Helm then assumes its default Kubernetes version, v1.20)."""
    command = [str(HELM), "template", "suanli", str(CHART), "--namespace", "suanli-system"]
    if kube_version:
        command += ["--kube-version", kube_version]
    for setting in settings:
        command += ["--set", setting]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def helm_fails(*args: str) -> str:
    result = subprocess.run(
        [str(HELM), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0, result.stdout
    return result.stderr


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, (kind, name, [o["metadata"]["name"] for o in found])
    return found[0]


def test_lint_strict_is_clean() -> None:
    result = subprocess.run(
        [str(HELM), "lint", "--strict", str(CHART)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def test_renders_offline_with_helms_default_kubernetes_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert "kubeVersion" not in chart
    assert render_chart() == render_chart(kube_version="1.34.0")
    notes = (CHART / "templates" / "NOTES.txt").read_text(encoding="utf-8")
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    assert "1.30" in notes and "Kubernetes 1.30 or newer" in readme


def test_values_schema_refuses_unknown_keys_and_bad_values() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))

    def strict(node: dict[str, Any], path: str) -> None:
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, path
            for key, child in node["properties"].items():
                strict(child, f"{path}.{key}")

    strict(schema, "values")
    template = ["template", "x", str(CHART)]
    assert "additional properties 'replicas' not allowed" in helm_fails(
        *template, "--set", "replicas=3"
    )
    assert "additional properties 'tga' not allowed" in helm_fails(
        *template, "--set", "image.tga=1"
    )
    assert "/replicaCount" in helm_fails(*template, "--set", "replicaCount=0")
    assert "/webhook/failurePolicy" in helm_fails(*template, "--set", "webhook.failurePolicy=Off")


def test_every_value_is_commented_in_values_yaml() -> None:
    """Each key of values.yaml has its description as a comment right above it."""
    leaves = {param.values_path for param in all_params() if param.values_path}
    lines = (CHART / "values.yaml").read_text(encoding="utf-8").splitlines()
    stack: list[tuple[int, str]] = []
    seen = set()
    for index, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith(("#", "-")):
            continue
        indent = len(line) - len(line.lstrip())
        stack = [(depth, key) for depth, key in stack if depth < indent]
        stack.append((indent, line.strip().partition(":")[0]))
        path = tuple(key for _, key in stack)
        if path in leaves:
            seen.add(path)
            assert lines[index - 1].lstrip().startswith("# "), f"{'.'.join(path)}: no comment"
    assert seen == leaves


def test_ha_defaults_two_replicas_surge_budget_and_spread() -> None:
    objects = render_chart()
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    pod = deployment["spec"]["template"]["spec"]
    term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert (
        term["podAffinityTerm"]["labelSelector"]["matchLabels"]
        == (deployment["spec"]["selector"]["matchLabels"])
    )
    budget = one(objects, "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    # Kopf peering would pause both replicas of equal priority: the Lease decides instead.
    assert "--standalone" in pod["containers"][0]["args"]
    assert "--webhook" in pod["containers"][0]["args"]


def test_operator_pod_meets_restricted_pod_security() -> None:
    pod = one(render_chart(), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["readOnlyRootFilesystem"] is True


def test_webhook_service_and_configuration() -> None:
    objects = render_chart()
    deployment = one(objects, "Deployment")
    service = one(objects, "Service", "suanli-webhook")
    # Every ready replica, not only the Lease holder: the selector is the Deployment's own.
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "webhook", "port": 443, "targetPort": "webhook"}]
    ports = {
        p["name"]: p["containerPort"]
        for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    assert ports["webhook"] == 9443
    configuration = one(objects, "ValidatingWebhookConfiguration", "suanli.io")
    assert "annotations" not in configuration["metadata"]
    hooks = {hook["name"]: hook for hook in configuration["webhooks"]}
    assert set(hooks) == {
        f"{kind}.suanli.io" for kind in ("trainingjobs", "computequotas", "acceleratorclasses")
    }
    for name, hook in hooks.items():
        plural = name.removesuffix(".suanli.io")
        assert hook["clientConfig"] == {
            "service": {
                "name": "suanli-webhook",
                "namespace": "suanli-system",
                "path": f"/validate/{plural}",
                "port": 443,
            }
        }
        assert hook["rules"][0]["resources"] == [plural]
        assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
        assert (hook["failurePolicy"], hook["timeoutSeconds"]) == ("Ignore", 5)
        assert hook["sideEffects"] == "None"


def test_cert_manager_mode_issues_mounts_and_injects() -> None:
    objects = render_chart("certManager.enabled=true")
    certificate = one(objects, "Certificate")
    assert certificate["spec"]["secretName"] == "suanli-webhook-tls"
    assert "suanli-webhook.suanli-system.svc" in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["issuerRef"]["name"] == one(objects, "Issuer")["metadata"]["name"]
    configuration = one(objects, "ValidatingWebhookConfiguration")
    assert configuration["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": f"suanli-system/{certificate['metadata']['name']}"
    }
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == "suanli-webhook-tls"
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert (mount["name"], mount["mountPath"], mount["readOnly"]) == (
        volume["name"],
        "/etc/suanli/webhook",
        True,
    )
    plain = render_chart()
    assert not [o for o in plain if o["kind"] in ("Certificate", "Issuer")]
    volumes = one(plain, "Deployment")["spec"]["template"]["spec"].get("volumes") or []
    assert not [v for v in volumes if "secret" in v]  # no certificate to mount without it


def test_network_policy_opens_only_the_webhook_and_metrics_ports() -> None:
    policy = one(render_chart(), "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    ports = sorted(p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"])
    assert ports == [9090, 9443]
    scrapers = [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    restricted = one(
        render_chart("networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name=monitoring"),
        "NetworkPolicy",
    )
    assert restricted["spec"]["ingress"][1]["from"] == scrapers
    assert not [
        o for o in render_chart("networkPolicy.enabled=false") if o["kind"] == "NetworkPolicy"
    ]


def test_service_monitor_is_optional() -> None:
    assert not [o for o in render_chart() if o["kind"] == "ServiceMonitor"]
    monitor = one(
        render_chart(
            "monitoring.serviceMonitor.enabled=true",
            "monitoring.serviceMonitor.labels.release=kube-prometheus-stack",
            "monitoring.serviceMonitor.interval=15s",
        ),
        "ServiceMonitor",
    )
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "interval": "15s"}]
    assert (
        monitor["spec"]["selector"]["matchLabels"]
        == one(render_chart(), "Service", "suanli-operator-metrics")["spec"]["selector"]
    )


def test_user_roles_aggregate_and_never_grant_status_or_secrets() -> None:
    roles = {o["metadata"]["name"]: o for o in render_chart() if o["kind"] == "ClusterRole"}
    tenant, viewer = roles["suanli-tenant"], roles["suanli-tenant-viewer"]
    labels = "rbac.authorization.k8s.io/aggregate-to-"
    assert tenant["metadata"]["labels"][f"{labels}admin"] == "true"
    assert tenant["metadata"]["labels"][f"{labels}edit"] == "true"
    assert viewer["metadata"]["labels"][f"{labels}view"] == "true"
    assert not any(labels in key for key in roles["suanli-centre-admin"]["metadata"]["labels"])
    for name, role in roles.items():
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], name
            assert "secrets" not in rule["resources"], name
            if name != "suanli-operator" and name != "suanli-sre":
                assert not [r for r in rule["resources"] if r.endswith("/status")], name
    sre_verbs = {verb for rule in roles["suanli-sre"]["rules"] for verb in rule["verbs"]}
    assert sre_verbs == {"get", "list", "watch"}
    without = render_chart("rbac.userRoles=false")
    assert {o["metadata"]["name"] for o in without if o["kind"] == "ClusterRole"} == {
        "suanli-operator"
    }


def test_admission_policy_guards_accelerator_domains_of_the_catalogue() -> None:
    objects = render_chart()
    policy = one(objects, "ValidatingAdmissionPolicy")
    binding = one(objects, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert policy["spec"]["paramKind"] == {
        "apiVersion": "suanli.io/v1alpha1",
        "kind": "ComputeQuota",
    }
    [condition] = policy["spec"]["matchConditions"]
    assert "system:serviceaccount:suanli-system:suanli-operator" in condition["expression"]
    accelerated = next(v for v in policy["spec"]["variables"] if v["name"] == "accelerated")
    classes = [o for o in objects if o["kind"] == "AcceleratorClass"]
    for domain in {c["spec"]["resourceName"].split("/")[0] for c in classes}:
        assert f"startsWith('{domain}/')" in accelerated["expression"]
    for field in ("containers", "initContainers", "ephemeralContainers"):
        assert f"object.spec.{field}.exists" in accelerated["expression"]
    other = render_chart("admissionPolicy.enabled=false")
    assert not [o for o in other if o["kind"].startswith("ValidatingAdmissionPolicy")]
