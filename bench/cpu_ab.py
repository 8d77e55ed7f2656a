#!/usr/bin/env python3
"""CPU per warm call at 16 clients, commit against commit, beside the relay floor, in one run.

Each round measures the lean relay floor (tools/floor.py, as invoke.py does), then, for each
commit given and each `--sandbox` mode, one fresh engine with a no-op Python and a no-op
Node.js function: the raw keep-alive client of tools/invoke_bench.py, 16 clients, one window.
Each figure's ratio to the floor is taken inside its round; the summary is the median over the
rounds. It is the quick paired A/B behind docs/PERFORMANCE.md's "CPU per warm call" section;
`invoke.py` gives the full picture (peers, boto3, cold starts, memory).

  .venv/bin/python bench/cpu_ab.py --revs main,HEAD --rounds 3
  .venv/bin/python bench/cpu_ab.py --revs HEAD --sandbox none --runtimes python --serve-arg=--no-freeze

Scratch goes to $LAMINA_BENCH_SCRATCH (default <tmp>/lamina-bench); prints one line per
measurement and a markdown summary; writes nothing in the repository.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lib import measure, servers
from lib.lambda_api import NOOP, LambdaApi, cold_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--revs", default="HEAD", help="commits to measure, comma-separated (WT: the working tree)"
    )
    parser.add_argument("--sandbox", default="auto,none", help="--sandbox modes, comma-separated")
    parser.add_argument("--runtimes", default="python,node")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of the c16 window")
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        help="an extra `lamina serve` argument (repeatable)",
    )
    measure.scratch_arg(parser)
    args = parser.parse_args()
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    options = measure.BenchOptions(n=200, duration=args.duration, concurrency="16")
    rows: dict[tuple[str, ...], list[dict]] = {}
    for round_ in range(args.rounds):
        floor = _floor(options)
        rows.setdefault(("floor",), []).append(floor)
        print(f"round {round_}: floor {floor['c16_cpu_us_per_call']:.0f} µs/call", flush=True)
        for rev in args.revs.split(","):
            for mode in args.sandbox.split(","):
                for kind, figures in _lamina(args, scratch, rev, mode, options):
                    figures["ratio"] = figures["c16_cpu_us_per_call"] / floor["c16_cpu_us_per_call"]
                    rows.setdefault((rev, mode, kind), []).append(figures)
                    print(
                        f"round {round_}: {rev} --sandbox {mode} {kind}: "
                        f"{figures['c16_cpu_us_per_call']:.0f} µs/call "
                        f"(engine {figures['c16_main_cpu_us_per_call']:.0f}), "
                        f"{figures['ratio']:.2f}× floor, {figures['c16_calls_per_s']:.0f} "
                        f"calls/s, p50 {figures['p50_us']:.0f} µs",
                        flush=True,
                    )
    _summary(rows)


def _floor(options: measure.BenchOptions) -> dict:
    with servers.FloorRelay(str(measure.TOOLS / "floor.py"), "raw-rawworker", 1) as relay:
        res = measure.invoke_bench(
            relay.endpoint, "floor", "raw", relay.pid, options, "floor", kinds=()
        )
    if "error" in res:
        raise SystemExit(res["error"])
    return res["figures"]


def _lamina(
    args: argparse.Namespace, scratch: Path, rev: str, mode: str, options: measure.BenchOptions
) -> list[tuple[str, dict]]:
    cmd = servers.lamina_command(HERE.parent, None if rev == "WT" else rev, scratch)
    data = scratch / f"cpu-ab-{rev.replace('/', '_')}-{mode}"
    shutil.rmtree(data, ignore_errors=True)
    engine = servers.LaminaServer(cmd, data, ["--sandbox", mode, *args.serve_arg])
    out = []
    try:
        api = LambdaApi(engine.endpoint)
        for kind in args.runtimes.split(","):
            name = f"noop-{kind}"
            started = cold_start(api, name, NOOP[kind], b"{}")
            if "error" in started:
                raise SystemExit(started["error"])
            res = measure.invoke_bench(engine.endpoint, name, "raw", engine.pid, options, name)
            if "error" in res:
                raise SystemExit(res["error"])
            out.append((kind, res["figures"]))
        api.close()
    finally:
        engine.stop()
    return out


def _summary(rows: dict[tuple[str, ...], list[dict]]) -> None:
    def med(key: tuple[str, ...], figure: str) -> float:
        return statistics.median(row[figure] for row in rows[key])

    floor = ("floor",)
    print(
        f"\nfloor (lean relay): {med(floor, 'c16_cpu_us_per_call'):.0f} µs/call, "
        f"p50 {med(floor, 'p50_us'):.0f} µs (median of {len(rows[floor])} rounds)\n"
    )
    print(
        "| commit | --sandbox | runtime | CPU µs/call c16 | engine µs/call | ÷ floor "
        "(min–max) | c16 calls/s | p50 µs | p99 µs |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for key, runs in rows.items():
        if key == floor:
            continue
        ratios = [row["ratio"] for row in runs]
        print(
            f"| {key[0]} | {key[1]} | {key[2]} | {med(key, 'c16_cpu_us_per_call'):.0f} | "
            f"{med(key, 'c16_main_cpu_us_per_call'):.0f} | {statistics.median(ratios):.2f} "
            f"({min(ratios):.2f}–{max(ratios):.2f}) | {med(key, 'c16_calls_per_s'):.0f} | "
            f"{med(key, 'p50_us'):.0f} | {med(key, 'p99_us'):.0f} |"
        )


if __name__ == "__main__":
    main()
