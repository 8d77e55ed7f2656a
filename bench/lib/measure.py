"""One measurement each: a client benchmark run, interpreter spawn times, memory of a tree.

* `invoke_bench()` runs tools/invoke_bench.py (the same client for every system) against an
  endpoint, with the server's PID for CPU accounting, while a `proctree.Sampler` watches the
  server's memory; it returns the tool's run plus the headline `figures()`.
* `warmed_c16()` keeps a system at 16 clients for some seconds, then measures three more
  c16 windows as one: CPU per call once the runtimes and the engine have warmed (a Node.js
  runtime's V8 tiers its code up over about a minute), every window kept as a trajectory.
* `spawn_floor()` times interpreter spawns (spawn and reap, as tools/floor.py's
  `spawn_times` does, but with Lamina's clean environment and the handler's directory as
  cwd) for the interpreters Lamina runs: bare, and importing the no-op handler.
* `memory()` is the server's and its environments' memory right after a run (the
  environments are idle then: Lamina's are frozen), with the busy peaks the sampler saw.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from . import proctree
from .lambda_api import NOOP

TOOLS = Path(__file__).resolve().parent.parent / "tools"


def _callgrind(argv: list[str], *options: str, env: dict[str, str] | None = None) -> Path:
    """Run `argv` (a Python command) under valgrind's callgrind with its counters zeroed when
    it calls `os.getppid()` and dumped when it calls `os.getpgrp()`; the output's base path."""
    out = Path(tempfile.mkdtemp(prefix="lamina-callgrind-")) / "callgrind.out"
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *options]
    command += ["--zero-before=getppid", "--dump-before=getpgrp", *argv]
    subprocess.run(command, check=True, capture_output=True, env=env)
    return out


def _summary(path: Path) -> int:
    found = next(line for line in path.read_text().splitlines() if line.startswith("summary:"))
    return int(found.split()[1])


def marked_instructions(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, Path]:
    """The user-space instructions of `argv` between its two marks (`_callgrind`), and the
    dump's path."""
    dumped = Path(f"{_callgrind(argv, env=env)}.1")
    return _summary(dumped), dumped


def marked_instructions_by_thread(argv: list[str]) -> tuple[int, int]:
    """`marked_instructions` with the threads apart: the marking thread's instructions between
    the marks, and the other threads' from their start (callgrind zeroes and dumps only the
    counters of the thread that calls the markers)."""
    out = _callgrind(argv, "--separate-threads=yes")
    others = [p for p in out.parent.glob("callgrind.out-*") if p.name[-2:] != "01"]
    return _summary(Path(f"{out}.1-01")), sum(_summary(p) for p in others)


def scratch_arg(parser: argparse.ArgumentParser) -> None:
    """`--scratch DIR`: $LAMINA_BENCH_SCRATCH, else <tmp>/lamina-bench."""
    parser.add_argument(
        "--scratch",
        default=os.environ.get(
            "LAMINA_BENCH_SCRATCH", str(Path(tempfile.gettempdir()) / "lamina-bench")
        ),
    )


@dataclass(frozen=True)
class BenchOptions:
    """invoke_bench.py settings shared by every system in a run."""

    n: int = 300
    warmup: int = 20
    duration: float = 5.0
    concurrency: str = "1,4,16"
    payload: str = '{"hello":"world"}'
    timeout: float = 30.0
    tp_warmup_s: float = 1.0  # warm-up at a window's concurrency, before that window

    def argv(self) -> list[str]:
        return [
            "-n",
            str(self.n),
            "--warmup",
            str(self.warmup),
            "--duration",
            str(self.duration),
            "--concurrency",
            self.concurrency,
            "--payload",
            self.payload,
            "--timeout",
            str(self.timeout),
            "--tp-warmup-s",
            str(self.tp_warmup_s),
        ]


def figures(run: dict) -> dict:
    """Headline numbers of one invoke_bench run."""
    out = {
        "p50_us": run["latency_us"].get("p50"),
        "p99_us": run["latency_us"].get("p99"),
        "seq_errors": run.get("sequential_errors", 0),
    }
    if "first_call_ms" in run:
        out["first_call_ms"] = run["first_call_ms"]
    for tp in run.get("throughput", []):
        c = tp["concurrency"]
        out[f"c{c}_calls_per_s"] = tp.get("calls_per_s")
        out[f"c{c}_errors"] = tp.get("errors")
        out[f"c{c}_cpu_us_per_call"] = tp.get("server_cpu_us_per_call")
        out[f"c{c}_main_cpu_us_per_call"] = tp.get("server_main_cpu_us_per_call")
        out[f"c{c}_client_cpu_pct"] = tp.get("client_cpu_pct")
    return out


def invoke_bench(
    endpoint: str,
    function: str,
    client: str,
    server_pid: int,
    options: BenchOptions,
    label: str,
    first_call: bool = False,
    kinds: tuple[str, ...] = ("python", "node"),
) -> dict:
    """Run tools/invoke_bench.py once; returns {'figures', 'run', 'busy'} or {'error'}."""
    argv = (
        [
            sys.executable,
            str(TOOLS / "invoke_bench.py"),
            "--endpoint",
            endpoint,
            "--function",
            function,
            "--client",
            client,
            "--server-pids",
            str(server_pid),
            "--label",
            label,
        ]
        + options.argv()
        + (["--first-call"] if first_call else [])
    )
    with proctree.Sampler(server_pid) as sampler:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        return {"label": label, "error": done.stderr[-2000:]}
    run = json.loads(done.stdout.strip().splitlines()[-1])["runs"][0]
    return {
        "label": label,
        "figures": figures(run),
        "run": run,
        "busy": {kind: sampler.busy(kind) for kind in kinds},
    }


def warmed_c16(
    endpoint: str,
    function: str,
    server_pid: int,
    options: BenchOptions,
    seconds: float,
    label: str,
    kinds: tuple[str, ...] = ("python", "node"),
    measured: int = 3,
) -> dict:
    """`seconds` of 16 raw clients in windows of `options.duration` (each after its own
    c16 warm-up), then `measured` more c16 windows, taken together as the `c16_*` figures
    returned (CPU per call of a system warmed at 16 clients: their CPU over their calls).
    Every window is kept in `trajectory`."""
    per_window = options.duration + options.tp_warmup_s
    warming = max(1, math.ceil(seconds / per_window))
    concurrency = ",".join(["16"] * (warming + measured))
    opts = replace(options, n=1, warmup=0, concurrency=concurrency)
    res = invoke_bench(endpoint, function, "raw", server_pid, opts, label, kinds=kinds)
    if "error" in res:
        return res
    throughput = res["run"]["throughput"]
    res["warm_s"] = round(sum(tp["warmup_s"] + tp["seconds"] for tp in throughput[:warming]), 1)
    res["trajectory"] = [
        {
            "calls_per_s": tp.get("calls_per_s"),
            "cpu_us_per_call": tp.get("server_cpu_us_per_call"),
            "main_cpu_us_per_call": tp.get("server_main_cpu_us_per_call"),
        }
        for tp in throughput
    ]
    res["figures"] = _pooled(throughput[warming:])
    return res


def _pooled(windows: list[dict]) -> dict:
    """c16 figures of several windows as one: their CPU over their calls, calls over time."""
    calls = sum(tp["ok_calls"] for tp in windows)
    seconds = sum(tp["seconds"] for tp in windows)

    def per_call(key: str) -> float | None:
        if not calls or any(tp.get(key) is None for tp in windows):
            return None
        return round(sum(tp[key] * tp["ok_calls"] for tp in windows) / calls, 1)

    return {
        "p50_us": None,  # one sequential call: no latency figure
        "p99_us": None,
        "c16_calls_per_s": round(calls / seconds, 1) if seconds else None,
        "c16_errors": sum(tp.get("errors", 0) for tp in windows),
        "c16_cpu_us_per_call": per_call("server_cpu_us_per_call"),
        "c16_main_cpu_us_per_call": per_call("server_main_cpu_us_per_call"),
        "c16_client_cpu_pct": None,
        "measured_windows": len(windows),
    }


def memory(server_pid: int, kind: str) -> dict:
    """Engine memory and the idle environments of one runtime family, right now."""
    snap = proctree.snapshot(server_pid)
    return {
        "engine": proctree.engine_of(snap),
        "envs": proctree.envs_of(snap, kind),
        "env_commands": sorted(
            {c["cmd"][:120] for c in snap["children"] if proctree.runtime_kind(c) == kind}
        ),
    }


def _clean_env() -> dict[str, str]:
    # what Lamina gives a runtime: no NODE_EXTRA_CA_CERTS, a plain PATH
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8"}


def spawn_cases(python: str | None, node: str | None, task_dirs: dict[str, Path]) -> list:
    """(name, argv, cwd) of the spawn-time cases for the interpreters Lamina runs."""
    cases = []
    if python:
        py_dir = str(task_dirs["python"])
        cases += [
            ("python_S_pass", [python, "-S", "-c", "pass"], py_dir),
            # the floor of the cold-start target: interpreter + the handler's import
            ("python_S_import_handler", [python, "-S", "-c", "import lambda_function"], py_dir),
            # diagnostic: + the standard modules Lamina's Python bootstrap imports
            (
                "python_S_bootstrap_imports",
                [
                    python,
                    "-S",
                    "-c",
                    "import decimal, json, logging, socket, traceback, lambda_function",
                ],
                py_dir,
            ),
        ]
    if node:
        node_dir = str(task_dirs["node"])
        cases += [
            ("node_e_0", [node, "-e", "0"], node_dir),
            ("node_require_handler", [node, "-e", "require('./index.js')"], node_dir),
            # diagnostic: an ES-module entry point, as Lamina's bootstrap.mjs is
            (
                "node_esm_import_handler",
                [
                    node,
                    "--input-type=module",
                    "-e",
                    f"await import('{Path(node_dir, 'index.js').as_uri()}')",
                ],
                node_dir,
            ),
        ]
    return cases


def write_task_dirs(root: Path) -> dict[str, Path]:
    """The no-op handlers unpacked, for the spawn cases that import them."""
    dirs = {}
    for kind, spec in NOOP.items():
        d = root / f"task-{kind}"
        d.mkdir(parents=True, exist_ok=True)
        for name, text in spec["files"].items():
            (d / name).write_text(text)
        dirs[kind] = d
    return dirs


def spawn_times(argv: list[str], n: int, cwd: str, warm: int = 2) -> dict:
    """Wall time to spawn and reap argv, n times after `warm` untimed runs (ms)."""
    times = []
    for k in range(warm + n):
        t0 = time.perf_counter()
        subprocess.run(
            argv,
            cwd=cwd,
            env=_clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        if k >= warm:
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {
        "n": n,
        "min_ms": round(times[0], 2),
        "p50_ms": round(times[(n - 1) // 2], 2),
        "max_ms": round(times[-1], 2),
    }


def spawn_floor(python: str | None, node: str | None, n: int) -> dict:
    """p50/min/max ms of spawn-and-reap for each case of `spawn_cases`."""
    results = {"python_exe": python, "node_exe": node}
    with tempfile.TemporaryDirectory(prefix="lamina-bench-spawn-") as tmp:
        dirs = write_task_dirs(Path(tmp))
        for name, argv, cwd in spawn_cases(python, node, dirs):
            try:
                results[name] = spawn_times(argv, n, cwd)
            except (subprocess.CalledProcessError, OSError) as exc:
                results[name] = {"error": str(exc)[:200]}
    return results
