"""Function URLs: their configuration, and the HTTP request ↔ event mapping (payload 2.0).

A function URL is an HTTP endpoint for `$LATEST` or an alias. Lambda maps each request to an
event in API Gateway's payload format 2.0 and the function's result back to an HTTP response:
a result with a `statusCode` is a response (status, headers, cookies, body, base64 flag);
anything else is a 200 `application/json` response whose body is the result: a string as
it is, other JSON compactly, as AWS answers
(https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html). Lamina serves the URL as
`http://<url-id>.lambda-url.<region>.localhost:<port>/` (any `*.localhost` name reaches the
loopback in browsers and curl) and, for clients that cannot resolve it, at
`http://127.0.0.1:<port>/_lamina/url/<url-id>/`.

Pure: no I/O, no clock (times are passed in).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from lamina.domain import errors
from lamina.domain.destinations import iso_timestamp

AUTH_TYPES = ("NONE", "AWS_IAM")
HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"  # a streamed response
INVOKE_MODES = ("BUFFERED", "RESPONSE_STREAM")
QUALIFIER_PATTERN = r"((?!^\d+$)^[0-9a-zA-Z-_]+$)"
HOST_RE = re.compile(r"([a-z0-9]{32})\.lambda-url\.[a-z0-9-]+\.localhost(?::\d+)?", re.I)
_URL_ID_ALPHABET = string.ascii_lowercase + string.digits
# (member, longest list, longest item) of the Cors model
_CORS_LISTS = (
    ("AllowHeaders", 100, 1024),
    ("AllowMethods", 6, 6),
    ("AllowOrigins", 100, 253),
    ("ExposeHeaders", 100, 1024),
)
_TEXT_TYPES = re.compile(r"text/|application/(json|xml|javascript|graphql)|[+/](json|xml)\b", re.I)


@dataclass(frozen=True, slots=True)
class FunctionUrlConfig:
    function: str
    qualifier: str  # "$LATEST" for the unqualified function, else an alias name
    url_id: str
    auth_type: str
    invoke_mode: str | None = None  # None: not given (BUFFERED, and AWS shows no member)
    cors: dict[str, Any] | None = None
    created: float = 0.0  # epoch seconds
    modified: float = 0.0

    def to_wire(
        self, url: str, function_arn: str, with_modified: bool = True, read: bool = True
    ) -> dict[str, Any]:
        """The configuration as the API answers it. Create and Update (`read` False) show
        `InvokeMode` only when one was given; Get and List show the mode in effect."""
        body: dict[str, Any] = {
            "FunctionUrl": url,
            "FunctionArn": function_arn,
            "AuthType": self.auth_type,
            "CreationTime": iso_timestamp(self.created),
        }
        if self.invoke_mode is not None or read:
            body["InvokeMode"] = self.invoke_mode or "BUFFERED"
        if self.cors is not None:
            body["Cors"] = self.cors
        if with_modified:
            body["LastModifiedTime"] = iso_timestamp(self.modified)
        return body


def new_url_id() -> str:
    return "".join(secrets.choice(_URL_ID_ALPHABET) for _ in range(32))


def check_qualifier(qualifier: str | None) -> None:
    """A URL serves the unqualified function or an alias: not a version, not `$LATEST`."""
    if qualifier is not None and not re.fullmatch(QUALIFIER_PATTERN, qualifier):
        raise errors.ValidationError.field(
            qualifier,
            "qualifier",
            f"Member must satisfy regular expression pattern: {QUALIFIER_PATTERN}",
        )


def check_auth_type(value: Any, required: bool) -> None:
    if value is None and not required:
        return
    if value not in AUTH_TYPES:
        raise errors.ValidationError.field(
            value,
            "authType",
            "Member must satisfy enum value set: [AWS_IAM, NONE]"
            if value is not None
            else "Member must not be null",
        )


def check_invoke_mode(value: Any) -> None:
    if value is not None and value not in INVOKE_MODES:
        raise errors.ValidationError.field(
            value, "invokeMode", "Member must satisfy enum value set: [RESPONSE_STREAM, BUFFERED]"
        )


def check_cors(cors: Any) -> dict[str, Any] | None:
    """The Cors member as stored (None: not given), or the ValidationException AWS answers."""
    if cors is None:
        return None
    if not isinstance(cors, dict):
        raise errors.ValidationError.field(cors, "cors", "Member must be a structure")
    for name, longest, item_longest in _CORS_LISTS:
        values = cors.get(name)
        if values is None:
            continue
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise errors.ValidationError.field(
                values, f"cors.{_lower(name)}", "Member must be a list of strings"
            )
        if len(values) > longest:
            raise errors.ValidationError.field(
                values,
                f"cors.{_lower(name)}",
                f"Member must have length less than or equal to {longest}",
            )
        if any(len(v) > item_longest or not v for v in values):
            raise errors.ValidationError.field(
                values,
                f"cors.{_lower(name)}",
                f"Member must satisfy constraint: [Member must have length less than or equal "
                f"to {item_longest}, Member must have length greater than or equal to 1]",
            )
    max_age = cors.get("MaxAge")
    if max_age is not None and (not isinstance(max_age, int) or not 0 <= max_age <= 86_400):
        raise errors.ValidationError.field(
            max_age, "cors.maxAge", "Member must have value less than or equal to 86400"
        )
    credentials = cors.get("AllowCredentials")
    if credentials is not None and not isinstance(credentials, bool):
        raise errors.ValidationError.field(
            credentials, "cors.allowCredentials", "Member must be a boolean"
        )
    known = {name for name, _, _ in _CORS_LISTS} | {"MaxAge", "AllowCredentials"}
    return {k: v for k, v in cors.items() if k in known}


# the request → event ---------------------------------------------------------------
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What the URL received: the path after the URL's root, and the rest as sent."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"
    extra: dict[str, Any] = field(default_factory=dict)


def http_event(
    request: HttpRequest,
    config: FunctionUrlConfig,
    region: str,
    account: str,
    request_id: str,
    now: float,
) -> dict[str, Any]:
    """The payload-2.0 event Lambda hands the function for `request`. As on AWS, the
    domain name is the host the caller used (the Host header), `http.path` is the path
    decoded with repeated slashes merged, and hop-by-hop headers are not passed on."""
    host = next((value for name, value in request.headers if name.lower() == "host"), "")
    context: dict[str, Any] = {
        "accountId": account if config.auth_type == "AWS_IAM" else "anonymous",
        "apiId": config.url_id,
        "domainName": host or f"{config.url_id}.lambda-url.{region}.on.aws",
        "domainPrefix": config.url_id,
    }
    request = dataclasses.replace(
        request,
        headers=[
            (name, value) for name, value in request.headers if name.lower() not in _HOP_BY_HOP
        ],
    )
    event = payload_v2(request, context, "$default", "$default", request_id, now)
    http = event["requestContext"]["http"]
    http["path"] = re.sub("/{2,}", "/", unquote(request.path))
    if config.auth_type == "AWS_IAM":
        event["requestContext"]["authorizer"] = {
            "iam": _caller(event["headers"].get("authorization", ""), account)
        }
    return event


def payload_v2(
    request: HttpRequest,
    context: dict[str, Any],
    route_key: str,
    stage: str,
    request_id: str,
    now: float,
    path_parameters: dict[str, str] | None = None,
    stage_variables: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An event in API Gateway's payload format 2.0, as function URLs and HTTP APIs send it:
    `context` holds the requestContext members that name the caller's endpoint."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    context = {
        **context,
        "http": {
            "method": request.method,
            "path": request.path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": stage,
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.path,
        "rawQueryString": request.query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if request.query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(request.query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    event["requestContext"] = context
    binary = False
    if request.body:
        binary = not _is_text(headers.get("content-type", ""), request.body)
        event["body"] = (
            base64.b64encode(request.body).decode() if binary else request.body.decode("utf-8")
        )
    if path_parameters:
        event["pathParameters"] = path_parameters
    event["isBase64Encoded"] = binary
    if stage_variables:
        event["stageVariables"] = stage_variables
    return event


def _caller(authorization: str, account: str) -> dict[str, Any]:
    """The IAM identity Lambda reports for a signed request (Lamina checks no signature:
    the access key is read from the Credential element)."""
    found = re.search(r"Credential=([^/,\s]+)", authorization)
    key = found.group(1) if found else ""
    return {
        "accessKey": key,
        "accountId": account,
        "callerId": key,
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": f"arn:aws:iam::{account}:root",
        "userId": key,
    }


def is_signed(authorization: str | None) -> bool:
    return authorization is not None and authorization.startswith("AWS4-HMAC-SHA256 ")


def _is_text(content_type: str, body: bytes) -> bool:
    if content_type and not _TEXT_TYPES.search(content_type):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# the result → response -------------------------------------------------------------
@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def http_response(
    payload: bytes, malformed: Callable[[], HttpResponse] | None = None
) -> HttpResponse:
    """The HTTP response for a function's result (see the module docstring); a result that
    claims to be a response but is not a valid one is Lambda's 502 (or `malformed()`)."""
    try:
        document = json.loads(payload) if payload else None
    except (ValueError, RecursionError):
        document = None
    if not (isinstance(document, dict) and "statusCode" in document):
        # as AWS answers: a string result is the body itself; other JSON compactly
        if isinstance(document, str):
            payload = document.encode()
        elif document is not None:
            payload = json.dumps(document, separators=(",", ":")).encode()
        return HttpResponse(200, [("Content-Type", "application/json")], payload)
    return _custom(document, malformed or bad_gateway)


def _custom(document: dict[str, Any], malformed: Callable[[], HttpResponse]) -> HttpResponse:
    head = _head(document)
    if head is None:
        return malformed()
    body = document.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = json.dumps(body).encode()
    if document.get("isBase64Encoded") and data:
        try:
            data = base64.b64decode(data, validate=True)
        except binascii.Error:
            return malformed()
    return HttpResponse(*head, data)


def _head(document: dict[str, Any]) -> tuple[int, list[tuple[str, str]]] | None:
    """Status and headers (cookies as Set-Cookie) of a response document; None when its
    status is not one."""
    status = document.get("statusCode", 200)
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        return None
    headers = [(str(k), str(v)) for k, v in (document.get("headers") or {}).items()]
    headers += [("Set-Cookie", str(c)) for c in document.get("cookies") or ()]
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return status, headers


def stream_prelude(data: bytes) -> tuple[dict[str, Any], bytes] | None:
    """Split a streamed HTTP-integration response (`awslambda.HttpResponseStream`): its JSON
    prelude, eight NUL bytes, then the body. None while the delimiter has not come yet."""
    end = data.find(b"\0" * 8)
    if end < 0:
        return None
    try:
        prelude = json.loads(data[:end]) if end else {}
    except (ValueError, RecursionError):
        prelude = {}
    return (prelude if isinstance(prelude, dict) else {}), data[end + 8 :]


def streamed_head(prelude: dict[str, Any]) -> tuple[int, list[tuple[str, str]]] | None:
    """Status and headers of a streamed response's prelude (None: not a valid one)."""
    return _head(prelude)


def bad_gateway() -> HttpResponse:
    return HttpResponse(
        502, [("Content-Type", "application/json")], b'{"Message":"Internal Server Error"}'
    )


def function_failed() -> HttpResponse:
    """What the caller of a URL gets when the function fails: AWS's 502 with the words
    alone as the body (recorded)."""
    return HttpResponse(502, [("Content-Type", "application/json")], b"Internal Server Error")


FORBIDDEN = (
    "Forbidden. For troubleshooting Function URL authorization issues, see: "
    "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"
)


def forbidden() -> HttpResponse:
    """AWS's 403 for a URL that does not exist (any more) or a caller it does not admit."""
    response = plain_error(403, FORBIDDEN)
    response.headers.append(("x-amzn-ErrorType", "AccessDeniedException"))
    return response


def plain_error(status: int, message: str) -> HttpResponse:
    return HttpResponse(
        status, [("Content-Type", "application/json")], json.dumps({"Message": message}).encode()
    )


# CORS --------------------------------------------------------------------------------
def cors_headers(
    cors: dict[str, Any] | None, origin: str | None, preflight: bool = False
) -> list[tuple[str, str]]:
    """The Access-Control-* headers for a request from `origin` (none when it is not
    allowed); a preflight also gets the allowed methods, headers and max age."""
    if not cors or not origin:
        return []
    allowed = cors.get("AllowOrigins") or []
    if "*" in allowed:
        allow_origin = "*" if not cors.get("AllowCredentials") else origin
    elif origin in allowed:
        allow_origin = origin
    else:
        return []
    headers = [("Access-Control-Allow-Origin", allow_origin), ("Vary", "Origin")]
    if cors.get("AllowCredentials"):
        headers.append(("Access-Control-Allow-Credentials", "true"))
    if preflight:
        if cors.get("AllowMethods"):
            headers.append(("Access-Control-Allow-Methods", ",".join(cors["AllowMethods"])))
        if cors.get("AllowHeaders"):
            headers.append(("Access-Control-Allow-Headers", ",".join(cors["AllowHeaders"])))
        if cors.get("MaxAge") is not None:
            headers.append(("Access-Control-Max-Age", str(cors["MaxAge"])))
    elif cors.get("ExposeHeaders"):
        headers.append(("Access-Control-Expose-Headers", ",".join(cors["ExposeHeaders"])))
    return headers


def _lower(name: str) -> str:
    return name[0].lower() + name[1:]
