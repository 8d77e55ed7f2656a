#!/usr/bin/env python3
"""Concurrency: throughput and p99 under many clients, a cold-start storm, and the memory of a
warm and of a frozen execution environment (issue 6).

One engine (`lamina serve --log-level WARNING`), no-op Python functions (`return event`):

* **load**: for 1, 16, 64 and 256 clients, threads with one keep-alive `http.client`
  connection each send unsigned Invokes (`{}`), the next when the last returns. All clients
  warm up (≥ 3 calls each, until the engine has scaled out), then a `--duration` window:
  successful calls/s, p50/p99/max (of every call started in the window), 429 throttles and
  other errors apart, the client's CPU and the engine's with its runtimes (200 % = both
  cores). Scenario `one`: every client calls one function; `many`: the clients spread
  round-robin over `--functions` (50) functions. A scenario's functions are deleted after
  it, which ends their environments.
* **cold storm**: `--storm` (100) new functions invoked once each, all at once (a barrier
  after the connections are open): wall time to the last answer, p50/p99 per call, errors.
* **memory**: 10 environments of one function (made by a first round of concurrent calls)
  run a 1.5 s call; each environment's process tree is read (RSS, PSS, private: lib/proctree)
  mid-call ("warm"), then once frozen (state T).

Targets: no errors at 256 clients; p99 ≤ 5 × p50 at 64 clients; frozen ≤ warm RSS.

    .venv/bin/python bench/concurrency.py              # ~1-2 min
    .venv/bin/python bench/concurrency.py --quick      # ~15 s smoke run

The client shares the 2 cores with the engine, and Python threads limit it at many clients:
its CPU is shown. Prints markdown tables, writes bench/results/concurrency-<rev>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(HERE / "tools"), str(ROOT)]  # lib/, tools/, tests/

from invoke_bench import own_cpu_seconds, self_cpu_seconds, tree_cpu_seconds
from lib import proctree
from lib.lambda_api import LambdaApi
from lib.stats import git_rev, percentile

from tests.conftest import start_server

SPEC = {
    "runtime": f"python3.{sys.version_info.minor}",
    "handler": "app.handler",
    "files": {
        "app.py": "import time\n\n\ndef handler(event, context):\n"
        "    if isinstance(event, dict) and event.get('sleep'):\n"
        "        time.sleep(event['sleep'])\n"
        "    return event\n"
    },
}


def pct_ms(seconds: list[float], p: float) -> float | None:
    """The p-th percentile (nearest rank) in milliseconds."""
    return round(percentile(seconds, p) * 1e3, 2) if seconds else None


def call(conn: http.client.HTTPConnection, name: str, body: bytes = b"{}") -> tuple[str, float]:
    """One Invoke: ('ok' | '429 Type: reason' | 'STATUS Type' | 'exception X', seconds)."""
    t0 = time.perf_counter()
    try:
        conn.request("POST", f"/2015-03-31/functions/{name}/invocations", body=body)
        response = conn.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()  # the next request reconnects
        return f"exception {type(exc).__name__}", time.perf_counter() - t0
    seconds = time.perf_counter() - t0
    function_error = response.getheader("X-Amz-Function-Error")
    if response.status == 200 and not function_error:
        return "ok", seconds
    kind = response.getheader("x-amzn-ErrorType") or f"FunctionError {function_error}"
    if response.status == 429:
        with contextlib.suppress(ValueError):
            kind += f": {json.loads(data).get('Reason') or json.loads(data).get('message')}"
    return f"{response.status} {kind}", seconds


def create(api: LambdaApi, names: list[str]) -> None:
    for name in names:
        status, body = api.create_function(name, SPEC)
        assert status in (200, 201), (name, status, body[:300])
    for name in names:  # Pending → Active is at once, but check
        while (
            json.loads(api.request("GET", f"/2015-03-31/functions/{name}/configuration")[2]).get(
                "State"
            )
            != "Active"
        ):
            time.sleep(0.05)


def environments(engine) -> int:
    return sum(len(f["Environments"]) for f in engine.get("/_lamina/overview")["Functions"])


def cpu_now(engine) -> tuple[float, float, float]:
    """CPU seconds: this client, the engine with its runtimes, the engine process alone."""
    pid = engine.process.pid
    return self_cpu_seconds(), tree_cpu_seconds([pid]), own_cpu_seconds([pid])


def environments_warmed(engine, clients: int) -> int:
    """Wait until the engine's environment count reaches `clients` or stops growing for 1 s
    (at least 1 s, at most 120 s); that count."""
    t0 = time.perf_counter()
    count, grew_at = environments(engine), t0
    while time.perf_counter() - t0 < 120:
        time.sleep(0.25)
        now, seen = time.perf_counter(), environments(engine)
        count, grew_at = (seen, now) if seen != count else (count, grew_at)
        if now - t0 >= 1 and (count >= clients or now - grew_at >= 1):
            break
    return count


def run_load(engine, names: list[str], clients: int, duration: float) -> dict:
    """`clients` threads round-robin over `names`: warm-up, then one timed window.

    Warm-up lasts until every client made 3 calls and the engine's environment count has
    reached `clients` or stopped growing for 1 s (at least 1 s, at most 120 s). calls/s counts
    the calls that end in the window; latencies and outcomes are those of every call started
    in it, so that a call stuck past the window's end still counts in p99."""
    window: dict = {}
    started, warm_done = threading.Event(), threading.Event()

    def open_window() -> None:  # run by the last thread to reach the barrier
        window["cpu0"] = cpu_now(engine)
        window["end"] = time.perf_counter() + duration
        started.set()

    barrier = threading.Barrier(clients, action=open_window)
    results: list = []

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", engine.port, timeout=120)
        name, warm, latencies, outcomes = names[k % len(names)], Counter(), [], Counter()
        while sum(warm.values()) < 3 or not warm_done.is_set():
            warm[call(conn, name)[0]] += 1
        try:
            barrier.wait(timeout=600)
        except threading.BrokenBarrierError:
            outcomes["barrier broken (a client hung in warm-up)"] += 1
        in_window = 0
        while window and time.perf_counter() < window["end"]:
            outcome, seconds = call(conn, name)
            outcomes[outcome] += 1
            if outcome == "ok":
                latencies.append(seconds)
                in_window += time.perf_counter() <= window["end"]
        conn.close()
        results.append((warm, outcomes, latencies, in_window))

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for thread in threads:
        thread.start()
    t0 = time.perf_counter()
    count = environments_warmed(engine, clients)
    warm_done.set()
    cpu = [None, None, None]
    if started.wait(timeout=600):
        time.sleep(max(0.0, window["end"] - time.perf_counter()))
        cpu = [round((b - a) / duration * 100, 1) for a, b in zip(window["cpu0"], cpu_now(engine))]
    for thread in threads:
        thread.join(180)
    warm, outcomes, latencies, ok = Counter(), Counter(), [], 0
    for w, o, lat, n in results:
        warm.update(w)
        outcomes.update(o)
        latencies.extend(lat)
        ok += n
    outcomes.pop("ok", None)
    warm.pop("ok", None)
    p50, p99 = pct_ms(latencies, 50), pct_ms(latencies, 99)
    return {
        "clients": clients,
        "functions": len(names),
        "environments_at_start": count,
        "environments": environments(engine),
        "engine_fds": len(os.listdir(f"/proc/{engine.process.pid}/fd")),
        "calls_per_s": round(ok / duration, 1),
        "ok_in_window": ok,
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": pct_ms(latencies, 100),
        "p99_over_p50": p50 and round(p99 / p50, 2),
        "throttles": {k: v for k, v in outcomes.items() if k.startswith("429")},
        "errors": {k: v for k, v in outcomes.items() if not k.startswith("429")},
        "warmup_s": round(window["end"] - duration - t0, 1) if window else None,
        "warmup_not_ok": dict(warm),
        "hung_clients": clients - len(results),
        "client_cpu_pct": cpu[0],
        "engine_cpu_pct": cpu[1],
        "engine_main_cpu_pct": cpu[2],
    }


def storm(engine, names: list[str]) -> dict:
    """Invoke each (new) function once, all at once."""
    conns = [http.client.HTTPConnection("127.0.0.1", engine.port, timeout=120) for _ in names]
    for conn in conns:
        conn.connect()
    t0: list[float] = []
    barrier = threading.Barrier(len(names), action=lambda: t0.append(time.perf_counter()))
    done: list = []

    def one(k: int) -> None:
        barrier.wait()
        done.append((*call(conns[k], names[k]), time.perf_counter()))
        conns[k].close()

    threads = [threading.Thread(target=one, args=(k,), daemon=True) for k in range(len(names))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    latencies = [r[1] for r in done if r[0] == "ok"]
    return {
        "functions": len(names),
        "hung": len(names) - len(done),
        "wall_ms": round((max(r[2] for r in done) - t0[0]) * 1e3, 1) if done else None,
        "p50_ms": pct_ms(latencies, 50),
        "p99_ms": pct_ms(latencies, 99),
        "not_ok": dict(Counter(r[0] for r in done if r[0] != "ok")),
    }


def env_memory(pid: int, table: dict[int, int]) -> dict:
    """State of one environment's runtime and the summed memory of its process tree."""
    infos = [i for i in map(proctree.full_info, [pid, *proctree.descendants(pid, table)]) if i]
    return {
        "state": infos[0]["state"] if infos else "?",
        "processes": len(infos),
        **{k: sum(i[k] or 0 for i in infos) for k in ("rss_kb", "pss_kb", "private_kb")},
    }


def cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def memory(engine, name: str, n: int = 10) -> dict:
    """Environments of `name` read while running a 1.5 s call, then once frozen."""

    def round_of(seconds: float) -> list[threading.Thread]:
        body = json.dumps({"sleep": seconds}).encode()
        threads = [
            threading.Thread(
                target=call,
                daemon=True,
                args=(http.client.HTTPConnection("127.0.0.1", engine.port, timeout=60), name, body),
            )
            for _ in range(n)
        ]
        for thread in threads:
            thread.start()
        return threads

    for thread in round_of(0.5):  # n concurrent calls: n environments
        thread.join()
    threads = round_of(1.5)
    time.sleep(0.8)
    # the running environments: the engine's children not stopped, but not the spare (cwd /)
    table = proctree.parent_table()
    warm = {
        p: env_memory(p, table)
        for p, parent in table.items()
        if parent == engine.process.pid
        and cwd(p) not in ("/", None)
        and (proctree.quick_info(p) or {}).get("state") != "T"
    }
    for thread in threads:
        thread.join()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        (proctree.quick_info(p) or {}).get("state") != "T" for p in warm
    ):
        time.sleep(0.05)
    table = proctree.parent_table()
    frozen = {p: env_memory(p, table) for p in warm}
    out = {
        "environments": len(warm),
        "frozen_states": dict(Counter(v["state"] for v in frozen.values())),
        "frozen_minus_warm_rss_kb_max": max(
            (frozen[p]["rss_kb"] - warm[p]["rss_kb"] for p in warm), default=None
        ),
    }
    for label, found in (("warm", warm), ("frozen", frozen)):
        for key in ("rss_kb", "pss_kb", "private_kb"):
            out[f"{label}_{key}_median"] = (
                statistics.median([v[key] for v in found.values()]) if found else None
            )
    out["per_env"] = [{"pid": p, "warm": warm[p], "frozen": frozen[p]} for p in warm]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--duration", type=float, help="seconds per window (5)")
    parser.add_argument("--clients", help="client counts (1,16,64,256)")
    parser.add_argument("--functions", type=int, help="functions of the `many` scenario (50)")
    parser.add_argument("--storm", type=int, help="functions in the cold storm (100)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="defaults of 1 s windows, 1,16,64 clients, 10 functions, a storm of 20",
    )
    args = parser.parse_args()
    for key, full, quick in (
        ("duration", 5.0, 1.0),
        ("clients", "1,16,64,256", "1,16,64"),
        ("functions", 50, 10),
        ("storm", 100, 20),
    ):
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    scratch = Path(tempfile.mkdtemp(prefix="lamina-bench-concurrency-"))
    engine = start_server(scratch / "data", "--log-level", "WARNING")
    api = LambdaApi(engine.endpoint)
    out: dict = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "args": vars(args),
        "load": [],
    }
    try:
        for scenario, names in (
            ("one", ["one"]),
            ("many", [f"many-{k:02d}" for k in range(args.functions)]),
        ):
            create(api, names)
            for clients in (int(c) for c in args.clients.split(",")):
                out["load"].append(
                    {"scenario": scenario, **run_load(engine, names, clients, args.duration)}
                )
                print(
                    f"# {scenario} c{clients}: {out['load'][-1]['calls_per_s']} calls/s",
                    file=sys.stderr,
                )
            for name in names:
                api.delete_function(name)
        names = [f"storm-{k:03d}" for k in range(args.storm)]
        create(api, names)
        out["storm"] = storm(engine, names)
        create(api, ["mem"])
        out["memory"] = memory(engine, "mem")
        out["engine_rss_kb"] = proctree.quick_info(engine.process.pid)["rss_kb"]
    finally:
        api.close()
        engine.stop()
        out["engine_log"] = [
            line
            for line in engine.log().splitlines()  # at WARNING, all
            if not line.startswith("Lamina ready")
        ][:50]  # else is news
        shutil.rmtree(scratch, ignore_errors=True)
    rev = git_rev()
    path = HERE / "results" / f"concurrency-{rev}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    report(out, path)


def report(out: dict, path: Path) -> None:
    def brief(d: dict) -> str:
        return ", ".join(f"{v}× {k}" for k, v in d.items()) or "0"

    def row(*cells: object) -> None:
        print("| " + " | ".join(str(c) for c in cells) + " |")

    row(
        "scenario",
        "clients",
        "functions",
        "envs at start / end",
        "engine fds",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "p99/p50",
        "429s",
        "errors",
        "warm-up not ok",
        "client CPU %",
        "engine CPU % (engine process)",
    )
    print("|---" * 15 + "|")
    for r in out["load"]:
        row(
            r["scenario"],
            r["clients"],
            r["functions"],
            f"{r['environments_at_start']} / {r['environments']}",
            r["engine_fds"],
            r["calls_per_s"],
            r["p50_ms"],
            r["p99_ms"],
            r["max_ms"],
            r["p99_over_p50"],
            brief(r["throttles"]),
            brief(r["errors"]),
            brief(r["warmup_not_ok"]),
            r["client_cpu_pct"],
            f"{r['engine_cpu_pct']} ({r['engine_main_cpu_pct']})",
        )
    s, m = out["storm"], out["memory"]
    print(
        f"\ncold storm: {s['functions']} new functions at once, all answered in "
        f"{s['wall_ms']} ms; per call p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms; "
        f"not ok: {brief(s['not_ok'])}; hung: {s['hung']}\n"
    )
    row(f"per environment (median of {m['environments']})", "RSS kB", "PSS kB", "private kB")
    print("|---" * 4 + "|")
    for state in ("warm", "frozen"):
        row(state, *(m[f"{state}_{k}_median"] for k in ("rss_kb", "pss_kb", "private_kb")))
    print(
        f"\nfrozen states: {m['frozen_states']}; largest frozen − warm RSS of one environment: "
        f"{m['frozen_minus_warm_rss_kb_max']} kB; engine RSS at the end: "
        f"{out['engine_rss_kb']} kB\n"
    )

    loads = {(r["scenario"], r["clients"]): r for r in out["load"]}
    row("target", "measured", "verdict")
    print("|---" * 3 + "|")
    for scenario in ("one", "many"):
        r = loads.get((scenario, 256))
        if r is None:
            row(f"no errors at 256 clients ({scenario})", "not run", "–")
            continue
        both = Counter(r["errors"]) + Counter(r["throttles"]) + Counter(r["warmup_not_ok"])
        throttles = sum(v for k, v in both.items() if k.startswith("429"))
        errors = sum(both.values()) - throttles + r["hung_clients"]
        row(
            f"no errors at 256 clients ({scenario}, warm-up included)",
            f"{errors} errors, {throttles} 429s",
            "FAIL" if errors else "THROTTLED" if throttles else "PASS",
        )
    for scenario in ("one", "many"):
        ratio = (loads.get((scenario, 64)) or {}).get("p99_over_p50")
        row(
            f"p99 ≤ 5 × p50 at 64 clients ({scenario})",
            "not run" if ratio is None else f"{ratio}×",
            "–" if ratio is None else "PASS" if ratio <= 5 else "FAIL",
        )
    warm, frozen = m["warm_rss_kb_median"], m["frozen_rss_kb_median"]
    verdict = "–" if warm is None or frozen is None else "PASS" if frozen <= warm * 1.01 else "FAIL"
    row(
        "frozen ≤ warm RSS (1 % slack: the call's return moves a few pages)",
        f"{frozen} vs {warm} kB (median)",
        verdict,
    )
    if out["engine_log"]:
        print("\nengine log (first lines):\n" + "\n".join(out["engine_log"][:10]))
    print(f"\n(raw: {path})")


if __name__ == "__main__":
    main()
