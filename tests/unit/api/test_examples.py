"""Every example in examples/ validates against the models; the refused ones are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from suanli.api import AcceleratorClass, ComputeQuota, TrainingJob
from suanli.catalogue import by_name

from .conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"
MODELS = {
    "TrainingJob": TrainingJob,
    "ComputeQuota": ComputeQuota,
    "AcceleratorClass": AcceleratorClass,
}


def documents(directory: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((EXAMPLES / directory).glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            found.append((f"{path.name}:{document['kind']}", document))
    return found


ACCEPTED = documents("tenants") + documents("jobs")
REFUSED = documents("refused")


def test_there_are_examples_of_each_kind() -> None:
    kinds = {doc["kind"] for _, doc in ACCEPTED}
    assert {"Namespace", "ComputeQuota", "TrainingJob"} <= kinds
    assert len(REFUSED) >= 3


@pytest.mark.parametrize(("name", "document"), ACCEPTED, ids=[n for n, _ in ACCEPTED])
def test_example_validates_and_round_trips(name: str, document: dict[str, Any]) -> None:
    model = MODELS.get(document["kind"])
    if model is None:
        assert document["kind"] == "Namespace", name
        return
    parsed = model.model_validate(document)
    again = model.model_validate(parsed.model_dump(by_alias=True, exclude_none=True))
    assert again == parsed


@pytest.mark.parametrize(("name", "document"), REFUSED, ids=[n for n, _ in REFUSED])
def test_refused_example_is_refused(name: str, document: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        MODELS[document["kind"]].model_validate(document)


def test_examples_use_catalogue_classes_and_legal_counts_except_the_illegal_one() -> None:
    catalogue = by_name()
    illegal = []
    for name, document in ACCEPTED:
        if document["kind"] == "TrainingJob":
            job = TrainingJob.model_validate(document)
            for option in job.spec.accelerators:
                assert option.accelerator_class in catalogue, name
                counts = catalogue[option.accelerator_class].spec.topology.allowed_device_counts
                if option.devices_per_replica not in counts:
                    illegal.append(name)
        if document["kind"] == "ComputeQuota":
            quota = ComputeQuota.model_validate(document)
            for resource in quota.spec.resources:
                assert resource.accelerator_class in catalogue, name
    assert illegal == ["illegal-shape-910b.yaml:TrainingJob"]


def test_tenants_do_not_share_a_namespace() -> None:
    seen: dict[str, str] = {}
    for name, document in ACCEPTED:
        if document["kind"] == "ComputeQuota":
            for namespace in document["spec"]["namespaces"]:
                assert namespace not in seen, f"{namespace} in {seen.get(namespace)} and {name}"
                seen[namespace] = name


def test_examples_readme_exists() -> None:
    assert Path(EXAMPLES / "README.md").is_file()
