"""Summaries, ratios against the targets, and the markdown tables of one bench run.

Every cell is `median (min–max)` over the repeats. A ratio is computed inside each repeat
(Lamina's figure over the baseline measured in that same repeat) and then summarized, so a
repeat that ran while the machine was busy compares Lamina with a baseline that was busy too.
A target is PASS when the median ratio meets it; the count of repeats that met it follows.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

RUNTIMES = ("python", "node")
CLIENTS = ("raw", "boto3")


# ---------------------------------------------------------------------------- basics
def dig(d, *path):
    """d[path[0]][path[1]]… or None."""
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def mmm(values: list) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def cell(m: dict | None, fmt: str = "%.0f") -> str:
    if not m:
        return "-"
    if fmt == "%.2f" and m["max"] < 0.1:
        fmt = "%.3f"  # small ratios
    if m["n"] == 1 or m["min"] == m["max"]:
        return fmt % m["median"]
    return f"{fmt % m['median']} ({fmt % m['min']}–{fmt % m['max']})"


def series(repeats: list[dict], pick: Callable[[dict], float | None]) -> list:
    return [pick(rep) for rep in repeats]


def ratios(repeats: list[dict], num: Callable, den: Callable) -> list:
    out = []
    for rep in repeats:
        a, b = num(rep), den(rep)
        out.append(a / b if a is not None and b else None)
    return out


# ---------------------------------------------------------------------------- pickers
def fig(system: str, kind: str, client: str, key: str) -> Callable:
    return lambda rep: dig(rep, system, "warm", kind, client, "figures", key)


def floor_fig(path: str, client: str, key: str) -> Callable:
    return lambda rep: dig(rep, "floor", path, client, "figures", key)


def cold(system: str, kind: str) -> Callable:
    if system == "sls":
        return fig("sls", kind, "raw", "first_call_ms")
    return lambda rep: dig(rep, system, "cold", kind, "total_ms_median")


def spawn(case: str) -> Callable:
    return lambda rep: dig(rep, "floor", "spawn", case, "p50_ms")


SPAWN_BASE = {"python": "python_S_import_handler", "node": "node_require_handler"}


# ---------------------------------------------------------------------------- targets
def target_rows(repeats: list[dict], warm_s: float = 0.0) -> list[dict]:
    """The issues' targets, per runtime (and per client for throughput)."""
    rows = []
    runs = [("raw", "")] + ([("warmed", f", after {warm_s:g} s at c16")] if warm_s else [])
    for client, after in runs:
        for kind in RUNTIMES:  # issue 16: CPU per warm call at 16 clients
            rows.append(
                _target(
                    repeats,
                    f"CPU per warm call c16{after}, {kind}, raw client",
                    "≤ 2.5× lean relay floor's",
                    "le",
                    2.5,
                    fig("lamina", kind, client, "c16_cpu_us_per_call"),
                    floor_fig("relay_lean_w1", client, "c16_cpu_us_per_call"),
                    "µs",
                )
            )
    for kind in RUNTIMES:
        rows.append(
            _target(
                repeats,
                f"warm p50, {kind}, raw client",
                "≤ 2× lean relay floor p50",
                "le",
                2.0,
                fig("lamina", kind, "raw", "p50_us"),
                floor_fig("relay_lean_w1", "raw", "p50_us"),
                "µs",
            )
        )
    for kind in RUNTIMES:
        for client in CLIENTS:
            rows.append(
                _target(
                    repeats,
                    f"throughput c16, {kind}, {client}",
                    "≥ 1.5× serverless-offline c16",
                    "ge",
                    1.5,
                    fig("lamina", kind, client, "c16_calls_per_s"),
                    fig("sls", kind, client, "c16_calls_per_s"),
                    "calls/s",
                )
            )
    for kind in RUNTIMES:
        rows.append(
            _target(
                repeats,
                f"cold start, {kind}",
                f"≤ 2× spawn + handler import ({SPAWN_BASE[kind]})",
                "le",
                2.0,
                cold("lamina", kind),
                spawn(SPAWN_BASE[kind]),
                "ms",
            )
        )
    return rows


def _target(repeats, name, goal, op, bound, num, den, unit) -> dict:
    rs = ratios(repeats, num, den)
    summary = mmm(rs)
    met = [r for r in rs if r is not None and (r <= bound if op == "le" else r >= bound)]
    verdict = "n/a"
    if summary:
        ok = summary["median"] <= bound if op == "le" else summary["median"] >= bound
        verdict = "PASS" if ok else "MISS"
    return {
        "figure": name,
        "target": goal,
        "bound": bound,
        "op": op,
        "unit": unit,
        "lamina": mmm(series(repeats, num)),
        "baseline": mmm(series(repeats, den)),
        "ratio": summary,
        "verdict": verdict,
        "repeats_met": len(met),
        "repeats": len([r for r in rs if r is not None]),
    }


def other_ratios(repeats: list[dict]) -> list[dict]:
    """Informative ratios (no target): Lamina against each peer and the http.client relay."""
    rows = []
    for kind in RUNTIMES:
        rows.append(
            {
                "figure": f"{kind}: Lamina p50 ÷ Lamina --sandbox none p50 (raw)",
                "ratio": mmm(
                    ratios(
                        repeats,
                        fig("lamina", kind, "raw", "p50_us"),
                        fig("lamina_none", kind, "raw", "p50_us"),
                    )
                ),
            }
        )
        rows.append(
            {
                "figure": f"{kind}: Lamina cold ÷ Lamina --sandbox none cold",
                "ratio": mmm(ratios(repeats, cold("lamina", kind), cold("lamina_none", kind))),
            }
        )
        rows.append(
            {
                "figure": f"{kind}: Lamina --sandbox none cold ÷ spawn + import",
                "ratio": mmm(ratios(repeats, cold("lamina_none", kind), spawn(SPAWN_BASE[kind]))),
            }
        )
        for peer in ("sls", "ministack"):
            rows.append(
                {
                    "figure": f"{kind}: Lamina p50 ÷ {peer} p50 (raw)",
                    "ratio": mmm(
                        ratios(
                            repeats,
                            fig("lamina", kind, "raw", "p50_us"),
                            fig(peer, kind, "raw", "p50_us"),
                        )
                    ),
                }
            )
        rows.append(
            {
                "figure": f"{kind}: Lamina c16 ÷ MiniStack c16 (raw)",
                "ratio": mmm(
                    ratios(
                        repeats,
                        fig("lamina", kind, "raw", "c16_calls_per_s"),
                        fig("ministack", kind, "raw", "c16_calls_per_s"),
                    )
                ),
            }
        )
        rows.append(
            {
                "figure": f"{kind}: Lamina cold ÷ MiniStack cold",
                "ratio": mmm(ratios(repeats, cold("lamina", kind), cold("ministack", kind))),
            }
        )
        rows.append(
            {
                "figure": f"{kind}: Lamina p50 ÷ http.client-worker relay p50 (raw)",
                "ratio": mmm(
                    ratios(
                        repeats,
                        fig("lamina", kind, "raw", "p50_us"),
                        floor_fig("relay_httpclient_w1", "raw", "p50_us"),
                    )
                ),
            }
        )
        rows.append(
            {
                "figure": f"{kind}: Lamina p50 ÷ lean relay p50 (boto3)",
                "ratio": mmm(
                    ratios(
                        repeats,
                        fig("lamina", kind, "boto3", "p50_us"),
                        floor_fig("relay_lean_w1", "boto3", "p50_us"),
                    )
                ),
            }
        )
    return [r for r in rows if r["ratio"]]


# ---------------------------------------------------------------------------- tables
def _md(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def targets_table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        fmt = "%.2f" if r["unit"] == "ms" else "%.0f"
        body.append(
            [
                r["figure"],
                r["target"],
                f"{cell(r['lamina'], fmt)} {r['unit']}",
                f"{cell(r['baseline'], fmt)} {r['unit']}",
                cell(r["ratio"], "%.2f"),
                f"**{r['verdict']}** ({r['repeats_met']}/{r['repeats']})",
            ]
        )
    return _md(["figure", "target", "Lamina", "baseline (same run)", "ratio", "verdict"], body)


def _warm_source(system: str, kind: str | None, client: str) -> Callable:
    if system.startswith("floor:"):
        return lambda key: floor_fig(system.split(":", 1)[1], client, key)
    return lambda key: fig(system, kind, client, key)


WARM_ROWS = [
    ("floor: relay, lean worker (w1)", "floor:relay_lean_w1", None),
    ("floor: relay, http.client worker (w1)", "floor:relay_httpclient_w1", None),
    ("Lamina, python", "lamina", "python"),
    ("Lamina, node", "lamina", "node"),
    ("Lamina --sandbox none, python", "lamina_none", "python"),
    ("Lamina --sandbox none, node", "lamina_none", "node"),
    ("serverless-offline, python", "sls", "python"),
    ("serverless-offline, node", "sls", "node"),
    ("MiniStack, python", "ministack", "python"),
    ("MiniStack, node", "ministack", "node"),
]


def warm_table(repeats: list[dict], client: str) -> str:
    keys = [
        "p50_us",
        "p99_us",
        "c1_calls_per_s",
        "c4_calls_per_s",
        "c16_calls_per_s",
        "c1_cpu_us_per_call",
        "c16_cpu_us_per_call",
        "c16_main_cpu_us_per_call",
        "c16_client_cpu_pct",
    ]
    body = []
    for label, system, kind in WARM_ROWS:
        source = _warm_source(system, kind, client)
        cells = [cell(mmm(series(repeats, source(k)))) for k in keys]
        if system.startswith("floor:"):
            cells[keys.index("c16_main_cpu_us_per_call")] = "-"  # its server is a child
        if any(c != "-" for c in cells):
            body.append([label] + cells)
    return _md(
        [
            "system",
            "p50 µs",
            "p99 µs",
            "c1 calls/s",
            "c4 calls/s",
            "c16 calls/s",
            "server CPU µs/call c1",
            "server CPU µs/call c16",
            "engine-process CPU µs/call c16",
            "client CPU % c16",
        ],
        body,
    )


def warmed_table(repeats: list[dict]) -> str:
    """Fresh c16 window (raw client) beside the windows after --warm S seconds at c16."""
    body = []
    for label, system, kind in WARM_ROWS:
        fresh, warmed = _warm_source(system, kind, "raw"), _warm_source(system, kind, "warmed")
        cpu = "c16_cpu_us_per_call"
        main = "c16_main_cpu_us_per_call"
        if all(v is None for v in series(repeats, warmed(cpu))):
            continue
        own = not system.startswith("floor:")  # the floor's server is a child: no split

        def trail(rep: dict, s: str = system, k: str | None = kind) -> str:
            where = (
                (rep, "floor", s[6:], "warmed")
                if s.startswith("floor:")
                else (rep, s, "warm", k, "warmed")
            )
            windows = dig(*where, "trajectory") or []
            return " ".join(f"{w['cpu_us_per_call']:.0f}" for w in windows if w["cpu_us_per_call"])

        body.append(
            [
                label,
                cell(mmm(series(repeats, fresh(cpu)))),
                cell(mmm(series(repeats, warmed(cpu)))),
                cell(mmm(ratios(repeats, warmed(cpu), fresh(cpu))), "%.2f"),
                cell(mmm(series(repeats, fresh(main)))) if own else "-",
                cell(mmm(series(repeats, warmed(main)))) if own else "-",
                cell(mmm(ratios(repeats, warmed(main), fresh(main))), "%.2f") if own else "-",
                cell(mmm(series(repeats, warmed("c16_calls_per_s")))),
                trail(repeats[0]) if repeats else "-",
            ]
        )
    return _md(
        [
            "system",
            "server CPU µs/call c16 fresh",
            "warmed",
            "warmed ÷ fresh",
            "engine-process µs/call c16 fresh",
            "warmed",
            "warmed ÷ fresh",
            "warmed c16 calls/s",
            "server CPU µs/call per c16 window, warm phase then measured (first repeat)",
        ],
        body,
    )


def cold_table(repeats: list[dict]) -> str:
    body = []
    for system, label in (
        ("lamina", "Lamina"),
        ("lamina_none", "Lamina --sandbox none"),
        ("ministack", "MiniStack"),
    ):
        for kind in RUNTIMES:

            def base(key: str, s: str = system, k: str = kind):
                return lambda rep: _cold_median(rep, s, k, key)

            def primer(rep: dict, s: str = system, k: str = kind):
                return dig(rep, s, "cold", k, "primer", "total_ms")

            body.append(
                [
                    f"{label}, {kind}",
                    cell(mmm(series(repeats, cold(system, kind))), "%.1f"),
                    cell(mmm(series(repeats, base("create_ms"))), "%.1f"),
                    cell(mmm(series(repeats, base("first_invoke_ms"))), "%.1f"),
                    cell(mmm(series(repeats, primer)), "%.1f"),
                ]
            )
    for kind in RUNTIMES:
        body.append(
            [
                f"serverless-offline, {kind} (first call after start)",
                cell(mmm(series(repeats, cold("sls", kind))), "%.1f"),
                "-",
                "-",
                "-",
            ]
        )
    return _md(
        [
            "system",
            "create → first response ms",
            "CreateFunction ms",
            "first Invoke ms",
            "engine's first function of that runtime ms",
        ],
        body,
    )


def _cold_median(rep: dict, system: str, kind: str, key: str):
    values = sorted(s[key] for s in dig(rep, system, "cold", kind, "samples") or [] if key in s)
    return values[(len(values) - 1) // 2] if values else None


def spawn_table(repeats: list[dict]) -> str:
    cases = []
    for rep in repeats:
        for name, value in (dig(rep, "floor", "spawn") or {}).items():
            if isinstance(value, dict) and name not in cases:
                cases.append(name)
    body = [[name, cell(mmm(series(repeats, spawn(name))), "%.1f")] for name in cases]
    exes = sorted(
        {str(dig(rep, "floor", "spawn", k)) for rep in repeats for k in ("python_exe", "node_exe")}
    )
    return (
        _md(["spawn and reap (clean env)", "p50 ms"], body)
        + "\n\nInterpreters: "
        + ", ".join(f"`{e}`" for e in exes)
    )


def memory_table(repeats: list[dict]) -> str:
    body = []
    for system, label in (
        ("lamina", "Lamina"),
        ("sls", "serverless-offline"),
        ("ministack", "MiniStack"),
    ):
        idle = cell(
            _mib(mmm([dig(rep, system, "engine_idle", "rss_kb") for rep in repeats])), "%.1f"
        )
        for kind in RUNTIMES:

            def mem(*path: str, s: str = system, k: str = kind) -> list:
                return [dig(rep, s, "memory", k, *path) for rep in repeats]

            def mib(*path: str) -> str:
                return cell(_mib(mmm(mem(*path))), "%.1f")

            body.append(
                [
                    f"{label}, {kind}",
                    idle,
                    mib("engine", "rss_kb"),
                    mib("busy", "engine_rss_max_kb"),
                    cell(mmm(mem("envs", "count"))),
                    mib("envs", "rss_kb_median"),
                    mib("envs", "pss_kb_median"),
                    mib("envs", "private_kb_median"),
                    mib("busy", "rss_kb_median"),
                    mib("envs", "rss_kb_sum"),
                    _states(repeats, system, kind),
                ]
            )
    return _md(
        [
            "system",
            "engine RSS idle MiB",
            "engine RSS after c16 MiB",
            "engine RSS peak seen MiB",
            "envs after c16",
            "env RSS MiB (idle)",
            "env PSS MiB (idle)",
            "env private MiB (idle)",
            "env RSS MiB (busy)",
            "all envs RSS MiB",
            "env states (T = frozen)",
        ],
        body,
    )


def _mib(m: dict | None) -> dict | None:
    if not m:
        return None
    return {k: (v / 1024 if k != "n" else v) for k, v in m.items()}


def _states(repeats: list[dict], system: str, kind: str) -> str:
    seen = [dig(rep, system, "memory", kind, "envs", "states") for rep in repeats]
    return (
        " / ".join(
            ",".join(f"{s}:{n}" for s, n in sorted(st.items())) or "none"
            for st in seen
            if st is not None
        )
        or "-"
    )


def gates_line(repeats: list[dict]) -> str:
    values = []
    for rep in repeats:
        for system in ("floor", "lamina", "lamina_none", "sls", "ministack"):
            gate = dig(rep, system, "quiet_gate")
            if gate:
                values.append((gate["busy_pct_before"], gate["waited_s"]))
    if not values:
        return ""
    busy = [v[0] for v in values]
    return (
        f"Machine busy share (all cores) just before each system's block: median "
        f"{statistics.median(busy):.0f} %, max {max(busy):.0f} % ({len(values)} blocks; "
        f"waited up to {max(v[1] for v in values):.0f} s for quiet)."
    )


def warm_line(doc: dict) -> str:
    warm_s = doc.get("warm_c16_s") or 0
    fresh = "c16 figures: fresh systems (about 1 s at 16 clients before each window)"
    if not warm_s:
        return fresh + "; no --warm phase."
    return (
        f"{fresh}; --warm {warm_s:g}: the 'warmed' ones come after each system's own runs "
        f"and {warm_s:g} s more at 16 clients (raw client), every system alike."
    )


def markdown(doc: dict) -> str:
    repeats = doc["repeats"]
    warm_s = doc.get("warm_c16_s") or 0
    parts = [
        f"## Lamina invoke bench, {doc['ts']} ({len(repeats)} repeats)",
        "Cells: median (min–max) over repeats. Ratios are taken inside each repeat.",
        warm_line(doc),
        gates_line(repeats),
        "### Targets",
        targets_table(doc["targets"]),
        "### Other ratios (no target)",
        _md(
            ["figure", "ratio"],
            [[r["figure"], cell(r["ratio"], "%.2f")] for r in doc["other_ratios"]],
        ),
        "### Warm, raw keep-alive client (http.client)",
        warm_table(repeats, "raw"),
        f"### Warmed: three c16 windows after {warm_s:g} s at 16 clients (raw client)"
        if warm_s
        else "",
        warmed_table(repeats) if warm_s else "",
        "### Warm, boto3 client",
        warm_table(repeats, "boto3"),
        "### Cold start (ms)",
        cold_table(repeats),
        spawn_table(repeats),
        "### Memory (after the raw client's c16 window; busy = peak seen during the runs)",
        memory_table(repeats),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def summarize(doc: dict) -> dict:
    """Add the target and ratio rows to a result document."""
    doc["targets"] = target_rows(doc["repeats"], doc.get("warm_c16_s") or 0)
    doc["other_ratios"] = other_ratios(doc["repeats"])
    return doc
