#!/usr/bin/env python3
"""Engines sharing PostgreSQL: what the cluster costs a call, and what 1, 2, 3 engines do.

In one run, on this machine:

* **warm p50 / p99** of sequential synchronous calls (one keep-alive client, unsigned
  requests: tools/invoke_bench.py's raw client) on one engine on SQLite, one engine alone on
  PostgreSQL, and one engine of three sharing PostgreSQL; `--repeat` rounds, interleaved, the
  ratio PostgreSQL ÷ SQLite taken inside each round (the target: ≤ 1.5);
* **throughput** with 1, 2 and 3 engines on one PostgreSQL: `--clients` keep-alive clients
  (threads in `--client-procs` processes) spread evenly over the engines, a `--duration`
  window after a warm-up; calls/s, and CPU per call of each engine (the engine process, and
  with its runtimes) and of PostgreSQL (the postmaster and all its backends), from /proc;
* **a store round trip** beside them: p50 of `SELECT 1` and of one concurrency grant
  (`lamina_grant`) through psycopg's async pool, what the hot path would pay per call if it
  counted concurrency in the store (it does not: docs/CLUSTER.md).

    .venv/bin/python bench/cluster.py [--repeat 3] [--duration 5] [--clients 16]

Prints markdown tables and writes bench/results/cluster-<rev>.json. Everything listens on
127.0.0.1 and is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from async_queue import start_postgres  # noqa: E402
from lib.proctree import descendants  # noqa: E402
from lib.stats import git_rev, percentile  # noqa: E402
from tools.invoke_bench import RawClient  # noqa: E402

from tests.conftest import ROLE, client, make_zip, start_server  # noqa: E402

ECHO = make_zip({"app.py": "def handler(event, context):\n    return event\n"})
PAYLOAD = b'{"hello":"world"}'
TICKS = os.sysconf("SC_CLK_TCK")


# CPU from /proc ------------------------------------------------------------------------
def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def tree(pid: int) -> list[int]:
    return [pid, *descendants(pid)]


# engines -------------------------------------------------------------------------------
def create_echo(endpoint: str, name: str = "echo") -> None:
    lam = client(endpoint)
    lam.create_function(
        FunctionName=name,
        Runtime=f"python3.{sys.version_info.minor}",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": ECHO},
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
    )
    lam.close()


def wait_known(endpoint: str, name: str = "echo") -> None:
    lam = client(endpoint)
    deadline = time.monotonic() + 10
    while True:
        try:
            lam.get_function(FunctionName=name)
            break
        except Exception:  # noqa: BLE001 not there yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    lam.close()


def sequential(endpoint: str, n: int, warmup: int = 50) -> dict:
    raw = RawClient(endpoint, "echo", PAYLOAD, "RequestResponse", 30)
    for _ in range(warmup):
        assert raw.call()[0]
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        ok = raw.call()[0]
        samples.append(time.perf_counter() - t0)
        assert ok
    raw.close()
    samples.sort()
    return {
        "p50_us": round(percentile(samples, 50) * 1e6, 1),
        "p99_us": round(percentile(samples, 99) * 1e6, 1),
    }


# load from several client processes ----------------------------------------------------
def _client_proc(
    endpoints: list[str],
    threads: int,
    offset: int,
    start_at: float,
    stop_at: float,
    out: multiprocessing.Queue,
) -> None:
    counts = [0] * threads
    errors = [0] * threads

    def worker(i: int) -> None:
        raw = RawClient(
            endpoints[(offset + i) % len(endpoints)], "echo", PAYLOAD, "RequestResponse", 30
        )
        while time.time() < start_at - 1.0:  # warm-up: connections, environments
            raw.call()
        while time.time() < start_at:
            raw.call()
        while time.time() < stop_at:
            ok = raw.call()[0]
            if ok:
                counts[i] += 1
            else:
                errors[i] += 1
        raw.close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    out.put((sum(counts), sum(errors)))


def throughput(
    endpoints: list[str],
    engine_pids: list[int],
    pg_pid: int,
    clients: int,
    procs: int,
    duration: float,
) -> dict:
    per = [clients // procs + (1 if p < clients % procs else 0) for p in range(procs)]
    out: multiprocessing.Queue = multiprocessing.Queue()
    start_at = time.time() + 3.0
    stop_at = start_at + duration
    children = []
    offset = 0
    for threads in per:
        child = multiprocessing.Process(
            target=_client_proc, args=(endpoints, threads, offset, start_at, stop_at, out)
        )
        child.start()
        children.append(child)
        offset += threads
    time.sleep(max(0.0, start_at - time.time()))
    engines0 = [(cpu_seconds([pid]), cpu_seconds(tree(pid))) for pid in engine_pids]
    pg0 = cpu_seconds(tree(pg_pid))
    time.sleep(max(0.0, stop_at - time.time()))
    engines1 = [(cpu_seconds([pid]), cpu_seconds(tree(pid))) for pid in engine_pids]
    pg1 = cpu_seconds(tree(pg_pid))
    results = [out.get(timeout=duration + 60) for _ in children]
    for child in children:
        child.join(30)
    calls = sum(ok for ok, _ in results)
    errors = sum(err for _, err in results)

    def per_call(seconds: float) -> float:
        return round(seconds * 1e6 / calls, 1) if calls else float("nan")

    return {
        "engines": len(endpoints),
        "clients": clients,
        "calls": calls,
        "errors": errors,
        "calls_per_s": round(calls / duration, 1),
        "engine_cpu_us_per_call": [per_call(b[0] - a[0]) for a, b in zip(engines0, engines1)],
        "engine_tree_cpu_us_per_call": [per_call(b[1] - a[1]) for a, b in zip(engines0, engines1)],
        "postgres_cpu_us_per_call": per_call(pg1 - pg0),
        "postgres_cpu_pct": round(100 * (pg1 - pg0) / duration, 1),
    }


# a store round trip ----------------------------------------------------------------------
def round_trips(url: str, n: int = 2000) -> dict:
    from lamina.storage.postgres import PostgresStore

    async def main() -> dict:
        store = PostgresStore(url)
        await store.open()
        try:
            await store.cluster_heartbeat("bench", "ready", 60, {}, 300)

            async def timed(call) -> float:
                samples = []
                for _ in range(n):
                    t0 = time.perf_counter()
                    await call()
                    samples.append(time.perf_counter() - t0)
                samples.sort()
                return round(percentile(samples, 50) * 1e6, 1)

            select = await timed(lambda: store._query("cluster_engines"))
            grant = await timed(lambda: store.cluster_grant("bench", "ready", 60, "*", 1, 10**9))
            return {"select_p50_us": select, "grant_p50_us": grant}
        finally:
            await store.cluster_leave()
            await store.close()

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("-n", type=int, default=1000, help="sequential calls per p50 figure")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--client-procs", type=int, default=2)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="lamina-cluster-bench-"))
    pg = start_postgres(scratch)
    if pg is None:
        raise SystemExit("bench/cluster.py needs PostgreSQL (scripts/setup --test installs it)")
    url, stop_pg, pg_root = pg
    pg_pid = int((pg_root / "data" / "postmaster.pid").read_text().split()[0])
    doc: dict = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rev": git_rev(),
        "nproc": os.cpu_count(),
        "latency": [],
        "throughput": [],
    }
    engines = []

    def start(name: str, *flags: str):
        engine = start_server(scratch / name, *flags)
        engines.append(engine)
        return engine

    def stop_all() -> None:
        while engines:
            engines.pop().stop()

    try:
        import psycopg

        for rep in range(args.repeat):
            row = {}
            sqlite = start(f"sqlite-{rep}")
            create_echo(sqlite.endpoint)
            row["sqlite"] = sequential(sqlite.endpoint, args.n)
            stop_all()
            db = f"lat{rep}"
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {db}")
            db_url = url.rsplit("/", 1)[0] + "/" + db
            alone = start(f"pg-{rep}-0", "--store", db_url)
            create_echo(alone.endpoint)
            row["postgres"] = sequential(alone.endpoint, args.n)
            for k in (1, 2):
                start(f"pg-{rep}-{k}", "--store", db_url)
            row["postgres_of_3"] = sequential(alone.endpoint, args.n)
            stop_all()
            row["ratio"] = round(row["postgres"]["p50_us"] / row["sqlite"]["p50_us"], 3)
            row["ratio_of_3"] = round(row["postgres_of_3"]["p50_us"] / row["sqlite"]["p50_us"], 3)
            doc["latency"].append(row)
            print(f"round {rep + 1}: {json.dumps(row)}", flush=True)
        doc["round_trip"] = round_trips(url)
        print(f"store round trips: {doc['round_trip']}", flush=True)
        for count in (1, 2, 3):
            db = f"tp{count}"
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {db}")
            db_url = url.rsplit("/", 1)[0] + "/" + db
            running = [start(f"tp-{count}-{k}", "--store", db_url) for k in range(count)]
            create_echo(running[0].endpoint)
            for engine in running[1:]:
                wait_known(engine.endpoint)
            figures = throughput(
                [e.endpoint for e in running],
                [e.process.pid for e in running],
                pg_pid,
                args.clients,
                args.client_procs,
                args.duration,
            )
            doc["throughput"].append(figures)
            print(f"{count} engine(s): {json.dumps(figures)}", flush=True)
            stop_all()
    finally:
        stop_all()
        subprocess.run(stop_pg, capture_output=True)
    out = BENCH / "results" / f"cluster-{doc['rev']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    print(report(doc))
    print(f"\n(raw: {out})")


def report(doc: dict) -> str:
    def mmm(values: list[float]) -> str:
        values = sorted(values)
        return f"{values[len(values) // 2]:.0f} ({values[0]:.0f}–{values[-1]:.0f})"

    def ratio(values: list[float]) -> str:
        values = sorted(values)
        return f"{values[len(values) // 2]:.2f} ({values[0]:.2f}–{values[-1]:.2f})"

    lat = doc["latency"]
    lines = [
        "| store | warm p50 µs | warm p99 µs | p50 ÷ SQLite p50 (same round) |",
        "|---|---|---|---|",
    ]
    for key, label, ratio_key in (
        ("sqlite", "SQLite, one engine", None),
        ("postgres", "PostgreSQL, one engine", "ratio"),
        ("postgres_of_3", "PostgreSQL, one of three engines", "ratio_of_3"),
    ):
        lines.append(
            f"| {label} | {mmm([r[key]['p50_us'] for r in lat])} | "
            f"{mmm([r[key]['p99_us'] for r in lat])} | "
            f"{ratio([r[ratio_key] for r in lat]) if ratio_key else '1'} |"
        )
    rt = doc.get("round_trip", {})
    lines += [
        "",
        f"A store round trip (psycopg async pool): `SELECT` p50 {rt.get('select_p50_us')} "
        f"µs, one concurrency grant (`lamina_grant`) p50 {rt.get('grant_p50_us')} µs.",
        "",
        "| engines | clients | calls/s | engine CPU µs/call (engine process) | "
        "engine CPU µs/call (with runtimes) | PostgreSQL CPU µs/call | PostgreSQL CPU % | "
        "errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for tp in doc["throughput"]:
        lines.append(
            f"| {tp['engines']} | {tp['clients']} | {tp['calls_per_s']:.0f} | "
            f"{' / '.join(f'{v:.0f}' for v in tp['engine_cpu_us_per_call'])} | "
            f"{' / '.join(f'{v:.0f}' for v in tp['engine_tree_cpu_us_per_call'])} | "
            f"{tp['postgres_cpu_us_per_call']:.0f} | {tp['postgres_cpu_pct']:.0f} | "
            f"{tp['errors']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
