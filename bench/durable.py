"""Durable functions: checkpoint round trips, and N durable steps beside N plain ones.

    .venv/bin/python bench/durable.py [--steps 100] [--repeat 5]

Starts a real `lamina serve` (SQLite, in a scratch dir), creates python3.13 functions with the
unmodified SDK bundled (the release in .venv), and measures with boto3, in one run:

* the engine's checkpoint round trip: CheckpointDurableExecution sent with boto3 by a function
  that does its own checkpointing (no SDK), empty and with one step's START+SUCCEED, timed by
  the function: what the engine costs;
* the SDK's checkpoint round trip: `state.create_checkpoint()` (an empty synchronous
  checkpoint) timed by the function: the engine plus the SDK's batching;
* a durable execution of N steps, synchronous, end to end, warm;
* the baseline: the same N step bodies in a plain function, warm, and cold + warm (a new
  function's first invoke followed by a second one).

Prints the medians and the ratios; nothing is written in the repository.
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

from tests.conftest import ROLE, client, start_server  # noqa: E402
from tests.durable_sdk import sdk_package  # noqa: E402

CODE = b'''
import json, time
import boto3
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

LAMBDA = boto3.client("lambda")

def raw(event, context):
    """Checkpoints sent by the function itself (no SDK): the engine's round trip."""
    arn, token = event["DurableExecutionArn"], event["CheckpointToken"]
    first = event["InitialExecutionState"]["Operations"][0]
    n = json.loads(first["ExecutionDetails"]["InputPayload"])["n"]
    empty, step = [], []
    for i in range(2 * n):
        updates = [] if i < n else [
            {"Id": f"s{i}", "Type": "STEP", "SubType": "Step", "Action": "START"},
            {"Id": f"s{i}", "Type": "STEP", "SubType": "Step", "Action": "SUCCEED",
             "Payload": str(i)}]
        started = time.perf_counter()
        token = LAMBDA.checkpoint_durable_execution(
            DurableExecutionArn=arn, CheckpointToken=token, Updates=updates)["CheckpointToken"]
        (empty if i < n else step).append((time.perf_counter() - started) * 1000)
    return {"Status": "SUCCEEDED", "Result": json.dumps({"empty": empty, "step": step})}
'''


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.2f} ms, p90 "
        f"{statistics.quantiles(values, n=10)[-1]:.2f} ms ({len(values)})"
    )


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

        def create(name: str, handler: str, durable: bool) -> None:
            extra = {"DurableConfig": {"ExecutionTimeout": 600}} if durable else {}
            lam.create_function(
                FunctionName=name,
                Runtime="python3.13",
                Role=ROLE,
                Handler=f"handler.{handler}",
                Timeout=120,
                Code={"ZipFile": package},
                **extra,
            )

        def run(name: str, n: int) -> tuple[float, bytes]:
            started = time.perf_counter()
            reply = lam.invoke(
                FunctionName=name, Qualifier="$LATEST", Payload=json.dumps({"n": n}).encode()
            )
            body = reply["Payload"].read()
            assert "FunctionError" not in reply, body
            return (time.perf_counter() - started) * 1000, body

        for name, handler, durable in (
            ("steps", "steps", True),
            ("plain", "plain", False),
            ("rt", "round_trip", True),
            ("raw", "raw", True),
        ):
            create(name, handler, durable)
        time.sleep(1)
        for name in ("steps", "plain", "rt", "raw"):
            run(name, 1)  # warm the environments
        cold_warm = []
        for index in range(args.repeat):
            started = time.perf_counter()
            create(f"plain-cold-{index}", "plain", False)
            while True:  # a new function is Pending for a moment; Invoke answers 409 then
                try:
                    run(f"plain-cold-{index}", args.steps)
                    break
                except lam.exceptions.ResourceConflictException:
                    time.sleep(0.005)
            run(f"plain-cold-{index}", args.steps)
            cold_warm.append((time.perf_counter() - started) * 1000)
        durable_ms = [run("steps", args.steps)[0] for _ in range(args.repeat)]
        plain_ms = [run("plain", args.steps)[0] for _ in range(args.repeat)]
        trips: list[float] = []
        empty: list[float] = []
        step: list[float] = []
        for _ in range(args.repeat):
            trips += json.loads(run("rt", 50)[1])
            raw = json.loads(run("raw", 50)[1])
            raw = json.loads(raw) if isinstance(raw, str) else raw
            empty += raw["empty"]
            step += raw["step"]
        print(f"engine checkpoint round trip, empty (boto3, no SDK): {summary(empty)}")
        print(f"engine checkpoint round trip, one step START+SUCCEED: {summary(step)}")
        print(f"SDK checkpoint round trip (create_checkpoint, empty): {summary(trips)}")
        d, p, c = (statistics.median(x) for x in (durable_ms, plain_ms, cold_warm))
        print(
            f"{args.steps} durable steps, one execution, warm: median {d:.1f} ms "
            f"({d / args.steps:.2f} ms a step)"
        )
        print(f"{args.steps} plain steps, one invocation, warm: median {p:.1f} ms")
        print(f"{args.steps} plain steps, create + cold invoke + warm invoke: median {c:.1f} ms")
        print(f"ratio durable / plain warm: {d / p:.1f}x; durable / plain cold+warm: {d / c:.2f}x")
    finally:
        engine.stop()


if __name__ == "__main__":
    main()
