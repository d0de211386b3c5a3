"""Shared fixtures for the API tests: the repository root and the generated CRDs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from suanli.api import RESOURCES, CustomResource
from suanli.api.crd import custom_resource_definition

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(params=RESOURCES, ids=lambda r: r.KIND)
def resource(request: pytest.FixtureRequest) -> type[CustomResource]:
    kind: type[CustomResource] = request.param
    return kind


@pytest.fixture
def crd(resource: type[CustomResource]) -> dict[str, Any]:
    return custom_resource_definition(resource)


@pytest.fixture
def schema(crd: dict[str, Any]) -> dict[str, Any]:
    root: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return root
