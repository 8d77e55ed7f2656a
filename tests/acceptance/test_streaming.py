"""InvokeWithResponseStream: pieces reach boto3 and the JavaScript SDK v3 as they are written."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.conftest import FUNCTIONS, ROOT, create_function, have_node, invoke_json, zip_dir

pytestmark = pytest.mark.skipif(not have_node(), reason="node is not installed")
STREAM = zip_dir(FUNCTIONS / "node_stream")


def read_events(response) -> list[tuple[float, dict]]:
    return [(time.monotonic(), event) for event in response["EventStream"]]


def test_chunks_arrive_before_the_function_ends(lam, fname):
    create_function(lam, fname, STREAM, runtime="nodejs20.x", Timeout=10)
    started = time.monotonic()
    response = lam.invoke_with_response_stream(
        FunctionName=fname, Payload=json.dumps({"gapMs": 700}).encode(), LogType="Tail"
    )
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    events = read_events(response)
    chunks = [(at, e["PayloadChunk"]["Payload"]) for at, e in events if "PayloadChunk" in e]
    assert b"".join(c for _, c in chunks) == b"one two three"
    assert len(chunks) == 3
    complete_at, complete = events[-1]
    assert "InvokeComplete" in complete and "ErrorCode" not in complete["InvokeComplete"]
    assert "LogResult" in complete["InvokeComplete"]
    # each piece came as it was written, 0.7 s apart, not all at the end
    assert chunks[1][0] - chunks[0][0] > 0.5 and chunks[2][0] - chunks[1][0] > 0.5
    assert complete_at - started > 1.3


def test_mid_stream_error_arrives_as_invoke_complete(lam, fname):
    create_function(lam, fname, STREAM, runtime="nodejs20.x")
    response = lam.invoke_with_response_stream(
        FunctionName=fname, Payload=json.dumps({"fail": True, "gapMs": 10}).encode()
    )
    events = [e for _, e in read_events(response)]
    assert (
        b"".join(e["PayloadChunk"]["Payload"] for e in events if "PayloadChunk" in e)
        == b"one two three"
    )
    complete = events[-1]["InvokeComplete"]
    assert complete["ErrorCode"] == "RangeError"
    assert complete["ErrorDetails"] == "broke mid-stream"


def test_buffered_invoke_of_a_streaming_function_gets_the_whole_body(lam, fname):
    create_function(lam, fname, STREAM, runtime="nodejs20.x")
    response, body = invoke_json(lam, fname, {"gapMs": 5})
    assert body == b"one two three"
    assert "FunctionError" not in response


def test_a_buffered_function_through_the_streaming_api(lam, fname):
    create_function(lam, fname, zip_dir(FUNCTIONS / "python"), handler="index.echo")
    response = lam.invoke_with_response_stream(FunctionName=fname, Payload=b'{"a": 1}')
    events = [e for _, e in read_events(response)]
    assert json.loads(events[0]["PayloadChunk"]["Payload"]) == {"a": 1}
    assert events[-1] == {"InvokeComplete": {}}
    assert response["ResponseMetadata"]["RequestId"] != ""


def test_javascript_sdk_v3_receives_the_stream(server, lam, fname):
    js = ROOT / "tests" / "js"
    if not (js / "node_modules" / "@aws-sdk" / "client-lambda").exists():
        pytest.skip("@aws-sdk/client-lambda is not installed (scripts/setup --test)")
    create_function(lam, fname, STREAM, runtime="nodejs20.x")
    env = {k: v for k, v in os.environ.items() if k != "NODE_EXTRA_CA_CERTS"}
    out = subprocess.run(
        [
            "node",
            str(js / "stream_call.mjs"),
            server.endpoint,
            fname,
            json.dumps({"gapMs": 400, "fail": True}),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=js,
    )
    assert out.returncode == 0, out.stderr
    events = json.loads(out.stdout)
    chunks = [e for e in events if e["type"] == "PayloadChunk"]
    assert "".join(e["text"] for e in chunks) == "one two three"
    assert chunks[1]["atMs"] - chunks[0]["atMs"] > 250
    assert events[-1]["type"] == "InvokeComplete"
    assert events[-1]["ErrorCode"] == "RangeError"
