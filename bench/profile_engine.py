#!/usr/bin/env python3
"""Where Lamina's time goes on the warm invoke path: variants and a py-spy profile.

  variants  start a fresh engine per variant (default: as is; --no-freeze; --store memory://),
            run invoke_bench.py (raw client) against a no-op function of one runtime, and
            print p50, c1/c16 throughput and CPU per call of each: what freezing environments
            between invocations and writing invocation records to SQLite cost
  profile   drive --concurrency clients (raw client; default 16) against a fresh engine and
            sample the engine process (or, with --target runtime, one Python runtime process)
            with py-spy (`--py-spy PATH`, e.g. from `pip install py-spy` in a scratch venv);
            print the functions with the most samples, inclusive and self, and the self
            samples by file; --native adds C frames (a compiled module's functions are C
            frames; py-spy then stops the process for each sample)
  latency   warm p50 (raw client, sequential calls only) of the lean relay floor, Lamina's
            Python and Node no-op functions, and the Python function on an engine run with
            --no-freeze, all servers up at once and measured in alternating rounds seconds
            apart: a tighter pairing for the "warm p50 ≤ 2× lean relay floor" target than
            invoke.py's repeats, which are minutes apart
  cold      cold starts of --runtime split into the runtime's Init Duration (spawn → first
            `next`, from the REPORT lines of the function's log) and the rest (engine and
            invoke); and the Python bootstrap's own import time (`python -X importtime -S`)
            for the modules it imports before the handler

  .venv/bin/python bench/profile_engine.py variants --lamina-rev HEAD
  .venv/bin/python bench/profile_engine.py profile --lamina-rev HEAD --py-spy /tmp/x/bin/py-spy
  .venv/bin/python bench/profile_engine.py latency --lamina-rev HEAD --repeat 8 -n 2000
  .venv/bin/python bench/profile_engine.py cold --lamina-rev HEAD

Scratch goes to $LAMINA_BENCH_SCRATCH (default <tmp>/lamina-bench); prints markdown.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lib import measure, proctree, servers
from lib.lambda_api import NOOP, LambdaApi, cold_start

VARIANTS = {
    "as is": [],
    "--no-freeze": ["--no-freeze"],
    "--store memory://": ["--store", "memory://"],
    "--no-freeze --store memory://": ["--no-freeze", "--store", "memory://"],
}


def start_engine(
    args, extra: list[str], name: str = "profile-engine"
) -> tuple[servers.LaminaServer, str]:
    """A fresh engine with one warm no-op function of args.runtime."""
    scratch = Path(args.scratch)
    data = scratch / name
    shutil.rmtree(data, ignore_errors=True)
    cmd = servers.lamina_command(HERE.parent, args.lamina_rev, scratch)
    return servers.lamina_with_noop(cmd, data, extra, "noop", args.runtime), "noop"


def variants(args) -> None:
    options = measure.BenchOptions(n=args.n, duration=args.duration, concurrency="1,16")
    print(
        "| variant | p50 µs | p99 µs | c1 calls/s | c16 calls/s | server CPU µs/call c16 "
        "| engine-process CPU µs/call c16 |"
    )
    print("|---|---|---|---|---|---|---|")
    for rep in range(args.repeat):
        for name, extra in VARIANTS.items():
            engine, fn = start_engine(args, extra)
            try:
                res = measure.invoke_bench(
                    engine.endpoint, fn, "raw", engine.pid, options, f"variant {name}", kinds=()
                )
            finally:
                engine.stop()
            f = res.get("figures", {})
            print(
                f"| {name} (rep {rep}) | {f.get('p50_us')} | {f.get('p99_us')} "
                f"| {f.get('c1_calls_per_s')} | {f.get('c16_calls_per_s')} "
                f"| {f.get('c16_cpu_us_per_call')} | {f.get('c16_main_cpu_us_per_call')} |",
                flush=True,
            )


def profile(args) -> None:
    engine, fn = start_engine(args, [])
    out = Path(args.scratch) / f"{args.target}-profile.txt"
    bench = [
        sys.executable,
        str(measure.TOOLS / "invoke_bench.py"),
        "--endpoint",
        engine.endpoint,
        "--function",
        fn,
        "--client",
        "raw",
        "-n",
        "50",
        "--concurrency",
        str(args.concurrency),
        "--duration",
        str(args.duration + 4),
        "--max-calls",  # (its default, 20,000 calls, ends a 16-client window in ~4 s)
        "100000000",
    ]
    try:
        load = subprocess.Popen(bench, stdout=subprocess.DEVNULL)
        time.sleep(3)  # sequential part and the warm-up
        pid = engine.pid
        if args.target == "runtime":
            pid = next(
                p
                for p in proctree.descendants(engine.pid)
                if proctree.runtime_kind(proctree.full_info(p) or {}) == "python"
            )
        subprocess.run(
            [
                args.py_spy,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(args.rate),
                "--duration",
                str(int(args.duration)),
                "--format",
                "raw",
                # (--native stops the process for each sample: py-spy has no other way)
                *(["--native"] if args.native else ["--nonblocking"]),
                "--output",
                str(out),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        load.wait(120)
    finally:
        engine.stop()
    print_profile(out, args.top)


def latency(args) -> None:
    """Alternating rounds of sequential-call p50 against several servers that are all up."""
    options = measure.BenchOptions(n=args.n, warmup=200, concurrency="")
    relay = servers.FloorRelay(str(measure.TOOLS / "floor.py"), "raw-rawworker", 1)
    frozen, _ = start_engine(args, [], "latency-frozen")
    thawed, _ = start_engine(args, ["--no-freeze"], "latency-thawed")
    targets = [("floor relay, lean worker", relay, "floor")]
    try:
        api = LambdaApi(frozen.endpoint)
        cold_start(api, "noop-node", NOOP["node"], b"{}")
        api.close()
        targets += [
            ("Lamina python", frozen, "noop"),
            ("Lamina node", frozen, "noop-node"),
            ("Lamina python, --no-freeze", thawed, "noop"),
        ]
        rounds: dict[str, list[float]] = {name: [] for name, _, _ in targets}
        for k in range(args.repeat):
            order = targets if k % 2 == 0 else list(reversed(targets))
            for name, server, fn in order:
                res = measure.invoke_bench(
                    server.endpoint, fn, "raw", server.pid, options, f"latency {name}", kinds=()
                )
                rounds[name].append(res.get("figures", {}).get("p50_us"))
    finally:
        for server in (relay, frozen, thawed):
            server.stop()
    base = rounds["floor relay, lean worker"]
    print(
        f"Warm p50 (µs), raw client, {args.n} sequential calls per round, "
        f"{args.repeat} alternating rounds; ratio to the floor of the same round\n"
    )
    print("| server | p50 µs, median (min–max) | ÷ floor p50, median (min–max) |")
    print("|---|---|---|")
    for name, values in rounds.items():
        ratio = [v / b for v, b in zip(values, base) if v and b]
        print(f"| {name} | {_mmm(values, '%.0f')} | {_mmm(ratio, '%.2f')} |")


def _mmm(values: list, fmt: str) -> str:
    values = sorted(v for v in values if v is not None)
    if not values:
        return "-"
    mid = (
        values[(len(values) - 1) // 2]
        if len(values) % 2
        else (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2
    )
    return f"{fmt % mid} ({fmt % values[0]}–{fmt % values[-1]})"


def print_profile(path: Path, top: int) -> None:
    """Top functions by inclusive and by self samples, from py-spy's collapsed stacks."""
    inclusive, own, files, total = Counter(), Counter(), Counter(), 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
        files[frames[-1].partition(" (")[2].rstrip(")")] += n
    print(f"{total} samples ({path})\n")
    # (without --native a compiled module's functions are no frames: their time goes to the
    # innermost interpreted frame, often the event loop's; the files' table is the time spent
    # in each interpreted file's own code and the C it calls)
    for title, counter in (("inclusive", inclusive), ("self", own), ("self, by file", files)):
        print(f"| function ({title}) | share of samples |")
        print("|---|---|")
        for frame, n in counter.most_common(top):
            print(f"| `{frame}` | {100.0 * n / total:.1f} % |")
        print()


def _short(frame: str) -> str:
    """'func (path/to/file.py:123)' → 'func (file.py)'."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(where).parts
    short = "/".join(parts[-2:]) if parts else where
    return f"{name} ({short})"


def cold(args) -> None:
    cold_split(args)
    import_times(args)


def cold_split(args, count: int = 8) -> None:
    """Client-timed cold starts beside the runtime's own Init Duration (REPORT line)."""
    engine, _ = start_engine(args, [])
    rows = []
    try:
        api = LambdaApi(engine.endpoint)
        for k in range(count):
            rows.append(cold_start(api, f"cold{k}", NOOP[args.runtime], b"{}"))
            time.sleep(0.3)
        api.close()
        time.sleep(0.5)  # REPORT lines are written just after the response
        logs = Path(args.scratch) / "profile-engine" / "logs"
        for row in rows:
            text = "".join(p.read_text() for p in (logs / row["function"]).glob("*.log"))
            found = re.search(r"Init Duration: ([\d.]+) ms", text)
            row["init_ms"] = float(found.group(1)) if found else None
    finally:
        engine.stop()
    print(
        f"Cold starts of {args.runtime} (ms): client create → first response, the runtime's "
        "Init Duration, and the rest (engine work, CreateFunction, the invoke itself)\n"
    )
    print("| function | create → first response | CreateFunction | Init Duration | rest |")
    print("|---|---|---|---|---|")
    for row in rows:
        init = row.get("init_ms")
        rest = row["total_ms"] - row["create_ms"] - init if init is not None else None
        print(
            f"| {row['function']} | {row['total_ms']:.1f} | {row['create_ms']:.1f} "
            f"| {init} | {rest if rest is None else round(rest, 1)} |"
        )
    print()


def import_times(args) -> None:
    """Import time of the Python bootstrap's modules on the interpreter Lamina runs."""
    cmd = servers.lamina_command(HERE.parent, args.lamina_rev, Path(args.scratch))
    python = servers.lamina_interpreters(cmd).get("python3.11", sys.executable)
    code = "import decimal, json, logging, socket, traceback"
    done = subprocess.run(
        [python, "-X", "importtime", "-S", "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self" not in line:
            _, cumulative, name = line[12:].split("|")
            if not name.startswith("   "):  # nested imports are indented further
                rows.append((int(cumulative), name.strip()))
    print(f'`{python} -X importtime -S -c "{code}"`\n')
    print("| module (top level, cumulative) | µs |")
    print("|---|---|")
    for cumulative, name in sorted(rows, reverse=True)[: args.top]:
        print(f"| {name} | {cumulative} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("variants", "profile", "latency", "cold"))
    ap.add_argument("--lamina-rev", help="measure a snapshot of this commit (e.g. HEAD)")
    ap.add_argument("--runtime", choices=("python", "node"), default="python")
    ap.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=16, help="clients while profiling")
    ap.add_argument(
        "--target",
        choices=("engine", "runtime"),
        default="engine",
        help="profile the engine process or one Python runtime process",
    )
    ap.add_argument(
        "--native",
        action="store_true",
        help="py-spy --native: C frames too (compiled modules' functions are C frames)",
    )
    ap.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument(
        "--scratch",
        default=os.environ.get(
            "LAMINA_BENCH_SCRATCH", os.path.join(tempfile.gettempdir(), "lamina-bench")
        ),
    )
    args = ap.parse_args(argv)
    Path(args.scratch).mkdir(parents=True, exist_ok=True)
    {"variants": variants, "profile": profile, "latency": latency, "cold": cold}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
