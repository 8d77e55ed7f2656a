"""Terminal drawings of `lamina trace` and `lamina status`, with rich.

A trace is a table: offset from the first entry, a time axis (attempts as bars, events as
marks, all in engine time), the entry and its details; `--logs` adds each attempt's lines.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

AXIS = 32
STYLES = {
    "accepted": "bold",
    "queued": "dim",
    "throttled": "yellow",
    "rejected": "yellow",
    "retry_scheduled": "yellow",
    "discarded": "bold red",
    "dropped": "red",
    "destination_queued": "magenta",
    "destination_delivered": "bold magenta",
    "destination_retry": "magenta",
    "destination_failed": "bold red",
    "attached": "cyan",
    "sdk_retry": "cyan",
    "caller_gone": "cyan",
}
MARKS = {
    "retry_scheduled": "◆",
    "discarded": "■",
    "dropped": "■",
    "throttled": "▲",
    "destination_queued": "○",
    "destination_delivered": "●",
    "destination_failed": "✕",
}
FINAL = ("success", "error", "failed", "rejected", "dropped", "bisected", "stopped")


def console() -> Console:
    return (
        Console(highlight=False)
        if sys.stdout.isatty()
        else Console(highlight=False, width=160, no_color=True)
    )


def draw(
    found: dict[str, Any],
    logs: dict[str, Any] | None = None,
    scale: float = 1.0,
    out: Console | None = None,
) -> None:
    out = out or console()
    summary = found["Invocation"]
    if summary:
        out.print(
            Text(
                f"{summary['RequestId']}  {summary['FunctionName']}  "
                f"{summary['InvocationType']}  {summary['Status']}"
            )
        )
        out.print(
            Text(
                f"accepted {_when(summary['AcceptedAt'])}  attempts {summary['Attempts']}"
                + (f"  error {summary['ErrorType']}" if summary["ErrorType"] else ""),
                style="dim",
            )
        )
    entries = found["Timeline"]
    if entries:
        out.print(_timeline(entries, scale))
    for attempt in (logs or {}).get("Attempts", []):
        out.rule(Text(f"attempt {attempt['Attempt']} · environment {attempt['Environment'][:8]}"))
        for line in attempt["Lines"]:
            out.print(Text(f"{line['Timestamp'][11:23]} {line['Message']}"), soft_wrap=True)


def _timeline(entries: list[dict[str, Any]], scale: float) -> Table:
    spans = [_span(entry, scale) for entry in entries]
    t0 = min(start for start, _ in spans)
    total = max(max(end for _, end in spans) - t0, 1e-3)
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        caption=f"time axis: 0 to +{_seconds(total)} of engine time",
        caption_justify="left",
    )
    table.add_column("offset", justify="right", no_wrap=True)
    table.add_column("time axis", no_wrap=True, width=AXIS)
    table.add_column("entry", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for entry, (start, end) in zip(entries, spans):
        style = _style(entry)
        detail = "  ".join(f"{k}={v}" for k, v in entry.items() if k not in ("At", "Kind"))
        table.add_row(
            f"+{_seconds(entry['At'] - t0)}",
            _axis(start, end, t0, total, entry),
            Text(_label(entry), style=style),
            Text(detail),
        )
    return table


def _span(entry: dict[str, Any], scale: float) -> tuple[float, float]:
    if entry["Kind"] != "attempt":
        return entry["At"], entry["At"]
    ran = (entry.get("duration_ms", 0) + (entry.get("init_ms") or 0)) / 1000 * max(scale, 0)
    return entry["At"] - ran, entry["At"]


def _axis(start: float, end: float, t0: float, total: float, entry: dict[str, Any]) -> Text:
    first = round((start - t0) / total * (AXIS - 1))
    last = max(first, round((end - t0) / total * (AXIS - 1)))
    text = Text("·" * first, style="dim")
    if entry["Kind"] == "attempt":
        text.append("━" * (last - first + 1), style=_style(entry))
    else:
        text.append(MARKS.get(entry["Kind"], "●"), style=_style(entry))
    text.append("·" * (AXIS - 1 - last), style="dim")
    return text


def _label(entry: dict[str, Any]) -> str:
    if entry["Kind"] == "attempt":
        return f"attempt {entry.get('attempt', '')} {entry.get('start', '')}"
    if entry["Kind"].startswith("destination_") and entry.get("kind") == "dlq":
        return str(entry["Kind"]).replace("destination", "dlq")
    return str(entry["Kind"])


def _style(entry: dict[str, Any]) -> str:
    if entry["Kind"] == "attempt":
        return "green" if entry.get("outcome") == "success" else "bold red"
    return STYLES.get(entry["Kind"], "")


def _seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.2f} ms"
    if value < 120:
        return f"{value:.2f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) + f".{int(epoch % 1 * 1000):03d}"
    )


def draw_status(found: dict[str, Any], out: Console | None = None) -> None:
    """Functions with their concurrency, environments and async queue; then mappings."""
    out = out or console()
    out.print(
        Text(
            f"engine time {_when(found['Now'])}  time scale {found['TimeScale']}  "
            f"{found['Account']['ConcurrentExecutions']}/"
            f"{found['Account']['ConcurrencyLimit']} running"
        )
    )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in (
        "function",
        "runtime",
        "versions",
        "aliases",
        "running",
        "reserved",
        "environments",
        "queued",
        "oldest",
    ):
        table.add_column(column, no_wrap=column != "environments")
    for fn in found["Functions"]:
        counts: dict[str, int] = {}
        for env in fn["Environments"]:
            counts[env["State"]] = counts.get(env["State"], 0) + 1
        queue = fn["AsyncQueue"]
        table.add_row(
            fn["FunctionName"],
            fn["Runtime"] or "-",
            ",".join(["$LATEST", *fn["Versions"]]),
            ",".join(a["Name"] for a in fn["Aliases"]) or "-",
            str(fn["Concurrency"]["InFlight"]),
            "-" if fn["Concurrency"]["Reserved"] is None else str(fn["Concurrency"]["Reserved"]),
            " ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "-",
            str(queue["Depth"]),
            "-" if not queue["Depth"] else _seconds(queue["OldestEventAgeSeconds"]),
        )
    out.print(table)
    _draw_mappings(found["Mappings"], out)


def _draw_mappings(mappings: list[dict[str, Any]], out: Console) -> None:
    if not mappings:
        out.print(Text("no event source mappings", style="dim"))
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in ("mapping", "function", "state", "backlog", "lag", "last result", "checkpoint"):
        table.add_column(column)
    for m in mappings:
        table.add_row(
            m["UUID"],
            m["FunctionName"],
            m["State"],
            str(m["Backlog"] or "-"),
            "-" if m["LagSeconds"] is None else _seconds(m["LagSeconds"]),
            m["LastProcessingResult"] or "-",
            m["Checkpoint"] or "-",
        )
    out.print(table)
