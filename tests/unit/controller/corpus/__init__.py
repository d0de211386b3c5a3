"""The hostile-manifest corpus: hand-written entries and Hypothesis-generated ones, each naming
the field its refusal must name.

Shared by the unit tests (``suanli.controller.validate`` refuses every entry naming its field)
and the integration test (the apiserver, with the webhook registered, refuses it at apply).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
REPO = HERE.parents[3]
_REPEAT = re.compile(r"\$\((.)\*(\d+)\)")


@dataclass(frozen=True)
class Entry:
    name: str
    field: str
    manifest: dict[str, Any]
    given: tuple[dict[str, Any], ...] = ()
    source: str = "hand-written"
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])


def bases() -> dict[str, dict[str, Any]]:
    loaded: dict[str, dict[str, Any]] = yaml.safe_load((HERE / "bases.yaml").read_text())
    return loaded


def _expand(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$repeat"}:
            text, times = value["$repeat"]
            return str(text) * int(times)
        return {_expand(k): _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    if isinstance(value, str):
        return _REPEAT.sub(lambda m: m.group(1) * int(m.group(2)), value)
    return value


def _tokens(pointer: str) -> list[str]:
    if not pointer.startswith("/"):
        raise ValueError(f"not a JSON pointer: {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _parent(document: Any, tokens: list[str]) -> Any:
    for token in tokens[:-1]:
        document = document[int(token)] if isinstance(document, list) else document[token]
    return document


def set_pointer(document: Any, pointer: str, value: Any) -> None:
    tokens = _tokens(pointer)
    parent = _parent(document, tokens)
    last = tokens[-1]
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            parent[int(last)] = value
    else:
        parent[last] = value


def remove_pointer(document: Any, pointer: str) -> None:
    tokens = _tokens(pointer)
    parent = _parent(document, tokens)
    del parent[int(tokens[-1]) if isinstance(parent, list) else tokens[-1]]


def build(raw: dict[str, Any], source: str) -> Entry:
    """One entry of a corpus file: its base with the patches applied."""
    name = str(raw["name"])
    manifest = copy.deepcopy(bases()[raw["base"]])
    manifest["metadata"]["name"] = name
    if manifest["kind"] == "ComputeQuota":
        manifest["spec"]["namespaces"] = [name]
    if manifest["kind"] == "AcceleratorClass":
        manifest["spec"]["nodeLabels"] = {"suanli.io/corpus-class": name}
    for pointer, value in (raw.get("set") or {}).items():
        set_pointer(manifest, _expand(pointer), _expand(value))
    for pointer in raw.get("remove") or []:
        remove_pointer(manifest, _expand(pointer))
    return Entry(
        name=name,
        field=str(raw["field"]),
        manifest=manifest,
        given=tuple(raw.get("given") or ()),
        source=source,
    )


def load() -> list[Entry]:
    """Every entry: the hand-written ones, then the stored Hypothesis-generated ones."""
    entries = []
    for file in ("hand-written.yaml", "generated.yaml"):
        path = HERE / file
        if path.exists():
            entries += [build(raw, file) for raw in yaml.safe_load(path.read_text()) or []]
    return entries


def catalogue() -> dict[str, dict[str, Any]]:
    """The default AcceleratorClasses (deploy/catalogue), keyed by name, as the cache holds them."""
    classes = {}
    for path in sorted((REPO / "deploy" / "catalogue").glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        if body.get("kind") == "AcceleratorClass":
            classes[body["metadata"]["name"]] = body
    return classes
