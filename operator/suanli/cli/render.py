"""Printing the way kubectl prints: plain column tables, ``-o wide``, ``-o json`` and ``-o yaml``.

kubectl's table style is upper-case headers, left-aligned cells separated by three spaces, no
borders, ``<none>`` for empty cells, and lines never wrapped when piped. Rich draws the table;
this module only configures it that way.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from suanli.cli.views import View

PIPE_WIDTH = 512


class Output(StrEnum):
    TABLE = ""
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"


def parse_output(value: str | None, allowed: tuple[Output, ...] = tuple(Output)) -> Output:
    """``-o`` as kubectl words it when the format is unknown."""
    text = value or ""
    try:
        output = Output(text)
    except ValueError:
        output = None
    if output is None or output not in allowed:
        names = ", ".join(o.value for o in allowed if o.value)
        raise ValueError(
            f'unable to match a printer suitable for the output format "{text}", '
            f"allowed formats are: {names}"
        )
    return output


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    return Console(
        file=stream,
        width=None if terminal else PIPE_WIDTH,
        highlight=False,
        soft_wrap=not terminal,
        emoji=False,
    )


def cell(value: Any) -> str:
    if value is None or value == "":
        return "<none>"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def table(view: View, wide: bool) -> Table:
    grid = Table(
        box=None,
        show_edge=False,
        pad_edge=False,
        padding=(0, 3, 0, 0),
        header_style="",
        show_lines=False,
    )
    columns = [c for c in view.columns if wide or not c.wide_only]
    for column in columns:
        grid.add_column(column.header, no_wrap=True, overflow="fold")
    for row in view.rows:
        grid.add_row(*(cell(row.get(c.key)) for c in columns))
    return grid


def as_list(kind: str, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": [{"kind": kind, **i} for i in items]}


def dump(document: Any, output: Output) -> str:
    if output is Output.JSON:
        return json.dumps(document, indent=4, sort_keys=False, default=str) + "\n"
    return str(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))


def print_views(views: Sequence[View], output: Output, empty: str) -> None:
    """Several views as kubectl prints several kinds (``kubectl get a,b``): one table per view
    that has rows, a blank line between them; one List of every row for json and yaml."""
    if output in (Output.JSON, Output.YAML):
        items = [{"kind": v.kind, **row} for v in views for row in v.rows]
        sys.stdout.write(dump({"apiVersion": "v1", "kind": "List", "items": items}, output))
        return
    shown = [v for v in views if v.rows]
    if not shown:
        console(stderr=True).print(empty)
        return
    for index, view in enumerate(shown):
        if index:
            sys.stdout.write("\n")
        print_view(view, output, empty)


def print_view(view: View, output: Output, empty: str) -> None:
    """A view as a table (``empty`` goes to stderr when there are no rows, as kubectl does)."""
    if output in (Output.JSON, Output.YAML):
        sys.stdout.write(dump(as_list(view.kind, view.rows), output))
        return
    if not view.rows:
        console(stderr=True).print(empty)
        return
    out = console()
    with out.capture() as captured:
        out.print(table(view, output is Output.WIDE))
    # kubectl does not pad the last column
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
