"""Function URLs: the configuration API with boto3, and HTTP requests with curl and http.client."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from tests.conftest import create_function, have_node, make_zip, start_server

HANDLERS = make_zip(
    {
        "app.py": """
import base64, json, time


def echo(event, context):
    return event


def custom(event, context):
    return {"statusCode": 201, "headers": {"X-Custom": "yes", "Content-Type": "text/plain"},
            "cookies": ["a=1; Max-Age=60", "b=2"], "body": "made " + event["rawPath"]}


def binary(event, context):
    return {"statusCode": 200, "isBase64Encoded": True,
            "headers": {"Content-Type": "application/octet-stream"},
            "body": base64.b64encode(bytes(range(256))).decode()}


def plain(event, context):
    return "just a string"


def fail(event, context):
    raise RuntimeError("no")


def slow(event, context):
    time.sleep(1.0)
    return {"statusCode": 200, "body": "slow"}
"""
    }
)
STREAMING = make_zip(
    {
        "index.mjs": """
export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
  const stream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 202, headers: {'Content-Type': 'text/plain', 'X-Streamed': 'yes'}});
  stream.write('first ');
  await new Promise((resolve) => setTimeout(resolve, 600));
  stream.write('second');
  stream.end();
});

export const bad = awslambda.streamifyResponse(async (event, responseStream) => {
  const stream = awslambda.HttpResponseStream.from(responseStream, {statusCode: 'teapot'});
  stream.write('never seen');
  stream.end();
});
"""
    }
)


def make(lam, name: str, handler: str, **url) -> dict:
    create_function(lam, name, HANDLERS, handler=f"app.{handler}")
    return lam.create_function_url_config(FunctionName=name, **({"AuthType": "NONE"} | url))


def url_parts(url: str) -> tuple[str, int]:
    """(host header, port) of a function URL."""
    host = url.split("//", 1)[1].rstrip("/")
    return host, int(host.rsplit(":", 1)[1])


def request(
    url: str,
    method: str = "GET",
    path: str = "/",
    body: bytes | None = None,
    headers: dict | None = None,
) -> http.client.HTTPResponse:
    host, port = url_parts(url)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
    response = conn.getresponse()
    response.data = response.read()
    conn.close()
    return response


def test_create_get_update_list_delete(lam, fname, server):
    created = make(lam, fname, "echo", Cors={"AllowOrigins": ["https://app.example"]})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    url = created["FunctionUrl"]
    assert url.startswith("http://") and ".lambda-url.us-east-1.localhost:" in url
    # AWS echoes InvokeMode from Create and Update only when it was given; Get and List show
    # the mode in effect (BUFFERED)
    assert created["AuthType"] == "NONE" and "InvokeMode" not in created
    assert created["FunctionArn"].endswith(f":function:{fname}")
    got = lam.get_function_url_config(FunctionName=fname)
    assert got["FunctionUrl"] == url and "LastModifiedTime" in got
    assert got["Cors"] == {"AllowOrigins": ["https://app.example"]}
    assert got["InvokeMode"] == "BUFFERED"
    updated = lam.update_function_url_config(FunctionName=fname, AuthType="AWS_IAM")
    assert updated["AuthType"] == "AWS_IAM" and updated["FunctionUrl"] == url
    assert "InvokeMode" not in updated
    assert updated["Cors"] == {"AllowOrigins": ["https://app.example"]}, "kept when not given"
    listed = lam.list_function_url_configs(FunctionName=fname)["FunctionUrlConfigs"]
    assert [(c["FunctionUrl"], c["InvokeMode"]) for c in listed] == [(url, "BUFFERED")]
    shown = server.get(f"/_lamina/functions/{fname}")["FunctionUrls"]
    assert [(u["FunctionUrl"], u["AuthType"]) for u in shown] == [(url, "AWS_IAM")], (
        "the console's function detail lists the URL"
    )
    with pytest.raises(ClientError) as conflict:
        lam.create_function_url_config(FunctionName=fname, AuthType="NONE")
    assert conflict.value.response["Error"]["Code"] == "ResourceConflictException"
    assert "FunctionUrlConfig exists for this Lambda function" in str(conflict.value)
    lam.delete_function_url_config(FunctionName=fname)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_url_config(FunctionName=fname)
    assert request(url).status == 403, "a deleted URL answers Forbidden"


@pytest.mark.parametrize(
    "call,code",
    [
        ({"AuthType": "OPEN"}, "ValidationException"),
        ({"AuthType": "NONE", "Qualifier": "1"}, "ValidationException"),
        ({"AuthType": "NONE", "Qualifier": "nope"}, "ResourceNotFoundException"),
        ({"AuthType": "NONE", "InvokeMode": "FAST"}, "ValidationException"),
        ({"AuthType": "NONE", "Cors": {"MaxAge": 90000}}, "ValidationException"),
    ],
)
def test_bad_configurations_are_refused(lam, fname, call, code):
    create_function(lam, fname, HANDLERS, handler="app.echo")
    with pytest.raises(ClientError) as refused:
        lam.create_function_url_config(FunctionName=fname, **call)
    assert refused.value.response["Error"]["Code"] == code
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.create_function_url_config(FunctionName=f"{fname}-missing", AuthType="NONE")


def test_a_request_becomes_a_payload_2_event(lam, fname):
    url = make(lam, fname, "echo")["FunctionUrl"]
    response = request(
        url,
        "POST",
        "/some/path?x=1&x=2",
        b'{"k": 1}',
        {"Content-Type": "application/json", "Cookie": "s=1; t=2", "User-Agent": "lamina-test"},
    )
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/json"
    event = json.loads(response.data)
    assert event["version"] == "2.0" and event["rawPath"] == "/some/path"
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["body"] == '{"k": 1}' and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"]["method"] == "POST" and context["http"]["userAgent"] == "lamina-test"
    assert context["domainPrefix"] == url_parts(url)[0].split(".")[0]
    assert response.getheader("x-amzn-RequestId") == context["requestId"]
    binary = json.loads(
        request(
            url, "PUT", "/", bytes(range(10)), {"Content-Type": "application/octet-stream"}
        ).data
    )
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == bytes(range(10))


def test_results_become_responses(lam, fname):
    custom = request(make(lam, f"{fname}-c", "custom")["FunctionUrl"], path="/p")
    assert custom.status == 201 and custom.data == b"made /p"
    assert custom.getheader("X-Custom") == "yes"
    assert custom.getheader("Content-Type") == "text/plain"
    assert custom.headers.get_all("Set-Cookie") == ["a=1; Max-Age=60", "b=2"]
    raw = request(make(lam, f"{fname}-b", "binary")["FunctionUrl"])
    assert raw.data == bytes(range(256))
    plain = request(make(lam, f"{fname}-p", "plain")["FunctionUrl"])
    # AWS answers a string result as the body itself (recorded), not as a JSON string
    assert plain.status == 200 and plain.data == b"just a string"
    failed = request(make(lam, f"{fname}-f", "fail")["FunctionUrl"])
    assert failed.status == 502 and failed.data == b"Internal Server Error", "AWS's body"


def test_curl_reaches_the_url_by_its_name_and_by_path(lam, fname):
    url = make(lam, fname, "custom")["FunctionUrl"]
    out = subprocess.run(
        ["curl", "-s", "-i", url + "named"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("HTTP/1.1 201") and out.stdout.endswith("made /named")
    host, port = url_parts(url)
    by_path = f"http://127.0.0.1:{port}/_lamina/url/{host.split('.')[0]}/by/path"
    out = subprocess.run(["curl", "-s", by_path], capture_output=True, text=True, timeout=30)
    assert out.stdout == "made /by/path"


def test_cors_preflight_and_simple_requests(lam, fname):
    url = make(
        lam,
        fname,
        "echo",
        Cors={
            "AllowOrigins": ["https://app.example"],
            "AllowMethods": ["GET", "POST"],
            "AllowHeaders": ["x-token"],
            "ExposeHeaders": ["x-out"],
            "MaxAge": 300,
        },
    )["FunctionUrl"]
    preflight = request(
        url,
        "OPTIONS",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 200
    assert preflight.getheader("Access-Control-Allow-Origin") == "https://app.example"
    assert preflight.getheader("Access-Control-Allow-Methods") == "GET,POST"
    assert preflight.getheader("Access-Control-Max-Age") == "300"
    simple = request(url, headers={"Origin": "https://app.example"})
    assert simple.getheader("Access-Control-Expose-Headers") == "x-out"
    other = request(url, headers={"Origin": "https://evil.example"})
    assert other.status == 200 and other.getheader("Access-Control-Allow-Origin") is None


def test_aws_iam_urls_want_a_signed_request(lam, fname):
    url = make(lam, fname, "echo", AuthType="AWS_IAM")["FunctionUrl"]
    assert request(url).status == 403
    signed = request(
        url,
        headers={
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDTEST/"
            "20260101/us-east-1/lambda/aws4_request, "
            "SignedHeaders=host, Signature=abc"
        },
    )
    assert signed.status == 200
    iam = json.loads(signed.data)["requestContext"]["authorizer"]["iam"]
    assert iam["accessKey"] == "AKIDTEST"


def test_an_alias_url_runs_the_alias(lam, fname):
    create_function(lam, fname, HANDLERS, handler="app.echo")
    version = lam.publish_version(FunctionName=fname)["Version"]
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion=version)
    created = lam.create_function_url_config(FunctionName=fname, Qualifier="live", AuthType="NONE")
    assert created["FunctionArn"].endswith(f":function:{fname}:live")
    assert request(created["FunctionUrl"]).status == 200
    lam.delete_alias(FunctionName=fname, Name="live")
    assert request(created["FunctionUrl"]).status == 403, "the URL went with its alias"


@pytest.mark.skipif(not have_node(), reason="node is not installed")
def test_a_streaming_url_sends_pieces_as_they_are_written(lam, fname):
    create_function(lam, fname, STREAMING, runtime="nodejs20.x", handler="index.handler")
    url = lam.create_function_url_config(
        FunctionName=fname, AuthType="NONE", InvokeMode="RESPONSE_STREAM"
    )["FunctionUrl"]
    host, port = url_parts(url)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/", headers={"Host": host})
    response = conn.getresponse()
    assert response.status == 202 and response.getheader("X-Streamed") == "yes"
    started = time.monotonic()
    first = response.read1(100)
    first_at = time.monotonic()
    rest = response.read()
    assert (first + rest) == b"first second"
    assert first.startswith(b"first") and time.monotonic() - first_at > 0.4, (
        "the first piece came before the function ended"
    )
    assert first_at - started < 0.4
    conn.close()


def test_urls_survive_a_restart(tmp_path):
    from tests.conftest import client

    engine = start_server(tmp_path / "data")
    try:
        lam = client(engine.endpoint)
        url = make(lam, "kept", "custom")["FunctionUrl"]
        engine.stop()
        engine = start_server(tmp_path / "data", port=engine.port)
        lam = client(engine.endpoint)
        assert lam.get_function_url_config(FunctionName="kept")["FunctionUrl"] == url
        assert request(url, path="/again").data == b"made /again"
    finally:
        engine.stop()


@pytest.mark.skipif(not have_node(), reason="node is not installed")
def test_a_streamed_response_with_a_bad_prelude_is_a_502(lam, fname):
    create_function(lam, fname, STREAMING, runtime="nodejs20.x", handler="index.bad")
    url = lam.create_function_url_config(
        FunctionName=fname, AuthType="NONE", InvokeMode="RESPONSE_STREAM"
    )["FunctionUrl"]
    response = request(url)
    assert response.status == 502 and b"never seen" not in response.data
    again = request(url)
    assert again.status == 502, "the environment finished its invocation and serves again"


def test_strict_parity_wants_a_public_policy_for_a_none_url(tmp_path):
    """Since October 2025 a NONE URL answers only when the function's policy grants anyone
    both lambda:InvokeFunctionUrl and lambda:InvokeFunction (`--parity strict`; by default
    a local URL answers without them, as the first test of this file shows)."""
    from lamina.domain.urls import FORBIDDEN
    from tests.conftest import engine_client

    with engine_client(tmp_path / "data", "--parity", "strict") as lam:
        url = make(lam, "public", "custom")["FunctionUrl"]
        refused = request(url)
        assert refused.status == 403 and json.loads(refused.data) == {"Message": FORBIDDEN}
        lam.add_permission(
            FunctionName="public",
            StatementId="url",
            Action="lambda:InvokeFunctionUrl",
            Principal="*",
            FunctionUrlAuthType="NONE",
        )
        assert request(url).status == 403  # the pre-2025 policy alone no longer opens it
        lam.add_permission(
            FunctionName="public",
            StatementId="invoke-via-url",
            Action="lambda:InvokeFunction",
            Principal="*",
            InvokedViaFunctionUrl=True,
        )
        opened = request(url, path="/now")
        assert opened.status == 201 and opened.data == b"made /now"
        lam.remove_permission(FunctionName="public", StatementId="url")
        assert request(url).status == 403
        # a statement for another auth type grants nothing to a NONE URL
        lam.add_permission(
            FunctionName="public",
            StatementId="iam-only",
            Action="lambda:InvokeFunctionUrl",
            Principal="*",
            FunctionUrlAuthType="AWS_IAM",
        )
        assert request(url).status == 403
