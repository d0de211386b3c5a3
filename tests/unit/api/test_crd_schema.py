"""The generated CRDs are structural, complete and say what kubectl users need to read."""

from __future__ import annotations

import re
from typing import Any

import pytest

from suanli.api import GROUP, VERSION, CustomResource, TrainingJob
from suanli.api.crd import custom_resource_definition, structural_problems


def walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    nodes = [(path, schema)]
    for name, sub in schema.get("properties", {}).items():
        nodes += walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        nodes += walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        nodes += walk(schema["additionalProperties"], f"{path}.*")
    return nodes


def resolve(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    """The sub-schema a printer-column or fieldPath points at, or None when it does not exist."""
    node: dict[str, Any] | None = schema
    for part in re.findall(r"\.([A-Za-z0-9_]+)|\[\d+\]", json_path):
        if node is None:
            return None
        # An empty match is an index: step into the list's items.
        node = node.get("items") if part == "" else node.get("properties", {}).get(part)
    return node


def test_every_crd_is_structural(schema: dict[str, Any]) -> None:
    assert structural_problems(schema) == []


def test_structural_check_catches_the_constructs_the_generator_removes() -> None:
    bad = {
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/A"},
            "b": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "c": {"type": "array"},
            "d": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
            "e": {"type": "string", "default": None},
        },
    }
    problems = "\n".join(structural_problems(bad))
    for fragment in (
        ".a: $ref",
        ".a: no type",
        ".b: anyOf",
        ".c: array without items",
        ".d: properties and additionalProperties",
        ".e: null default",
    ):
        assert fragment in problems


def test_names_scope_and_subresources(resource: type[CustomResource], crd: dict[str, Any]) -> None:
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{resource.PLURAL}.{GROUP}"
    assert spec["group"] == GROUP
    assert spec["scope"] == resource.SCOPE
    assert spec["names"]["kind"] == resource.KIND
    assert spec["names"]["shortNames"], "every kind has a short name"
    assert "suanli" in spec["names"]["categories"]
    [version] = spec["versions"]
    assert version["name"] == VERSION
    assert version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_scopes_are_as_designed() -> None:
    scopes = {
        r.KIND: custom_resource_definition(r)["spec"]["scope"]
        for r in (TrainingJob, *CustomResource.__subclasses__())
    }
    assert scopes == {
        "AcceleratorClass": "Cluster",
        "ComputeQuota": "Cluster",
        "ComputeCentre": "Cluster",
        "TrainingJob": "Namespaced",
    }


def test_printer_columns_point_at_real_fields_and_have_wide_ones(
    crd: dict[str, Any], schema: dict[str, Any]
) -> None:
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    assert any(c.get("priority") == 1 for c in columns), "some columns only show with -o wide"
    assert any(c["name"] == "Age" for c in columns)
    for column in columns:
        if column["jsonPath"].startswith(".metadata."):
            continue
        target = resolve(schema, column["jsonPath"])
        assert target is not None, f"column {column['name']}: {column['jsonPath']} not in schema"
        expected = {"integer": "integer", "number": "number", "string": "string"}
        if target.get("type") in expected and column["type"] != "date":
            assert column["type"] == expected[target["type"]], column


def test_training_job_columns_match_the_design() -> None:
    crd = custom_resource_definition(TrainingJob)
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    normal = [c["name"] for c in columns if not c.get("priority")]
    wide = [c["name"] for c in columns if c.get("priority")]
    assert normal == ["Class", "Replicas", "Phase", "Reason", "Centre", "Age"]
    assert {"Quota", "Position", "Devices", "Node"} <= set(wide)


def test_every_field_has_a_description_for_kubectl_explain(schema: dict[str, Any]) -> None:
    undocumented = [
        path
        for path, node in walk(schema)
        if path
        and not path.endswith(("[]", ".*"))
        and not node.get("description")
        and not path.startswith(".metadata")
    ]
    assert undocumented == []


def test_cel_rules_name_a_real_field_and_say_what_is_wrong(schema: dict[str, Any]) -> None:
    found = 0
    for path, node in walk(schema):
        for rule in node.get("x-kubernetes-validations", []):
            found += 1
            assert rule["message"], rule
            assert rule["rule"].count("(") == rule["rule"].count(")"), rule
            field_path = rule.get("fieldPath")
            assert field_path, f"{path}: rule without fieldPath: {rule['rule']}"
            assert resolve(node, field_path) is not None, f"{path}: {field_path} not in schema"
    assert found >= 1, "each kind has at least one cross-field rule"


def test_lists_that_cel_iterates_are_bounded(schema: dict[str, Any]) -> None:
    """Unbounded lists make the API server's CEL cost estimate refuse the CRD."""
    for path, node in walk(schema):
        for rule in node.get("x-kubernetes-validations", []):
            for name in re.findall(r"self\.([A-Za-z]+)\.(?:all|exists|map)\(", rule["rule"]):
                listed = node["properties"][name]
                assert "maxItems" in listed, f"{path}.{name} is iterated by CEL but unbounded"


def test_bad_values_are_refused_by_the_schema_itself() -> None:
    schema = custom_resource_definition(TrainingJob)["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"
    ]
    spec = schema["properties"]["spec"]
    assert spec["properties"]["replicas"]["minimum"] == 1
    option = spec["properties"]["accelerators"]["items"]
    assert option["properties"]["devicesPerReplica"]["minimum"] == 1
    assert spec["properties"]["accelerators"]["minItems"] == 1
    assert set(spec["required"]) >= {"replicas", "template", "accelerators"}
    # Unknown fields are refused (pruned + strict validation) because nothing but the
    # documented free-form parts preserves them.
    preserving = [p for p, n in walk(schema) if n.get("x-kubernetes-preserve-unknown-fields")]
    assert all(".template." in p or p.endswith(".valueFrom") for p in preserving), preserving


def test_immutability_rule_is_a_transition_rule_on_the_root() -> None:
    schema = custom_resource_definition(TrainingJob)["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"
    ]
    [rule] = schema["x-kubernetes-validations"]
    assert "oldSelf" in rule["rule"]
    assert "suspend" in rule["message"]


@pytest.mark.parametrize(
    "kind", ["AcceleratorClass", "ComputeQuota", "TrainingJob", "ComputeCentre"]
)
def test_status_is_optional_and_spec_required(kind: str) -> None:
    [resource] = [r for r in CustomResource.__subclasses__() if kind == r.KIND]
    schema = custom_resource_definition(resource)["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"
    ]
    assert schema["required"] == ["spec"]
    assert "status" in schema["properties"]
