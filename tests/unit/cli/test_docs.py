"""The docs site: generated reference pages in sync, the alert table complete, examples valid."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from suanli.api import TrainingJob
from suanli.api.common import GROUP
from suanli.cli.reference import generated_files
from suanli.observability.alerts import ALERTS

REPO = Path(__file__).resolve().parents[3]


def test_generated_reference_pages_are_committed_unchanged() -> None:
    for path, text in generated_files().items():
        committed = REPO / path
        assert committed.exists(), f"{path} is missing: run `make generate`"
        assert committed.read_text(encoding="utf-8") == text, f"{path} drifted: `make generate`"


def test_reference_names_every_field_of_the_spec() -> None:
    page = generated_files()["docs/reference/trainingjob.md"]
    for name in TrainingJob.model_fields["spec"].annotation.model_fields.values():  # type: ignore[union-attr]
        assert f"| `{name.alias}`" in page, name.alias
    assert f"`apiVersion: {GROUP}/v1alpha1`" in page


def test_the_sre_page_lists_every_alert_with_its_runbook() -> None:
    page = (REPO / "docs" / "sre.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| `(Suanli\w+)` \| \[runbook\]\(runbooks\.md#(\w+)\) \|$", page, re.M)
    assert listed == [(a.name, a.runbook_anchor) for a in ALERTS]
    runbooks = (REPO / "docs" / "runbooks.md").read_text(encoding="utf-8")
    for alert in ALERTS:
        assert f"\n## {alert.name}\n" in runbooks


def test_the_nav_names_existing_pages_and_every_audience() -> None:
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    config = config.replace("!!python/name:pymdownx.superfences.fence_code_format", "x")
    nav = yaml.safe_load(config)["nav"]

    def pages(entries: list[object]) -> set[str]:
        found: set[str] = set()
        for entry in entries:
            assert isinstance(entry, dict)
            for value in entry.values():
                found |= pages(value) if isinstance(value, list) else {str(value)}
        return found

    listed = pages(nav)
    assert all((REPO / "docs" / page).is_file() for page in listed), listed
    audiences = {"tenants.md", "cli.md", "platform.md", "sre.md", "architecture.md"}
    assert audiences | set(generated_files_pages()) <= listed


def generated_files_pages() -> list[str]:
    return [path.removeprefix("docs/") for path in generated_files()]


def test_training_examples_are_valid_jobs() -> None:
    paths = sorted((REPO / "examples" / "training").glob("*.yaml"))
    assert len(paths) >= 4
    for path in paths:
        TrainingJob.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
