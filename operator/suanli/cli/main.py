"""The ``kubectl suanli`` commands (Typer): argument handling, exit codes and printing only.

Exit codes follow kubectl: 0 on success, 1 on any error (bad flags included, with the message
naming the flag). Two commands report an outcome through it: ``submit --wait`` exits 1 when the
job failed, ``simulate`` exits 3 when the job would have to wait.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, cast

import typer
import yaml
from pydantic import ValidationError
from rich.live import Live
from rich.table import Table
from rich.text import Text

from suanli.api.trainingjob import TrainingJob
from suanli.cli import explain as explaining
from suanli.cli import views
from suanli.cli.kube import CliError, Kube, Target
from suanli.cli.plan import Plan, build_plan
from suanli.cli.render import Output, console, dump, parse_output, print_view, print_views

WOULD_WAIT = 3
POLL_SECONDS = 1.0
FINISHED = ("Succeeded", "Failed")

app = typer.Typer(
    name="kubectl-suanli",
    help="Queue, quota, capacity and usage of a suanli compute centre, the kubectl way.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Namespace = Annotated[
    str | None,
    typer.Option("--namespace", "-n", help="The namespace (default: the context's)."),
]
AllNamespaces = Annotated[
    bool, typer.Option("--all-namespaces", "-A", help="Across all namespaces.")
]
Context = Annotated[str | None, typer.Option("--context", help="The kubeconfig context to use.")]
Kubeconfig = Annotated[
    str | None, typer.Option("--kubeconfig", help="Path to the kubeconfig file.")
]
OutputOption = Annotated[
    str | None, typer.Option("--output", "-o", help="Output format: wide, json or yaml.")
]
Filename = Annotated[
    Path, typer.Option("--filename", "-f", help="A YAML or JSON TrainingJob manifest.")
]


def _kube(kubeconfig: str | None, context: str | None, namespace: str | None, all_: bool) -> Kube:
    return Kube(Target(kubeconfig, context, namespace, all_))


def _output(value: str | None, *allowed: Output) -> Output:
    try:
        return parse_output(value, allowed or tuple(Output))
    except ValueError as exc:
        raise CliError(f"{exc} (--output)") from None


def _warn(plan: Plan) -> None:
    err = console(stderr=True)
    for warning in plan.warnings:
        err.print(f"Warning: {warning}", markup=False)


def _job_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of JOB: the jobs of the namespace the command line names."""
    params = ctx.params
    try:
        kube = _kube(
            params.get("kubeconfig"), params.get("context"), params.get("namespace"), False
        )
        jobs = kube.list_jobs(kube.namespace)
    except (CliError, OSError):
        return []
    names = (str(j["metadata"]["name"]) for j in jobs)
    return sorted(n for n in names if n.startswith(incomplete))


@app.command()
def queue(
    namespace: Namespace = None,
    all_namespaces: AllNamespaces = False,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    output: OutputOption = None,
) -> None:
    """Pending jobs per quota: position, the option being tried and the reason (computed now)."""
    out = _output(output)
    kube = _kube(kubeconfig, context, namespace, all_namespaces)
    plan = build_plan(kube.snapshot())
    _warn(plan)
    scope = None if all_namespaces else kube.namespace
    empty = "No pending jobs found" + ("." if scope is None else f" in {scope} namespace.")
    print_view(views.queue_view(plan, scope), out, empty)


def _print_explanation(item: explaining.Explanation) -> None:
    out = console()
    lines: list[tuple[str, str]] = [
        ("Job", item.job),
        ("Phase", item.phase),
        ("Quota", item.quota or "<none> (no ComputeQuota serves the namespace)"),
        ("Verdict", item.verdict + (f" (position {item.position})" if item.position else "")),
        ("Reason", item.reason),
        ("Message", item.message or "<none>"),
    ]
    if item.recorded_reason and item.recorded_reason != item.reason:
        lines.append(("Recorded", f"{item.recorded_reason}: {item.recorded_message or ''}"))
    for label, value in lines:
        out.print(Text(f"{label + ':':<12}{value}"))
    if item.options:
        out.print(Text("Options:"))
    for option in item.options:
        out.print(
            Text(
                f"  {option.index + 1}. {option.replicas} × {option.devices_per_replica} "
                f"{option.device_class}"
            )
        )
        if option.problem:
            out.print(Text(f"     can never run: {option.problem}"))
            continue
        if option.quota is not None:
            q = option.quota
            verdict = "fits" if q.fits else "does not fit"
            if q.fits and q.borrowing:
                verdict += f" (borrowing {q.borrowing:g})"
            out.print(
                Text(
                    f"     quota {q.quota}: needs {q.needed:g}, nominal {q.nominal:g}, used "
                    f"{q.used:g}, free in quota {q.free_in_quota:g}, cohort can lend "
                    f"{q.cohort_can_lend:g}: {verdict}"
                )
            )
        out.print(
            Text(
                f"     {option.device_class}: {option.class_free_devices:g} of "
                f"{option.class_total_devices} devices free in the centre"
            )
        )
        if option.nodes:
            out.print(Text("     closest nodes:"))
        for node in option.nodes:
            lacks = "; ".join(node.lacks) if node.lacks else "nothing"
            out.print(
                Text(
                    f"       {node.name}: {node.free_devices} free, could host "
                    f"{node.replicas_it_can_host} of {option.replicas} replicas; lacks: {lacks}"
                )
            )
    if item.would_preempt:
        out.print(
            Text(
                f"{'Preempts:':<12}the operator would evict {', '.join(item.would_preempt)} "
                "to make room (its quota's preemption policy allows it)"
            )
        )
    if item.verdict == "waiting":
        text = (
            item.unblock.sentence()
            if item.unblock
            else (
                "nothing running now would make room: the job needs more than the centre or the "
                "quota can ever give, or only new capacity helps"
            )
        )
        out.print(Text(f"{'Unblock:':<12}{text}"))


@app.command()
def why(
    job: Annotated[str, typer.Argument(help="The TrainingJob.", autocompletion=_job_names)],
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    output: OutputOption = None,
) -> None:
    """Why a job waits: quota and class that block it, free and borrowable devices, the closest
    nodes and what each lacks, and what would let it run."""
    out = _output(output, Output.TABLE, Output.JSON, Output.YAML)
    kube = _kube(kubeconfig, context, namespace, False)
    kube.get_job(kube.namespace, job)  # NotFound named as kubectl names it
    objects = kube.snapshot()
    plan = build_plan(objects)
    _warn(plan)
    key = f"{kube.namespace}/{job}"
    if key not in plan.jobs:
        raise CliError(f'trainingjobs.suanli.io "{job}" is being deleted')
    item = explaining.explain(
        plan, key, fresh=lambda preemption: build_plan(objects, preemption=preemption)
    )
    if out is Output.TABLE:
        _print_explanation(item)
    else:
        sys.stdout.write(dump({"kind": "Explanation", **item.as_dict()}, out))


@app.command()
def quota(
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    output: OutputOption = None,
) -> None:
    """Per tenant and class: nominal, used, borrowed, lent, pending, in devices and PFLOPS
    (all quotas, or the one serving -n)."""
    out = _output(output)
    kube = _kube(kubeconfig, context, namespace, False)
    plan = build_plan(kube.snapshot())
    _warn(plan)
    empty = "No ComputeQuota found" + (f" for namespace {namespace}." if namespace else ".")
    print_view(views.quota_view(plan, namespace), out, empty)


class TopResource(StrEnum):
    CLASSES = "classes"
    NODES = "nodes"
    TENANTS = "tenants"


@app.command()
def top(
    resource: Annotated[TopResource, typer.Argument(help="classes, nodes or tenants.")],
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    output: OutputOption = None,
) -> None:
    """Capacity, allocation and fragmentation, in devices and PFLOPS."""
    out = _output(output)
    plan = build_plan(_kube(kubeconfig, context, None, True).snapshot())
    _warn(plan)
    builders = {
        TopResource.CLASSES: views.top_classes,
        TopResource.NODES: views.top_nodes,
        TopResource.TENANTS: views.top_tenants,
    }
    print_view(builders[resource](plan), out, f"No {resource.value} found.")


@app.command()
def centres(
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    output: OutputOption = None,
) -> None:
    """On a compute-network hub: each member centre (region, state, last contact, devices and
    free devices per class, in devices and PFLOPS, price), then the hub jobs not dispatched yet
    and why. Read from the hub's API only (what the hub last polled)."""
    out = _output(output)
    kube = _kube(kubeconfig, context, None, True)
    members = kube.list_cluster("computecentres")
    jobs = kube.list_cluster("trainingjobs")
    now = time.time()
    print_views(
        [views.centres_view(members, now), views.hub_queue_view(jobs, now)],
        out,
        "No ComputeCentre found (centres are listed on a compute-network hub).",
    )


def _read_manifest(path: Path, namespace: str) -> dict[str, Any]:
    """One TrainingJob from a file ("-": stdin), validated by the operator's model."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(
            f'the path "{path}" does not exist or cannot be read: {exc.strerror}'
        ) from None
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise CliError(f"error parsing {path}: {exc}") from None
    jobs = [d for d in documents if isinstance(d, dict) and d.get("kind") == "TrainingJob"]
    if len(jobs) != 1:
        raise CliError(f"{path}: want exactly one TrainingJob, found {len(jobs)}")
    body = jobs[0]
    metadata = body.setdefault("metadata", {})
    if not metadata.get("name"):
        raise CliError(f"{path}: metadata.name is required")
    given = metadata.get("namespace")
    if given and given != namespace:
        raise CliError(
            f'the namespace from the provided object "{given}" does not match the namespace '
            f"\"{namespace}\". You must pass '--namespace={given}' to perform this operation."
        )
    metadata["namespace"] = namespace
    try:
        TrainingJob.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise CliError(
            f"TrainingJob {metadata['name']} is invalid: {where}: {first['msg']}"
        ) from None
    return body


def _manifest_namespace(path: Path, namespace: str | None) -> str | None:
    """-n, else the manifest's own namespace (as kubectl apply does)."""
    if str(path) != "-" and not path.is_file():
        raise CliError(f'the path "{path}" does not exist (--filename)')
    if namespace is not None or str(path) == "-":
        return namespace
    try:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(document, dict) and document.get("kind") == "TrainingJob":
                found = document.get("metadata", {}).get("namespace")
                return str(found) if found else None
    except (OSError, yaml.YAMLError):
        return None
    return None


@app.command()
def simulate(
    filename: Filename,
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
    output: OutputOption = None,
) -> None:
    """Would this job fit now, on which option and nodes? Nothing is created. Exit code 0: it
    would be admitted now, 3: it would wait."""
    out = _output(output, Output.TABLE, Output.JSON, Output.YAML)
    kube = _kube(kubeconfig, context, _manifest_namespace(filename, namespace), False)
    body = _read_manifest(filename, kube.namespace)
    metadata = body["metadata"]
    metadata["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body.pop("status", None)
    objects = kube.snapshot()
    key = f"{kube.namespace}/{metadata['name']}"
    existing = [j for j in objects.jobs if _key(j) != key]
    objects = type(objects)(objects.classes, objects.quotas, existing, objects.nodes, objects.pods)
    plan = build_plan(objects, extra_jobs=[body])
    _warn(plan)
    item = explaining.explain(
        plan,
        key,
        fresh=lambda preemption: build_plan(objects, [body], preemption=preemption),
    )
    if out is Output.TABLE:
        _print_explanation(item)
    else:
        sys.stdout.write(dump({"kind": "Simulation", **item.as_dict()}, out))
    if item.verdict != "admissible":
        raise typer.Exit(WOULD_WAIT)


def _key(body: Mapping[str, Any]) -> str:
    metadata = body.get("metadata", {})
    return f"{metadata.get('namespace')}/{metadata.get('name')}"


def _progress(body: dict[str, Any], pods: list[dict[str, Any]], started: float) -> Table:
    status = body.get("status") or {}
    running = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")
    done = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded")
    replicas = len(status.get("placement") or []) or body["spec"].get("replicas", 0)
    grid = Table(box=None, show_header=True, header_style="", pad_edge=False, padding=(0, 3, 0, 0))
    for header in ("NAME", "PHASE", "REASON", "PODS", "ELAPSED", "MESSAGE"):
        grid.add_column(header, no_wrap=True)
    grid.add_row(
        str(body["metadata"]["name"]),
        str(status.get("phase") or "Queued"),
        str(status.get("reason") or "<none>"),
        f"{running} running, {done} done / {replicas}",
        explaining.duration(time.monotonic() - started),
        str(status.get("message") or ""),
    )
    return grid


@app.command()
def submit(
    filename: Filename,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the job until it finishes; exit 1 if it fails.")
    ] = False,
    timeout: Annotated[
        str, typer.Option("--timeout", help="Give up waiting after this long (e.g. 30m).")
    ] = "24h",
    namespace: Namespace = None,
    context: Context = None,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Create the job; with --wait follow it with a live display until it finishes."""
    from suanli.cli.report import ReportError, parse_window

    try:
        limit = parse_window(timeout, "--timeout")
    except ReportError as exc:
        raise CliError(str(exc)) from None
    kube = _kube(kubeconfig, context, _manifest_namespace(filename, namespace), False)
    body = _read_manifest(filename, kube.namespace)
    name = str(body["metadata"]["name"])
    kube.create_job(kube.namespace, body)
    out = console()
    out.print(Text(f"trainingjob.suanli.io/{name} created"))
    if not wait:
        return
    started = time.monotonic()
    deadline = started + limit
    last_phase = None
    current = kube.get_job(kube.namespace, name)
    with Live(console=out, auto_refresh=False, transient=False) as live:
        while True:
            phase = (current.get("status") or {}).get("phase")
            pods = kube.job_pods(kube.namespace, name)
            live.update(_progress(current, pods, started), refresh=True)
            if phase != last_phase and not out.is_terminal:
                status = current.get("status") or {}
                out.print(
                    Text(f"trainingjob.suanli.io/{name} {phase}: {status.get('message') or ''}")
                )
            last_phase = phase
            if phase in FINISHED:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CliError(f"timed out waiting for the condition on trainingjobs/{name}")
            time.sleep(min(remaining, POLL_SECONDS))
            current = kube.get_job(kube.namespace, name)
    status = current.get("status") or {}
    if phase == "Failed":
        raise CliError(
            f"trainingjob {name} failed: {status.get('reason')}: {status.get('message')}"
        )
    out.print(Text(f"trainingjob.suanli.io/{name} succeeded"))


@app.command()
def report(
    since: Annotated[str, typer.Option("--since", help="The window, e.g. 30d, 12h.")] = "30d",
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", help="report.html, report.csv, or html/csv for standard output."
        ),
    ] = "report.html",
    prometheus: Annotated[
        str,
        typer.Option(
            "--prometheus", envvar="SUANLI_PROMETHEUS_URL", help="Prometheus's HTTP API base URL."
        ),
    ] = "http://127.0.0.1:9090",
    context: Context = None,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Accelerator-hours and PFLOP-hours per tenant and class from Prometheus, with plots,
    cross-checked against the quotas' status.metering (exit 1 on a mismatch)."""
    from suanli.cli import report as reporting

    kind = output.rsplit(".", 1)[-1].lower()
    if kind not in ("html", "csv"):
        raise CliError(f'invalid --output "{output}": want a .html or .csv file, or html or csv')
    try:
        window = reporting.parse_window(since)
        client = reporting.Prometheus(prometheus)
        quotas = _kube(kubeconfig, context, None, True).list_cluster("computequotas")
        data = reporting.gather(client, window, quotas)
    except reporting.ReportError as exc:
        raise CliError(str(exc)) from None
    text = (
        reporting.to_csv(data) if kind == "csv" else reporting.to_html(data, reporting.plots(data))
    )
    if output in ("csv", "html"):
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
        console(stderr=True).print(Text(f"wrote {output}: {len(data.usage)} rows"))
    for problem in data.problems:
        console(stderr=True).print(Text(f"Warning: {problem}"))
    if not data.consistent:
        raise CliError("the report disagrees with the quotas' status.metering (see warnings)")


PROGRAMS = ("kubectl-suanli", "suanli")
SHELLS = ("bash", "zsh", "fish", "pwsh")


@app.command()
def completion(
    ctx: typer.Context,
    shell: Annotated[str, typer.Argument(help="bash, zsh or fish.")],
) -> None:
    """Print the shell completion script, e.g. `source <(kubectl-suanli completion bash)`."""
    from typer._completion_shared import get_completion_script

    if shell not in SHELLS:
        raise CliError(f'unsupported shell type "{shell}" (want {", ".join(SHELLS)})')
    root = ctx.find_root().info_name
    prog = root if root in PROGRAMS else PROGRAMS[0]
    variable = "_" + prog.replace("-", "_").upper() + "_COMPLETE"
    # Typer's own script (the one --show-completion prints), so it speaks Typer's protocol
    script = get_completion_script(prog_name=prog, complete_var=variable, shell=shell)
    sys.stdout.write(script + "\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``kubectl-suanli`` and ``suanli``: kubectl's error style and exit codes."""
    err = console(stderr=True)
    command = typer.main.get_command(app)
    try:
        prog = Path(sys.argv[0]).name
        result = command.main(
            args=argv, prog_name=prog if prog in PROGRAMS else PROGRAMS[0], standalone_mode=False
        )
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return 1
    except CliError as exc:
        message = str(exc)
        prefixed = message.startswith(("Error from server", "Unable to connect"))
        err.print(Text(message if prefixed else f"error: {message}"))
        return 1
    except typer.TyperException as exc:  # bad flags and values, worded by Typer
        usage = cast(Any, exc)
        err.print(Text(f"error: {usage.format_message()}"))
        context = getattr(usage, "ctx", None)
        name = context.command_path if context is not None else PROGRAMS[0]
        err.print(Text(f"See '{name} --help' for usage."))
        return 1
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
