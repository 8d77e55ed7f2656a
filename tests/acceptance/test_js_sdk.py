"""The AWS SDK for JavaScript v3 (`@aws-sdk/client-lambda`) against a real `lamina serve`.

Each test runs `node tests/js/drive.mjs ENDPOINT STEPS` once: the driver sends the Lambda
commands with a `LambdaClient` pointed at the engine and prints, per step, the command's
output (Invoke's Payload and LogResult decoded) or the error the SDK raised, as JSON.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FUNCTIONS, PY_RUNTIME, ROLE, zip_dir

JS = Path(__file__).resolve().parent.parent / "js"
DRIVER = JS / "drive.mjs"
SDK = JS / "node_modules" / "@aws-sdk" / "client-lambda"
PACKAGE = zip_dir(FUNCTIONS / "python")

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(
        not SDK.is_dir(), reason=f"{SDK} missing: run scripts/setup --test (needs npm)"
    ),
]


def drive(server, *steps: dict) -> list[dict]:
    """Run the steps in one node process; return a result per step."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "NODE_EXTRA_CA_CERTS" and not k.startswith("AWS_")
    }
    done = subprocess.run(
        ["node", str(DRIVER), server.endpoint, json.dumps(steps)],
        cwd=JS,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert len(results) == len(steps)
    return results


def ok(result: dict) -> dict:
    assert result["ok"], result["error"]
    return result["output"]


def create_steps(name: str, zip_path: Path, handler: str, **extra) -> list[dict]:
    return [
        {
            "op": "CreateFunction",
            "input": {
                "FunctionName": name,
                "Runtime": PY_RUNTIME,
                "Role": ROLE,
                "Handler": handler,
                "Code": {"ZipFile": {"path": str(zip_path)}},
                **extra,
            },
        },
        {"op": "waitUntilFunctionActiveV2", "input": {"FunctionName": name}},
    ]


def invoke_step(name: str, payload: object = None, **extra) -> dict:
    return {
        "op": "Invoke",
        "input": {"FunctionName": name, "Payload": json.dumps(payload or {}), **extra},
    }


@pytest.fixture
def zip_path(tmp_path) -> Path:
    path = tmp_path / "function.zip"
    path.write_bytes(PACKAGE)
    return path


def test_create_wait_invoke_get_and_list(server, fname, zip_path):
    created, waited, invoked, got, one, listed = drive(
        server,
        *create_steps(fname, zip_path, "index.echo", MemorySize=256),
        invoke_step(fname, {"hello": "js", "n": [1, 2]}),
        {"op": "GetFunction", "input": {"FunctionName": fname}},
        {"op": "ListFunctions", "input": {"MaxItems": 1}},
        {"op": "paginateListFunctions", "input": {"MaxItems": 2}},
    )

    created = ok(created)
    assert created["httpStatusCode"] == 201
    assert created["State"] == "Pending"
    assert created["FunctionArn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{fname}"
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(PACKAGE).digest()).decode()
    assert created["MemorySize"] == 256
    assert ok(waited) == {"state": "SUCCESS"}

    invoked = ok(invoked)
    assert invoked["StatusCode"] == 200
    assert invoked["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in invoked and "LogResult" not in invoked
    assert invoked["PayloadJson"] == {"hello": "js", "n": [1, 2]}
    assert len(invoked["requestId"]) == 36

    got = ok(got)
    assert got["Configuration"]["State"] == "Active"
    assert got["Configuration"]["CodeSha256"] == created["CodeSha256"]
    assert got["Code"]["RepositoryType"] == "S3"

    listed = ok(listed)
    names = [f["FunctionName"] for f in listed["Functions"]]
    assert len(names) == len(set(names))
    assert listed["pages"] >= (len(names) + 1) // 2
    one = ok(one)
    assert len(one["Functions"]) == 1
    assert ("NextMarker" in one) == (len(names) > 1)
    mine = [f for f in listed["Functions"] if f["FunctionName"] == fname]
    assert len(mine) == 1 and mine[0]["MemorySize"] == 256


def test_invoke_with_log_type_tail_returns_the_log(server, fname, zip_path):
    *_, cold, warm = drive(
        server,
        *create_steps(fname, zip_path, "index.log_lines"),
        invoke_step(fname, LogType="Tail"),
        invoke_step(fname, LogType="Tail"),
    )
    cold, warm = ok(cold), ok(warm)
    assert cold["PayloadJson"] == "logged"
    request_id = cold["requestId"]
    log = cold["LogText"]
    assert f"START RequestId: {request_id} Version: $LATEST" in log
    assert "printed line" in log and "to stderr" in log
    assert f"END RequestId: {request_id}" in log
    assert f"REPORT RequestId: {request_id}\tDuration: " in log
    assert "Init Duration:" in log
    assert f"START RequestId: {warm['requestId']} " in warm["LogText"]
    assert "Init Duration:" not in warm["LogText"]


def test_function_error_is_unhandled_with_the_error_document(server, fname, zip_path):
    *_, invoked = drive(
        server,
        *create_steps(fname, zip_path, "index.fail"),
        invoke_step(fname, {"message": "js boom"}),
    )
    invoked = ok(invoked)
    assert invoked["StatusCode"] == 200
    assert invoked["FunctionError"] == "Unhandled"
    assert invoked["ExecutedVersion"] == "$LATEST"
    error = invoked["PayloadJson"]
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "js boom"
    assert error["requestId"] == invoked["requestId"]


def test_missing_function_is_resource_not_found(server, fname):
    invoked, got = drive(
        server, invoke_step(fname), {"op": "GetFunction", "input": {"FunctionName": fname}}
    )
    for result in (invoked, got):
        assert not result["ok"]
        error = result["error"]
        assert error["name"] == "ResourceNotFoundException"
        assert error["httpStatusCode"] == 404
        assert error["fault"] == "client"
        assert error["message"].startswith(
            f"Function not found: arn:aws:lambda:us-east-1:123456789012:function:{fname}"
        )


def test_invalid_payload_is_invalid_request_content(server, fname, zip_path):
    *_, invoked = drive(
        server,
        *create_steps(fname, zip_path, "index.echo"),
        {"op": "Invoke", "input": {"FunctionName": fname, "Payload": "{not json"}},
    )
    assert not invoked["ok"]
    assert invoked["error"]["name"] == "InvalidRequestContentException"
    assert invoked["error"]["httpStatusCode"] == 400
    assert invoked["error"]["message"].startswith("Could not parse request body into json")
