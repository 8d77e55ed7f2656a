"""HTTP APIs, pure: validation, stage prefixes, route selection, events and responses."""

from __future__ import annotations

import base64
import json

import pytest

from lamina.domain import api_events, apis, errors
from lamina.domain.apis import HttpApi, Route
from lamina.domain.urls import HttpRequest

FN = "arn:aws:lambda:us-east-1:123456789012:function:f"


def api(
    *routes: tuple[str, str],
    protocol: str = "HTTP",
    stage: str = "$default",
    payload: str | None = None,
    **extra,
) -> HttpApi:
    fmt = payload or ("2.0" if protocol == "HTTP" else "1.0")
    return HttpApi(
        "abcdef1234",
        "test",
        protocol,
        stage,
        tuple(Route(m, p, FN, fmt) for m, p in routes),
        **extra,
    )


def chosen(found: apis.Match | None) -> str | None:
    return None if found is None else found.route.key


def test_the_most_specific_route_wins_segment_by_segment() -> None:
    a = api(
        ("GET", "/items/{id}"),
        ("GET", "/items/special"),
        ("ANY", "/items/{proxy+}"),
        ("ANY", "/{proxy+}"),
        ("GET", "/"),
        ("ANY", "/items/{id}"),
    )
    assert chosen(apis.match(a, "GET", "/items/special")) == "GET /items/special"
    found = apis.match(a, "GET", "/items/42")
    assert chosen(found) == "GET /items/{id}" and found.path_parameters == {"id": "42"}
    assert chosen(apis.match(a, "POST", "/items/42")) == "ANY /items/{id}"
    found = apis.match(a, "GET", "/items/42/parts/7")
    assert chosen(found) == "ANY /items/{proxy+}"
    assert found.path_parameters == {"proxy": "42/parts/7"}
    assert chosen(apis.match(a, "DELETE", "/other/x")) == "ANY /{proxy+}"
    assert chosen(apis.match(a, "GET", "/")) == "GET /"
    assert chosen(apis.match(a, "POST", "/")) is None  # {proxy+} needs a segment
    assert chosen(apis.match(a, "GET", "/items/42/")) == "GET /items/{id}"  # trailing slash


def test_default_route_takes_what_nothing_else_matches_and_paths_are_case_sensitive() -> None:
    a = api(("GET", "/pets"), ("ANY", "$default"))
    assert chosen(apis.match(a, "GET", "/pets")) == "GET /pets"
    assert chosen(apis.match(a, "GET", "/Pets")) == "$default"
    assert chosen(apis.match(a, "POST", "/pets")) == "$default"
    assert chosen(apis.match(api(("GET", "/pets")), "GET", "/Pets")) is None


def test_a_literal_earlier_in_the_path_beats_a_parameter_there() -> None:
    a = api(("GET", "/a/{x}/c"), ("GET", "/a/b/{y}"))
    assert chosen(apis.match(a, "GET", "/a/b/c")) == "GET /a/b/{y}"


def test_stage_prefixes() -> None:
    rest = api(("GET", "/x"), protocol="REST", stage="Prod")
    assert apis.split_stage(rest, "/Prod/x") == "/x"
    assert apis.split_stage(rest, "/Prod") == "/"
    assert apis.split_stage(rest, "/prod/x") is None
    assert apis.split_stage(rest, "/x") is None
    assert apis.split_stage(api(("GET", "/x")), "/x") == "/x"
    named = api(("GET", "/x"), stage="dev")
    assert apis.split_stage(named, "/dev/x") == "/x"
    assert apis.split_stage(named, "/x") is None


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (api(("GET", "/a/{p+}/b")), "must be the last segment"),
        (api(("GET", "/a"), ("GET", "/a")), "given twice"),
        (api(("FETCH", "/a")), "method must be one of"),
        (api(("GET", "a")), "starts with '/'"),
        (api(("GET", "/{a}/{a}")), "given twice"),
        (api(("ANY", "$default"), protocol="REST", stage="Prod"), "$default routes"),
        (api(("GET", "/a"), protocol="REST", stage="Prod", payload="2.0"), "payload 1.0"),
        (api(("GET", "/a"), protocol="REST", stage="$default"), "stage"),
        (HttpApi("ABC", "n", "HTTP", "$default", ()), "10 lowercase"),
        (HttpApi("abcdef1234", "n", "GRPC", "$default", ()), "Protocol"),
        (
            HttpApi(
                "abcdef1234", "n", "HTTP", "$default", (Route("GET", "/a", FN, "2.0", 31_000),)
            ),
            "TimeoutInMillis",
        ),
    ],
)
def test_bad_apis_are_refused_naming_the_route(bad: HttpApi, message: str) -> None:
    with pytest.raises(errors.InvalidParameterValue) as caught:
        apis.validate(bad)
    assert message in caught.value.message


def test_the_wire_shape_round_trips() -> None:
    a = api(
        ("GET", "/items/{id}"),
        ("ANY", "$default"),
        stage_variables={"env": "dev"},
        cors={"AllowOrigins": ["*"]},
        stack="shop",
    )
    assert apis.from_wire(a.api_id, apis.to_wire(a)) == a
    assert len(apis.new_api_id()) == 10 and apis.API_ID_RE.fullmatch(apis.new_api_id())


def request(
    method: str = "GET",
    path: str = "/Prod/items/42",
    query: str = "a=1&a=2&b=x",
    body: bytes = b"",
    headers=None,
) -> HttpRequest:
    return HttpRequest(
        method,
        path,
        query,
        headers or [("host", "h"), ("user-agent", "ua"), ("cookie", "c1=1; c2=2")],
        body,
    )


def test_the_rest_proxy_event_has_payload_1_0s_members() -> None:
    a = api(("GET", "/items/{id}"), protocol="REST", stage="Prod", stage_variables={"env": "test"})
    found = apis.match(a, "GET", "/items/42")
    event = api_events.event(
        a, found, request(), "/items/42", "us-east-1", "123456789012", "rid", 1_700_000_000.5
    )
    assert event["resource"] == "/items/{id}" and event["path"] == "/items/42"
    assert event["httpMethod"] == "GET" and event["pathParameters"] == {"id": "42"}
    assert event["queryStringParameters"] == {"a": "2", "b": "x"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x"]}
    assert event["headers"]["User-Agent"] == "ua"
    assert event["multiValueHeaders"]["Cookie"] == ["c1=1; c2=2"]
    assert event["stageVariables"] == {"env": "test"}
    assert event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["path"] == "/Prod/items/42" and context["resourcePath"] == "/items/{id}"
    assert context["stage"] == "Prod" and context["requestId"] == "rid"
    assert context["requestTimeEpoch"] == 1_700_000_000_500
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["domainName"] == "abcdef1234.execute-api.us-east-1.amazonaws.com"
    none = api_events.event(
        a,
        apis.match(a, "GET", "/items/1"),
        request(query=""),
        "/items/1",
        "us-east-1",
        "123456789012",
        "r",
        0,
    )
    assert none["queryStringParameters"] is None
    assert none["multiValueQueryStringParameters"] is None


def test_the_http_api_event_is_payload_2_0_with_route_key_and_path_parameters() -> None:
    a = api(("GET", "/items/{id}"), stage="dev")
    found = apis.match(a, "GET", "/items/42")
    event = api_events.event(
        a,
        found,
        request(path="/dev/items/42", body=b"\xff\x00"),
        "/items/42",
        "us-east-1",
        "123456789012",
        "rid",
        0,
    )
    assert event["version"] == "2.0" and event["routeKey"] == "GET /items/{id}"
    assert event["rawPath"] == "/dev/items/42" and event["rawQueryString"] == "a=1&a=2&b=x"
    assert event["cookies"] == ["c1=1", "c2=2"]
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x"}
    assert event["pathParameters"] == {"id": "42"}
    assert event["requestContext"]["stage"] == "dev"
    assert event["requestContext"]["accountId"] == "123456789012"
    assert event["requestContext"]["routeKey"] == "GET /items/{id}"
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00"


def result(document: object) -> bytes:
    return json.dumps(document).encode()


def test_payload_1_0_results_become_responses_and_bad_ones_502() -> None:
    rest = api(("GET", "/x"), protocol="REST", stage="Prod")
    ok = api_events.response(
        rest,
        "1.0",
        result(
            {
                "statusCode": 201,
                "headers": {"A": "1", "B": 2},
                "multiValueHeaders": {"B": ["x", "y"]},
                "body": "hi",
            }
        ),
    )
    assert ok.status == 201 and ok.body == b"hi"
    assert ok.headers == [("B", "x"), ("B", "y"), ("A", "1"), ("Content-Type", "application/json")]
    binary = api_events.response(
        rest,
        "1.0",
        result(
            {
                "statusCode": 200,
                "body": base64.b64encode(b"\x00\xff").decode(),
                "isBase64Encoded": True,
            }
        ),
    )
    assert binary.body == b"\x00\xff"
    for bad in (
        {"statusCode": 200, "body": {"not": "text"}},
        {"body": "no status"},
        {"statusCode": 200, "cookies": ["x=1"]},
        "just text",
        [1],
        {"statusCode": "abc"},
    ):
        answer = api_events.response(rest, "1.0", result(bad))
        assert (answer.status, json.loads(answer.body)) == (
            502,
            {"message": "Internal server error"},
        ), bad
    assert api_events.response(rest, "1.0", b"not json").status == 502


def test_payload_2_0_results_infer_a_200_and_bad_ones_are_500() -> None:
    http = api(("GET", "/x"))
    bare = api_events.response(http, "2.0", result({"hello": "world"}))
    assert bare.status == 200 and json.loads(bare.body) == {"hello": "world"}
    assert ("Content-Type", "application/json") in bare.headers
    custom = api_events.response(
        http,
        "2.0",
        result({"statusCode": 302, "headers": {"Location": "/y"}, "cookies": ["a=1", "b=2"]}),
    )
    assert custom.status == 302
    assert [v for k, v in custom.headers if k == "Set-Cookie"] == ["a=1", "b=2"]
    bad = api_events.response(http, "2.0", result({"statusCode": "nope"}))
    assert (bad.status, json.loads(bad.body)) == (500, {"message": "Internal Server Error"})


def test_each_api_type_answers_its_own_errors() -> None:
    rest, http = api(("GET", "/x"), protocol="REST", stage="P"), api(("GET", "/x"))
    assert json.loads(api_events.not_found(rest).body) == {
        "message": "Missing Authentication Token"
    }
    assert api_events.not_found(rest).status == 403
    assert (api_events.not_found(http).status, json.loads(api_events.not_found(http).body)) == (
        404,
        {"message": "Not Found"},
    )
    assert api_events.timed_out(rest).status == 504
    assert json.loads(api_events.timed_out(rest).body) == {"message": "Endpoint request timed out"}
    assert api_events.timed_out(http).status == 503
    assert api_events.throttled(rest).status == 500 and api_events.failed(http).status == 500
