"""HTTP API requests → Lambda events, results → HTTP responses, as API Gateway maps them.

* Payload 1.0 (REST API proxy integrations, and HTTP APIs that ask for it): `resource`,
  `path`, `httpMethod`, `headers`/`multiValueHeaders`, `queryStringParameters`/
  `multiValueQueryStringParameters` (the last value / every value), `pathParameters`,
  `stageVariables`, `requestContext`, `body`, `isBase64Encoded`; members without a value are
  null. The result must be `{statusCode, headers, multiValueHeaders, body, isBase64Encoded}`
  (a REST API refuses any other member and a body that is not text).
* Payload 2.0 (HTTP APIs): the event and the result mapping function URLs use
  (`domain.urls.payload_v2`, `domain.urls.http_response`), plus `routeKey`,
  `pathParameters` and `stageVariables`; a result without `statusCode` becomes a 200
  `application/json` response carrying the result.
* Errors, as each API type answers them: REST 403 `Missing Authentication Token` for a route
  it does not have, 502 `Internal server error` for a function error or a malformed result,
  504 `Endpoint request timed out`; HTTP APIs 404 `Not Found`, 500 `Internal Server Error`,
  503 `Service Unavailable` on the integration timeout.
  https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
  https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html

Pure: no I/O, no clock (times are passed in).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from typing import Any
from urllib.parse import parse_qsl

from lamina.domain import urls
from lamina.domain.apis import HttpApi, Match
from lamina.domain.urls import HttpRequest, HttpResponse

_V1_RESULT_KEYS = frozenset(
    ("statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded")
)


def domain_name(api: HttpApi, region: str) -> str:
    return f"{api.api_id}.execute-api.{region}.amazonaws.com"


# requests → events -------------------------------------------------------------------
def event(
    api: HttpApi,
    found: Match,
    request: HttpRequest,
    stage_path: str,
    region: str,
    account: str,
    request_id: str,
    now: float,
) -> dict[str, Any]:
    """The event the route's function receives (`request.path` is the path as called,
    `stage_path` the path after the stage prefix)."""
    if found.route.payload_format == "2.0":
        context = {
            "accountId": account,
            "apiId": api.api_id,
            "domainName": domain_name(api, region),
            "domainPrefix": api.api_id,
        }
        return urls.payload_v2(
            request,
            context,
            found.route.key,
            api.stage,
            request_id,
            now,
            found.path_parameters or None,
            api.stage_variables or None,
        )
    return payload_v1(api, found, request, stage_path, region, account, request_id, now)


def payload_v1(
    api: HttpApi,
    found: Match,
    request: HttpRequest,
    stage_path: str,
    region: str,
    account: str,
    request_id: str,
    now: float,
) -> dict[str, Any]:
    rest = api.protocol == "REST"
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        key = _canonical(name) if rest else name.lower()
        headers[key] = value
        multi_headers.setdefault(key, []).append(value)
    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for key, value in parse_qsl(request.query, keep_blank_values=True):
        query[key] = value
        multi_query.setdefault(key, []).append(value)
    resource = found.route.path if found.route.path != "$default" else "$default"
    path = stage_path if rest else request.path
    body, binary = _body(request)
    return {
        "version": "1.0",
        "resource": resource,
        "path": path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "requestContext": _context_v1(
            api,
            found,
            request,
            region,
            account,
            request_id,
            now,
            headers.get("User-Agent" if rest else "user-agent"),
        ),
        "pathParameters": found.path_parameters or None,
        "stageVariables": dict(api.stage_variables) or None,
        "body": body,
        "isBase64Encoded": binary,
    }


def _context_v1(
    api: HttpApi,
    found: Match,
    request: HttpRequest,
    region: str,
    account: str,
    request_id: str,
    now: float,
    user_agent: str | None,
) -> dict[str, Any]:
    resource = found.route.path
    return {
        "accountId": account,
        "apiId": api.api_id,
        "domainName": domain_name(api, region),
        "domainPrefix": api.api_id,
        "extendedRequestId": _short_id(request_id),
        "httpMethod": request.method,
        "identity": {
            "accessKey": None,
            "accountId": None,
            "caller": None,
            "cognitoAuthenticationProvider": None,
            "cognitoAuthenticationType": None,
            "cognitoIdentityId": None,
            "cognitoIdentityPoolId": None,
            "principalOrgId": None,
            "sourceIp": request.source_ip,
            "user": None,
            "userAgent": user_agent,
            "userArn": None,
        },
        "path": request.path,
        "protocol": request.protocol,
        "requestId": request_id,
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "requestTimeEpoch": int(now * 1000),
        "resourceId": hashlib.sha1(f"{api.api_id}{resource}".encode()).hexdigest()[:6],
        "resourcePath": resource,
        "stage": api.stage,
    }


def _body(request: HttpRequest) -> tuple[str | None, bool]:
    if not request.body:
        return None, False
    try:
        return request.body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(request.body).decode(), True


def _canonical(name: str) -> str:
    """A header name as most clients send it ("content-type" → "Content-Type"); the server
    reads names case-insensitively, and a REST API passes them on as sent."""
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


def _short_id(request_id: str) -> str:
    return base64.b64encode(hashlib.sha1(request_id.encode()).digest()[:12]).decode()


# results → responses -----------------------------------------------------------------
def response(api: HttpApi, payload_format: str, payload: bytes) -> HttpResponse:
    """The HTTP response for the function's result."""
    if payload_format == "2.0":
        return urls.http_response(payload, malformed=lambda: failed(api))
    return _response_v1(api, payload)


def _response_v1(api: HttpApi, payload: bytes) -> HttpResponse:
    try:
        document = json.loads(payload) if payload else None
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, dict):
        return failed(api)
    if api.protocol == "REST" and not set(document) <= _V1_RESULT_KEYS:
        return failed(api)  # "Malformed Lambda proxy response"
    status = document.get("statusCode", 200 if api.protocol == "HTTP" else None)
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        return failed(api)
    headers = _headers_v1(document)
    body = document.get("body")
    if headers is None or not (body is None or isinstance(body, str)):
        return failed(api)
    data = (body or "").encode()
    if document.get("isBase64Encoded") and data:
        try:
            data = base64.b64decode(data, validate=True)
        except binascii.Error:
            return failed(api)
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return HttpResponse(status, headers, data)


def _headers_v1(document: dict[str, Any]) -> list[tuple[str, str]] | None:
    """headers and multiValueHeaders merged: a name in both takes multiValueHeaders' values."""
    single, multi = document.get("headers") or {}, document.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        return None
    out: list[tuple[str, str]] = []
    for name, values in multi.items():
        if not isinstance(values, list):
            return None
        out += [(str(name), _scalar(v)) for v in values]
    taken = {str(name).lower() for name in multi}
    out += [(str(k), _scalar(v)) for k, v in single.items() if str(k).lower() not in taken]
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# errors ------------------------------------------------------------------------------
def _message(status: int, message: str, error_type: str | None = None) -> HttpResponse:
    headers = [("Content-Type", "application/json")]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    return HttpResponse(status, headers, json.dumps({"message": message}).encode())


def failed(api: HttpApi) -> HttpResponse:
    """A function error, a malformed result, a refused invoke (throttle, no function)."""
    if api.protocol == "REST":
        return _message(502, "Internal server error")
    return _message(500, "Internal Server Error")


def throttled(api: HttpApi) -> HttpResponse:
    """Lambda throttled the invoke (TooManyRequestsException): API Gateway answers a server
    error, not 429 — its own 429 is for its own throttles."""
    if api.protocol == "REST":
        return _message(500, "Internal server error")
    return _message(500, "Internal Server Error")


def timed_out(api: HttpApi) -> HttpResponse:
    if api.protocol == "REST":
        return _message(504, "Endpoint request timed out")
    return _message(503, "Service Unavailable")


def not_found(api: HttpApi | None) -> HttpResponse:
    if api is None or api.protocol == "REST":
        return _message(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
    return _message(404, "Not Found")


def forbidden() -> HttpResponse:
    """A REST API called on a stage it does not have, or an API id no API has."""
    return _message(403, "Forbidden", "ForbiddenException")


def too_large(api: HttpApi) -> HttpResponse:
    return _message(413, "Request Entity Too Large")
