"""RBAC on the real apiserver: the operator's role is exactly what it calls, and people's roles
grant what they say.

The operator runs authenticated as the chart's ServiceAccount (a TokenRequest token) with the
chart's ClusterRole and Role, its webhook on, through a run that takes every path that calls the
API: admission, a gang that runs, a job that fails and restarts, TTL deletion, a user's delete,
a max-run-time kill, a lost node, an admission rolled back (pods refused by a Kubernetes
ResourceQuota), a legacy Kopf finalizer removed, its caBundle patch. The apiserver's audit log
(every ServiceAccount request, ``--audit-policy-file`` in ``LocalCluster``) then gives the
(group, resource, verb) set the operator used; the test fails when the roles grant more or less.
In a whole-suite run the log also holds every other module's operator (all run as this
ServiceAccount), so a call any of them makes and the role lacks fails here too.

A SubjectAccessReview matrix then asks the apiserver what each kind of user may do, and prints it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from suanli.api.manifests import (
    DEFAULT_NAMESPACE,
    OPERATOR_NAME,
    WEBHOOK_CONFIGURATION,
    cluster_role,
    namespace_role,
    plain_documents,
    user_roles,
)
from suanli.controller.world import LEGACY_JOB_FINALIZER
from suanli.localcluster import LocalCluster
from suanli.localcluster.cluster import free_port
from tests.integration.conftest import (
    REPO,
    Kubectl,
    Tenants,
    job_manifest,
    job_status,
    wait_for,
    wait_for_phase,
)

pytestmark = pytest.mark.integration

OPERATOR_ARGS = (
    "--standalone",
    "--gang-start-timeout=30",
    "--requeue-backoff=1",
    "--webhook",
    f"--webhook-port={free_port()}",
)
OPERATOR_USER = f"system:serviceaccount:{DEFAULT_NAMESPACE}:{OPERATOR_NAME}"
H100 = "nvidia-h100"
A100 = "nvidia-a100"
ASCEND = "ascend-910b"
# Permissions the apiserver checks on the operator's behalf, never requested as such: creating a
# pod whose ownerReference has blockOwnerDeletion needs update on the owner's finalizers where
# the OwnerReferencesPermissionEnforcement admission plugin is on (OpenShift, hardened clusters).
IMPLIED = {("suanli.io", "trainingjobs/finalizers", "update")}

Call = tuple[str, str, str]  # (API group, resource[/subresource], verb)


def option(cls: str, devices: int) -> dict[str, Any]:
    return {"acceleratorClass": cls, "devicesPerReplica": devices}


def granted(roles: list[dict[str, Any]]) -> dict[Call, set[str]]:
    """(group, resource, verb) -> resourceNames it is limited to (empty: any)."""
    calls: dict[Call, set[str]] = {}
    for role in roles:
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        calls.setdefault((group, resource, verb), set()).update(
                            rule.get("resourceNames", [])
                        )
    return calls


def audited(log: Path, user: str) -> tuple[dict[Call, set[str]], list[str]]:
    """(group, resource, verb) -> namespaces ("" cluster) the user called, and its refusals."""
    calls: dict[Call, set[str]] = {}
    refused = []
    for line in log.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event["user"]["username"] != user or "objectRef" not in event:
            continue  # discovery (/api, /apis, /version) is every user's, not a role's
        ref = event["objectRef"]
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        key = (ref.get("apiGroup", ""), resource, event["verb"])
        where = ref.get("namespace", "")
        if ref.get("name") and key[1] == "validatingwebhookconfigurations":
            where = ref["name"]
        calls.setdefault(key, set()).add(where)
        # RBAC's own refusals (a 403 from admission, such as a ResourceQuota's, is not one).
        if event.get("annotations", {}).get("authorization.k8s.io/decision") == "forbid":
            refused.append(f"{event['verb']} {resource} {ref.get('namespace', '')}")
    return calls, refused


@pytest.fixture(scope="module")
def webhook_registered(cluster: LocalCluster) -> Iterator[None]:
    """The chart's webhook configuration, so the operator patches its caBundle (failurePolicy
    Ignore and no endpoints: the apiserver's calls to it fail open)."""
    cluster.apply_paths(REPO / "deploy" / "operator" / "webhook.yaml")
    yield
    cluster.kubectl("delete", "validatingwebhookconfiguration", WEBHOOK_CONFIGURATION)


def run_every_path(kubectl: Kubectl, tenants: Tenants) -> None:
    ns = tenants.add(
        "t-rbac",
        [
            {"acceleratorClass": H100, "nominal": 8},
            {"acceleratorClass": A100, "nominal": 8},
            {"acceleratorClass": ASCEND, "nominal": 16},
        ],
    )
    jobs = [
        job_manifest("ttl", ns, [option(H100, 1)], duration="1s", ttlSecondsAfterFinished=1),
        job_manifest(
            "flaky",
            ns,
            [option(ASCEND, 8)],
            replicas=2,
            duration="2s",
            exit_code=1,
            restartPolicy="OnFailure",
            restartLimit=1,
        ),
        job_manifest("endless", ns, [option(H100, 1)], maxRunSeconds=3),
        job_manifest("removed", ns, [option(H100, 1)]),
        job_manifest("resilient", ns, [option(A100, 8)], restartPolicy="OnFailure"),
    ]
    legacy = job_manifest("legacy", ns, [option(H100, 1)], duration="1s")
    legacy["metadata"]["finalizers"] = [LEGACY_JOB_FINALIZER]  # Kopf's, from suanli 0.1
    jobs.append(legacy)
    # A namespace whose Kubernetes ResourceQuota refuses pods: the gang's first objects are
    # created, its pods refused, and the admission rolled back (its objects deleted).
    refused_ns = tenants.add("t-rbac-refused", [{"acceleratorClass": ASCEND, "nominal": 8}])
    no_pods = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-pods", "namespace": refused_ns},
        "spec": {"hard": {"pods": "0"}},
    }
    # Ascend: the gang has a rank-table ConfigMap as well as its Service to roll back.
    code, output = kubectl.apply(no_pods)
    assert code == 0, output
    # No quota controller runs here: its status (what admission enforces) is written by hand.
    status = {"status": {"hard": {"pods": "0"}, "used": {"pods": "0"}}}
    kubectl.run(
        "patch", "resourcequota", "no-pods", "-n", refused_ns, "--subresource=status",
        "--type=merge", "-p", json.dumps(status),
    )  # fmt: skip
    jobs.append(job_manifest("rolled-back", refused_ns, [option(ASCEND, 8)]))
    for job in jobs:
        code, output = kubectl.apply(job)
        assert code == 0, output
    kubectl.run("delete", "trainingjob", "legacy", "-n", ns, "--wait=false")
    wait_for(
        "the deleted job's legacy finalizer removed",
        lambda: (
            "legacy" not in {j["metadata"]["name"] for j in kubectl.get("tj", "-n", ns)["items"]}
        ),
    )
    wait_for(
        "the refused admission rolled back",
        lambda: "forbidden" in json.dumps(job_status(kubectl, refused_ns, "rolled-back")),
    )
    wait_for(
        "the TTL job to be deleted",
        lambda: "ttl" not in {j["metadata"]["name"] for j in kubectl.get("tj", "-n", ns)["items"]},
    )
    wait_for_phase(kubectl, ns, "flaky", "Failed")
    wait_for_phase(kubectl, ns, "endless", "Failed")
    wait_for_phase(kubectl, ns, "removed", "Running")
    kubectl.run("delete", "trainingjob", "removed", "-n", ns, "--wait=true", "--timeout=60s")
    status = wait_for_phase(kubectl, ns, "resilient", "Running")
    pods = kubectl.get("pods", "-n", ns, "-l", "suanli.io/job-name=resilient")["items"]
    owners = [ref for pod in pods for ref in pod["metadata"]["ownerReferences"]]
    assert owners and all(ref.get("blockOwnerDeletion") for ref in owners), owners
    lost = status["placement"][0]["node"]
    node = kubectl.get("node", lost)
    kubectl.run("delete", "node", lost)
    try:

        def moved() -> bool:
            now = job_status(kubectl, ns, "resilient")
            placed = now.get("placement") or [{}]
            return now.get("phase") == "Running" and placed[0].get("node") not in (None, lost)

        wait_for("the gang to run on another node", moved, timeout=90)
    finally:
        for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
            node["metadata"].pop(key, None)
        node["spec"] = {}
        assert kubectl.apply(node)[0] == 0


def test_the_operator_role_grants_exactly_what_the_operator_calls(
    cluster: LocalCluster,
    kubectl: Kubectl,
    webhook_registered: None,
    tenants: Tenants,
) -> None:
    run_every_path(kubectl, tenants)
    wait_for(
        "the caBundle patched in",
        lambda: all(
            hook["clientConfig"].get("caBundle")
            for hook in kubectl.get("validatingwebhookconfiguration", WEBHOOK_CONFIGURATION)[
                "webhooks"
            ]
        ),
    )
    used, refused = audited(cluster.audit_log, OPERATOR_USER)
    cluster_grants = granted([cluster_role()])
    role_grants = granted([namespace_role()])
    grants = {**cluster_grants, **role_grants}
    print("\noperator calls seen in the audit log (group, resource, verb: where):")
    for call in sorted(used):
        print(f"  {call}: {sorted(used[call])}")
    assert refused == [], f"the operator was refused: {refused}"
    missing = sorted(set(used) - set(grants))
    unused = sorted(set(grants) - set(used) - IMPLIED)
    assert missing == [], f"called but not granted: {missing}"
    assert unused == [], f"granted but never called: {unused}"
    for call in role_grants:
        assert used[call] <= {DEFAULT_NAMESPACE}, (call, used[call])
    for call, names in grants.items():
        if names and call in used:
            assert used[call] <= names, (call, used[call], names)
    for call in grants:
        assert "*" not in call and call[1] != "secrets", call


# --- who may do what ----------------------------------------------------------------------------

TENANT_A, TENANT_B = "rbac-team-a", "rbac-team-b"
PEOPLE = {
    "tenant": ("alice", ["team-a"]),
    "viewer": ("victor", ["team-a-viewers"]),
    "centre-admin": ("carol", ["centre-admins"]),
    "sre": ("sam", ["sre"]),
}


def _binding(kind: str, name: str, role: str, group: str, namespace: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}],
    }


@pytest.fixture(scope="module")
def people(cluster: LocalCluster, kubectl: Kubectl) -> Iterator[None]:
    """The chart's user roles, bound the way a centre would: tenants through the built-in edit
    and view roles they aggregate into, in their namespace; the others cluster-wide."""
    roles = plain_documents(user_roles())
    cluster.apply_objects(roles)

    def aggregated() -> bool:
        rules = kubectl.get("clusterrole", "edit")["rules"] or []
        return any("trainingjobs" in rule.get("resources", []) for rule in rules)

    wait_for("suanli-tenant aggregated into edit", aggregated, timeout=30)
    for namespace in (TENANT_A, TENANT_B):
        code, output = kubectl.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
        assert code == 0, output
    bindings = [
        _binding("RoleBinding", "team-a-edit", "edit", "team-a", TENANT_A),
        _binding("RoleBinding", "team-a-view", "view", "team-a-viewers", TENANT_A),
        _binding("ClusterRoleBinding", "rbac-test-quota-reader", "suanli-quota-reader", "team-a"),
        _binding("ClusterRoleBinding", "rbac-test-centre", "suanli-centre-admin", "centre-admins"),
        _binding("ClusterRoleBinding", "rbac-test-sre", "suanli-sre", "sre"),
    ]
    cluster.apply_objects(bindings)
    yield
    for binding in bindings:
        if binding["kind"] == "ClusterRoleBinding":
            cluster.kubectl("delete", "clusterrolebinding", binding["metadata"]["name"])
    for namespace in (TENANT_A, TENANT_B):
        cluster.kubectl("delete", "namespace", namespace, "--wait=false")
    for role in roles:
        cluster.kubectl("delete", "clusterrole", role["metadata"]["name"])


def can(
    kubectl: Kubectl,
    user: str,
    groups: list[str],
    verb: str,
    resource: str,
    namespace: str = "",
    name: str = "",
) -> bool:
    base, _, subresource = resource.partition("/")
    plural, _, group = base.partition(".")
    attributes: dict[str, Any] = {"verb": verb, "group": group, "resource": plural}
    if subresource:
        attributes["subresource"] = subresource
    if namespace:
        attributes["namespace"] = namespace
    if name:
        attributes["name"] = name
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": [*groups, "system:authenticated"],
            "resourceAttributes": attributes,
        },
    }
    result = kubectl.cluster.kubectl(
        "create", "-o", "json", "-f", "-", input_text=yaml.safe_dump(review)
    )
    return bool(json.loads(result.stdout)["status"].get("allowed"))


# (who, verb, resource, namespace, name) -> expected; resources as plural[.group][/subresource].
A, B = TENANT_A, TENANT_B
TJ, CQ, AC = "trainingjobs.suanli.io", "computequotas.suanli.io", "acceleratorclasses.suanli.io"
MATRIX: list[tuple[str, str, str, str, str, bool]] = [
    ("operator", "get", "secrets", "", "", False),
    ("operator", "list", "secrets", A, "", False),
    ("operator", "create", "pods", A, "", True),
    ("operator", "create", "deployments.apps", A, "", False),
    ("operator", "create", "jobs.batch", A, "", False),
    ("operator", "patch", f"{TJ}/status", A, "", True),
    ("operator", "update", CQ, "", "", False),
    ("operator", "patch", AC, "", "", False),
    ("operator", "delete", "namespaces", "", "", False),
    ("operator", "create", "clusterrolebindings.rbac.authorization.k8s.io", "", "", False),
    ("operator", "get", "leases.coordination.k8s.io", DEFAULT_NAMESPACE, "", True),
    ("operator", "get", "leases.coordination.k8s.io", A, "", False),
    (
        "operator",
        "patch",
        "validatingwebhookconfigurations.admissionregistration.k8s.io",
        "",
        WEBHOOK_CONFIGURATION,
        True,
    ),
    (
        "operator",
        "patch",
        "validatingwebhookconfigurations.admissionregistration.k8s.io",
        "",
        "someone-else",
        False,
    ),
    ("tenant", "create", TJ, A, "", True),
    ("tenant", "delete", TJ, A, "", True),
    ("tenant", "create", TJ, B, "", False),
    ("tenant", "get", TJ, B, "", False),
    ("tenant", "get", "secrets", B, "", False),
    ("tenant", "patch", f"{TJ}/status", A, "", False),
    ("tenant", "get", CQ, "", "", True),
    ("tenant", "update", CQ, "", "", False),
    ("tenant", "patch", f"{CQ}/status", "", "", False),
    ("tenant", "create", AC, "", "", False),
    ("tenant", "patch", AC, "", "", False),
    ("tenant", "create", "rolebindings.rbac.authorization.k8s.io", A, "", False),
    ("tenant", "create", "pods/binding", A, "", False),
    ("tenant", "create", "pods", B, "", False),
    ("viewer", "get", TJ, A, "", True),
    ("viewer", "list", TJ, A, "", True),
    ("viewer", "create", TJ, A, "", False),
    ("viewer", "patch", TJ, A, "", False),
    ("viewer", "delete", TJ, A, "", False),
    ("viewer", "get", TJ, B, "", False),
    ("centre-admin", "create", CQ, "", "", True),
    ("centre-admin", "patch", AC, "", "", True),
    ("centre-admin", "patch", f"{CQ}/status", "", "", False),
    ("centre-admin", "create", TJ, A, "", False),
    ("centre-admin", "get", "secrets", A, "", False),
    ("sre", "list", TJ, "", "", True),
    ("sre", "get", f"{TJ}/status", A, "", True),
    ("sre", "list", CQ, "", "", True),
    ("sre", "list", "pods", "", "", True),
    ("sre", "get", "pods/log", A, "", True),
    ("sre", "list", "leases.coordination.k8s.io", DEFAULT_NAMESPACE, "", True),
    ("sre", "create", TJ, A, "", False),
    ("sre", "patch", CQ, "", "", False),
    ("sre", "delete", "pods", A, "", False),
    ("sre", "get", "secrets", A, "", False),
]


def test_access_matrix(kubectl: Kubectl, people: None) -> None:
    subjects = {
        **PEOPLE,
        "operator": (
            OPERATOR_USER,
            ["system:serviceaccounts", f"system:serviceaccounts:{DEFAULT_NAMESPACE}"],
        ),
    }
    rows = []
    wrong = []
    for who, verb, resource, namespace, name, expected in MATRIX:
        user, groups = subjects[who]
        allowed = can(kubectl, user, groups, verb, resource, namespace, name)
        where = namespace or "(cluster)"
        if name:
            where += f" name={name}"
        rows.append(f"{who:13} {verb:7} {resource:62} {where:28} {'yes' if allowed else 'no'}")
        if allowed != expected:
            wrong.append(rows[-1] + f"   (expected {'yes' if expected else 'no'})")
    print("\nwho           verb    resource" + " " * 55 + "where" + " " * 24 + "allowed")
    print("\n".join(rows))
    assert wrong == [], "\n".join(wrong)
