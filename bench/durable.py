"""Durable functions: checkpoint round trip, and 100 durable steps beside 100 plain ones.

    .venv/bin/python bench/durable.py [--steps 100] [--repeat 3]

Starts a real `lamina serve` (SQLite, in a scratch dir), creates three python3.13 functions
with the unmodified SDK bundled, and measures with boto3, in one run:

* the checkpoint round trip: one CheckpointDurableExecution (an empty update, as the SDK
  sends to refresh state) from inside a running invocation, timed by the function;
* a durable execution of N steps (each a checkpoint START+SUCCEED, one invocation),
  synchronous, end to end;
* the same N step bodies in a plain (non-durable) function: the baseline.

Prints the medians and the ratio; nothing is written in the repository.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.acceptance.test_durable_conformance import sdk_package  # noqa: E402
from tests.conftest import ROLE, client, start_server  # noqa: E402

CODE = b'''
import json, time
from aws_durable_execution_sdk_python import DurableContext, durable_execution

@durable_execution
def steps(event, context: DurableContext):
    total = 0
    for i in range(event["n"]):
        total += context.step(lambda _, i=i: i, name=f"s{i}")
    return total

def plain(event, context):
    total = 0
    for i in range(event["n"]):
        total += (lambda _, i=i: i)(None)
    return total

@durable_execution
def round_trip(event, context: DurableContext):
    state = context.state
    times = []
    for _ in range(event["n"]):
        started = time.perf_counter()
        state.create_checkpoint()  # an empty, synchronous checkpoint
        times.append((time.perf_counter() - started) * 1000)
    return times
'''


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="lamina-durable-bench-"))
    engine = start_server(scratch / "data")
    try:
        lam = client(engine.endpoint, read_timeout=300)
        package = sdk_package({"handler.py": CODE})
        for name, handler, durable in (("steps", "steps", True), ("plain", "plain", False),
                                       ("rt", "round_trip", True)):
            extra = {"DurableConfig": {"ExecutionTimeout": 600}} if durable else {}
            lam.create_function(FunctionName=name, Runtime="python3.13", Role=ROLE,
                                Handler=f"handler.{handler}", Timeout=120,
                                Code={"ZipFile": package}, **extra)
        time.sleep(1)

        def run(name: str, n: int) -> tuple[float, bytes]:
            started = time.perf_counter()
            reply = lam.invoke(FunctionName=name, Qualifier="$LATEST",
                               Payload=json.dumps({"n": n}).encode())
            body = reply["Payload"].read()
            return (time.perf_counter() - started) * 1000, body

        run("steps", 1), run("plain", 1), run("rt", 1)  # warm the environments
        durable_ms = [run("steps", args.steps)[0] for _ in range(args.repeat)]
        plain_ms = [run("plain", args.steps)[0] for _ in range(args.repeat)]
        trips: list[float] = []
        for _ in range(args.repeat):
            trips += json.loads(run("rt", 50)[1])
        print(f"checkpoint round trip (empty, from the function): median "
              f"{statistics.median(trips):.2f} ms, p90 "
              f"{statistics.quantiles(trips, n=10)[-1]:.2f} ms ({len(trips)} checkpoints)")
        d, p = statistics.median(durable_ms), statistics.median(plain_ms)
        print(f"{args.steps} durable steps, one execution: median {d:.1f} ms "
              f"({d / args.steps:.2f} ms a step)")
        print(f"{args.steps} plain steps, one invocation: median {p:.1f} ms")
        print(f"ratio durable / plain: {d / p:.1f}x")
    finally:
        engine.stop()


if __name__ == "__main__":
    main()
