#!/usr/bin/env python3
"""What recording costs, and how the console's invocation list answers with 1M invocations.

1. Warm invoke latency with records on and off, in the same run: two engines, `lamina serve`
   and `lamina serve --no-records`, the same no-op Python function on each, measured in
   alternating rounds of sequential calls on one keep-alive connection. p50 and p99 of each
   and their ratio (target: records on within 5% of records off at p50).
2. The invocation list with `--rows` (1,000,000) invocations stored: rows written straight
   into a scratch SQLite store (sync calls with their embedded timelines, async events with
   records), then an engine serving that store answers GET /_lamina/invocations, unfiltered
   and filtered by function, type, outcome and time, and a page further back (target: under
   200 ms each). Also timed: the store queries alone, and one retention pass.

  .venv/bin/python bench/records.py                    # both parts (~3 min on 2 cores)
  .venv/bin/python bench/records.py --skip-list        # part 1 only
  .venv/bin/python bench/records.py --rows 100000      # a smaller store

Servers listen on free loopback ports and are stopped by PID; scratch files live in
$LAMINA_BENCH_SCRATCH (default <tmp>/lamina-bench-records). Results: bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import http.client
import io
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from lamina.domain.model import AttemptRecord, InvocationSummary  # noqa: E402
from lamina.domain.observed import InvocationFilter  # noqa: E402
from lamina.storage.sqlite import SqliteStore  # noqa: E402

HANDLER = "def handler(event, context):\n    return event\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Engine:
    """One `lamina serve` child, stopped by its PID."""

    def __init__(self, scratch: Path, name: str, *args: str) -> None:
        self.port = free_port()
        data = scratch / name
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        self.log = open(data / "serve.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lamina",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(data),
                "--log-level",
                "WARNING",
                *args,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not self.request("GET", "/_lamina/health", quiet=True)[0] == 200:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"lamina serve ({name}) did not start")
            time.sleep(0.05)

    def request(
        self, method: str, path: str, body: bytes = b"", quiet: bool = False
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read()
        except OSError:
            if not quiet:
                raise
            return 0, b""
        finally:
            conn.close()

    def create_function(self, name: str) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("lambda_function.py", HANDLER)
        minor = sys.version_info.minor
        spec = {
            "FunctionName": name,
            "Runtime": f"python3.{minor}",
            "Handler": "lambda_function.handler",
            "Role": "arn:aws:iam::123456789012:role/b",
            "Code": {"ZipFile": base64.b64encode(buffer.getvalue()).decode()},
        }
        status, body = self.request("POST", "/2015-03-31/functions", json.dumps(spec).encode())
        assert status == 201, body
        for _ in range(200):
            _, body = self.request("GET", f"/2015-03-31/functions/{name}")
            if json.loads(body)["Configuration"]["State"] == "Active":
                return
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def timed_calls(port: int, name: str, count: int) -> list[float]:
    """Latencies (µs) of `count` sequential invokes on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    path = f"/2015-03-31/functions/{name}/invocations"
    found = []
    try:
        for _ in range(count):
            start = time.perf_counter_ns()
            conn.request("POST", path, body=b'{"hello":"world"}')
            response = conn.getresponse()
            response.read()
            found.append((time.perf_counter_ns() - start) / 1000)
            assert response.status == 200
    finally:
        conn.close()
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (all its threads: the store's writer too)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def recording_cost(scratch: Path, rounds: int, calls: int) -> dict:
    """Alternating rounds on two engines; pooled p50/p99, the median of the per-round p50
    ratios (robust to a machine whose speed drifts), and engine CPU per call."""
    engines = {
        "on": Engine(scratch, "records-on"),
        "off": Engine(scratch, "records-off", "--no-records"),
    }
    samples: dict[str, list[float]] = {"on": [], "off": []}
    medians: dict[str, list[float]] = {"on": [], "off": []}
    cpu = {"on": 0.0, "off": 0.0}
    try:
        for engine in engines.values():
            engine.create_function("noop")
            timed_calls(engine.port, "noop", 200)
        for round_number in range(rounds):
            order = ["on", "off"] if round_number % 2 == 0 else ["off", "on"]
            for key in order:
                timed_calls(engines[key].port, "noop", 20)
                before = cpu_seconds(engines[key].proc.pid)
                found = timed_calls(engines[key].port, "noop", calls)
                cpu[key] += cpu_seconds(engines[key].proc.pid) - before
                samples[key] += found
                medians[key].append(percentile(found, 0.5))
        status, body = engines["on"].request("GET", "/_lamina/invocations?limit=1")
        recorded = len(json.loads(body)["Invocations"])
    finally:
        for engine in engines.values():
            engine.stop()
    result: dict = {
        key: {
            "p50_us": round(percentile(v, 0.5), 1),
            "p99_us": round(percentile(v, 0.99), 1),
            "mean_us": round(statistics.fmean(v), 1),
            "calls": len(v),
            "engine_cpu_us_per_call": round(cpu[key] / len(v) * 1e6, 1),
        }
        for key, v in samples.items()
    }
    result["p50_ratio"] = round(result["on"]["p50_us"] / result["off"]["p50_us"], 4)
    result["paired_p50_ratio"] = round(
        statistics.median(on / off for on, off in zip(medians["on"], medians["off"])), 4
    )
    result["recorded_while_on"] = recorded == 1
    return result


# part 2 ------------------------------------------------------------------------------------
FUNCTIONS = [f"fn-{n:03d}" for n in range(50)]


def invocation(
    n: int, now: float, rows: int, rng: random.Random
) -> tuple[InvocationSummary, list[AttemptRecord]]:
    """One stored invocation, as the engine writes them (n=0 the oldest)."""
    accepted = now - (rows - n) * 0.01
    request_id = f"{n:08d}-0000-4000-8000-{rng.getrandbits(48):012x}"
    function = FUNCTIONS[rng.randrange(len(FUNCTIONS))]
    draw = rng.random()
    if draw < 0.15:
        status = "success" if rng.random() < 0.9 else "failed"
        records = [
            AttemptRecord(request_id, accepted, "accepted", {"type": "Event"}),
            AttemptRecord(request_id, accepted, "queued", {"due": accepted}),
            AttemptRecord(
                request_id,
                accepted + 0.01,
                "attempt",
                {
                    "attempt": 1,
                    "environment": "e" * 32,
                    "start": "warm",
                    "outcome": "success",
                    "duration_ms": 1.2,
                },
            ),
        ]
        summary = InvocationSummary(
            request_id,
            function,
            None,
            "Event",
            accepted,
            status,
            accepted + 0.02,
            1,
            None if status == "success" else "RetriesExhausted",
        )
        return summary, records
    kind = "EventSourceMapping" if draw < 0.2 else "RequestResponse"
    status = "success" if rng.random() < 0.88 else ("error" if rng.random() < 0.8 else "rejected")
    summary = InvocationSummary(
        request_id,
        function,
        None,
        kind,
        accepted,
        status,
        accepted + 0.001,
        1,
        "TypeError" if status == "error" else None,
        0.8,
    )
    if "timeline" in {f.name for f in dataclasses.fields(InvocationSummary)}:
        summary.timeline = [  # type: ignore[attr-defined]
            AttemptRecord(request_id, accepted, "accepted", {"type": kind, "version": "$LATEST"}),
            AttemptRecord(
                request_id,
                accepted + 0.001,
                "attempt",
                {
                    "attempt": 1,
                    "environment": "e" * 32,
                    "start": "warm",
                    "outcome": status,
                    "duration_ms": 0.8,
                },
            ),
        ]
        return summary, []
    return summary, [AttemptRecord(request_id, accepted, "accepted", {"type": kind})]


async def fill(path: Path, rows: int, batch: int = 10_000) -> tuple[float, float]:
    """Write `rows` invocations into a fresh SQLite store; (seconds taken, newest time)."""
    store = SqliteStore(path)
    await store.open()
    rng = random.Random(7)
    now = time.time()
    started = time.perf_counter()
    for first in range(0, rows, batch):
        made = [invocation(n, now, rows, rng) for n in range(first, min(rows, first + batch))]
        await store.write_records([s for s, _ in made], [r for _, rs in made for r in rs])
    took = time.perf_counter() - started
    await store.close()
    return took, now


LIST_QUERIES = {
    "newest 50": {},
    "by function": {"function": "fn-007"},
    "by type async": {"type": "async"},
    "by type mapping": {"type": "mapping"},
    "by outcome error": {"status": "error"},
    "by outcome failed": {"status": "failed"},
    "function + outcome + type": {"function": "fn-007", "status": "failed", "type": "async"},
    "last 10 min": {"since": "10m"},
    "worst: async + error (none)": {"type": "async", "status": "error"},
    "worst: fn + dropped (none)": {"function": "fn-007", "status": "dropped"},
}


async def store_timings(path: Path, repeat: int) -> dict:
    store = SqliteStore(path)
    await store.open()
    found = {}
    try:
        for label, wanted in [
            ("newest 50", InvocationFilter()),
            ("by function", InvocationFilter(function="fn-007")),
            ("by outcome failed", InvocationFilter(status="failed")),
            ("by type mapping", InvocationFilter(invocation_type="EventSourceMapping")),
        ]:
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                await store.find_invocations(wanted)
                times.append((time.perf_counter() - start) * 1000)
            found[label] = round(statistics.median(times), 2)
        start = time.perf_counter()
        cutoff = await store.invocation_cutoff(900_000)
        found["retention: cutoff of the newest 900k"] = round(
            (time.perf_counter() - start) * 1000, 1
        )
        if cutoff is not None:
            start = time.perf_counter()
            await store.purge_invocations(cutoff, 2000)
            found["retention: one purge chunk (2000)"] = round(
                (time.perf_counter() - start) * 1000, 1
            )
    finally:
        await store.close()
    return found


def list_timings(scratch: Path, db: Path, repeat: int, rows: int) -> dict:
    engine = Engine(
        scratch,
        "list",
        "--store",
        f"sqlite://{db}",
        "--records-max-rows",
        "0",
        "--records-max-age",
        "0",
    )
    found: dict[str, dict] = {}
    try:
        status, body = engine.request("GET", "/_lamina/invocations?limit=50")
        next_before = json.loads(body)["NextBefore"]
        queries = dict(LIST_QUERIES)
        queries["half-way back (before=)"] = {"before": str(next_before - rows * 0.01 / 2)}
        for label, params in queries.items():
            path = "/_lamina/invocations?" + "&".join(
                f"{k}={v}" for k, v in {**params, "limit": 50}.items()
            )
            times, shown = [], 0
            for _ in range(repeat):
                start = time.perf_counter()
                status, body = engine.request("GET", path)
                times.append((time.perf_counter() - start) * 1000)
                assert status == 200, body
                shown = len(json.loads(body)["Invocations"])
            found[label] = {
                "median_ms": round(statistics.median(times), 2),
                "p95_ms": round(percentile(times, 0.95), 2),
                "max_ms": round(max(times), 2),
                "rows": shown,
            }
    finally:
        engine.stop()
    return found


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=40, help="alternating rounds (default 40)")
    ap.add_argument("--calls", type=int, default=150, help="calls per round (default 150)")
    ap.add_argument("--rows", type=int, default=1_000_000, help="invocations stored (1000000)")
    ap.add_argument("--repeat", type=int, default=30, help="requests per list query (30)")
    ap.add_argument("--skip-cost", action="store_true", help="skip part 1")
    ap.add_argument("--skip-list", action="store_true", help="skip part 2")
    ap.add_argument("--out", type=Path, help="JSON results (default bench/results/…)")
    args = ap.parse_args(argv)
    scratch = Path(
        os.environ.get("LAMINA_BENCH_SCRATCH")
        or Path(tempfile.gettempdir()) / "lamina-bench-records"
    )
    scratch.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    if not args.skip_cost:
        results["recording_cost"] = cost = recording_cost(scratch, args.rounds, args.calls)
        print(
            f"warm invoke p50: records on {cost['on']['p50_us']} µs, off "
            f"{cost['off']['p50_us']} µs, ratio {cost['p50_ratio']}, paired ratio "
            f"{cost['paired_p50_ratio']} (target ≤ 1.05); p99 on {cost['on']['p99_us']} µs, "
            f"off {cost['off']['p99_us']} µs; engine CPU per call on "
            f"{cost['on']['engine_cpu_us_per_call']} µs, off "
            f"{cost['off']['engine_cpu_us_per_call']} µs",
            flush=True,
        )
    if not args.skip_list:
        db = scratch / "million.db"
        for leftover in scratch.glob("million.db*"):
            leftover.unlink()
        took, _ = asyncio.run(fill(db, args.rows))
        print(
            f"stored {args.rows} invocations in {took:.1f} s ({db.stat().st_size / 1e6:.0f} MB)",
            flush=True,
        )
        results["list"] = {
            "rows": args.rows,
            "fill_s": round(took, 1),
            "http": list_timings(scratch, db, args.repeat, args.rows),
            "store_ms": asyncio.run(store_timings(db, args.repeat)),
        }
        for label, figures in results["list"]["http"].items():
            print(
                f"  GET /_lamina/invocations {label:28} median {figures['median_ms']:7.2f} ms  "
                f"p95 {figures['p95_ms']:7.2f} ms  ({figures['rows']} rows)"
            )
        for label, ms in results["list"]["store_ms"].items():
            print(f"  store {label:40} {ms} ms")
    out = args.out or REPO / "bench" / "results" / f"records-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
