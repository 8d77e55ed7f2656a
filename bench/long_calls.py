#!/usr/bin/env python3
"""What a long synchronous call does to each client, under each Lamina profile.

A function sleeps 5 s; each client times out after 2 s and retries as its defaults say. For
each profile (default: heartbeats every 15 s; heartbeats every 1 s; no heartbeats; strict
parity, i.e. AWS's behaviour) and each client (boto3 legacy and standard retries, aws-sdk v2,
@aws-sdk/client-lambda v3), it prints how many times the function ran, how many HTTP requests
the client made, how long the call took, and how it ended.

    .venv/bin/python bench/long_calls.py            # a markdown table on stdout

Needs `scripts/setup --test` (boto3, node and the JavaScript SDKs in tests/js).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import FUNCTIONS, client, create_function, start_server, zip_dir  # noqa: E402

PROFILES = {
    "default (heartbeat 15 s)": [],
    "heartbeat 1 s": ["--heartbeat-interval", "1"],
    "no heartbeats (attach only)": ["--heartbeat-interval", "0"],
    "strict parity (as AWS)": ["--parity", "strict"],
}
CLIENTS = ["boto3 legacy", "boto3 standard", "aws-sdk v2", "@aws-sdk/client-lambda v3"]


def call(engine, who: str, marker: str) -> tuple[str, float]:
    payload = json.dumps({"marker": marker, "seconds": 5})
    started = time.monotonic()
    if who.startswith("boto3"):
        lam = client(engine.endpoint, read_timeout=2, retries={"mode": who.split()[1]})
        try:
            lam.invoke(FunctionName="slow", Payload=payload.encode())["Payload"].read()
            outcome = "result"
        except Exception as exc:  # the client gave up: that is what we measure
            outcome = type(exc).__name__
        finally:
            lam.close()
    else:
        js = ROOT / "tests" / "js"
        env = {
            k: v
            for k, v in os.environ.items()
            if k != "NODE_EXTRA_CA_CERTS" and not k.startswith("AWS_")
        }
        out = subprocess.run(
            [
                "node",
                str(js / "long_call.mjs"),
                engine.endpoint,
                "slow",
                "v2" if "v2" in who else "v3",
                "2000",
                payload,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=js,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        outcome = "result" if result["ok"] else result["error"].split(":")[0]
    return outcome, time.monotonic() - started


def requests_made(engine, marker_runs: list[str]) -> int:
    """Requests of one call = runs + attached retries, from the engine's timelines."""
    time.sleep(0.5)
    total = 0
    for request_id in marker_runs:
        kinds = [e["Kind"] for e in engine.get(f"/_lamina/invocations/{request_id}")["Timeline"]]
        total += 1 + kinds.count("attached")
    return total


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="lamina-long-calls-"))
    runs_dir = scratch / "runs"
    runs_dir.mkdir()
    print("| profile | client | function runs | requests | seconds | client got |")
    print("|---|---|---|---|---|---|")
    for profile, flags in PROFILES.items():
        engine = start_server(scratch / uuid.uuid4().hex / "data", *flags)
        lam = client(engine.endpoint)
        create_function(
            lam,
            "slow",
            zip_dir(FUNCTIONS / "async"),
            handler="index.counted",
            Timeout=15,
            Environment={"Variables": {"RUNS_DIR": str(runs_dir)}},
        )
        lam.close()
        try:
            for who in CLIENTS:
                marker = uuid.uuid4().hex
                outcome, seconds = call(engine, who, marker)
                time.sleep(1)  # a run started by the client's last retry is counted too
                path = runs_dir / marker
                ran = path.read_text().split() if path.exists() else []
                print(
                    f"| {profile} | {who} | {len(ran)} | {requests_made(engine, ran)} | "
                    f"{seconds:.1f} | {outcome} |",
                    flush=True,
                )
        finally:
            engine.stop()


if __name__ == "__main__":
    main()
