"""The kind instructions are right: every file, value, label and resource name that
``hack/kind-up.sh`` and ``kind-config.yaml`` name exists (kind itself is not run here: no
container engine on CI machines)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import yaml

from suanli.api.manifests import DEFAULT_NAMESPACE, IMAGE_REPOSITORY
from suanli.catalogue import DEFAULT_CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hack" / "kind-up.sh"
CONFIG = ROOT / "kind-config.yaml"
TEXT = SCRIPT.read_text(encoding="utf-8")


def test_the_script_is_valid_bash_and_executable() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    assert SCRIPT.stat().st_mode & 0o111


def test_every_repository_path_it_names_exists() -> None:
    named = set(re.findall(r"\$ROOT/([\w./-]+)", TEXT))
    named |= set(re.findall(r"(?<![\w/])((?:hack|charts|examples|deploy)/[\w./-]*\w)", TEXT))
    named |= set(re.findall(r"(?<![\w/])((?:hack|charts|examples)/[\w./-]*\w)", CONFIG.read_text()))
    named -= {"build/image", "build/image/site"}  # made by the script
    assert {"kind-config.yaml", "charts/suanli", "examples/tenants/", "hack/kind-up.sh"} & named
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert missing == [], missing
    assert (ROOT / "Dockerfile").is_file()
    assert "COPY ${CONTEXT}/site" in (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG CONTEXT=build/image" in (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_the_commands_it_runs_are_the_ones_it_checks_for() -> None:
    [checked] = re.findall(r"^need kind (.*)$", TEXT, flags=re.MULTILINE)
    needed = {"kind", *shlex.split(checked.replace('"$PYTHON"', "python3"))}
    run = set()
    for line in TEXT.splitlines():
        words = line.strip().split()
        if words and words[0] in {"kind", "docker", "kubectl", "helm", '"$PYTHON"'}:
            run.add(words[0].replace('"$PYTHON"', "python3"))
    assert run <= needed, run - needed
    # The subcommands exist in the tools that are built here (kubectl, helm).
    for tool, sub in (("kubectl", "patch"), ("kubectl", "label"), ("helm", "upgrade")):
        assert f"{tool} {sub}" in TEXT


def test_cluster_name_chart_values_and_image_agree() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert f"CLUSTER={config['name']}" in TEXT
    assert f"NAMESPACE={DEFAULT_NAMESPACE}" in TEXT
    assert f"IMAGE_REPOSITORY={IMAGE_REPOSITORY}" in TEXT
    values = yaml.safe_load((ROOT / "charts" / "suanli" / "values.yaml").read_text())
    for key in re.findall(r"--set ([\w.]+)=", TEXT):
        cursor = values
        for part in key.split("."):
            assert part in cursor, f"--set {key}: no such chart value"
            cursor = cursor[part]


def test_each_worker_is_recognised_by_a_class_and_gets_that_class_resource() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    workers = [node for node in config["nodes"] if node["role"] == "worker"]
    advertised = dict(re.findall(r"^advertise (\S+)=(?:\S+) (\S+)$", TEXT, flags=re.MULTILINE))
    selectors = re.findall(r"^advertise (\S+) (\S+)$", TEXT, flags=re.MULTILINE)
    assert len(selectors) == len(workers) == 2
    for worker in workers:
        labels = worker["labels"]
        classes = [
            entry
            for entry in DEFAULT_CATALOGUE
            if all(labels.get(k) == v for k, v in entry.spec.node_labels.items())
        ]
        assert len(classes) == 1, (labels, [c.metadata.name for c in classes])
        matching = [
            resource
            for selector, resource in selectors
            if labels.get(selector.split("=")[0]) == selector.split("=")[1]
        ]
        assert matching == [classes[0].spec.resource_name], (labels, matching)
    assert advertised  # parsed at all
