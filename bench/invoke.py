#!/usr/bin/env python3
"""Lamina's invoke benchmark: Lamina, the physical floor and the peers, in one run.

For each repeat, back to back on this machine and with the same client
(tools/invoke_bench.py) and the same no-op functions:

  1. floor       the Runtime-API-shaped relay (client → server → long-polling worker →
                 back; tools/floor.py) with a lean raw-socket worker and with an http.client
                 worker, and the spawn time of the interpreters Lamina runs
  2. Lamina      a fresh `lamina serve`: cold start (CreateFunction → first response) of a
                 Python and a Node function; warm p50/p99 and throughput at 1/4/16 clients,
                 raw keep-alive HTTP and boto3; server CPU per call; engine and
                 per-environment memory
  3. serverless-offline (serverless@3 + serverless-offline@13, npm, scratch dir)
  4. MiniStack   (pip ministack into a scratch venv)

With --warm S, each system's raw client then keeps each server and function at 16 clients
for S seconds and measures three more c16 windows, taken as one ("warmed"): every c16 figure
above is from a fresh system (about 1 s at 16 clients before its window), the warmed one is
not.

then one JSON document (bench/results/ by default) and a markdown table of the figures and
of the ratios against the targets (warm p50 ≤ 2× lean relay floor; c16 throughput ≥ 1.5×
serverless-offline; cold start ≤ 2× interpreter spawn + handler import).

  .venv/bin/python bench/invoke.py --repeat 3          # everything (~10 min per repeat)
  .venv/bin/python bench/invoke.py --quick --skip-peers
  .venv/bin/python bench/invoke.py --repeat 1 --warm 60  # also CPU per call after 60 s at c16
  .venv/bin/python bench/invoke.py --report bench/results/invoke-….json   # tables again

Scratch (npm project, MiniStack venv, engine data dirs) lives in $LAMINA_BENCH_SCRATCH
(default <tmp>/lamina-bench), outside the repository. Lamina is the working tree's
(.venv/bin/lamina) unless --lamina-rev REV names a commit to snapshot and measure. Servers run on free loopback ports and
are stopped by PID. Run it with a Python that has boto3 (the repo's .venv does).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lib import measure, report, servers, systems  # (after sys.path)

REPO = HERE.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="repeats of the whole set (default 3)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="1 repeat, 100 sequential calls, 2 s windows, fewer spawns/cold starts",
    )
    ap.add_argument("--skip-peers", action="store_true", help="no serverless-offline, no MiniStack")
    ap.add_argument("--skip-sls", action="store_true", help="no serverless-offline")
    ap.add_argument("--skip-ministack", action="store_true", help="no MiniStack")
    ap.add_argument("--skip-floor", action="store_true", help="no relay floor and spawn times")
    ap.add_argument("--skip-lamina", action="store_true", help="no Lamina (to try the peers)")
    ap.add_argument(
        "--sandbox-compare",
        action="store_true",
        help="also measure a second Lamina with --sandbox none right after the "
        "default one (the sandbox's cost, same run)",
    )
    ap.add_argument(
        "--warm",
        type=float,
        default=0.0,
        metavar="S",
        help="after each system's runs of a function, keep its raw client at 16 clients "
        "for S seconds, then measure three more c16 windows as one (the 'warmed' figures: "
        "CPU per call once V8 has tiered up); every system alike; default 0 (off)",
    )
    ap.add_argument("-n", type=int, help="sequential measured calls per run (default 300)")
    ap.add_argument("--duration", type=float, help="seconds per throughput window (default 5)")
    ap.add_argument("--cold-n", type=int, help="cold starts per runtime and repeat (default 5)")
    ap.add_argument("--spawn-n", type=int, help="spawns per spawn case (default 15)")
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="max seconds to wait for a quiet machine before each system (default 30)",
    )
    ap.add_argument(
        "--lamina-rev",
        metavar="REV",
        help="measure a snapshot of this commit (git archive into the scratch dir) "
        "instead of the working tree, e.g. HEAD",
    )
    ap.add_argument(
        "--scratch",
        default=os.environ.get(
            "LAMINA_BENCH_SCRATCH", os.path.join(tempfile.gettempdir(), "lamina-bench")
        ),
    )
    ap.add_argument("--out", help="JSON output (default bench/results/invoke-<time>.json)")
    ap.add_argument("--report", metavar="JSON", help="only print the tables of an earlier run")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeat = 1
    args.n = args.n or (100 if args.quick else 300)
    args.duration = args.duration or (2.0 if args.quick else 5.0)
    args.cold_n = args.cold_n or (2 if args.quick else 5)
    args.spawn_n = args.spawn_n or (5 if args.quick else 15)
    if args.skip_peers:
        args.skip_sls = args.skip_ministack = True
    return args


def machine_facts(ctx: systems.Context) -> dict:
    def version(argv: list[str]) -> str | None:
        try:
            return (
                subprocess.run(
                    argv,
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=False,
                    env={"PATH": "/usr/bin:/bin"},
                ).stdout.strip()
                or None
            )
        except OSError:
            return None

    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "client_python": sys.version.split()[0],
        "runtime_python": ctx.python,
        "runtime_python_version": version([ctx.python, "-V"]) if ctx.python else None,
        "node": ctx.node,
        "node_version": version([ctx.node, "--version"]) if ctx.node else None,
        "lamina_code": ctx.lamina.source,
        "repo_head": version(["git", "-C", str(REPO), "rev-parse", "HEAD"]),
    }


def build_context(args: argparse.Namespace) -> systems.Context:
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    lamina = servers.lamina_command(REPO, args.lamina_rev, scratch)
    found = servers.lamina_interpreters(lamina)
    options = measure.BenchOptions(n=args.n, duration=args.duration)
    return systems.Context(
        scratch=scratch,
        lamina=lamina,
        python=found.get("python3.11"),
        node=found.get("node"),
        options=options,
        cold_n=args.cold_n,
        spawn_n=args.spawn_n,
        quiet_max_wait=args.quiet_wait,
        warm_s=args.warm,
    )


def prepare_peers(ctx: systems.Context, args: argparse.Namespace) -> dict:
    """Install what the peers need into the scratch dir; returns their versions."""
    versions = {}
    if not args.skip_sls:
        os.environ["BENCH_SCRATCH"] = str(ctx.scratch / "sls")
        os.environ.setdefault("BENCH_SLS_PORT", str(servers.free_port()))
        ctx.sls_module = importlib.import_module("peer_sls")  # tools/ is on sys.path
        versions["serverless"] = systems.setup_sls(ctx)
    if not args.skip_ministack:
        ctx.ministack_exe = servers.ensure_ministack(
            ctx.scratch / "ministack-venv",
            systems.MINISTACK_VERSION,
            os.path.realpath(sys.executable),
        )
        versions["ministack"] = systems.MINISTACK_VERSION
    return versions


def one_repeat(ctx: systems.Context, args: argparse.Namespace, rep: int) -> dict:
    out: dict = {"index": rep, "started": time.strftime("%H:%M:%S")}
    unsandboxed = functools.partial(
        systems.measure_lamina, extra=("--sandbox", "none"), system="lamina_none"
    )
    steps = [
        ("floor", args.skip_floor, systems.measure_floor),
        ("lamina", args.skip_lamina, systems.measure_lamina),
        ("lamina_none", args.skip_lamina or not args.sandbox_compare, unsandboxed),
        ("sls", args.skip_sls, systems.measure_sls),
        ("ministack", args.skip_ministack, systems.measure_ministack),
    ]
    for name, skip, run in steps:
        if skip:
            continue
        try:
            out[name] = run(ctx, rep)
        except Exception as exc:  # noqa: BLE001 - one failed system must not lose the rest
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            ctx.say(f"{name}/rep{rep}: FAILED {exc}")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        print(report.markdown(report.summarize(json.loads(Path(args.report).read_text()))))
        return 0
    ctx = build_context(args)
    doc = {
        "tool": "lamina-invoke-bench",
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "options": {k: v for k, v in vars(args).items() if k != "report"},
        "bench_options": vars(ctx.options),
        "warm_c16_s": args.warm,
        "machine": machine_facts(ctx),
    }
    doc["peers"] = prepare_peers(ctx, args)
    doc["repeats"] = []
    out = (
        Path(args.out)
        if args.out
        else HERE / "results" / ("invoke-" + time.strftime("%Y%m%dT%H%M%S") + ".json")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    for rep in range(args.repeat):
        doc["repeats"].append(one_repeat(ctx, args, rep))
        out.write_text(json.dumps(report.summarize(doc), indent=1))  # keep what is done
    ctx.say(f"results: {out}")
    print(report.markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
