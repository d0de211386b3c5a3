"""Turn the pydantic models into CustomResourceDefinitions: the API is written once, in Python.

Why convert pydantic's JSON Schema instead of writing CRD YAML by hand: the operator validates
objects with the same models the API server enforces, so the two cannot disagree. The API server
only accepts *structural* schemas, which JSON Schema as pydantic writes it is not, so this module:

- inlines every ``$ref`` (structural schemas may not reference),
- turns ``Optional[X]`` (``anyOf: [X, null]``) into plain ``X`` (absent means unset; the operator
  writes with ``exclude_none``),
- turns free-form ``dict[str, Any]`` into ``x-kubernetes-preserve-unknown-fields``, drops
  ``additionalProperties: false`` (pruning plus strict field validation already refuses unknown
  fields, naming them) and ``title``,
- rewrites numeric ``exclusiveMinimum: n`` into OpenAPI v3.0's ``minimum: n`` +
  ``exclusiveMinimum: true``, and ``const`` into a one-value ``enum``,
- keeps ``default`` only where it is a real value (never ``null``).

``structural_problems`` re-checks the result so a unit test fails loudly if a model ever adds a
construct the conversion does not handle.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from .common import GROUP, VERSION, CustomResource

Schema = dict[str, Any]

_DROPPED_KEYS = frozenset({"title", "examples", "$defs", "uniqueItems"})


def _resolve(schema: Schema, defs: dict[str, Schema]) -> Schema:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = copy.deepcopy(defs[name])
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        target.update(siblings)
        return _resolve(target, defs)
    return schema


def _is_null(schema: Schema) -> bool:
    return schema.get("type") == "null"


def _convert(raw: Schema, defs: dict[str, Schema]) -> Schema:
    schema = _resolve(dict(raw), defs)

    any_of = schema.get("anyOf")
    if any_of is not None and not schema.get("x-kubernetes-int-or-string"):
        branches = [_resolve(dict(b), defs) for b in any_of if not _is_null(b)]
        if len(branches) != 1:
            raise ValueError(f"cannot express a union of {len(branches)} types structurally")
        outer = {k: v for k, v in schema.items() if k != "anyOf"}
        merged = dict(branches[0])
        # Field-level keys (description, default, extensions) win over the branch's.
        merged.update(outer)
        schema = merged
        if schema.get("default", "absent") is None:
            del schema["default"]
        return _convert(schema, defs)

    out: Schema = {}
    for key, value in schema.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "default" and value is None:
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, defs) for name, sub in value.items()}
            continue
        if key == "items":
            out[key] = _convert(value, defs)
            continue
        if key == "additionalProperties":
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out[key] = _convert(value, defs)
            # additionalProperties: false is dropped; see the module docstring.
            continue
        out[key] = copy.deepcopy(value)

    if "properties" in out or out.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("type", "object")
    if out.get("type") == "object" and "additionalProperties" in out and "properties" in out:
        del out["additionalProperties"]
    if "enum" in out and "type" not in out:
        sample = out["enum"][0]
        out["type"] = "integer" if isinstance(sample, int) else "string"
    return out


def model_schema(model: type[BaseModel]) -> Schema:
    """The structural openAPIV3Schema for ``model`` (apiVersion/kind/metadata included)."""
    raw = model.model_json_schema(by_alias=True, mode="validation", ref_template="#/$defs/{model}")
    defs = raw.get("$defs", {})
    return _convert(raw, defs)


def _object_schema(resource: type[CustomResource]) -> Schema:
    schema = model_schema(resource)
    properties = schema["properties"]
    properties["apiVersion"] = {
        "type": "string",
        "description": "APIVersion defines the versioned schema of this object: "
        f"{GROUP}/{VERSION}.",
    }
    properties["kind"] = {"type": "string", "description": f"Always {resource.KIND}."}
    # The API server owns metadata's schema; a CRD may only say it is an object.
    properties["metadata"] = {"type": "object"}
    schema["required"] = ["spec"]
    if resource.ROOT_VALIDATIONS:
        schema["x-kubernetes-validations"] = [dict(rule) for rule in resource.ROOT_VALIDATIONS]
    schema["description"] = (resource.__doc__ or resource.KIND).strip().splitlines()[0]
    return schema


def custom_resource_definition(resource: type[CustomResource]) -> Schema:
    """The apiextensions.k8s.io/v1 CustomResourceDefinition object for ``resource``."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": resource.crd_name(),
            "labels": {"app.kubernetes.io/part-of": "suanli"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": resource.KIND,
                "listKind": f"{resource.KIND}List",
                "plural": resource.PLURAL,
                "singular": resource.SINGULAR,
                "shortNames": list(resource.SHORT_NAMES),
                "categories": list(resource.CATEGORIES),
            },
            "scope": resource.SCOPE,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [dict(c) for c in resource.PRINTER_COLUMNS],
                    "schema": {"openAPIV3Schema": _object_schema(resource)},
                }
            ],
        },
    }


_INT_OR_STRING_BRANCHES = [{"type": "integer"}, {"type": "string"}]
_ALLOWED_EXTENSIONS = frozenset(
    {
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-int-or-string",
        "x-kubernetes-validations",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
        "x-kubernetes-embedded-resource",
    }
)
_FORBIDDEN_KEYS = frozenset(
    {"$ref", "$defs", "definitions", "const", "uniqueItems", "oneOf", "allOf", "not", "title"}
)


def structural_problems(schema: Schema, path: str = "") -> list[str]:
    """Everything in ``schema`` that the API server would reject as non-structural.

    Covers the rules a generated schema can break: every node has a type (or is
    int-or-string / preserve-unknown), no references or JSON Schema-only keywords, lists have
    typed items, properties and additionalProperties are not mixed, list-map keys are required
    scalars, no null defaults.
    """
    problems: list[str] = []
    where = path or "<root>"
    for key in schema:
        if key in _FORBIDDEN_KEYS:
            problems.append(f"{where}: {key} is not allowed in a structural schema")
        if key.startswith("x-") and key not in _ALLOWED_EXTENSIONS:
            problems.append(f"{where}: unknown extension {key}")
    if "default" in schema and schema["default"] is None:
        problems.append(f"{where}: null default")
    if schema.get("x-kubernetes-int-or-string"):
        if schema.get("anyOf") not in (None, _INT_OR_STRING_BRANCHES):
            problems.append(f"{where}: int-or-string anyOf must be [integer, string]")
        return problems
    if "anyOf" in schema:
        problems.append(f"{where}: anyOf outside int-or-string")
    kind = schema.get("type")
    if kind is None and not schema.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(f"{where}: no type")
    if kind == "object":
        if "properties" in schema and "additionalProperties" in schema:
            problems.append(f"{where}: properties and additionalProperties together")
        if schema.get("additionalProperties") is False:
            problems.append(f"{where}: additionalProperties: false")
        for name, sub in schema.get("properties", {}).items():
            problems.extend(structural_problems(sub, f"{path}.{name}"))
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            problems.extend(structural_problems(extra, f"{path}.*"))
        for required in schema.get("required", []):
            if required not in schema.get("properties", {}):
                problems.append(f"{where}: required {required} is not a property")
    if kind == "array":
        items = schema.get("items")
        if not isinstance(items, dict):
            problems.append(f"{where}: array without items")
        else:
            problems.extend(structural_problems(items, f"{path}[]"))
            list_type = schema.get("x-kubernetes-list-type")
            if list_type == "map":
                keys = schema.get("x-kubernetes-list-map-keys", [])
                if not keys:
                    problems.append(f"{where}: list-type map without list-map-keys")
                for key in keys:
                    key_schema = items.get("properties", {}).get(key)
                    if key_schema is None or key_schema.get("type") not in ("string", "integer"):
                        problems.append(f"{where}: list-map key {key} must be a scalar property")
                    elif key not in items.get("required", []) and "default" not in key_schema:
                        problems.append(f"{where}: list-map key {key} must be required")
            if list_type == "set" and items.get("type") not in ("string", "integer", "number"):
                problems.append(f"{where}: list-type set needs scalar items")
    return problems
