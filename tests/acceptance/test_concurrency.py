"""Concurrency, provisioned concurrency, bursts and fault injection, with boto3 and the CLI."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import subprocess
import sys
import threading
import time

import pytest
from botocore.exceptions import ClientError

from tests.conftest import FUNCTIONS, client, create_function, invoke_json, start_server, zip_dir

PACKAGE = zip_dir(FUNCTIONS / "python")


def error_of(call, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    return raised.value


def test_reserved_zero_throttles_every_sync_call(lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    assert (
        lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=0)[
            "ReservedConcurrentExecutions"
        ]
        == 0
    )
    error = error_of(lam.invoke, FunctionName=fname, Payload=b"{}")
    assert error.response["Error"]["Code"] == "TooManyRequestsException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    # AWS's recorded throttle for a used-up reservation carries no Retry-After
    assert "retry-after" not in error.response["ResponseMetadata"]["HTTPHeaders"]
    assert lam.get_function_concurrency(FunctionName=fname)["ReservedConcurrentExecutions"] == 0
    assert lam.get_function(FunctionName=fname)["Concurrency"] == {
        "ReservedConcurrentExecutions": 0
    }
    lam.delete_function_concurrency(FunctionName=fname)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=fname)
    assert invoke_json(lam, fname, {"ok": 1})[1] == {"ok": 1}


def test_reserved_one_with_two_concurrent_calls_throttles_one(lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.sleep", Timeout=10)
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=1)
    outcomes: list[str] = []

    def call() -> None:
        try:
            invoke_json(lam, fname, {"seconds": 1})
            outcomes.append("ok")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.2)
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["TooManyRequestsException", "ok"]


def test_reservation_rules_and_account_settings(lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    before = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=50)
    assert (
        lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == before - 50
    )
    error = error_of(
        lam.put_function_concurrency,
        FunctionName=fname,
        ReservedConcurrentExecutions=before + 50 - 99,
    )
    assert "below its minimum value of [100]" in error.response["Error"]["Message"]
    error = error_of(
        lam.put_function_concurrency, FunctionName=f"{fname}:1", ReservedConcurrentExecutions=5
    )
    assert (
        "Aliases and versions do not support this operation" in error.response["Error"]["Message"]
    )
    lam.delete_function_concurrency(FunctionName=fname)


def test_account_pool_throttles_with_its_own_reason(tmp_path, fname):
    engine = start_server(tmp_path / "data", "--account-concurrency", "1")
    lam = client(engine.endpoint)
    try:
        create_function(lam, fname, PACKAGE, handler="index.sleep", Timeout=10)
        slow = threading.Thread(target=lambda: invoke_json(lam, fname, {"seconds": 1.5}))
        slow.start()
        time.sleep(0.5)
        error = error_of(lam.invoke, FunctionName=fname, Payload=b'{"seconds": 0}')
        assert error.response["Reason"] == "ConcurrentInvocationLimitExceeded"
        slow.join()
    finally:
        lam.close()
        engine.stop()


def test_provisioned_environments_answer_the_first_invoke_warm(lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.describe")
    version = lam.publish_version(FunctionName=fname)["Version"]
    error = error_of(
        lam.put_provisioned_concurrency_config,
        FunctionName=fname,
        Qualifier="$LATEST",
        ProvisionedConcurrentExecutions=1,
    )
    assert "unpublished function versions" in error.response["Error"]["Message"]
    put = lam.put_provisioned_concurrency_config(
        FunctionName=fname, Qualifier=version, ProvisionedConcurrentExecutions=2
    )
    assert put["RequestedProvisionedConcurrentExecutions"] == 2
    assert put["Status"] in ("IN_PROGRESS", "READY")
    deadline = time.monotonic() + 20
    while (config := lam.get_provisioned_concurrency_config(FunctionName=fname, Qualifier=version))[
        "Status"
    ] != "READY":
        assert time.monotonic() < deadline, config
        time.sleep(0.1)
    assert config["AvailableProvisionedConcurrentExecutions"] == 2
    response = lam.invoke(FunctionName=fname, Qualifier=version, LogType="Tail", Payload=b"{}")
    tail = base64.b64decode(response["LogResult"]).decode()
    assert "Init Duration" not in tail, tail
    body = json.loads(response["Payload"].read())
    assert body["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
    listed = lam.list_provisioned_concurrency_configs(FunctionName=fname)
    assert [c["FunctionArn"] for c in listed["ProvisionedConcurrencyConfigs"]] == [
        f"arn:aws:lambda:us-east-1:123456789012:function:{fname}:{version}"
    ]
    error = error_of(
        lam.put_function_concurrency, FunctionName=fname, ReservedConcurrentExecutions=1
    )
    assert "total provisioned concurrency [2]" in error.response["Error"]["Message"]
    lam.delete_provisioned_concurrency_config(FunctionName=fname, Qualifier=version)
    error = error_of(lam.get_provisioned_concurrency_config, FunctionName=fname, Qualifier=version)
    assert error.response["Error"]["Code"] == "ProvisionedConcurrencyConfigNotFoundException"


def test_a_burst_of_200_concurrent_calls(tmp_path, fname):
    engine = start_server(tmp_path / "data", "--max-starting", "8")
    lam = client(engine.endpoint, max_pool_connections=200)
    try:
        create_function(lam, fname, PACKAGE, handler="index.sleep", Timeout=60)
        with concurrent.futures.ThreadPoolExecutor(200) as pool:
            results = list(
                pool.map(lambda n: invoke_json(lam, fname, {"seconds": 0.5})[1], range(200))
            )
        assert all(isinstance(r, dict) and r["slept"] == 0.5 for r in results), results[:3]
        environments = {r["environment"] for r in results}
        assert 1 < len(environments) <= 200, "overlapping calls run in environments of their own"
        listed = engine.get(f"/_lamina/invocations?function={fname}&limit=500")["Invocations"]
        assert len(listed) == 200 and {i["Status"] for i in listed} == {"success"}
    finally:
        lam.close()
        engine.stop()


def lamina(server, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "lamina", *args, "--endpoint", server.endpoint],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def engine_rules(server, function: str) -> list[dict]:
    return server.get(f"/_lamina/faults/{function}")["Rules"]


def test_fault_injection_from_the_cli(server, lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    assert "attempt every → throttle (1 more times)" in lamina(
        server, "fault", fname, "throttle", "--times", "1"
    )
    error = error_of(lam.invoke, FunctionName=fname, Payload=b"{}")
    assert error.response["Error"]["Code"] == "TooManyRequestsException"
    assert invoke_json(lam, fname, {"a": 1})[1] == {"a": 1}, "used up after one time"
    assert engine_rules(server, fname) == []
    lamina(
        server,
        "fault",
        fname,
        "response",
        "--payload",
        '{"batchItemFailures": [{"itemIdentifier": "m-1"}]}',
    )
    assert invoke_json(lam, fname)[1] == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    lamina(server, "fault", fname, "--clear")
    lamina(server, "fault", fname, "error", "--error-type", "Boom", "--message", "kaboom")
    response, body = invoke_json(lam, fname)
    assert response["FunctionError"] == "Unhandled"
    assert (body["errorType"], body["errorMessage"]) == ("Boom", "kaboom")
    lamina(server, "fault", fname, "--clear")
    lamina(server, "fault", fname, "timeout")
    response, body = invoke_json(lam, fname)
    assert body["errorType"] == "Sandbox.Timedout"
    lamina(server, "fault", fname, "--clear")
    assert invoke_json(lam, fname, {"b": 2})[1] == {"b": 2}


def test_injected_faults_drive_async_retries(tmp_path, fname):
    engine = start_server(tmp_path / "data", "--time-scale", "120")
    lam = client(engine.endpoint)
    try:
        create_function(lam, fname, PACKAGE, handler="index.echo")
        lamina(engine, "fault", fname, "crash", "--attempt", "1")
        lamina(engine, "fault", fname, "timeout", "--attempt", "2")
        request_id = lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b'{"x": 1}')[
            "ResponseMetadata"
        ]["RequestId"]
        deadline = time.monotonic() + 15
        while engine.get(f"/_lamina/invocations/{request_id}")["Invocation"]["Status"] != "success":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        timeline = engine.get(f"/_lamina/invocations/{request_id}")["Timeline"]
        injected = [e["action"] for e in timeline if e["Kind"] == "fault_injected"]
        assert injected == ["crash", "timeout"]
        attempts = [e for e in timeline if e["Kind"] == "attempt"]
        assert [a["outcome"] for a in attempts] == ["error", "error", "success"]
    finally:
        lam.close()
        engine.stop()


def test_scaling_rate_limits_new_environments_not_invocations(tmp_path, fname):
    """`--scaling-rate 2`: two environments may start per 10 s; a third concurrent call is
    throttled as on Lambda, while calls that find a warm environment are not."""
    engine = start_server(tmp_path / "data", "--scaling-rate", "2")
    lam = client(engine.endpoint)
    try:
        create_function(lam, fname, PACKAGE, handler="index.sleep", Timeout=10)

        def call() -> object:
            try:
                return invoke_json(lam, fname, {"seconds": 1})[1]["environment"]
            except ClientError as error:
                return error.response

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            outcomes = list(pool.map(lambda _: call(), range(3)))
        pids = [o for o in outcomes if isinstance(o, str)]  # environments (log streams)
        throttled = [o for o in outcomes if not isinstance(o, str)]
        assert len(set(pids)) == 2 and len(throttled) == 1, outcomes
        assert throttled[0]["Error"]["Code"] == "TooManyRequestsException"
        assert throttled[0]["Reason"] == "ConcurrentInvocationLimitExceeded"
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            again = list(pool.map(lambda _: call(), range(2)))
        assert sorted(again) == sorted(pids), "the two warm environments serve, no throttle"
    finally:
        lam.close()
        engine.stop()
