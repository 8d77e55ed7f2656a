"""HTTP APIs: API Gateway REST APIs (Lambda proxy integrations, payload 1.0) and HTTP APIs
(payload 2.0 or 1.0) whose routes invoke Lambda functions, and how a request finds its route.

Route selection, as API Gateway does it
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html):
the most specific route wins — segment by segment, a literal beats a `{param}`, which beats
a greedy `{proxy+}` (one or more segments, last in the path); a route with the request's
method beats `ANY`; an HTTP API's `$default` route takes what no other route matches.
A REST API is called as `/{stage}/path`; an HTTP API's `$default` stage has no prefix and a
named stage is `/{stage}/path`. Paths are case-sensitive; a trailing slash is ignored.

Pure: no I/O.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from lamina.domain import errors

PROTOCOLS = ("REST", "HTTP")
PAYLOAD_FORMATS = ("1.0", "2.0")
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "ANY")
DEFAULT_ROUTE = "$default"
DEFAULT_STAGE = "$default"
API_ID_RE = re.compile(r"[a-z0-9]{10}")
HOST_RE = re.compile(
    r"([a-z0-9]{10})\.execute-api(?:\.[a-z0-9-]+)?\.localhost(?::\d+)?", re.IGNORECASE
)
_STAGE_RE = re.compile(r"[A-Za-z0-9_\-]{1,128}")
_PARAM_RE = re.compile(r"\{([A-Za-z0-9._\-]+)(\+?)\}")
_LITERAL_RE = re.compile(r"[A-Za-z0-9._\-~:@!$&'()*,;=%]+")
_ID_ALPHABET = string.ascii_lowercase + string.digits
TIMEOUT_RANGE_MS = (50, 30_000)


@dataclass(frozen=True, slots=True)
class Route:
    method: str  # "GET", ..., or "ANY"
    path: str  # "/items/{id}", "/files/{proxy+}", "/", or "$default" (HTTP APIs)
    target_arn: str  # Lambda function ARN (maybe qualified)
    payload_format: str  # "1.0" (REST API proxy) or "2.0" (HTTP API default)
    timeout_ms: int = 30000

    @property
    def key(self) -> str:
        """The route key API Gateway reports: "GET /items/{id}", "ANY /{proxy+}", "$default"."""
        return DEFAULT_ROUTE if self.path == DEFAULT_ROUTE else f"{self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class HttpApi:
    api_id: str  # 10 lowercase letters/digits, as API Gateway makes them
    name: str
    protocol: str  # "REST" (API Gateway v1) or "HTTP" (v2)
    stage: str  # "Prod", "$default", ...
    routes: tuple[Route, ...]
    stage_variables: dict[str, str] = field(default_factory=dict)
    cors: dict[str, Any] | None = None  # HTTP API CorsConfiguration shape
    stack: str | None = None


def new_api_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


# validation ---------------------------------------------------------------------------
def validate(api: HttpApi) -> None:
    """Raise errors.InvalidParameterValue naming the bad route or member."""
    if not isinstance(api.api_id, str) or not API_ID_RE.fullmatch(api.api_id):
        raise errors.InvalidParameterValue(
            f"API id {api.api_id!r} is not valid: 10 lowercase letters or digits."
        )
    if api.protocol not in PROTOCOLS:
        raise errors.InvalidParameterValue(
            f"API {api.api_id}: Protocol must be REST or HTTP (got {api.protocol!r})."
        )
    if not isinstance(api.name, str) or not api.name:
        raise errors.InvalidParameterValue(f"API {api.api_id}: Name is required.")
    _check_stage(api)
    if not isinstance(api.stage_variables, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in api.stage_variables.items()
    ):
        raise errors.InvalidParameterValue(
            f"API {api.api_id}: StageVariables must map names to text values."
        )
    if api.cors is not None and (api.protocol != "HTTP" or not isinstance(api.cors, dict)):
        raise errors.InvalidParameterValue(
            f"API {api.api_id}: Cors is an HTTP API's CorsConfiguration object."
        )
    seen: set[str] = set()
    for route in api.routes:
        _check_route(api, route)
        if route.key in seen:
            raise errors.InvalidParameterValue(
                f"API {api.api_id}: route {route.key} is given twice."
            )
        seen.add(route.key)


def _check_stage(api: HttpApi) -> None:
    if api.stage == DEFAULT_STAGE and api.protocol == "HTTP":
        return
    if not isinstance(api.stage, str) or not _STAGE_RE.fullmatch(api.stage):
        raise errors.InvalidParameterValue(
            f"API {api.api_id}: stage {api.stage!r} is not valid (letters, digits, '-', '_'"
            + ("; $default is for HTTP APIs" if api.stage == DEFAULT_STAGE else "")
            + ")."
        )


def _check_route(api: HttpApi, route: Route) -> None:
    where = f"API {api.api_id}: route {route.method} {route.path}"
    if route.method not in METHODS:
        raise errors.InvalidParameterValue(f"{where}: method must be one of {', '.join(METHODS)}.")
    if route.payload_format not in PAYLOAD_FORMATS:
        raise errors.InvalidParameterValue(f"{where}: PayloadFormatVersion must be 1.0 or 2.0.")
    if api.protocol == "REST" and route.payload_format != "1.0":
        raise errors.InvalidParameterValue(f"{where}: a REST API's Lambda proxy is payload 1.0.")
    if not isinstance(route.target_arn, str) or not route.target_arn:
        raise errors.InvalidParameterValue(f"{where}: TargetArn is required.")
    low, high = TIMEOUT_RANGE_MS
    if not isinstance(route.timeout_ms, int) or not low <= route.timeout_ms <= high:
        raise errors.InvalidParameterValue(
            f"{where}: TimeoutInMillis must be between {low} and {high}."
        )
    if route.path == DEFAULT_ROUTE:
        if api.protocol != "HTTP":
            raise errors.InvalidParameterValue(f"{where}: $default routes are for HTTP APIs.")
        return
    _check_path(where, route.path)


def _check_path(where: str, path: Any) -> None:
    if not isinstance(path, str) or not path.startswith("/"):
        raise errors.InvalidParameterValue(f"{where}: a path starts with '/'.")
    segments = _segments(path)
    names: set[str] = set()
    for i, segment in enumerate(segments):
        param = _PARAM_RE.fullmatch(segment)
        if param is None:
            if not _LITERAL_RE.fullmatch(segment):
                raise errors.InvalidParameterValue(f"{where}: bad path segment {segment!r}.")
            continue
        if param.group(2) and i != len(segments) - 1:
            raise errors.InvalidParameterValue(
                f"{where}: a greedy {{{param.group(1)}+}} must be the last segment."
            )
        if param.group(1) in names:
            raise errors.InvalidParameterValue(
                f"{where}: path parameter {param.group(1)} is given twice."
            )
        names.add(param.group(1))


def _segments(path: str) -> list[str]:
    return [s for s in path.strip("/").split("/") if s] if path.strip("/") else []


# matching -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    path_parameters: dict[str, str]


def split_stage(api: HttpApi, raw_path: str) -> str | None:
    """The path after the stage prefix, or None when the request names another stage."""
    if api.protocol == "HTTP" and api.stage == DEFAULT_STAGE:
        return raw_path or "/"
    prefix = f"/{api.stage}"
    if raw_path == prefix:
        return "/"
    if raw_path.startswith(prefix + "/"):
        return raw_path[len(prefix) :]
    return None


def match(api: HttpApi, method: str, path: str) -> Match | None:
    """The route a request for `method path` (after the stage prefix) goes to."""
    segments = _segments(path)
    best: tuple[tuple[int, ...], Match] | None = None
    for route in api.routes:
        if route.path == DEFAULT_ROUTE or route.method not in (method, "ANY"):
            continue
        params = _bind(_segments(route.path), segments)
        if params is None:
            continue
        rank = (*_rank(route.path), 1 if route.method == "ANY" else 0)
        if best is None or rank < best[0]:
            best = (rank, Match(route, params))
    if best is not None:
        return best[1]
    for route in api.routes:
        if route.path == DEFAULT_ROUTE:
            return Match(route, {})
    return None


def allowed_methods(api: HttpApi, path: str) -> bool:
    """Whether some route has `path` with any method (REST answers 403 either way)."""
    segments = _segments(path)
    return any(
        r.path != DEFAULT_ROUTE and _bind(_segments(r.path), segments) is not None
        for r in api.routes
    )


def _bind(pattern: list[str], segments: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for i, part in enumerate(pattern):
        param = _PARAM_RE.fullmatch(part)
        if param is not None and param.group(2):  # greedy: one or more segments
            if i >= len(segments):
                return None
            params[param.group(1)] = "/".join(segments[i:])
            return params
        if i >= len(segments):
            return None
        if param is not None:
            params[param.group(1)] = segments[i]
        elif part != segments[i]:
            return None
    return params if len(pattern) == len(segments) else None


def _rank(path: str) -> tuple[int, ...]:
    """Lower is more specific: per segment 0 literal, 1 parameter, 2 greedy."""
    ranks = []
    for part in _segments(path):
        param = _PARAM_RE.fullmatch(part)
        ranks.append(0 if param is None else 2 if param.group(2) else 1)
    return (*ranks, 3)  # a shorter exact path sorts after a longer one only by its segments


# the wire shape of the admin API and the store ----------------------------------------
def to_wire(api: HttpApi) -> dict[str, Any]:
    return {
        "ApiId": api.api_id,
        "Name": api.name,
        "ProtocolType": api.protocol,
        "StageName": api.stage,
        "StageVariables": dict(api.stage_variables),
        "CorsConfiguration": api.cors,
        "Stack": api.stack,
        "Routes": [
            {
                "RouteKey": r.key,
                "Method": r.method,
                "Path": r.path,
                "TargetArn": r.target_arn,
                "PayloadFormatVersion": r.payload_format,
                "TimeoutInMillis": r.timeout_ms,
            }
            for r in api.routes
        ],
    }


def from_wire(api_id: str, document: dict[str, Any]) -> HttpApi:
    """The API a PUT body describes (the inverse of `to_wire`; RouteKey is not read)."""
    routes = document.get("Routes") or []
    if not isinstance(routes, list) or not all(isinstance(r, dict) for r in routes):
        raise errors.InvalidParameterValue(f"API {api_id}: Routes must be a list of objects.")
    protocol = document.get("ProtocolType", "HTTP")
    default_format = "1.0" if protocol == "REST" else "2.0"
    built = []
    for r in routes:
        method, path = r.get("Method"), r.get("Path")
        if method is None and path is None and r.get("RouteKey") == DEFAULT_ROUTE:
            method, path = "ANY", DEFAULT_ROUTE
        built.append(
            Route(
                method=str(method).upper() if method else "ANY",
                path=path,
                target_arn=r.get("TargetArn"),
                payload_format=r.get("PayloadFormatVersion", default_format),
                timeout_ms=r.get("TimeoutInMillis", 30_000),
            )
        )
    return HttpApi(
        api_id=api_id,
        name=document.get("Name") or api_id,
        protocol=protocol,
        stage=document.get("StageName", DEFAULT_STAGE if protocol == "HTTP" else "Prod"),
        routes=tuple(built),
        stage_variables=document.get("StageVariables") or {},
        cors=document.get("CorsConfiguration"),
        stack=document.get("Stack"),
    )
