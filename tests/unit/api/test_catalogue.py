"""The default catalogue is valid, complete and cites a source for its figures."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from suanli.api import AcceleratorClass
from suanli.catalogue import DEFAULT_CATALOGUE, by_name

from .conftest import REPO_ROOT

REQUIRED = {
    "ascend-910a",
    "ascend-910b",
    "ascend-310p",
    "nvidia-a100",
    "nvidia-h100",
    "nvidia-h800",
    "nvidia-h20",
    "nvidia-l40s",
}


def test_the_catalogue_has_the_required_models() -> None:
    assert set(by_name()) >= REQUIRED


def test_every_entry_revalidates_from_its_yaml_form() -> None:
    for entry in DEFAULT_CATALOGUE:
        raw = entry.model_dump(by_alias=True, exclude_none=True, mode="json")
        assert AcceleratorClass.model_validate(raw) == entry


def test_ascend_910_chip_rules() -> None:
    topology = by_name()["ascend-910a"].spec.topology
    assert topology.group_size == 4
    assert sorted(topology.allowed_device_counts) == [1, 2, 4, 8]
    assert topology.multi_replica_device_count == 8
    b = by_name()["ascend-910b"].spec
    assert 3 not in b.topology.allowed_device_counts
    assert b.legal_counts_text() == "1, 2, 4, 8"


def test_node_labels_tell_the_classes_apart() -> None:
    """No two classes with the same resource may select the same nodes by accident."""
    entries = list(DEFAULT_CATALOGUE)
    for i, a in enumerate(entries):
        for b in entries[i + 1 :]:
            if a.spec.resource_name != b.spec.resource_name:
                continue
            conflicting = any(
                key in b.spec.node_labels and b.spec.node_labels[key] != value
                for key, value in a.spec.node_labels.items()
            )
            assert conflicting, f"{a.metadata.name} and {b.metadata.name} can match one node"


def test_every_figure_cites_a_source_in_the_source_file() -> None:
    source = Path(REPO_ROOT / "operator/suanli/catalogue/__init__.py").read_text(encoding="utf-8")
    blocks = re.split(r"\n    _entry\(\n", source)[1:]
    assert len(blocks) == len(DEFAULT_CATALOGUE)
    for block in blocks:
        name = re.search(r'"([a-z0-9-]+)"', block)
        assert name is not None
        for field in ("devices_per_node", "device_memory_gi_b", "compute_tflops", "topology"):
            line_index = next(
                i for i, line in enumerate(block.splitlines()) if line.strip().startswith(field)
            )
            previous = block.splitlines()[line_index - 1].strip()
            assert previous.startswith("#"), f"{name.group(1)}.{field} has no source comment above"


def test_generated_catalogue_yaml_matches_the_python_data() -> None:
    for entry in DEFAULT_CATALOGUE:
        path = REPO_ROOT / "deploy" / "catalogue" / f"{entry.metadata.name}.yaml"
        assert AcceleratorClass.model_validate(yaml.safe_load(path.read_text())) == entry


def test_the_placement_core_accepts_every_catalogue_entry() -> None:
    """The schema's topology rules and the placement core's DeviceClass rules agree."""
    from suanli.controller.translate import device_class

    for entry in DEFAULT_CATALOGUE:
        converted = device_class(entry)
        assert converted.allowed_counts == tuple(sorted(entry.spec.topology.allowed_device_counts))


def test_each_fake_node_model_of_the_local_centre_is_exactly_one_catalogue_class() -> None:
    """`make dev`'s fake nodes carry real device-plugin labels; the catalogue must claim them."""
    from suanli.localcluster.fakenodes import MODELS

    for model in MODELS.values():
        matching = [
            entry.metadata.name
            for entry in DEFAULT_CATALOGUE
            if entry.spec.resource_name == model.resource
            and all(model.labels.get(k) == v for k, v in entry.spec.node_labels.items())
        ]
        assert matching == [model.kind], (model.kind, matching)
        assert by_name()[model.kind].spec.devices_per_node == model.devices
