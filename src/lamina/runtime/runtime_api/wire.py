"""Runtime API wire format, without I/O (spec §10): header names, bodies, error documents."""

from __future__ import annotations

import json

from lamina.domain.model import Invocation
from lamina.http.server import HeadResponse, Response

PREFIX = "/2018-06-01"
NEXT = PREFIX + "/runtime/invocation/next"
INVOCATION = PREFIX + "/runtime/invocation/"
INIT_ERROR = PREFIX + "/runtime/init/error"
PING = PREFIX + "/ping"

ERROR_TYPE = "lambda-runtime-function-error-type"
ERROR_BODY = "lambda-runtime-function-error-body"  # trailer of a streamed response, base64
RESPONSE_MODE = "lambda-runtime-function-response-mode"
INVOCATION_ID = "lambda-runtime-invocation-id"  # sent with an event, echoed on its answer
ERROR_CAUSE_CONTENT_TYPE = "application/vnd.aws.lambda.error.cause+json"

_JSON = [("Content-Type", "application/json")]


class _Fixed(Response):
    """A response that never changes, encoded once (keep-alive) instead of once per call."""

    __slots__ = ("_encoded",)

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        super().__init__(status, headers, body)
        self._encoded = super().encode(True)

    def encode(self, keep_alive: bool) -> bytes:
        return self._encoded if keep_alive else super().encode(keep_alive)


ACCEPTED: Response = _Fixed(202, _JSON, b'{"status":"OK"}')


def error(status: int, error_type: str, message: str) -> Response:
    body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    return Response(status, list(_JSON), body)


def invalid_request_id() -> Response:
    return error(400, "InvalidRequestID", "Invalid request ID")


def invalid_transition(current: str, target: str) -> Response:
    return error(
        403,
        "InvalidStateTransition",
        f"State transition from {current} to {target} failed for runtime. "
        "Error: State transition is not allowed",
    )


def invoke_gone() -> Response:
    """An answer echoing another invocation's id: that invocation is over (timed out)."""
    return error(
        410, "ErrorRuntimeInvokeTimeout", "Invocation has already timed out or is no longer current"
    )


def too_large(limit: int) -> Response:
    return error(
        413, "RequestEntityTooLarge", f"Exceeded maximum allowed payload size ({limit} bytes)."
    )


def not_found() -> Response:
    return error(404, "InvalidURLPath", "Unknown path")


def next_response(invocation: Invocation, deadline_ms: int, invocation_id: str) -> Response:
    """The answer to `GET /runtime/invocation/next`: the event and its headers (§10.2)."""
    head = (
        f"Lambda-Runtime-Aws-Request-Id: {invocation.request_id}\r\n"
        f"Lambda-Runtime-Deadline-Ms: {deadline_ms}\r\n"
        f"Lambda-Runtime-Invoked-Function-Arn: {invocation.invoked_arn}\r\n"
        f"Lambda-Runtime-Invocation-Id: {invocation_id}\r\n"
        f"Content-Type: {invocation.content_type}\r\n"
    )
    if invocation.trace_id:
        head += f"Lambda-Runtime-Trace-Id: {invocation.trace_id}\r\n"
    if invocation.client_context:
        head += f"Lambda-Runtime-Client-Context: {invocation.client_context}\r\n"
    if invocation.cognito_identity:
        head += f"Lambda-Runtime-Cognito-Identity: {invocation.cognito_identity}\r\n"
    if invocation.tenant_id:
        head += f"Lambda-Runtime-Aws-Tenant-Id: {invocation.tenant_id}\r\n"
    return HeadResponse(200, head, invocation.payload)  # encoded in one formatting


def error_document(body: bytes, content_type: str | None) -> bytes:
    """A runtime's posted error, as the caller receives it.

    Passed through verbatim, except the X-Ray `errorCause` member of the error-cause variant,
    which is stripped (spec §10.3). An empty body becomes an `Unknown` error document.
    """
    if content_type and content_type.startswith(ERROR_CAUSE_CONTENT_TYPE):
        try:
            document = json.loads(body)
            if isinstance(document, dict):
                document.pop("errorCause", None)
                return json.dumps(document).encode()
        except ValueError:
            pass
    return body


def error_type_of(header: str | None, body: bytes) -> str:
    """The error type for records and logs: the header, else the body's errorType."""
    if header:
        return header
    try:
        document = json.loads(body)
    except ValueError:
        return "Unhandled"
    if isinstance(document, dict) and isinstance(document.get("errorType"), str):
        return str(document["errorType"])
    return "Unhandled"


def platform_error(error_type: str, message: str) -> bytes:
    """A platform-detected failure as Lambda reports it: compact, errorType first (§4.4)."""
    return json.dumps(
        {"errorType": error_type, "errorMessage": message}, separators=(",", ":")
    ).encode()
