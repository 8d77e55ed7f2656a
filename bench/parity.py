#!/usr/bin/env python3
"""Do heartbeats and SDK-retry attachment cost anything on the hot path?

Requirement: warm invoke p50 with the default profile within 5 % of `--parity strict`
(no 100-Continue heartbeats, no attachment of SDK retries), measured in the same run.

Two engines run side by side, one default and one strict, each with the same no-op Python
function. Every call carries a fresh `amz-sdk-invocation-id` and `amz-sdk-request:
attempt=1; max=3`, as botocore sends them, so the default engine's attachment bookkeeping
(look up a running call, register this one, keep its result) is on the path being timed.
The client is one keep-alive `http.client` connection per engine (unsigned requests). The
engines alternate in rounds (ABAB, then BABA) so that a busy spell on this shared machine
hits both alike; the ratio is taken inside each round. A shorter boto3 pass (one client
per engine, botocore's default retry configuration) shows what a boto3 user sees.

    .venv/bin/python bench/parity.py [--rounds 10] [-n 300] [--quick]

Prints a markdown table and the verdict; writes bench/results/parity-<rev>.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.stats import git_rev, percentile  # noqa: E402

from tests.conftest import ROLE, client, make_zip, start_server  # noqa: E402

NOOP = make_zip({"app.py": "def handler(event, context):\n    return event\n"})
PROFILES = {"default": [], "strict": ["--parity", "strict"]}
BODY, EVENT = b'{"hello":"world"}', {"hello": "world"}
TARGET = 1.05


def raw_caller(port: int):
    """A function that makes one call and returns the response's request id."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(invocation_id: str | None = None, attempt: int = 1) -> str:
        conn.request(
            "POST",
            "/2015-03-31/functions/noop/invocations",
            body=BODY,
            headers={
                "Content-Type": "application/json",
                "amz-sdk-invocation-id": invocation_id or str(uuid.uuid4()),
                "amz-sdk-request": f"attempt={attempt}; max=3",
            },
        )
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200 and json.loads(body) == EVENT, (response.status, body)
        return response.headers["x-amzn-RequestId"]

    return call


def boto3_caller(endpoint: str):
    import boto3

    lam = boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )

    def call() -> None:
        assert json.loads(lam.invoke(FunctionName="noop", Payload=BODY)["Payload"].read()) == EVENT

    return call


def timed(call, n: int) -> list[float]:
    """Microseconds of `n` sequential calls."""
    out = []
    for _ in range(n):
        started = time.perf_counter_ns()
        call()
        out.append((time.perf_counter_ns() - started) / 1000)
    return out


def interleave(callers: dict, rounds: int, n: int) -> dict:
    """Per-round p50s and ratios, the engines' order reversed every other round."""
    for call in callers.values():
        timed(call, 50)  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in callers}
    per_round: list[dict[str, float]] = []
    for r in range(rounds):
        p50s = {}
        for name in list(callers) if r % 2 == 0 else list(callers)[::-1]:
            latencies = timed(callers[name], n)
            samples[name] += latencies
            p50s[name] = percentile(latencies, 50)
        per_round.append({**p50s, "ratio": p50s["default"] / p50s["strict"]})
    ratios = [row["ratio"] for row in per_round]
    return {
        "rounds": per_round,
        "n": n,
        **{
            name: {
                "p50_us": statistics.median(row[name] for row in per_round),
                "p99_us": percentile(values, 99),
            }
            for name, values in samples.items()
        },
        "ratio": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("-n", type=int, default=300, help="calls per engine per round")
    parser.add_argument("--boto3-rounds", type=int, default=4, help="0 skips the boto3 pass")
    parser.add_argument("--quick", action="store_true", help="3 rounds x 100 calls")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.n, args.boto3_rounds = 3, 100, min(args.boto3_rounds, 2)
    scratch = Path(tempfile.mkdtemp(prefix="lamina-parity-bench-"))
    engines: dict = {}
    try:
        for name, flags in PROFILES.items():
            engines[name] = engine = start_server(
                scratch / name / "data", *flags, "--log-level", "WARNING"
            )
            lam = client(engine.endpoint)
            lam.create_function(
                FunctionName="noop",
                Runtime=f"python3.{sys.version_info.minor}",
                Role=ROLE,
                Handler="app.handler",
                Code={"ZipFile": NOOP},
            )
            lam.get_waiter("function_active_v2").wait(
                FunctionName="noop", WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
            )
            lam.close()
        raw = {name: raw_caller(engine.port) for name, engine in engines.items()}
        # Sanity: a retry (same id, attempt 2) attaches on default and runs again on strict.
        attaches = {}
        for name, call in raw.items():
            same = str(uuid.uuid4())
            attaches[name] = call(same) == call(same, attempt=2)
        assert attaches == {"default": True, "strict": False}, attaches
        results = {"raw": interleave(raw, args.rounds, args.n)}
        if args.boto3_rounds:
            results["boto3"] = interleave(
                {name: boto3_caller(engine.endpoint) for name, engine in engines.items()},
                args.boto3_rounds,
                args.n,
            )
    finally:
        for engine in engines.values():
            engine.stop()
    rev = git_rev()
    out = ROOT / "bench" / "results" / f"parity-{rev}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "rev": rev,
                "target_ratio": TARGET,
                "results": results,
            },
            indent=2,
        )
    )
    print(
        "| client | rounds × n | default p50 µs | strict p50 µs | default p99 µs "
        "| strict p99 µs | default/strict p50 (min–max) |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, res in results.items():
        ratio = res["ratio"]
        print(
            f"| {label} | {len(res['rounds'])} × {res['n']} | {res['default']['p50_us']:.0f} "
            f"| {res['strict']['p50_us']:.0f} | {res['default']['p99_us']:.0f} "
            f"| {res['strict']['p99_us']:.0f} | {ratio['median']:.3f} "
            f"({ratio['min']:.3f}–{ratio['max']:.3f}) |"
        )
    verdict = "yes" if results["raw"]["ratio"]["median"] <= TARGET else "no"
    print(f"\nwithin 5% (raw, median of per-round ratios): {verdict}\n(raw: {out})")


if __name__ == "__main__":
    main()
