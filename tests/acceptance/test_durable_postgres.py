"""Durable executions on PostgreSQL with two engines: an execution started on engine A goes on
on engine B after A is killed (kill -9) in the middle of a step.

A runs the first invocation and renews its lease while it runs; killed, it stops renewing. B,
which shares the database (functions, code and executions come from the store; it has a data
directory of its own), finds the lease run out, records the lost invocation
(`Lamina.EngineLost`) and invokes the execution again on its own environment: the finished
step is replayed, the interrupted one runs again (at-least-once) and the execution succeeds.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.conftest import ROLE, client, start_server
from tests.durable_sdk import sdk_package

pytest.importorskip("aws_durable_execution_sdk_python")

CODE = b"""
import time
from aws_durable_execution_sdk_python import DurableContext, durable_execution

@durable_execution
def handler(event, context: DurableContext):
    one = context.step(lambda _: print("one runs") or "one", name="one")
    two = context.step(lambda _: print("two runs") or time.sleep(event["sleep"]) or "two",
                       name="two")
    return [one, two]
"""


def events(lam, arn: str) -> list[dict]:
    return lam.get_durable_execution_history(DurableExecutionArn=arn, IncludeExecutionData=True)[
        "Events"
    ]


def wait_until(predicate, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.slow
def test_an_execution_started_on_one_engine_goes_on_on_another_after_kill_9(postgres, tmp_path):
    url = postgres.new_database(migrated=True)
    a = start_server(tmp_path / "a", "--store", url)
    b = start_server(tmp_path / "b", "--store", url)
    try:
        lam_a, lam_b = client(a.endpoint), client(b.endpoint)
        lam_a.create_function(
            FunctionName="relay",
            Runtime="python3.13",
            Role=ROLE,
            Handler="handler.handler",
            Timeout=60,
            Code={"ZipFile": sdk_package({"handler.py": CODE})},
            DurableConfig={"ExecutionTimeout": 600},
        )
        wait_until(
            lambda: lam_a.get_function_configuration(FunctionName="relay")["State"] == "Active", 10
        )
        arn = lam_a.invoke(
            FunctionName="relay",
            Qualifier="$LATEST",
            InvocationType="Event",
            Payload=json.dumps({"sleep": 4}).encode(),
        )["DurableExecutionArn"]
        # B sees what A writes: the execution is in the shared store
        wait_until(
            lambda: any(
                e["EventType"] == "StepStarted" and e.get("Name") == "two"
                for e in events(lam_b, arn)
            ),
            60,
        )
        a.process.send_signal(signal.SIGKILL)  # mid-step: step two's end is never written
        a.process.wait()
        wait_until(
            lambda: lam_b.get_durable_execution(DurableExecutionArn=arn)["Status"] != "RUNNING", 90
        )
        done = lam_b.get_durable_execution(DurableExecutionArn=arn)
        assert done["Status"] == "SUCCEEDED" and json.loads(done["Result"]) == ["one", "two"]
        history = events(lam_b, arn)
        ends = [e for e in history if e["EventType"] == "InvocationCompleted"]
        assert (
            ends[0]["InvocationCompletedDetails"]["Error"]["Payload"]["ErrorType"]
            == "Lamina.EngineLost"
        )
        assert [e["EventType"] for e in history if e.get("Name") == "one"] == [
            "StepStarted",
            "StepSucceeded",
        ]  # replayed on B, not run again
        assert [e["EventType"] for e in history if e.get("Name") == "two"] == [
            "StepStarted",
            "StepSucceeded",
        ]  # ran again on B (at-least-once), then ended
        # the replay ran on B: its environment's log is in B's data directory
        logs = "".join(p.read_text() for p in (tmp_path / "b" / "logs" / "relay").glob("*"))
        assert "two runs" in logs and "one runs" not in logs
        assert ends[-1]["InvocationCompletedDetails"]["RequestId"] in logs
    finally:
        b.stop()
        a.stop()
    assert "Traceback" not in b.log(), b.log()
