"""``kubectl suanli`` against the real local control plane, the operator and a real Prometheus.

One story, in order, with the examples of ``examples/training/``: a single-device fine-tune is
submitted and followed to success (and a failing one to exit code 1); MindSpore fills team-llm's
Ascend quota; ``simulate`` predicts that the DDP job must wait and what unblocks it, and ``why``
says the same once it is queued, agreeing with the reason the operator wrote; ``simulate``
predicts which job the high-priority one preempts, and the operator then preempts exactly that
one; ``quota`` and ``top`` agree with the quota status and the pods; ``report`` bills from
Prometheus, agrees with ``status.metering``, and its HTML page, opened in headless Chromium,
shows its three plots.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from suanli.localcluster import LocalCluster
from suanli.localcluster.cli import start_operator
from tests.integration.conftest import (
    REPO,
    Kubectl,
    Tenants,
    job_manifest,
    private_cluster,
    wait_for,
    wait_for_phase,
)
from tests.unit.observability.prometheus_harness import Prometheus, free_port

pytestmark = pytest.mark.integration

EXAMPLES = REPO / "examples" / "training"
ARGS = ("--standalone", "--gang-start-timeout=30", "--requeue-backoff=1")
SCREEN = (1280, 1400)
# where to_html puts the plots: a 120 px header, then 360 px images 10 px apart, 40 px from left
PLOT_BOXES = {
    name: (40, 130 + index * 380, 1240, 130 + index * 380 + 360)
    for index, name in enumerate(("utilisation", "tenants", "waits"))
}
WOULD_WAIT = 3


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster, metrics_port: int) -> Iterator[dict[str, int]]:
    ports = start_operator(cluster, ARGS, metrics_port=metrics_port)
    yield ports
    cluster.stop_process("operator")


@pytest.fixture(scope="module")
def prometheus_started() -> float:
    return time.time()


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory,
    metrics_port: int,
    operator: dict[str, int],
    prometheus_started: float,
) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path_factory.mktemp("cli-prometheus"), [f"127.0.0.1:{metrics_port}"])
    yield server
    server.stop()


class Cli:
    def __init__(self, cluster: LocalCluster) -> None:
        self.kubeconfig = str(cluster.kubeconfig)

    def __call__(self, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "suanli.cli", *args, "--kubeconfig", self.kubeconfig],
            check=False,
            capture_output=True,
            text=True,
            timeout=240,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert result.returncode in ok, (args, result.returncode, result.stdout, result.stderr)
        return result

    def json(self, *args: str, ok: tuple[int, ...] = (0,)) -> Any:
        return json.loads(self(*args, "-o", "json", ok=ok).stdout)


@pytest.fixture(scope="module")
def cli(cluster: LocalCluster) -> Cli:
    return Cli(cluster)


@pytest.fixture
def centre(kubectl: Kubectl, tenants: Tenants) -> Tenants:
    """The example tenants team-llm and team-vision (removed with their jobs afterwards)."""
    for path in sorted((REPO / "examples" / "tenants").glob("*.yaml")):
        code, output = kubectl.apply(path.read_text(encoding="utf-8"))
        assert code == 0, output
    for name in ("team-llm", "team-vision"):
        kubectl.cluster.wait_for_default_service_account(name)
        tenants.created.append(name)
    return tenants


def example(name: str) -> Path:
    return EXAMPLES / f"{name}.yaml"


def job_name(path: Path) -> str:
    return str(yaml.safe_load(path.read_text(encoding="utf-8"))["metadata"]["name"])


def test_kubectl_suanli_on_the_local_centre(
    cli: Cli,
    kubectl: Kubectl,
    centre: Tenants,
    prometheus: Prometheus,
    prometheus_started: float,
    tmp_path: Path,
) -> None:
    llm, vision = "team-llm", "team-vision"

    # submit --wait follows a job to its end; the exit code is the job's result
    finetune = example("finetune-single-a100")
    done = cli("submit", "-f", str(finetune), "--wait", "--timeout", "3m")
    assert "trainingjob.suanli.io/lora-finetune created" in done.stdout
    assert "trainingjob.suanli.io/lora-finetune succeeded" in done.stdout
    assert kubectl.get("tj", "lora-finetune", "-n", vision)["status"]["phase"] == "Succeeded"
    failing = tmp_path / "failing.yaml"
    failing.write_text(
        yaml.safe_dump(
            job_manifest(
                "crashes",
                vision,
                [{"acceleratorClass": "nvidia-a100", "devicesPerReplica": 1}],
                duration="2s",
                exit_code=3,
            )
        )
    )
    crashed = cli("submit", "-f", str(failing), "--wait", "--timeout", "3m", ok=(1,))
    assert "error: trainingjob crashes failed" in crashed.stderr

    # MindSpore fills team-llm's 16 nominal Ascend 910B
    mindspore = example("mindspore-910b")
    assert kubectl.apply(mindspore.read_text(encoding="utf-8"))[0] == 0
    wait_for_phase(kubectl, llm, job_name(mindspore), "Running", timeout=90)

    # simulate: the DDP job would wait for quota on both options; mindspore's end unblocks it
    ddp = example("ddp-h100-fallback-910b")
    predicted = cli.json("simulate", "-f", str(ddp), ok=(WOULD_WAIT,))
    assert (predicted["kind"], predicted["verdict"], predicted["reason"]) == (
        "Simulation",
        "waiting",
        "QuotaExceeded",
    )
    h100, ascend = predicted["options"]
    assert (h100["quota"]["nominal"], h100["quota"]["needed"]) == (8, 16)
    assert h100["quota"]["fits"] is False
    assert (ascend["quota"]["used"], ascend["quota"]["cohort_can_lend"]) == (16, 8)
    assert predicted["unblock"]["jobs"] == [f"{llm}/mindspore-pangu"]
    assert predicted["unblock"]["option_index"] == 1
    assert 0 < predicted["unblock"]["next_end_seconds"] <= 7200
    assert len(kubectl.get("tj", "-n", llm)["items"]) == 1  # nothing was created

    # why: the same numbers once it is queued, and the operator recorded the same reason
    assert kubectl.apply(ddp.read_text(encoding="utf-8"))[0] == 0

    def recorded_reason() -> str | None:
        status = kubectl.get("tj", job_name(ddp), "-n", llm).get("status") or {}
        return status.get("reason")

    assert wait_for("the operator's reason for the DDP job", recorded_reason) == "QuotaExceeded"
    explained = cli.json("why", job_name(ddp), "-n", llm)
    assert (explained["kind"], explained["reason"]) == ("Explanation", "QuotaExceeded")
    assert explained["recorded_reason"] == "QuotaExceeded"
    assert explained["position"] == 1
    text = cli("why", job_name(ddp), "-n", llm).stdout
    assert "Reason:     QuotaExceeded" in text
    assert "quota team-llm: needs 16, nominal 16, used 16, free in quota 0, cohort can lend 8" in (
        text
    )
    assert f"fits if 16 × ascend-910b free up ({llm}/mindspore-pangu); the next finishes in ~" in (
        text
    )
    words = f"kubectl-suanli why -n {llm} --kubeconfig {cli.kubeconfig} ddp"
    completion = subprocess.run(
        [sys.executable, "-m", "suanli.cli"],
        env={
            **os.environ,
            "_KUBECTL_SUANLI_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - 1),
        },
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert completion.stdout.split() == [job_name(ddp)]
    missing = cli("why", "no-such-job", "-n", llm, ok=(1,))
    assert 'Error from server (NotFound): trainingjobs.suanli.io "no-such-job"' in missing.stderr

    queue = cli.json("queue", "-n", llm)["items"]
    assert [(q["name"], q["reason"], q["position"]) for q in queue] == [
        ("ddp-llama-8b", "QuotaExceeded", 1)
    ]
    table = cli("queue", "-A").stdout.splitlines()
    assert table[0].split() == [
        "QUOTA",
        "POSITION",
        "NAMESPACE",
        "NAME",
        "PRIORITY",
        "OPTION",
        "REASON",
        "AGE",
    ]
    assert any(line.split()[:4] == ["team-llm", "1", "team-llm", "ddp-llama-8b"] for line in table)

    # simulate names the victim of a preemption; the operator then evicts exactly that job
    urgent = example("urgent-preempts")
    preview = cli.json("simulate", "-f", str(urgent), ok=(WOULD_WAIT,))
    assert preview["would_preempt"] == [f"{llm}/mindspore-pangu"]
    assert kubectl.apply(urgent.read_text(encoding="utf-8"))[0] == 0
    wait_for_phase(kubectl, llm, job_name(urgent), "Running", timeout=90)
    assert kubectl.get("tj", "mindspore-pangu", "-n", llm)["status"]["phase"] == "Preempted"

    # quota and top agree with the operator's quota status and with the pods
    def quota_status_settled() -> bool:
        usage = kubectl.get("computequota", llm).get("status", {}).get("usage") or []
        rows = {r["acceleratorClass"]: r for r in usage}
        return rows.get("ascend-910b", {}).get("used") == 16

    wait_for("team-llm's status to show the urgent job", quota_status_settled)
    usage = {r["acceleratorClass"]: r for r in kubectl.get("computequota", llm)["status"]["usage"]}
    rows = {(r["quota"], r["class"]): r for r in cli.json("quota")["items"]}
    for cls, recorded in usage.items():
        row = rows[(llm, cls)]
        assert (row["used"], row["borrowed"], row["lent"]) == (
            recorded.get("used", 0),
            recorded.get("borrowed", 0),
            recorded.get("lent", 0),
        ), cls
    assert rows[(llm, "ascend-910b")]["usedPFLOPS"] == round(16 * 313 / 1000, 3)
    assert {r["quota"] for r in cli.json("quota", "-n", vision)["items"]} == {vision}

    pods = kubectl.get("pods", "-A", "-l", "app.kubernetes.io/managed-by=suanli")["items"]
    held = sum(
        int(p["spec"]["containers"][0]["resources"]["limits"].get("huawei.com/Ascend910", 0))
        for p in pods
        if p["status"].get("phase") not in ("Succeeded", "Failed")
        and not p["metadata"].get("deletionTimestamp")
    )
    classes = {r["class"]: r for r in cli.json("top", "classes")["items"]}
    assert classes["ascend-910b"]["allocated"] == held == 16
    assert classes["ascend-910b"]["total"] == 32
    nodes = cli("top", "nodes", "-o", "wide").stdout.splitlines()
    assert nodes[0].split()[:4] == ["NODE", "CLASS", "STATUS", "DEVICES"]
    tenants = {r["quota"]: r for r in cli.json("top", "tenants")["items"]}
    assert tenants[llm]["devices"] == "16 ascend-910b"

    # report: billed from Prometheus, cross-checked against status.metering
    kubectl.run("delete", "tj", "lora-finetune", "crashes", "-n", vision, "--wait=true")
    # the jobs' pods are billed as they go (the garbage collector deletes them after the jobs)
    wait_for(
        "the deleted jobs' pods to be billed and gone",
        lambda: (
            not [
                p
                for p in kubectl.get("pods", "-n", vision)["items"]
                if (p["metadata"].get("labels") or {}).get("suanli.io/job-name")
                in ("lora-finetune", "crashes")
            ]
        ),
        timeout=120,
    )

    def folded() -> dict[str, Any] | None:
        status = kubectl.get("computequota", vision).get("status") or {}
        rows = {r["acceleratorClass"]: r for r in status.get("metering") or []}
        return rows.get("nvidia-a100")

    row = wait_for("team-vision's A100 time folded into its status", folded)
    metered = 'suanli_metered_device_seconds_total{quota="team-vision",class="nvidia-a100"}'

    def scraped_fold() -> bool:
        result = prometheus.query(metered)
        return bool(result) and float(result[0]["value"][1]) >= float(row["deviceSeconds"])

    wait_for("Prometheus to scrape the folded time", scraped_fold, timeout=60)
    # a window as long as Prometheus has run, so the plots span the data
    since = f"{int(time.time() - prometheus_started) + 5}s"
    report_csv = tmp_path / "report.csv"
    cli("report", "--since", since, "-o", str(report_csv), "--prometheus", prometheus.url)
    billed = {
        (r["quota"], r["accelerator_class"]): r
        for r in csv.DictReader(io.StringIO(report_csv.read_text(encoding="utf-8")))
    }
    a100 = billed[(vision, "nvidia-a100")]
    assert a100["check"] == "ok"
    assert float(a100["folded_device_hours"]) == pytest.approx(
        float(row["deviceSeconds"]) / 3600, abs=1e-6
    )
    # the fine-tune ran ~15 s and the crashing job ~2 s on one A100 each
    assert 10 / 3600 < float(a100["device_hours"]) <= float(a100["total_device_hours"]) + 1e-9
    assert float(billed[(llm, "ascend-910b")]["device_hours"]) > 0
    assert all(r["check"] == "ok" for r in billed.values())

    report_html = tmp_path / "report.html"
    cli("report", "--since", since, "-o", str(report_html), "--prometheus", prometheus.url)
    screenshot = tmp_path / "report.png"
    chromium = shutil.which("chromium")
    assert chromium is not None, "chromium is missing: run `bash hack/install-chromium.sh`"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={SCREEN[0]},{SCREEN[1]}",
            f"--screenshot={screenshot}",
            report_html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    check_plots(screenshot)
    if os.environ.get("SUANLI_UPDATE_SCREENSHOT"):
        shutil.copy(screenshot, REPO / "docs" / "img" / "report.png")


def check_plots(path: Path) -> None:
    """Each plot region holds a drawn plot: enough ink, and coloured lines or bars in it."""
    from matplotlib import image

    pixels = image.imread(str(path))
    assert pixels.shape[1] == SCREEN[0] and pixels.shape[0] >= SCREEN[1], pixels.shape
    for name, (left, top, right, bottom) in PLOT_BOXES.items():
        region = pixels[top:bottom, left:right, :3]
        ink = (region.min(axis=2) < 0.9).mean()
        colour = (region.max(axis=2) - region.min(axis=2) > 0.3).sum()
        assert 0.02 < ink < 0.6, (name, ink)
        assert colour > 500, (name, colour)
    header = pixels[0:110, :, :3]
    assert (header.min(axis=2) < 0.5).mean() > 0.005  # the title and dates are drawn


def test_an_apiserver_without_suanli_is_named_as_such(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with private_cluster(tmp_path_factory, "cli-bare", nodes=False, api=False) as bare:
        result = Cli(bare)("queue", "-A", ok=(1,))
    assert result.stderr.startswith(
        'error: the server doesn\'t have a resource type "acceleratorclasses" (is suanli installed?'
    ), result.stderr
