#!/usr/bin/env python3
"""What a fresh engine's c16 window costs beside a warm engine's, paired per round.

`invoke.py` measures each c16 window on a fresh engine: cold start, 300 sequential calls,
5 s at c1 and at c4, then 1 s of c16 warm-up (its 16 environments start there) and the 5 s
window. This repeats exactly that on a new engine each round and, just before or after it
(order alternating), the same c16 run on one engine kept at 16 clients since `--warm`
seconds before the first round. With `perf` (as root), it also counts the engine process's
system calls, context switches, page faults and `kill`s (freeze/thaw) per call over each
c16 run, its 1 s warm-up included (a fresh engine's spawns fall there).

  .venv/bin/python bench/fresh_warm.py --runtime node --rounds 8 --warm 60
  .venv/bin/python bench/fresh_warm.py --runtime python --rounds 6 --no-perf

Prints one line per run and the medians (min–max) of the per-round fresh ÷ warm ratios.
Scratch goes to $LAMINA_BENCH_SCRATCH (default <tmp>/lamina-bench); nothing is written in
the repository. Results: docs/PERFORMANCE.md, "Fresh and warmed windows".
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lib import measure, servers

PRE = measure.BenchOptions(n=300, duration=5.0, concurrency="1,4")  # invoke.py's, before c16
C16 = measure.BenchOptions(n=1, warmup=0, duration=5.0, concurrency="16")
EVENTS = {
    "raw_syscalls:sys_enter": "syscalls",
    "context-switches": "ctx switches",
    "page-faults": "page faults",
    "syscalls:sys_enter_kill": "kills",
    "syscalls:sys_enter_epoll_pwait": "epoll_pwait",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", choices=("python", "node"), default="node")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warm", type=float, default=60.0, help="seconds at c16, warm engine")
    parser.add_argument("--sandbox", default="auto", help="the engines' --sandbox mode")
    parser.add_argument("--no-perf", action="store_true", help="no perf stat counts")
    measure.scratch_arg(parser)
    args = parser.parse_args()
    scratch = Path(args.scratch) / "fresh-warm"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    use_perf = not args.no_perf and shutil.which("perf") is not None
    cmd = servers.lamina_command(HERE.parent, None, scratch)
    warm = _engine(cmd, scratch / "warm", args)
    rows = []
    try:
        until = time.monotonic() + args.warm
        while time.monotonic() < until:
            _c16(warm, use_perf=False)
        for round_ in range(args.rounds):
            got = {}
            for which in ("fresh", "warm") if round_ % 2 == 0 else ("warm", "fresh"):
                if which == "warm":
                    got[which] = _c16(warm, use_perf)
                    continue
                shutil.rmtree(scratch / "fresh", ignore_errors=True)
                with _engine(cmd, scratch / "fresh", args) as fresh:
                    measure.invoke_bench(fresh.endpoint, "f", "raw", fresh.pid, PRE, "pre", ())
                    got[which] = _c16(fresh, use_perf)
            for which, run in got.items():
                print(f"round {round_} {which:5s} load {os.getloadavg()[0]:4.1f} " + _line(run))
            rows.append(got)
    finally:
        warm.stop()
    _summary(rows)


def _engine(
    cmd: servers.LaminaCommand, data: Path, args: argparse.Namespace
) -> servers.LaminaServer:
    return servers.lamina_with_noop(cmd, data, ["--sandbox", args.sandbox], "f", args.runtime)


def _c16(engine: servers.LaminaServer, use_perf: bool) -> dict:
    """One c16 run (1 s warm-up, 5 s window): the window's figures, and perf counts per
    call of warm-up and window together."""
    counts_file = Path(tempfile.mkstemp(suffix=".perf")[1])
    perf = None
    if use_perf:
        argv = ["perf", "stat", "-x,", "-o", str(counts_file), "-e", ",".join(EVENTS)]
        perf = subprocess.Popen(argv + ["-p", str(engine.pid)], stderr=subprocess.DEVNULL)
        time.sleep(0.3)
    res = measure.invoke_bench(engine.endpoint, "f", "raw", engine.pid, C16, "c16", ())
    if perf is not None:
        perf.send_signal(signal.SIGINT)
        perf.wait(10)
    if "error" in res:
        raise SystemExit(res["error"])
    window = res["run"]["throughput"][0]
    calls = window["ok_calls"] + sum(window["warmup_status_counts"].values())
    run = {
        "total": window["server_cpu_us_per_call"],
        "engine": window["server_main_cpu_us_per_call"],
        "runtimes": window["server_cpu_us_per_call"] - window["server_main_cpu_us_per_call"],
        "calls/s": window["calls_per_s"],
    }
    for line in counts_file.read_text().splitlines() if perf is not None else []:
        fields = line.split(",")
        if len(fields) > 2 and fields[2] in EVENTS and fields[0].isdigit():
            run[EVENTS[fields[2]]] = int(fields[0]) / calls
    counts_file.unlink()
    return run


def _line(run: dict) -> str:
    return " ".join(f"{k} {v:.0f}" if v >= 100 else f"{k} {v:.2f}" for k, v in run.items())


def _summary(rows: list[dict]) -> None:
    print("\n| per call | fresh | warm | fresh ÷ warm (min–max) |\n|---|---|---|---|")
    for key in rows[0]["fresh"]:
        fresh = [r["fresh"][key] for r in rows]
        warm = [r["warm"][key] for r in rows]
        ratios = [a / b for a, b in zip(fresh, warm) if b]
        spread = f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})"
        print(
            f"| {key} | {statistics.median(fresh):.2f} | {statistics.median(warm):.2f} | "
            + (spread if ratios else "-")
            + " |"
        )


if __name__ == "__main__":
    main()
