#!/usr/bin/env python3
"""CPU per warm call at 16 clients, commits side by side on engines kept up, paired per round.

`cpu_ab.py` starts a fresh engine for every figure, so its window also carries the engine's
scale-out (16 environments started) and the start-up noise; on a machine shared with other
work its per-round ratios spread by ±30 %. This starts one engine per commit once, warms each
function to 16 environments, and then alternates: each round measures every commit back to
back (the order reversed every other round), and also the lean relay floor, so each ratio
(commit ÷ first commit, and ÷ floor) is taken seconds apart. CPU is read from /proc for the
engine process alone and with its runtimes (tools/invoke_bench.py `--server-pids`).

  .venv/bin/python bench/cpu_pair.py --revs main,HEAD --rounds 8
  .venv/bin/python bench/cpu_pair.py --revs main,HEAD --runtimes python --sandbox none
  .venv/bin/python bench/cpu_pair.py --revs main,HEAD --runtimes node --warm 60  # past V8's tier-up

Scratch goes to $LAMINA_BENCH_SCRATCH (default <tmp>/lamina-bench); prints one line per
window and a markdown summary; writes nothing in the repository.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cpu_ab import _floor
from lib import measure, servers
from lib.lambda_api import NOOP, LambdaApi, cold_start

FIGURES = ("c16_cpu_us_per_call", "c16_main_cpu_us_per_call", "c16_calls_per_s", "p50_us", "p99_us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--revs", default="main,HEAD", help="commits (WT: the working tree)")
    parser.add_argument("--sandbox", default="auto", help="the engines' --sandbox mode")
    parser.add_argument("--runtimes", default="python,node")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds of the c16 window")
    parser.add_argument("-n", type=int, default=200, help="sequential calls (p50, p99) per window")
    parser.add_argument(
        "--warm",
        type=float,
        default=0.0,
        help="seconds of c16 windows per function before the rounds (default: one window); a"
        " Node.js runtime's CPU per call settles after about a minute (docs/PERFORMANCE.md)",
    )
    measure.scratch_arg(parser)
    args = parser.parse_args()
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    revs = args.revs.split(",")
    kinds = args.runtimes.split(",")
    options = measure.BenchOptions(n=args.n, duration=args.duration, concurrency="16")
    engines = {rev: _engine(scratch, rev, args.sandbox, kinds, options, args.warm) for rev in revs}
    rows: dict[tuple[str, str], list[dict]] = {}
    try:
        for round_ in range(args.rounds):
            floor = _floor(options)["c16_cpu_us_per_call"]
            rows.setdefault(("floor", ""), []).append({"c16_cpu_us_per_call": floor})
            for kind in kinds:
                for rev in revs if round_ % 2 == 0 else revs[::-1]:
                    engine = engines[rev]
                    res = measure.invoke_bench(
                        engine.endpoint, f"noop-{kind}", "raw", engine.pid, options, rev
                    )
                    if "error" in res:
                        raise SystemExit(res["error"])
                    figures = {k: res["figures"][k] for k in FIGURES}
                    figures["floor"] = floor
                    rows.setdefault((rev, kind), []).append(figures)
                    print(
                        f"round {round_} {rev} {kind}: {figures['c16_cpu_us_per_call']:.0f} µs/call"
                        f" (engine {figures['c16_main_cpu_us_per_call']:.0f}), floor {floor:.0f},"
                        f" {figures['c16_calls_per_s']:.0f} calls/s, p50 {figures['p50_us']:.0f}"
                        f" µs, load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
    finally:
        for engine in engines.values():
            engine.stop()
    _summary(rows, revs, kinds)


def _engine(
    scratch: Path,
    rev: str,
    sandbox: str,
    kinds: list[str],
    options: measure.BenchOptions,
    warm: float,
) -> servers.LaminaServer:
    """An engine of `rev` with each no-op function warm in 16 environments: c16 windows for
    `warm` seconds (at least one)."""
    cmd = servers.lamina_command(HERE.parent, None if rev == "WT" else rev, scratch)
    data = scratch / f"cpu-pair-{rev.replace('/', '_')}"
    shutil.rmtree(data, ignore_errors=True)
    engine = servers.LaminaServer(cmd, data, ["--sandbox", sandbox])
    api = LambdaApi(engine.endpoint)
    for kind in kinds:
        started = cold_start(api, f"noop-{kind}", NOOP[kind], b"{}")
        if "error" in started:
            engine.stop()
            raise SystemExit(started["error"])
        until = time.monotonic() + warm
        while True:
            measure.invoke_bench(
                engine.endpoint, f"noop-{kind}", "raw", engine.pid, options, "warm"
            )
            if time.monotonic() >= until:
                break
    api.close()
    return engine


def _summary(rows: dict[tuple[str, str], list[dict]], revs: list[str], kinds: list[str]) -> None:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    floor = [row["c16_cpu_us_per_call"] for row in rows[("floor", "")]]
    print(f"\nfloor (lean relay): {med(floor):.0f} µs/call (median of {len(floor)} rounds)\n")
    print(
        "| commit | runtime | CPU µs/call c16 | engine | runtimes | ÷ floor | "
        f"÷ {revs[0]} (min–max) | engine ÷ {revs[0]} | c16 calls/s | p50 µs | p99 µs |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for kind in kinds:
        base = rows[(revs[0], kind)]
        for rev in revs:
            runs = rows[(rev, kind)]
            total = [r["c16_cpu_us_per_call"] for r in runs]
            engine = [r["c16_main_cpu_us_per_call"] for r in runs]
            paired = [
                a["c16_cpu_us_per_call"] / b["c16_cpu_us_per_call"] for a, b in zip(runs, base)
            ]
            engine_paired = [
                a["c16_main_cpu_us_per_call"] / b["c16_main_cpu_us_per_call"]
                for a, b in zip(runs, base)
            ]
            print(
                f"| {rev} | {kind} | {med(total):.0f} | {med(engine):.0f} | "
                f"{med([t - e for t, e in zip(total, engine)]):.0f} | "
                f"{med([r['c16_cpu_us_per_call'] / r['floor'] for r in runs]):.2f} | "
                f"{med(paired):.2f} ({min(paired):.2f}–{max(paired):.2f}) | "
                f"{med(engine_paired):.2f} | "
                f"{med([r['c16_calls_per_s'] for r in runs]):.0f} | "
                f"{med([r['p50_us'] for r in runs]):.0f} | {med([r['p99_us'] for r in runs]):.0f} |"
            )


if __name__ == "__main__":
    main()
