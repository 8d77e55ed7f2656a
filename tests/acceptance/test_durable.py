"""Durable functions end to end: real `lamina serve`, boto3, the AWS CLI, the unmodified SDK."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROLE, client, start_server
from tests.durable_sdk import sdk_package

pytest.importorskip("aws_durable_execution_sdk_python")

WORKFLOW = b"""
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration

@durable_execution
def week(event, context: DurableContext):
    first = context.step(lambda _: "before", name="before")
    context.wait(Duration.from_days(7), name="a-week")
    return [first, context.step(lambda _: "after", name="after")]

@durable_execution
def approval(event, context: DurableContext):
    callback = context.create_callback(name="approval")
    context.step(lambda _: print("CALLBACK", callback.callback_id), name="announce")
    return {"approved": callback.result()}

@durable_execution
def slow(event, context: DurableContext):
    import time
    context.step(lambda _: "one", name="one")
    context.step(lambda _: time.sleep(3) or "two", name="two")
    return "done"
"""


def create(lam, name: str, handler: str, timeout: int = 300) -> None:
    lam.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=ROLE,
        Handler=f"handler.{handler}",
        Timeout=30,
        Code={"ZipFile": sdk_package({"handler.py": WORKFLOW})},
        DurableConfig={"ExecutionTimeout": timeout},
    )
    for _ in range(100):
        if lam.get_function_configuration(FunctionName=name)["State"] == "Active":
            return
        time.sleep(0.05)


def wait_status(lam, arn: str, wanted: str, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = lam.get_durable_execution(DurableExecutionArn=arn)
        if found["Status"] == wanted:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{arn} did not reach {wanted}: {found['Status']}")


def events(lam, arn: str) -> list[dict]:
    return lam.get_durable_execution_history(DurableExecutionArn=arn, IncludeExecutionData=True)[
        "Events"
    ]


@pytest.mark.slow
def test_a_seven_day_wait_finishes_in_seconds_under_time_scale(tmp_path):
    engine = start_server(tmp_path / "data", "--time-scale", "100000")
    try:
        lam = client(engine.endpoint)
        create(lam, "weekly", "week", timeout=31_622_400)
        started = time.monotonic()
        arn = lam.invoke(
            FunctionName="weekly", Qualifier="$LATEST", InvocationType="Event", Payload=b"{}"
        )["DurableExecutionArn"]
        done = wait_status(lam, arn, "SUCCEEDED", 60)
        assert time.monotonic() - started < 30
        assert json.loads(done["Result"]) == ["before", "after"]
        kinds = [e["EventType"] for e in events(lam, arn)]
        assert kinds.count("InvocationCompleted") == 2  # one replay, after the week
        wait = next(e for e in events(lam, arn) if e["EventType"] == "WaitStarted")
        assert wait["WaitStartedDetails"]["Duration"] == 7 * 86400
        engine_days = (done["EndTimestamp"] - done["StartTimestamp"]).total_seconds() / 86400
        assert engine_days >= 7
    finally:
        engine.stop()
    assert "Traceback" not in engine.log(), engine.log()


def test_callbacks_from_the_aws_cli_and_boto3_and_single_use_tokens(server):
    lam = client(server.endpoint)
    create(lam, "approve-cli", "approval")
    arns = []
    for name in ("by-cli", "by-boto3"):
        reply = lam.invoke(
            FunctionName="approve-cli",
            Qualifier="$LATEST",
            InvocationType="Event",
            DurableExecutionName=name,
            Payload=b"{}",
        )
        assert reply["StatusCode"] == 202
        arns.append(reply["DurableExecutionArn"])
    # the same name and input starts nothing new; another input is refused
    again = lam.invoke(
        FunctionName="approve-cli",
        Qualifier="$LATEST",
        InvocationType="Event",
        DurableExecutionName="by-cli",
        Payload=b"{}",
    )
    assert again["DurableExecutionArn"] == arns[0]
    with pytest.raises(lam.exceptions.DurableExecutionAlreadyStartedException):
        lam.invoke(
            FunctionName="approve-cli",
            Qualifier="$LATEST",
            InvocationType="Event",
            DurableExecutionName="by-cli",
            Payload=b'{"other": 1}',
        )
    ids = []
    for arn in arns:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            started = [e for e in events(lam, arn) if e["EventType"] == "CallbackStarted"]
            done = [e for e in events(lam, arn) if e["EventType"] == "InvocationCompleted"]
            if started and done:
                break
            time.sleep(0.1)
        ids.append(started[0]["CallbackStartedDetails"]["CallbackId"])
    env = dict(
        os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1"
    )
    aws = str(Path(sys.executable).parent / "aws")  # AWS CLI v1 (the test extras)
    subprocess.run(
        [
            aws,
            "lambda",
            "send-durable-execution-callback-heartbeat",
            "--endpoint-url",
            server.endpoint,
            "--callback-id",
            ids[0],
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    subprocess.run(
        [
            aws,
            "lambda",
            "send-durable-execution-callback-success",
            "--endpoint-url",
            server.endpoint,
            "--callback-id",
            ids[0],
            "--result",
            '"yes"',
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    lam.send_durable_execution_callback_failure(
        CallbackId=ids[1], Error={"ErrorType": "Rejected", "ErrorMessage": "no"}
    )
    done = wait_status(lam, arns[0], "SUCCEEDED")
    assert json.loads(done["Result"]) == {"approved": '"yes"'}  # the SDK hands the raw payload
    failed = wait_status(lam, arns[1], "FAILED")
    assert failed["Error"]["ErrorType"]
    with pytest.raises(lam.exceptions.CallbackTimeoutException):  # it already ended
        lam.send_durable_execution_callback_success(CallbackId=ids[0], Result=b'"late"')
    # a spent checkpoint token is refused
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.checkpoint_durable_execution(
            DurableExecutionArn=arns[0], CheckpointToken="AAAA", Updates=[]
        )
    listed = lam.list_durable_executions_by_function(
        FunctionName="approve-cli", Statuses=["FAILED"]
    )
    assert [e["DurableExecutionArn"] for e in listed["DurableExecutions"]] == [arns[1]]


@pytest.mark.slow
def test_an_execution_survives_kill_9_of_the_engine(tmp_path):
    data = tmp_path / "data"
    engine = start_server(data)
    try:
        lam = client(engine.endpoint)
        create(lam, "survivor", "slow")
        arn = lam.invoke(
            FunctionName="survivor", Qualifier="$LATEST", InvocationType="Event", Payload=b"{}"
        )["DurableExecutionArn"]
        deadline = time.monotonic() + 30
        while not any(
            e["EventType"] == "StepStarted" and e.get("Name") == "two" for e in events(lam, arn)
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:  # mid-step: its checkpoint is lost (and no engine is left running if it failed)
        engine.stop(signal.SIGKILL)
    engine = start_server(data, port=engine.port)
    try:
        lam = client(engine.endpoint)
        done = wait_status(lam, arn, "SUCCEEDED", 60)
        assert json.loads(done["Result"]) == "done"
        history = events(lam, arn)
        lost = [
            e
            for e in history
            if e["EventType"] == "InvocationCompleted"
            and e["InvocationCompletedDetails"].get("Error")
        ]
        assert (
            lost
            and lost[0]["InvocationCompletedDetails"]["Error"]["Payload"]["ErrorType"]
            == "Lamina.EngineLost"
        )
        two = [(e["EventType"], e["EventId"]) for e in history if e.get("Name") == "two"]
        # started before the kill, ran again after it (the SDK re-runs a STARTED
        # at-least-once step without a new START) and succeeded in the new invocation
        assert [kind for kind, _ in two] == ["StepStarted", "StepSucceeded"]
        assert two[0][1] < lost[0]["EventId"] < two[1][1]
        one = [e["EventType"] for e in history if e.get("Name") == "one"]
        assert one == ["StepStarted", "StepSucceeded"]  # replayed, not run again
    finally:
        engine.stop()
