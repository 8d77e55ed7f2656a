#!/usr/bin/env python3
"""Asynchronous invocation benchmark: durable accepts, end to end, latency, retry precision.

For each store (SQLite, and PostgreSQL when a server can be started here), in one run:

* **store floor** — single-row commits per second on that store (synchronous=FULL for SQLite),
  the physical limit of a durable accept that is not group-committed;
* **durable accepts/s** — Event invokes answered 202 (each event on disk first), from 16
  client threads with keep-alive connections, twice: into a backlog (a function with reserved
  concurrency 1 whose one running event sleeps, so nothing else starts: the queue peers'
  "enqueue with no worker running"), and while the dispatcher runs them (a no-op function): a
  conservative figure, the engine does both at once;
* **end-to-end events/s** — from the first accept to the last event finished;
* **accept-to-start** p50/p99 at a steady 200 events/s (from the attempt records), after one
  second at that rate so the function's environments are up (cold starts are
  bench/invoke.py's business);
* **retry-delay error** — actual minus scheduled start of retries, idle and under the 200/s
  load (engine at --time-scale 60, so a 60 s retry is 1 s of real time; errors in real ms).

    .venv/bin/python bench/async_queue.py [--events 3000] [--skip-postgres]

Prints a markdown table and writes bench/results/async-queue-<rev>.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.stats import git_rev, percentile  # noqa: E402

from tests.conftest import ROLE, client, free_port, make_zip, start_server  # noqa: E402

NOOP = make_zip(
    {
        "app.py": "def handler(event, context):\n    return None\n",
        "park.py": "import time\ndef handler(event, context):\n    time.sleep(300)\n",
        "fail.py": "def handler(event, context):\n    raise RuntimeError('no')\n",
    }
)


# floors --------------------------------------------------------------------------------
def sqlite_floor(seconds: float = 3.0) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        db = sqlite3.connect(Path(scratch) / "f.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
        count, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t (v) VALUES (?)", (b"x" * 200,))
            db.execute("COMMIT")
            count += 1
        return count / seconds


def postgres_floor(url: str, seconds: float = 3.0) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS floor_t (id BIGSERIAL PRIMARY KEY, v BYTEA)")
        count, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            conn.execute("INSERT INTO floor_t (v) VALUES (%s)", (b"x" * 200,))
            count += 1
        return count / seconds


# load ----------------------------------------------------------------------------------
def accept(
    port: int, function: str, count: int, threads: int = 16, rate: float | None = None
) -> tuple[float, list[str]]:
    """Send `count` Event invokes; (accepts per second, request ids)."""
    ids: list[str] = []
    lock = threading.Lock()
    per_thread = count // threads
    interval = None if rate is None else threads / rate
    started = time.monotonic()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, next_at = [], time.monotonic()
        for _ in range(per_thread):
            if interval is not None:
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))
            conn.request(
                "POST",
                f"/2015-03-31/functions/{function}/invocations",
                body=b"{}",
                headers={"X-Amz-Invocation-Type": "Event"},
            )
            response = conn.getresponse()
            response.read()
            assert response.status == 202, response.status
            mine.append(response.headers["x-amzn-RequestId"])
        with lock:
            ids.extend(mine)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return len(ids) / (time.monotonic() - started), ids


def wait_done(engine, function: str, count: int, timeout: float = 600) -> float:
    """When the last of `count` events of `function` finished (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = engine.get(f"/_lamina/invocations?function={function}&limit=10000")
        if sum(1 for i in found["Invocations"] if i["Status"] in ("success", "failed")) >= count:
            return time.monotonic()
        time.sleep(0.05)
    raise TimeoutError(f"{function}: events did not finish")


def accept_to_start(engine, ids: list[str]) -> list[float]:
    """Milliseconds from accepted to the attempt's start, from the timelines."""
    delays = []
    for request_id in ids:
        timeline = engine.get(f"/_lamina/invocations/{request_id}")["Timeline"]
        accepted = next(e["At"] for e in timeline if e["Kind"] == "accepted")
        attempt = next(e for e in timeline if e["Kind"] == "attempt")
        delays.append((attempt["At"] - attempt["duration_ms"] / 1000 - accepted) * 1000)
    return delays


def retry_errors(engine, ids: list[str], scale: float) -> list[float]:
    """Real milliseconds between a retry's scheduled time and its start."""
    errors = []
    for request_id in ids:
        timeline = engine.get(f"/_lamina/invocations/{request_id}")["Timeline"]
        scheduled = [e["at"] for e in timeline if e["Kind"] == "retry_scheduled"]
        attempts = [e for e in timeline if e["Kind"] == "attempt"]
        for at, attempt in zip(scheduled, attempts[1:], strict=False):
            start = attempt["At"] - attempt["duration_ms"] / 1000 * scale
            errors.append((start - at) / scale * 1000)
    return errors


def create(engine, name: str, handler: str = "app.handler", **extra) -> None:
    lam = client(engine.endpoint)
    lam.create_function(
        FunctionName=name,
        Runtime=f"python3.{sys.version_info.minor}",
        Role=ROLE,
        Handler=handler,
        Code={"ZipFile": NOOP},
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    for key, value in extra.items():
        getattr(lam, key)(FunctionName=name, **value)
    lam.close()


def measure(store_args: list[str], label: str, events: int, scratch: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    engine = start_server(scratch / f"{label}-a" / "data", *store_args, "--log-level", "WARNING")
    try:
        create(engine, "noop")
        first = time.monotonic()
        rate, accepted = accept(engine.port, "noop", events)
        figures["durable_accepts_while_running_per_s"] = rate
        figures["end_to_end_per_s"] = len(accepted) / (
            wait_done(engine, "noop", len(accepted)) - first
        )
        create(
            engine,
            "parked",
            handler="park.handler",
            put_function_concurrency={"ReservedConcurrentExecutions": 1},
        )
        figures["durable_accepts_backlog_per_s"], _ = accept(engine.port, "parked", events)
        create(engine, "steady")
        _, warm = accept(engine.port, "steady", 200, threads=4, rate=200)  # environments up
        wait_done(engine, "steady", len(warm))
        _, steady = accept(engine.port, "steady", 200 * 5, threads=4, rate=200)
        wait_done(engine, "steady", len(warm) + len(steady))
        delays = accept_to_start(engine, steady)
        figures["accept_to_start_p50_ms"] = percentile(delays, 50)
        figures["accept_to_start_p99_ms"] = percentile(delays, 99)
    finally:
        engine.stop()
    scale = 60.0
    engine = start_server(
        scratch / f"{label}-b" / "data",
        *store_args,
        "--time-scale",
        str(scale),
        "--log-level",
        "WARNING",
    )
    try:
        create(
            engine,
            "failing",
            handler="fail.handler",
            put_function_event_invoke_config={"MaximumRetryAttempts": 2},
        )
        _, idle = accept(engine.port, "failing", 32, threads=4)
        wait_done(engine, "failing", len(idle))
        errors = retry_errors(engine, idle, scale)
        figures["retry_error_idle_p50_ms"] = percentile(errors, 50)
        figures["retry_error_idle_p99_ms"] = percentile(errors, 99)
        create(engine, "busy")
        load = threading.Thread(target=accept, args=(engine.port, "busy", 200 * 6, 4, 200))
        load.start()
        _, loaded = accept(engine.port, "failing", 32, threads=4)
        load.join()
        wait_done(engine, "failing", len(idle) + len(loaded))
        errors = retry_errors(engine, loaded, scale)
        figures["retry_error_load_p50_ms"] = percentile(errors, 50)
        figures["retry_error_load_p99_ms"] = percentile(errors, 99)
    finally:
        engine.stop()
    return figures


def start_postgres(scratch: Path) -> tuple[str, list[str], Path] | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        return None
    bin_dir, root = found[-1].parent, Path(tempfile.mkdtemp(prefix="lamina-bench-pg-"))
    as_user = []
    if os.geteuid() == 0:
        import shutil

        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *as_user,
            str(bin_dir / "initdb"),
            "-D",
            str(root / "data"),
            "-U",
            "lamina",
            "-A",
            "trust",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    subprocess.run(
        [
            *as_user,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(root / "data"),
            "-w",
            "-l",
            str(root / "log"),
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    stop = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "stop"]
    return f"postgresql://lamina@127.0.0.1:{port}/postgres", stop, root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="lamina-queue-bench-"))
    results: dict[str, dict[str, float]] = {}
    results["sqlite"] = {
        "store_floor_commits_per_s": sqlite_floor(),
        **measure([], "sqlite", args.events, scratch),
    }
    pg = None if args.skip_postgres else start_postgres(scratch)
    if pg is not None:
        url, stop, _ = pg
        try:
            results["postgres"] = {
                "store_floor_commits_per_s": postgres_floor(url),
                **measure(["--store", url], "postgres", args.events, scratch),
            }
        finally:
            subprocess.run(stop, capture_output=True)
    rev = git_rev()
    out = ROOT / "bench" / "results" / f"async-queue-{rev}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "events": args.events,
                "results": results,
            },
            indent=2,
        )
    )
    keys = sorted({k for figures in results.values() for k in figures})
    print("| figure | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for key in keys:
        print(
            f"| {key} | "
            + " | ".join(f"{results[s].get(key, float('nan')):.1f}" for s in results)
            + " |"
        )
    print(f"\n(raw: {out})")


if __name__ == "__main__":
    main()
