"""HTTP APIs the engine serves: API Gateway REST APIs (payload 1.0) and HTTP APIs (payload 2.0),
called with curl (which resolves *.localhost), http.client and urllib; functions made with
boto3; the API made through the admin API and read back with `lamina apis`."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

from tests.acceptance.test_schedules import admin
from tests.conftest import FUNCTIONS, ROOT, Server, create_function, zip_dir

PACKAGE = zip_dir(FUNCTIONS / "events")
ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}"


def new_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def handlers(lam) -> dict[str, str]:
    """One function per handler of tests/functions/events, named for this module's run."""
    names = {}
    suffix = uuid.uuid4().hex[:6]
    for handler in ("echo", "bare", "custom", "custom_v1", "malformed", "boom", "slow"):
        name = f"api-{handler}-{suffix}"
        create_function(lam, name, PACKAGE, handler=f"index.{handler}", Timeout=10)
        names[handler] = ARN.format(name)
    return names


def put_api(server: Server, api_id: str, body: dict) -> dict:
    status, answer = admin(server, "PUT", f"/_lamina/apis/{api_id}", body)
    assert status == 200, answer
    return answer


def curl(url: str, *args: str) -> tuple[int, dict[str, list[str]], bytes]:
    """(status, headers by lower-case name, body) of `curl -i URL`."""
    out = subprocess.run(
        ["curl", "-s", "-i", "--max-time", "60", *args, url], capture_output=True, timeout=90
    )
    assert out.returncode == 0, out.stderr
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(lines[0].split()[1]), headers, body


def call(
    server: Server,
    host: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def test_a_rest_api_sends_the_proxy_event_and_maps_the_result(server, handlers):
    api_id = new_id()
    made = put_api(
        server,
        api_id,
        {
            "Name": "shop",
            "ProtocolType": "REST",
            "StageName": "Prod",
            "StageVariables": {"table": "orders"},
            "Routes": [
                {"Method": "GET", "Path": "/items/{id}", "TargetArn": handlers["echo"]},
                {"Method": "ANY", "Path": "/files/{proxy+}", "TargetArn": handlers["echo"]},
                {"Method": "POST", "Path": "/custom", "TargetArn": handlers["custom_v1"]},
                {"Method": "GET", "Path": "/strict", "TargetArn": handlers["custom"]},
                {"Method": "GET", "Path": "/bad", "TargetArn": handlers["malformed"]},
                {"Method": "GET", "Path": "/boom", "TargetArn": handlers["boom"]},
            ],
        },
    )
    base = f"http://{api_id}.execute-api.localhost:{server.port}/Prod"
    assert made["Url"] == base
    assert made["Routes"][0]["RouteKey"] == "GET /items/{id}"
    assert made["Routes"][0]["PayloadFormatVersion"] == "1.0"

    status, headers, body = curl(base + "/items/42?tag=a&tag=b", "-H", "X-Trace-Me: yes")
    assert status == 200 and headers["x-route"] == ["/items/{id}"]
    assert headers["x-amzn-requestid"]
    event = json.loads(body)
    assert event["resource"] == "/items/{id}" and event["path"] == "/items/42"
    assert event["httpMethod"] == "GET" and event["pathParameters"] == {"id": "42"}
    assert event["queryStringParameters"] == {"tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"]}
    assert event["headers"]["X-Trace-Me"] == "yes" and event["headers"]["User-Agent"]
    assert event["stageVariables"] == {"table": "orders"}
    assert event["requestContext"]["stage"] == "Prod"
    assert event["requestContext"]["path"] == "/Prod/items/42"
    assert event["requestContext"]["requestId"] == headers["x-amzn-requestid"][0]
    assert event["body"] is None and event["isBase64Encoded"] is False

    status, _, body = curl(base + "/files/a/b/c.txt", "-X", "DELETE")
    assert status == 200 and json.loads(body)["pathParameters"] == {"proxy": "a/b/c.txt"}

    status, headers, body = curl(base + "/custom", "-X", "POST", "-d", "payload")
    assert status == 201 and body == b"\x00\x01binary\xff"
    assert headers["x-many"] == ["a", "b"] and headers["x-one"] == ["1"]
    assert "set-cookie" not in headers  # payload 1.0 has no cookies member

    for path, expected in (
        ("/bad", (502, {"message": "Internal server error"})),
        ("/strict", (502, {"message": "Internal server error"})),
        ("/boom", (502, {"message": "Internal server error"})),
        ("/nothing-here", (403, {"message": "Missing Authentication Token"})),
        ("/items/42/more", (403, {"message": "Missing Authentication Token"})),
    ):
        status, _, body = curl(base + path)
        assert (status, json.loads(body)) == expected, path
    status, _, body = curl(f"http://{api_id}.execute-api.localhost:{server.port}/Stage/items/1")
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    status, _, body = curl(f"http://zzzzzzzzzz.execute-api.localhost:{server.port}/Prod/x")
    assert status == 403


def test_an_http_api_sends_payload_2_0_with_cookies_cors_and_its_own_errors(server, handlers):
    api_id = new_id()
    put_api(
        server,
        api_id,
        {
            "Name": "site",
            "ProtocolType": "HTTP",
            "CorsConfiguration": {
                "AllowOrigins": ["https://app.example"],
                "AllowMethods": ["GET", "POST"],
                "AllowHeaders": ["content-type"],
                "MaxAge": 600,
            },
            "Routes": [
                {"Method": "GET", "Path": "/items/{id}", "TargetArn": handlers["echo"]},
                {"Method": "GET", "Path": "/bare", "TargetArn": handlers["bare"]},
                {"Method": "GET", "Path": "/custom", "TargetArn": handlers["custom"]},
                {"Method": "GET", "Path": "/bad", "TargetArn": handlers["malformed"]},
                {"Method": "GET", "Path": "/boom", "TargetArn": handlers["boom"]},
                {
                    "Method": "GET",
                    "Path": "/slow",
                    "TargetArn": handlers["slow"],
                    "TimeoutInMillis": 1000,
                },
            ],
        },
    )
    host = f"{api_id}.execute-api.localhost:{server.port}"
    base = f"http://{host}"
    status, headers, body = curl(
        base + "/items/7?a=1&a=2", "-b", "k1=v1; k2=v2", "-H", "Origin: https://app.example"
    )
    assert status == 200 and headers["apigw-requestid"]
    assert headers["access-control-allow-origin"] == ["https://app.example"]
    event = json.loads(body)
    assert event["version"] == "2.0" and event["routeKey"] == "GET /items/{id}"
    assert event["rawPath"] == "/items/7" and event["rawQueryString"] == "a=1&a=2"
    assert event["queryStringParameters"] == {"a": "1,2"}
    assert event["cookies"] == ["k1=v1", "k2=v2"]
    assert event["pathParameters"] == {"id": "7"}
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["requestContext"]["apiId"] == api_id
    assert event["requestContext"]["stage"] == "$default"

    status, headers, body = curl(base + "/bare")
    assert status == 200 and json.loads(body) == {"hello": "world", "path": "/bare"}
    assert headers["content-type"] == ["application/json"]
    status, headers, body = curl(base + "/custom")
    assert status == 201 and body == b"\x00\x01binary\xff"
    assert headers["set-cookie"] == ["session=abc; Path=/", "theme=dark"]

    status, headers, _ = curl(
        base + "/items/7",
        "-X",
        "OPTIONS",
        "-H",
        "Origin: https://app.example",
        "-H",
        "Access-Control-Request-Method: POST",
    )
    assert status == 204
    assert headers["access-control-allow-methods"] == ["GET,POST"]
    assert headers["access-control-max-age"] == ["600"]

    for path, expected in (
        ("/bad", (500, {"message": "Internal Server Error"})),
        ("/boom", (500, {"message": "Internal Server Error"})),
        ("/missing", (404, {"message": "Not Found"})),
    ):
        status, _, body = call(server, host, "GET", path)
        assert (status, json.loads(body)) == expected, path
    started = time.monotonic()
    status, _, body = call(server, host, "GET", "/slow?seconds=4")
    assert (status, json.loads(body)) == (503, {"message": "Service Unavailable"})
    assert time.monotonic() - started < 3.5  # answered at the 1 s integration timeout


def test_a_named_stage_the_fallback_url_and_a_throttle(server, lam, handlers):
    api_id = new_id()
    made = put_api(
        server,
        api_id,
        {
            "Name": "staged",
            "ProtocolType": "HTTP",
            "StageName": "dev",
            "Routes": [{"Method": "ANY", "Path": "$default", "TargetArn": handlers["echo"]}],
        },
    )
    assert made["FallbackUrl"] == f"http://127.0.0.1:{server.port}/_lamina/apis/{api_id}/dev"
    with urllib.request.urlopen(made["FallbackUrl"] + "/any/where?x=1", timeout=30) as answer:
        event = json.loads(answer.read())
    assert event["routeKey"] == "$default" and event["rawPath"] == "/dev/any/where"
    assert event["requestContext"]["stage"] == "dev"
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(
            f"http://127.0.0.1:{server.port}/_lamina/apis/{api_id}/prod/x", timeout=30
        )
    missing.value.close()  # its unread body holds the connection's socket
    assert missing.value.code == 404

    name = handlers["echo"].rsplit(":", 1)[1]
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    try:
        with pytest.raises(urllib.error.HTTPError) as throttled:
            urllib.request.urlopen(made["FallbackUrl"] + "/x", timeout=30)
        assert throttled.value.code == 500
        assert json.loads(throttled.value.read()) == {"message": "Internal Server Error"}
    finally:
        lam.delete_function_concurrency(FunctionName=name)


def test_apis_are_listed_validated_deleted_and_their_calls_recorded(server, handlers, tmp_path):
    api_id = new_id()
    spec = tmp_path / "api.json"
    spec.write_text(
        json.dumps(
            {
                "Name": "listed",
                "ProtocolType": "REST",
                "StageName": "v1",
                "Stack": "demo",
                "Routes": [{"Method": "GET", "Path": "/ping", "TargetArn": handlers["echo"]}],
            }
        )
    )
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "lamina",
            "apis",
            api_id,
            "--from-file",
            str(spec),
            "--endpoint",
            server.endpoint,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    out = subprocess.run(
        [sys.executable, "-m", "lamina", "apis", "--stack", "demo", "--endpoint", server.endpoint],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert f"http://{api_id}.execute-api.localhost:{server.port}/v1" in out.stdout
    assert "GET /ping" in out.stdout
    status, headers, _ = call(server, f"{api_id}.execute-api.localhost", "GET", "/v1/ping")
    assert status == 200
    request_id = headers["x-amzn-requestid"]
    deadline = time.monotonic() + 10
    while admin(server, "GET", f"/_lamina/invocations/{request_id}")[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    timeline = admin(server, "GET", f"/_lamina/invocations/{request_id}")[1]["Timeline"]
    accepted = next(r for r in timeline if r["Kind"] == "accepted")
    assert (accepted["source"], accepted["api"], accepted["route"]) == (
        "apigateway",
        api_id,
        "GET /ping",
    )

    for bad, message in (
        (
            {
                "ProtocolType": "REST",
                "StageName": "v1",
                "Routes": [{"Method": "GET", "Path": "/a/{p+}/b", "TargetArn": handlers["echo"]}],
            },
            "must be the last segment",
        ),
        (
            {
                "ProtocolType": "HTTP",
                "Routes": [
                    {"Method": "GET", "Path": "/a", "TargetArn": "arn:aws:sqs:us-east-1:1:q"}
                ],
            },
            "not a Lambda function",
        ),
    ):
        status, answer = admin(server, "PUT", f"/_lamina/apis/{new_id()}", bad)
        assert status == 400 and message in answer["message"], answer
    status, answer = admin(server, "PUT", "/_lamina/apis/NOT-AN-ID", {"Routes": []})
    assert status == 400 and "10 lowercase" in answer["message"]

    assert admin(server, "DELETE", f"/_lamina/apis/{api_id}")[0] == 204
    status, _, body = call(server, f"{api_id}.execute-api.localhost", "GET", "/v1/ping")
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    assert admin(server, "DELETE", f"/_lamina/apis/{api_id}")[0] == 404


def test_binary_request_bodies_reach_the_function_base64_encoded(server, handlers):
    api_id = new_id()
    put_api(
        server,
        api_id,
        {
            "Name": "bin",
            "Routes": [{"Method": "POST", "Path": "/upload", "TargetArn": handlers["echo"]}],
        },
    )
    data = bytes(range(256))
    status, _, body = call(
        server,
        f"{api_id}.execute-api.localhost",
        "POST",
        "/upload",
        body=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert status == 200
    event = json.loads(body)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == data
