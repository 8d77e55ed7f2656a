#!/usr/bin/env python3
"""System-level counts per warm call of engines from two source trees, paired in rounds.

Starts `lamina serve --sandbox none` from each tree (PYTHONPATH=TREE/src; "" is this
worktree), creates the no-op Python function on each, and in each round drives every engine
in turn (the order reversed every other round) with 16 raw keep-alive clients for --seconds,
under `perf stat -p ENGINE`: futex system calls, context switches and task-clock (the engine
process's CPU, all its threads; not its runtimes) per call. Round 0 warms (16 environments
started) and is printed but left out of the medians. Needs `perf` and the right to attach.

  .venv/bin/python bench/engine_counts.py --trees main=/work/main,HEAD= --rounds 5
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lib.lambda_api import NOOP, LambdaApi, cold_start

EVENTS = ("syscalls:sys_enter_futex", "context-switches", "task-clock")


def _start(tree: str, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = str(Path(tree) / "src")
    data = tempfile.mkdtemp(prefix="lamina-engine-counts-")
    command = [sys.executable, "-m", "lamina", "serve", "--port", str(port), "--data-dir", data]
    command += ["--sandbox", "none", "--log-level", "WARNING"]
    engine = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    api = LambdaApi(f"http://127.0.0.1:{port}")
    for _ in range(300):
        try:
            api.request("GET", "/2015-03-31/functions")
            break
        except OSError:
            time.sleep(0.1)
    found = cold_start(api, "noop", NOOP["python"], b"{}")
    if "error" in found:
        engine.terminate()
        raise SystemExit(f"{tree or 'this tree'}: {found['error']}")
    return engine


def _window(pid: int, port: int, seconds: float) -> dict[str, float]:
    stop = time.monotonic() + seconds
    calls: list[int] = []

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port)
        done = 0
        while time.monotonic() < stop:
            connection.request("POST", "/2015-03-31/functions/noop/invocations", body=b"{}")
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"invoke answered {response.status}")
            done += 1
        calls.append(done)

    out = Path(tempfile.mkdtemp(prefix="lamina-perf-")) / "stat.csv"
    perf = subprocess.Popen(
        ["perf", "stat", "-x,", "-e", ",".join(EVENTS), "-p", str(pid), "-o", str(out)]
    )
    time.sleep(0.3)
    clients = [threading.Thread(target=client) for _ in range(16)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    perf.send_signal(2)
    perf.wait()
    total = sum(calls)
    counts = {
        line.split(",")[2]: float(line.split(",")[0])
        for line in out.read_text().splitlines()
        if line[:1].isdigit()
    }
    return {"calls": total, **{name: counts.get(name, 0.0) / total for name in EVENTS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", default="main=/work/main,HEAD=", help="label=path,...")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--port", type=int, default=9311)
    args = parser.parse_args()
    trees = dict(item.split("=", 1) for item in args.trees.split(","))
    ports = {label: args.port + i for i, label in enumerate(trees)}
    engines = {label: _start(tree, ports[label]) for label, tree in trees.items()}
    seen: dict[str, list[dict[str, float]]] = {label: [] for label in trees}
    try:
        for round_ in range(args.rounds):
            order = list(trees) if round_ % 2 == 0 else list(trees)[::-1]
            for label in order:
                found = _window(engines[label].pid, ports[label], args.seconds)
                shown = ", ".join(f"{k} {v:.3f}" for k, v in found.items() if k != "calls")
                print(f"round {round_} {label}: {found['calls']:.0f} calls; per call: {shown}")
                if round_:
                    seen[label].append(found)
    finally:
        for engine in engines.values():
            engine.terminate()
            engine.wait()
    print("\n| tree | futex / call | context switches / call | task-clock ms / call |")
    print("|---|---|---|---|")
    for label, rounds in seen.items():
        medians = [statistics.median(r[name] for r in rounds) for name in EVENTS]
        print(f"| {label} | {medians[0]:.2f} | {medians[1]:.2f} | {medians[2]:.3f} |")


if __name__ == "__main__":
    main()
