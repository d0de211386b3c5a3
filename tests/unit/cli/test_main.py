"""Argument handling, exit codes and kubectl-style printing of ``kubectl suanli`` (no cluster)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from suanli.cli.main import main
from suanli.cli.render import Output, parse_output, print_view
from suanli.cli.views import Column, View

VIEW = View(
    "Thing",
    (Column("name", "NAME"), Column("size", "SIZE"), Column("note", "NOTE", wide_only=True)),
    [{"name": "alpha", "size": 8.0, "note": None}, {"name": "b", "size": 2.5, "note": "x y"}],
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["queue", "-o", "table"], ["--output", "wide, json, yaml"]),
        (["why", "x", "-o", "wide"], ["--output", "json, yaml"]),
        (["top", "pods"], ["resource", "classes", "nodes", "tenants"]),
        (["queue", "--bogus"], ["--bogus", "kubectl-suanli queue --help"]),
        (["why"], ["Missing argument", "job"]),
        (["queue", "--kubeconfig", "/nonexistent/kubeconfig"], ["/nonexistent/kubeconfig"]),
        (["simulate", "-f", "/nonexistent/job.yaml"], ["/nonexistent/job.yaml", "--filename"]),
        (["report", "--since", "30x"], ["--since", "30x"]),
        (["report", "-o", "report.pdf"], ["--output", "report.pdf"]),
        (["report", "--prometheus", "localhost:9090"], ["--prometheus"]),
        (["submit", "-f", "job.yaml", "--timeout", "soon"], ["--timeout", "soon"]),
        (["completion", "tcsh"], ["tcsh", "bash"]),
    ],
)
def test_bad_input_exits_1_naming_what_is_wrong(
    capsys: pytest.CaptureFixture[str], argv: list[str], names: list[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    for name in names:
        assert name in err


def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    cluster = {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "one", "context": {"cluster": "c", "user": "u", "namespace": "ns1"}}
                ],
                "current-context": "one",
            }
        )
    )
    return path


def test_an_unknown_context_is_named_with_the_known_ones(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "queue", "--kubeconfig", str(kubeconfig(tmp_path)), "--context", "x")
    assert code == 1
    assert 'context "x" does not exist' in err and "one" in err


def test_an_unreachable_server_is_reported_as_kubectl_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "top", "nodes", "--kubeconfig", str(kubeconfig(tmp_path)))
    assert code == 1
    assert err.startswith("Unable to connect to the server https://127.0.0.1:1")


def test_a_manifest_with_an_invalid_field_is_refused_before_any_call(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    manifest = tmp_path / "job.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "suanli.io/v1alpha1",
                "kind": "TrainingJob",
                "metadata": {"name": "j", "namespace": "ns1"},
                "spec": {"replicas": 0, "accelerators": [], "template": {"spec": {}}},
            }
        )
    )
    code, _, err = run(
        capsys, "simulate", "-f", str(manifest), "--kubeconfig", str(kubeconfig(tmp_path))
    )
    assert code == 1
    assert "TrainingJob j is invalid: spec.replicas" in err


def test_a_manifest_namespace_that_differs_from_n_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    manifest = tmp_path / "job.yaml"
    manifest.write_text(
        yaml.safe_dump({"kind": "TrainingJob", "metadata": {"name": "j", "namespace": "ns1"}})
    )
    code, _, err = run(
        capsys,
        "submit",
        "-f",
        str(manifest),
        "-n",
        "other",
        "--kubeconfig",
        str(kubeconfig(tmp_path)),
    )
    assert code == 1
    assert "--namespace=ns1" in err


def test_tables_look_like_kubectl(capsys: pytest.CaptureFixture[str]) -> None:
    print_view(VIEW, Output.TABLE, "No things.")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "SIZE"]
    assert lines[0].index("SIZE") == len("alpha") + 3  # three spaces between columns
    assert lines[1].split() == ["alpha", "8"]
    assert lines[2].split() == ["b", "2.5"]
    print_view(VIEW, Output.WIDE, "No things.")
    wide = capsys.readouterr().out.splitlines()
    assert wide[0].split() == ["NAME", "SIZE", "NOTE"]
    assert wide[1].split() == ["alpha", "8", "<none>"]


def test_no_rows_prints_the_kubectl_message_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    print_view(View("Thing", VIEW.columns, []), Output.TABLE, "No things found in x namespace.")
    captured = capsys.readouterr()
    assert (captured.out, captured.err.strip()) == ("", "No things found in x namespace.")


def test_json_and_yaml_are_kubectl_lists(capsys: pytest.CaptureFixture[str]) -> None:
    print_view(VIEW, Output.JSON, "")
    document = json.loads(capsys.readouterr().out)
    assert document["kind"] == "List"
    assert document["items"][0] == {"kind": "Thing", "name": "alpha", "size": 8.0, "note": None}
    print_view(VIEW, Output.YAML, "")
    assert yaml.safe_load(capsys.readouterr().out) == document


def test_parse_output() -> None:
    assert parse_output(None) is Output.TABLE
    assert parse_output("wide") is Output.WIDE
    with pytest.raises(ValueError, match='"name"'):
        parse_output("name")


def test_completion_script_completes_commands_and_arguments(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "completion", "bash")
    assert code == 0
    assert "_KUBECTL_SUANLI_COMPLETE=complete_bash" in out
    assert "complete -o default -F _kubectl_suanli_completion kubectl-suanli" in out

    def complete(words: str) -> list[str]:
        env = {
            **os.environ,
            "_KUBECTL_SUANLI_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - 1),
        }
        result = subprocess.run(
            [sys.executable, "-m", "suanli.cli"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return result.stdout.split()

    assert complete("kubectl-suanli to") == ["top"]
    assert complete("kubectl-suanli top n") == ["nodes"]
