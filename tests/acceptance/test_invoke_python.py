"""Synchronous Invoke of Python functions, driven by boto3 against a real `lamina serve`."""

from __future__ import annotations

import base64
import json
import resource
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import (
    FUNCTIONS,
    PY_RUNTIME,
    create_function,
    invoke_json,
    sandboxed,
    zip_dir,
)

PACKAGE = zip_dir(FUNCTIONS / "python")


def make(lam, name: str, handler: str, **extra) -> None:
    runtime = extra.pop("Runtime", PY_RUNTIME)
    create_function(lam, name, PACKAGE, handler=f"index.{handler}", runtime=runtime, **extra)


def test_echo_returns_the_event_with_lambda_headers(lam, fname):
    make(lam, fname, "echo")
    response, body = invoke_json(lam, fname, {"hello": "world", "n": [1, 2]})
    assert response["StatusCode"] == 200
    assert body == {"hello": "world", "n": [1, 2]}
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["content-type"] == "application/json"
    assert len(response["ResponseMetadata"]["RequestId"]) == 36


def test_empty_payload_is_delivered_as_empty_object(lam, fname):
    make(lam, fname, "echo")
    response = lam.invoke(FunctionName=fname)
    assert json.loads(response["Payload"].read()) == {}


def test_handler_error_is_200_with_unhandled_and_the_error_document(lam, fname):
    make(lam, fname, "fail")
    response, body = invoke_json(lam, fname, {"message": "bad order"})
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "bad order"
    assert body["requestId"] == response["ResponseMetadata"]["RequestId"]
    assert any("in fail" in line for line in body["stackTrace"])
    assert not any("bootstrap.py" in line for line in body["stackTrace"])
    # A plain function error keeps the environment: the next call is warm and succeeds.
    lam.update_function_configuration(FunctionName=fname, Handler="index.echo")
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    assert invoke_json(lam, fname, {"ok": 1})[1] == {"ok": 1}


def test_log_tail_has_start_end_report_and_function_output(lam, fname):
    make(lam, fname, "log_lines")
    response = lam.invoke(FunctionName=fname, LogType="Tail")
    tail = base64.b64decode(response["LogResult"]).decode()
    request_id = response["ResponseMetadata"]["RequestId"]
    assert f"START RequestId: {request_id} Version: $LATEST" in tail
    assert "printed line" in tail
    assert "to stderr" in tail
    assert "[WARNING]" in tail and "a warning from logging" in tail and request_id in tail
    assert f"END RequestId: {request_id}" in tail
    report = [line for line in tail.splitlines() if line.startswith("REPORT")][0]
    for field in (
        "Duration:",
        "Billed Duration:",
        "Memory Size: 128 MB",
        "Max Memory Used:",
        "Init Duration:",
    ):
        assert field in report
    warm = base64.b64decode(lam.invoke(FunctionName=fname, LogType="Tail")["LogResult"]).decode()
    assert "Init Duration" not in warm
    assert len(base64.b64decode(response["LogResult"])) <= 4096


def test_context_and_environment_are_lambdas(lam, fname, server):
    make(lam, fname, "describe", MemorySize=256, Environment={"Variables": {"STAGE": "test"}})
    context = base64.b64encode(json.dumps({"custom": {"k": "v"}, "env": {"e": "1"}}).encode())
    response, body = invoke_json(lam, fname, {}, ClientContext=context.decode())
    assert body["function_name"] == fname
    assert body["function_version"] == "$LATEST"
    assert body["invoked_function_arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{fname}"
    assert body["memory_limit_in_mb"] == "256"
    assert body["aws_request_id"] == response["ResponseMetadata"]["RequestId"]
    assert body["log_group_name"] == f"/aws/lambda/{fname}"
    assert "[$LATEST]" in body["log_stream_name"]
    assert 2500 < body["remaining_ms"] <= 3000
    assert body["client_context"] == {"custom": {"k": "v"}, "env": {"e": "1"}}
    env = body["env"]
    assert env["STAGE"] == "test"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == fname
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["TZ"] == ":UTC"
    assert env["AWS_EXECUTION_ENV"].startswith("AWS_Lambda_python3.")
    assert env["_HANDLER"] == "index.describe"
    assert env["LAMBDA_TASK_ROOT"] == body["cwd"]
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    assert "_X_AMZN_TRACE_ID" in env and env["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    assert "PYTEST_CURRENT_TEST" not in env, "the engine's environment leaked into the function"
    assert body["sys_path"][0] == body["cwd"]
    assert "shims" not in body["executable"]
    assert body["open_files"] == 1024  # Lambda's limit, though the engine lifts its own
    engine_limit = int(
        Path(f"/proc/{server.process.pid}/limits").read_text().split("Max open files")[1].split()[0]
    )
    assert engine_limit > 1024 or engine_limit == resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def test_a_spare_runtime_starts_the_function_as_a_fresh_spawn_would(lam, fname, server):
    """After a Python cold start the engine keeps a spare runtime started ahead; the next
    cold start takes it. What the function sees must not differ from a spawned runtime."""
    # LANG (the value Lambda sets anyway) makes -a spawn a fresh interpreter
    make(
        lam,
        f"{fname}-a",
        "describe",
        Environment={"Variables": {"STAGE": "spare", "LANG": "en_US.UTF-8"}},
    )
    make(lam, f"{fname}-b", "describe", Environment={"Variables": {"STAGE": "spare"}})
    first = invoke_json(lam, f"{fname}-a", {})[1]
    time.sleep(0.3)  # the spare started after a cold start is ready
    spare = invoke_json(lam, f"{fname}-b", {})[1]
    assert "--standby" not in first["argv"]
    assert "--standby" in spare["argv"], "the second cold start took the spare"
    per_function = {
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "TMPDIR",
        "_X_AMZN_TRACE_ID",
        "LD_LIBRARY_PATH",
    }
    assert set(spare["env"]) == set(first["env"])
    assert {k: v for k, v in spare["env"].items() if k not in per_function} == {
        k: v for k, v in first["env"].items() if k not in per_function
    }
    assert spare["env"]["AWS_LAMBDA_FUNCTION_NAME"] == f"{fname}-b"
    assert spare["cwd"] == spare["env"]["LAMBDA_TASK_ROOT"] == spare["sys_path"][0]
    assert spare["open_files"] == first["open_files"] == 1024
    if sandboxed(server):  # a private /tmp, no TMPDIR
        assert spare["tmp"] == first["tmp"] == "/tmp" and "TMPDIR" not in spare["env"]
    else:
        assert spare["tmp"] == spare["env"]["TMPDIR"] != first["tmp"]
    assert spare["tz"] == first["tz"] == ["UTC", 0]
    assert spare["sys_path"][1:] == first["sys_path"][1:]

    make(
        lam, f"{fname}-c", "describe", Environment={"Variables": {"PYTHONPATH": "/var/task/extra"}}
    )
    own = invoke_json(lam, f"{fname}-c", {})[1]
    assert "--standby" not in own["argv"], "PYTHON* variables need a fresh interpreter"
    assert "/var/task/extra" in own["sys_path"]


def test_qualified_invoke_and_trace_header(lam, fname):
    make(lam, fname, "describe")
    _, body = invoke_json(lam, fname, {}, Qualifier="$LATEST")
    assert body["invoked_function_arn"].endswith(f":function:{fname}:$LATEST")
    response = lam.invoke(FunctionName=f"arn:aws:lambda:us-east-1:123456789012:function:{fname}")
    assert response["StatusCode"] == 200


def test_timeout_returns_sandbox_timedout_and_the_next_call_runs_cold(lam, fname):
    make(lam, fname, "sleep", Timeout=1)
    started = time.monotonic()
    response, body = invoke_json(lam, fname, {"seconds": 5}, LogType="Tail")
    assert 1.0 <= time.monotonic() - started < 3.0
    assert response["FunctionError"] == "Unhandled"
    request_id = response["ResponseMetadata"]["RequestId"]
    assert body == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after 1.00 seconds",
    }
    assert "Task timed out after 1.00 seconds" in base64.b64decode(response["LogResult"]).decode()
    response, body = invoke_json(lam, fname, {"seconds": 0}, LogType="Tail")
    assert body["slept"] == 0
    assert "Init Duration" in base64.b64decode(response["LogResult"]).decode()


def test_runtime_exit_is_runtime_exit_error(lam, fname):
    make(lam, fname, "exit_code")
    response, body = invoke_json(lam, fname, {"code": 3})
    request_id = response["ResponseMetadata"]["RequestId"]
    assert response["FunctionError"] == "Unhandled"
    assert body == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status 3",
    }


def test_response_over_the_limit_is_response_size_too_large(lam, fname):
    make(lam, fname, "big_response")
    response, body = invoke_json(lam, fname, {"bytes": 7 * 1024 * 1024})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Function.ResponseSizeTooLarge"
    assert "6291556" in body["errorMessage"]
    _, body = invoke_json(lam, fname, {"bytes": 10})
    assert body == "x" * 10


def test_memory_limit_kills_with_out_of_memory(lam, fname):
    make(lam, fname, "allocate", MemorySize=128, Timeout=30)
    response, body = invoke_json(lam, fname, {"megabytes": 400})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.OutOfMemory"
    assert "signal: killed" in body["errorMessage"]
    _, body = invoke_json(lam, fname, {"megabytes": 10})
    assert body == {"allocated": 10}


def test_unserializable_result_is_marshal_error(lam, fname):
    make(lam, fname, "unserializable")
    response, body = invoke_json(lam, fname)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.MarshalError"
    assert body["errorMessage"].startswith("Unable to marshal response:")


@pytest.mark.parametrize(
    "handler, error_type, message",
    [
        (
            "missing.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'missing': No module named 'missing'",
        ),
        ("fine.nothere", "Runtime.HandlerNotFound", "Handler 'nothere' missing on module 'fine'"),
        ("nodot", "Runtime.MalformedHandlerName", "Bad handler 'nodot'"),
        ("syntax.handler", "Runtime.UserCodeSyntaxError", "Syntax error in module 'syntax'"),
        ("raises_on_import.handler", "RuntimeError", "boom at import"),
    ],
)
def test_init_errors_reach_the_caller(lam, fname, handler, error_type, message):
    create_function(lam, fname, zip_dir(FUNCTIONS / "python_broken"), handler=handler)
    response, body = invoke_json(lam, fname)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == error_type
    assert body["errorMessage"].startswith(message)
    assert body["requestId"] == ""


def test_warm_reuse_and_separate_environments_for_concurrent_calls(lam, fname):
    make(lam, fname, "sleep")
    first = invoke_json(lam, fname, {"seconds": 0})[1]["environment"]
    assert invoke_json(lam, fname, {"seconds": 0})[1]["environment"] == first
    pids = []

    def call() -> None:
        pids.append(invoke_json(lam, fname, {"seconds": 0.5})[1]["environment"])

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(pids)) == 3


def test_idle_environment_is_frozen_and_background_work_pauses(lam, fname, server):
    make(lam, fname, "ticker")
    first = invoke_json(lam, fname)[1]
    time.sleep(0.3)
    environments = server.get(f"/_lamina/functions/{fname}")["Environments"]
    assert [e["State"] for e in environments] == ["frozen"]
    with open(f"/proc/{environments[0]['Pid']}/stat") as stat:  # the runtime, on the host
        assert stat.read().split(") ")[1][0] == "T", "an idle environment must be stopped"
    time.sleep(0.7)
    second = invoke_json(lam, fname)[1]
    assert second["environment"] == first["environment"]
    # The ticker thread runs every 10 ms; frozen for ~1 s it must have barely moved.
    assert second["ticks"] - first["ticks"] < 20


def test_tmpdir_is_private_and_writable(lam, fname, server):
    """The sandbox gives each environment its own /tmp; without it, TMPDIR is a private
    directory of the environment under the data dir."""
    make(lam, fname, "write_tmp")
    _, body = invoke_json(lam, fname, {"a": 1})
    assert body["content"] == {"a": 1}
    if sandboxed(server):
        assert body["path"] == "/tmp/scratch.txt"
    else:
        assert "/envs/" in body["path"]


def test_gigabytes_of_output_do_not_hurt_the_engine(lam, fname, server):
    make(lam, fname, "flood", Timeout=60)
    _, body = invoke_json(lam, fname, {"megabytes": 300})
    assert body == "flooded"
    folder = server.data_dir / "logs" / fname
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert total < 40 * 1024 * 1024, f"log files grew to {total} bytes"
    assert invoke_json(lam, fname, {"megabytes": 0})[1] == "flooded"


def test_payload_errors(lam, fname):
    make(lam, fname, "echo")
    with pytest.raises(ClientError) as error:
        lam.invoke(FunctionName=fname, Payload=b"{not json")
    assert error.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error.value.response["Error"]["Message"].startswith(
        "Could not parse request body into json"
    )
    with pytest.raises(ClientError) as error:
        lam.invoke(FunctionName=fname, Payload=b'"' + b"a" * (6 * 1024 * 1024 + 1) + b'"')
    assert error.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    with pytest.raises(ClientError) as error:
        lam.invoke(FunctionName=fname, ClientContext="not base64!")
    assert error.value.response["Error"]["Code"] == "InvalidRequestContentException"


def test_dry_run_and_unknown_function(lam, fname):
    make(lam, fname, "echo")
    response = lam.invoke(FunctionName=fname, InvocationType="DryRun")
    assert response["StatusCode"] == 204
    with pytest.raises(ClientError) as error:
        lam.invoke(FunctionName=fname + "-missing")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert f"function:{fname}-missing" in error.value.response["Error"]["Message"]


def test_update_while_invoking_serves_old_then_new_code(lam, fname):
    make(lam, fname, "sleep", Timeout=10)
    results = []
    slow = threading.Thread(target=lambda: results.append(invoke_json(lam, fname, {"seconds": 1})))
    slow.start()
    time.sleep(0.3)
    lam.update_function_configuration(FunctionName=fname, Handler="index.echo")
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    assert invoke_json(lam, fname, {"new": True})[1] == {"new": True}
    slow.join()
    assert results[0][1]["slept"] == 1


def test_closest_python_runs_a_missing_runtime_with_a_warning(lam, fname):
    make(lam, fname, "describe", Runtime="python3.14")
    response, body = invoke_json(lam, fname, LogType="Tail")
    tail = base64.b64decode(response["LogResult"]).decode()
    if "python3.14" in body["executable"]:
        pytest.skip("Python 3.14 is installed: no fallback to observe")
    assert (
        "LAMINA_WARNING: python3.14 is not installed on this machine; running on Python 3." in tail
    )
    assert body["env"]["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.14"
