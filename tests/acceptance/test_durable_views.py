"""Durable executions as Lamina shows them: `lamina executions`, `lamina execution` and the
console's execution view, on a real engine running the unmodified SDK.

The execution runs a step, waits a second (the function returns; the engine invokes it again:
a replay), then runs a child context with a step. The replay skips the first step, so its log
line appears in the first replay's logs only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.acceptance.conftest import module_engine
from tests.acceptance.test_console import ARGS, CHROMIUM, sync_playwright
from tests.conftest import ROLE, ROOT, client
from tests.durable_sdk import sdk_package

pytest.importorskip("aws_durable_execution_sdk_python")

CODE = b"""
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration

@durable_execution
def handler(event, context: DurableContext):
    first = context.step(lambda _: print("step one runs") or 1, name="one")
    context.wait(Duration.from_seconds(1), name="pause")
    second = context.run_in_child_context(
        lambda child: child.step(lambda _: print("inner runs") or 2, name="inner"), name="group")
    if event.get("fail"):
        raise ValueError("asked to fail")
    return first + second
"""


def lamina(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "lamina", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"lamina {' '.join(args)}: {done.stderr}"
    return done


engine = module_engine("durable-views")


@pytest.fixture(scope="module")
def executions(engine):
    """(function, ARN of a succeeded execution, ARN of a failed one)."""
    lam = client(engine.endpoint)
    lam.create_function(
        FunctionName="shown",
        Runtime="python3.13",
        Role=ROLE,
        Handler="handler.handler",
        Timeout=30,
        Code={"ZipFile": sdk_package({"handler.py": CODE})},
        DurableConfig={"ExecutionTimeout": 120},
    )
    for _ in range(100):
        if lam.get_function_configuration(FunctionName="shown")["State"] == "Active":
            break
        time.sleep(0.05)
    good = lam.invoke(
        FunctionName="shown", Qualifier="$LATEST", Payload=b"{}", DurableExecutionName="good"
    )
    assert json.load(good["Payload"]) == 3
    bad = lam.invoke(
        FunctionName="shown",
        Qualifier="$LATEST",
        Payload=b'{"fail": true}',
        DurableExecutionName="bad",
    )
    assert bad["FunctionError"] == "Unhandled"
    return "shown", good["DurableExecutionArn"], bad["DurableExecutionArn"]


def test_lamina_executions_lists_and_filters_by_status(engine, executions):
    function, good, bad = executions
    listed = json.loads(
        lamina("executions", function, "--json", "--endpoint", engine.endpoint).stdout
    )
    assert [(e["DurableExecutionName"], e["Status"]) for e in listed] == [
        ("bad", "FAILED"),
        ("good", "SUCCEEDED"),
    ]  # newest first
    failed = json.loads(
        lamina(
            "executions", function, "--status", "FAILED", "--json", "--endpoint", engine.endpoint
        ).stdout
    )
    assert [e["DurableExecutionArn"] for e in failed] == [bad]
    text = lamina("executions", "--endpoint", engine.endpoint).stdout
    assert "SUCCEEDED" in text and "FAILED" in text and good in text.replace("\n", "")


def test_lamina_execution_shows_operations_and_each_replay_with_its_logs(engine, executions):
    _, good, _ = executions
    found = json.loads(lamina("execution", good, "--json", "--endpoint", engine.endpoint).stdout)
    assert found["Execution"]["Status"] == "SUCCEEDED" and found["Execution"]["Result"] == "3"
    ops = {op.get("Name"): op for op in found["Operations"]}
    assert [ops[n]["Type"] for n in ("one", "pause", "group", "inner")] == [
        "STEP",
        "WAIT",
        "CONTEXT",
        "STEP",
    ]
    assert ops["inner"]["ParentId"] == ops["group"]["Id"]
    assert all(op["Status"] == "SUCCEEDED" for op in found["Operations"])
    replays = found["Replays"]
    assert [r["Replay"] for r in replays] == [0, 1]
    first, second = ([line["Message"] for line in r["Logs"]] for r in replays)
    assert "step one runs" in first and "inner runs" not in first
    assert "inner runs" in second and "step one runs" not in second  # replayed, not re-run
    assert any(line.startswith(f"START RequestId: {replays[1]['RequestId']}") for line in second)
    text = lamina("execution", good, "--endpoint", engine.endpoint).stdout
    for expected in (
        "Step one",
        "Wait pause",
        "RunInChildContext group",
        "  Step inner",
        "replay 1",
        "inner runs",
    ):
        assert expected in text, text


def test_lamina_execution_of_an_unknown_arn_is_one_clear_line(engine):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lamina",
            "execution",
            "arn:aws:lambda:us-east-1:123456789012:function:x:$LATEST/durable-execution/nope/nope",
            "--endpoint",
            engine.endpoint,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.startswith("lamina: 404") and "Traceback" not in done.stderr


@pytest.mark.skipif(
    sync_playwright is None or not Path(CHROMIUM).exists(),
    reason=f"needs the playwright package and Chromium at {CHROMIUM}",
)
def test_the_console_shows_an_execution_as_operations_and_replays(engine, executions):
    from playwright.sync_api import expect

    function, good, _ = executions
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        try:
            page.goto(f"{engine.endpoint}/_lamina/#/functions/{function}")
            rows = page.locator("#executions-table tbody tr")
            expect(rows).to_have_count(2)
            page.locator(f'tr[data-execution="{good}"] a.execution-link').click()
            expect(page.locator("#execution-summary")).to_contain_text("SUCCEEDED")
            operations = page.locator("#operations-table tbody tr")
            expect(operations).to_have_count(4)
            expect(operations.nth(3)).to_contain_text("Step inner")
            expect(page.locator("#replays-table tbody tr")).to_have_count(2)
            logs = page.locator("#replay-logs section")
            expect(logs.nth(0)).to_contain_text("step one runs")
            expect(logs.nth(1)).to_contain_text("inner runs")
            expect(logs.nth(1)).not_to_contain_text("step one runs")
        finally:
            browser.close()
