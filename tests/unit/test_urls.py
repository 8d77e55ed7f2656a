"""Function URLs: the request → event and result → response mapping (payload format 2.0)."""

from __future__ import annotations

import base64
import json

import pytest

from lamina.domain import errors, urls

CONFIG = urls.FunctionUrlConfig("fn", "$LATEST", "a" * 32, "NONE")


def event_of(method="GET", path="/", query="", headers=(), body=b"", config=CONFIG):
    request = urls.HttpRequest(method, path, query, list(headers), body, "10.0.0.1")
    return urls.http_event(request, config, "us-east-1", "123456789012", "rid", 1_700_000_000.25)


def test_event_has_payload_2_0_shape():
    event = event_of(
        "POST",
        "/a/b",
        "x=1&x=2&empty=",
        [
            ("Cookie", "s=1; t=2"),
            ("Content-Type", "application/json"),
            ("X-Multi", "1"),
            ("x-multi", "2"),
            ("User-Agent", "ua"),
        ],
        b'{"k": 1}',
    )
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/a/b" and event["rawQueryString"] == "x=1&x=2&empty="
    assert event["cookies"] == ["s=1", "t=2"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-multi"] == "1,2"
    assert event["queryStringParameters"] == {"x": "1,2", "empty": ""}
    context = event["requestContext"]
    assert context["accountId"] == "anonymous" and "authorizer" not in context
    assert context["domainName"] == f"{'a' * 32}.lambda-url.us-east-1.on.aws"
    assert context["http"] == {
        "method": "POST",
        "path": "/a/b",
        "protocol": "HTTP/1.1",
        "sourceIp": "10.0.0.1",
        "userAgent": "ua",
    }
    assert context["time"] == "14/Nov/2023:22:13:20 +0000"
    assert context["timeEpoch"] == 1_700_000_000_250
    assert event["body"] == '{"k": 1}' and event["isBase64Encoded"] is False


def test_event_without_query_or_body_leaves_them_out():
    event = event_of()
    assert "queryStringParameters" not in event and "body" not in event
    assert "cookies" not in event and event["isBase64Encoded"] is False


@pytest.mark.parametrize(
    "content_type,body,binary",
    [
        ("application/octet-stream", b"\x00\x01", True),
        ("image/png", b"abc", True),
        ("application/x-www-form-urlencoded", b"a=1", True),
        ("text/plain", b"hello", False),
        ("application/vnd.api+json", b"{}", False),
        ("", b"\xff\xfe", True),
    ],
)
def test_binary_bodies_are_base64(content_type, body, binary):
    event = event_of(
        "POST", headers=[("Content-Type", content_type)] if content_type else [], body=body
    )
    assert event["isBase64Encoded"] is binary
    assert (base64.b64decode(event["body"]) if binary else event["body"].encode()) == body


def test_iam_url_reports_the_caller():
    config = urls.FunctionUrlConfig("fn", "$LATEST", "b" * 32, "AWS_IAM")
    event = event_of(
        headers=[
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2023"
                "/us-east-1/lambda/aws4_request, Signature=x",
            )
        ],
        config=config,
    )
    context = event["requestContext"]
    assert context["accountId"] == "123456789012"
    assert context["authorizer"]["iam"]["accessKey"] == "AKIDEXAMPLE"
    assert urls.is_signed("AWS4-HMAC-SHA256 Credential=x") and not urls.is_signed(None)


def test_a_result_without_status_code_is_the_body_of_a_200():
    # as AWS answers (recorded): a string is the body itself, other JSON comes compact
    for payload, body in (
        (b'"Hello, world!"', b"Hello, world!"),
        (b'{"message": "hi"}', b'{"message":"hi"}'),
        (b'["hello", 3, true]', b'["hello",3,true]'),
        (b"3.1", b"3.1"),
        (b"null", b"null"),
        (b"not json", b"not json"),
    ):
        response = urls.http_response(payload)
        assert (response.status, response.body) == (200, body)
        assert response.headers == [("Content-Type", "application/json")]


def test_a_result_with_status_code_is_the_response():
    response = urls.http_response(
        json.dumps(
            {
                "statusCode": 201,
                "headers": {"Content-Type": "text/html", "X-Custom": "v"},
                "cookies": ["a=1; Max-Age=10", "b=2"],
                "body": "<p>hi</p>",
            }
        ).encode()
    )
    assert response.status == 201 and response.body == b"<p>hi</p>"
    assert ("X-Custom", "v") in response.headers
    assert [v for k, v in response.headers if k == "Set-Cookie"] == ["a=1; Max-Age=10", "b=2"]
    assert [v for k, v in response.headers if k.lower() == "content-type"] == ["text/html"]


def test_base64_and_object_bodies():
    raw = bytes(range(256))
    response = urls.http_response(
        json.dumps(
            {"statusCode": 200, "isBase64Encoded": True, "body": base64.b64encode(raw).decode()}
        ).encode()
    )
    assert response.body == raw
    assert urls.http_response(b'{"statusCode": 200, "body": {"a": 1}}').body == b'{"a": 1}'
    assert urls.http_response(b'{"statusCode": "204"}').status == 204


@pytest.mark.parametrize(
    "payload",
    [
        b'{"statusCode": 42}',
        b'{"statusCode": "x"}',
        b'{"statusCode": 200, "isBase64Encoded": true, "body": "not base64!"}',
    ],
)
def test_an_invalid_response_is_a_502(payload):
    assert urls.http_response(payload).status == 502


def test_streamed_prelude():
    assert urls.stream_prelude(b'{"statusCode": 20') is None
    prelude, rest = urls.stream_prelude(
        b'{"statusCode": 201, "headers": {"A": "b"}}' + b"\0" * 8 + b"first"
    )
    assert rest == b"first"
    assert urls.streamed_head(prelude) == (201, [("A", "b"), ("Content-Type", "application/json")])


def test_cors():
    cors = {
        "AllowOrigins": ["https://app.example"],
        "AllowMethods": ["GET", "POST"],
        "AllowHeaders": ["x-token"],
        "ExposeHeaders": ["x-out"],
        "MaxAge": 60,
        "AllowCredentials": True,
    }
    assert urls.cors_headers(cors, "https://evil.example") == []
    assert urls.cors_headers(None, "https://app.example") == []
    simple = dict(urls.cors_headers(cors, "https://app.example"))
    assert simple["Access-Control-Allow-Origin"] == "https://app.example"
    assert simple["Access-Control-Expose-Headers"] == "x-out"
    assert simple["Access-Control-Allow-Credentials"] == "true"
    preflight = dict(urls.cors_headers(cors, "https://app.example", preflight=True))
    assert preflight["Access-Control-Allow-Methods"] == "GET,POST"
    assert preflight["Access-Control-Max-Age"] == "60"
    assert (
        dict(urls.cors_headers({"AllowOrigins": ["*"]}, "https://x"))["Access-Control-Allow-Origin"]
        == "*"
    )


def test_validation():
    urls.check_qualifier(None)
    urls.check_qualifier("live")
    for bad in ("1", "$LATEST"):
        with pytest.raises(errors.ValidationError):
            urls.check_qualifier(bad)
    with pytest.raises(errors.ValidationError, match="must not be null"):
        urls.check_auth_type(None, required=True)
    urls.check_auth_type(None, required=False)
    with pytest.raises(errors.ValidationError):
        urls.check_auth_type("OPEN", required=True)
    with pytest.raises(errors.ValidationError):
        urls.check_invoke_mode("FAST")
    with pytest.raises(errors.ValidationError):
        urls.check_cors({"AllowMethods": ["GET"] * 7})
    with pytest.raises(errors.ValidationError):
        urls.check_cors({"MaxAge": 90_000})
    assert urls.check_cors({"AllowOrigins": ["*"], "Other": 1}) == {"AllowOrigins": ["*"]}


def test_url_ids_and_hosts():
    url_id = urls.new_url_id()
    assert len(url_id) == 32 and url_id.isalnum() and url_id.lower() == url_id
    match = urls.HOST_RE.fullmatch(f"{url_id}.lambda-url.us-east-1.localhost:9001")
    assert match is not None and match.group(1) == url_id
    assert urls.HOST_RE.fullmatch("127.0.0.1:9001") is None
