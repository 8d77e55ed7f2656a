"""`lamina executions` and `lamina execution`: durable executions as a running engine shows
them (/_lamina/durable-executions), drawn with rich or printed as JSON."""

from __future__ import annotations

import json
import sys
import urllib.parse
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lamina import cli, cli_trace

STYLES = {
    "SUCCEEDED": "green",
    "FAILED": "bold red",
    "TIMED_OUT": "red",
    "STOPPED": "yellow",
    "RUNNING": "cyan",
    "STARTED": "cyan",
    "PENDING": "yellow",
    "READY": "yellow",
    "CANCELLED": "dim",
}


def executions(
    endpoint: str, function: str | None, status: str | None, limit: int, as_json: bool
) -> None:
    found = cli.get(
        endpoint, "/_lamina/durable-executions", function=function, status=status, limit=limit
    )["Executions"]
    if as_json:
        json.dump(found, sys.stdout, indent=2)
        print()
        return
    if not found:
        print("no durable executions")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in ("STARTED", "FUNCTION", "NAME", "STATUS", "TOOK"):
        table.add_column(column, no_wrap=True)
    table.add_column("ARN", no_wrap=True)  # whole, to copy into `lamina execution`
    for item in found:
        end = item["EndTimestamp"]
        table.add_row(
            cli._when(item["StartTimestamp"]),
            item["FunctionName"],
            item["DurableExecutionName"][:36],
            Text(item["Status"], style=STYLES.get(item["Status"], "")),
            "-" if end is None else _took(end - item["StartTimestamp"]),
            item["DurableExecutionArn"],
        )
    out = (
        cli_trace.console()
        if sys.stdout.isatty()
        else Console(highlight=False, width=400, no_color=True)
    )  # piped: ARNs whole, never cut
    out.print(table)


def execution(endpoint: str, arn: str, with_logs: bool, as_json: bool) -> None:
    path = "/_lamina/durable-executions/" + urllib.parse.quote(arn, safe=":/")
    found = cli.get(endpoint, path, logs="1" if with_logs else None)
    if as_json:
        json.dump(found, sys.stdout, indent=2)
        print()
        return
    out = cli_trace.console()
    ex = found["Execution"]
    out.print(
        Text.assemble(
            (ex["DurableExecutionName"], "bold"),
            "  ",
            f"{ex['FunctionName']}:{ex['Version']}  ",
            (ex["Status"], STYLES.get(ex["Status"], "")),
        )
    )
    ended = ex["EndTimestamp"]
    out.print(
        Text(
            f"started {cli._when(ex['StartTimestamp'])}"
            + ("" if ended is None else f"  took {_took(ended - ex['StartTimestamp'])}")
            + f"  replays {len(found['Replays'])}",
            style="dim",
        )
    )
    if ex["Error"]:
        out.print(
            Text(
                f"error {ex['Error'].get('ErrorType', '')}: {ex['Error'].get('ErrorMessage', '')}",
                style="red",
            )
        )
    elif ex["Result"] is not None:
        out.print(Text(f"result {ex['Result'][:200]}"))
    out.print(_operations(found["Operations"]))
    out.print(_replays(found["Replays"]))
    for replay in found["Replays"] if with_logs else []:
        out.rule(Text(f"replay {replay['Replay']} · {replay['RequestId']}"))
        for line in replay.get("Logs", []):
            out.print(Text(f"{line['Timestamp'][11:23]} {line['Message']}"), soft_wrap=True)


def _operations(operations: list[dict[str, Any]]) -> Table:
    """Operations as a tree (children under their parent context), in the order they
    started."""
    children: dict[str | None, list[dict[str, Any]]] = {}
    ids = {op["Id"] for op in operations}
    for op in operations:
        if op["Type"] == "EXECUTION":
            continue
        parent = op.get("ParentId") if op.get("ParentId") in ids else None
        children.setdefault(parent, []).append(op)
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        title="operations",
        title_justify="left",
    )
    for column in ("OPERATION", "STATUS", "STARTED", "TOOK", "DETAIL"):
        table.add_column(column, no_wrap=column != "DETAIL")

    def add(parent: str | None, depth: int) -> None:
        for op in children.get(parent, []):
            label = op.get("SubType") or op["Type"].title()
            name = f" {op['Name']}" if op.get("Name") else ""
            end = op.get("EndTimestamp")
            table.add_row(
                "  " * depth + label + name,
                Text(op["Status"], style=STYLES.get(op["Status"], "")),
                cli._when(op.get("StartTimestamp")),
                "-" if end is None else _took(end - op["StartTimestamp"]),
                _detail(op),
            )
            add(op["Id"], depth + 1)

    add(None, 0)
    return table


def _detail(op: dict[str, Any]) -> str:
    for key in (
        "StepDetails",
        "CallbackDetails",
        "ChainedInvokeDetails",
        "ContextDetails",
        "WaitDetails",
    ):
        details = op.get(key)
        if not details:
            continue
        if details.get("Error"):
            error = details["Error"]
            return f"{error.get('ErrorType', '')}: {error.get('ErrorMessage', '')}"[:80]
        parts = []
        if key == "StepDetails" and details.get("Attempt"):
            parts.append(f"attempt {details['Attempt']}")
        if key == "WaitDetails" and details.get("ScheduledEndTimestamp"):
            parts.append(f"until {cli._when(details['ScheduledEndTimestamp'])}")
        if details.get("Result") is not None:
            parts.append(f"→ {str(details['Result'])[:60]}")
        return "  ".join(parts)
    return ""


def _replays(replays: list[dict[str, Any]]) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, title="replays", title_justify="left"
    )
    for column in ("#", "STARTED", "TOOK", "OUTCOME", "REQUEST ID"):
        table.add_column(column, no_wrap=True)
    for replay in replays:
        end, error = replay["EndTimestamp"], replay["Error"]
        outcome = (
            Text("running", style="cyan")
            if end is None
            else Text(error.get("ErrorType", "error"), style="red")
            if error
            else Text("ok")
        )
        table.add_row(
            str(replay["Replay"]),
            cli._when(replay["StartTimestamp"]),
            "-" if end is None else _took(end - replay["StartTimestamp"]),
            outcome,
            replay["RequestId"],
        )
    return table


def _took(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
