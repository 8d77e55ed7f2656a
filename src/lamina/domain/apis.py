"""HTTP APIs: API Gateway REST APIs (proxy integrations, payload 1.0) and HTTP APIs
(payload 2.0) whose routes invoke Lambda functions.

(Skeleton: the names of the contract with `deploy`; route matching and the events follow.)
Pure: no I/O, no clock (times are passed in).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lamina.domain import errors

PROTOCOLS = ("REST", "HTTP")
PAYLOAD_FORMATS = ("1.0", "2.0")


@dataclass(frozen=True, slots=True)
class Route:
    method: str            # "GET", ..., or "ANY"
    path: str              # "/items/{id}", "/files/{proxy+}", "/", or "$default" (HTTP APIs)
    target_arn: str        # Lambda function ARN (maybe qualified)
    payload_format: str    # "1.0" (REST API proxy) or "2.0" (HTTP API default)
    timeout_ms: int = 30000


@dataclass(frozen=True, slots=True)
class HttpApi:
    api_id: str            # 10 lowercase letters/digits, as API Gateway makes them
    name: str
    protocol: str          # "REST" (API Gateway v1) or "HTTP" (v2)
    stage: str             # "Prod", "$default", ...
    routes: tuple[Route, ...]
    stage_variables: dict[str, str] = field(default_factory=dict)
    cors: dict[str, Any] | None = None   # HTTP API CorsConfiguration shape
    stack: str | None = None


def validate(api: HttpApi) -> None:
    """Raise errors.InvalidParameterValue naming the bad route or member."""
    if api.protocol not in PROTOCOLS:
        raise errors.InvalidParameterValue(f"Unknown API protocol: {api.protocol}")
    for route in api.routes:
        if route.payload_format not in PAYLOAD_FORMATS:
            raise errors.InvalidParameterValue(
                f"Route {route.method} {route.path}: unknown payload format "
                f"{route.payload_format}")
