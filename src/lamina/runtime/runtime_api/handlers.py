"""One handler per Runtime API endpoint (spec §10), as the Runtime Interface Emulator has them.

A handler decodes its request, asks the environment (the `RuntimeSide` it is given) whether
the call fits the invocation in hand, and turns the answer into the response AWS gives. The
environment owns the state; nothing here keeps any.

Since 2026 Lambda sends `Lambda-Runtime-Invocation-Id` with each event and the runtime
interface clients (awslambdaric 4.0.2+, the Java, .NET, Rust and C++ clients) echo it on
`/response` and `/error`; a call that echoes another invocation's id is answered 410 Gone,
so a late answer from a timed-out invocation can never be taken for the current one's.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Protocol

from lamina.domain import limits
from lamina.domain.model import Invocation, InvocationOutcome
from lamina.http.server import BodyStream, Request, Response
from lamina.runtime.runtime_api import wire


class RuntimeSide(Protocol):
    """What the handlers need of an environment (one invocation at a time, or several: a
    Managed Instances environment, where every answer is matched by its request id)."""

    async def next_event(self, request: Request | None = None) -> Response: ...

    def refuse(self, request_id: str, invocation_id: str | None) -> Response | None: ...

    def invocation_of(self, request_id: str) -> Invocation | None: ...

    def sink_of(self, request_id: str) -> Any: ...

    def complete(self, outcome: InvocationOutcome, request_id: str) -> None: ...

    def init_error(self, body: bytes, error_type: str | None) -> Response: ...


async def next_invocation(env: RuntimeSide, request: Request | None = None) -> Response:
    """GET /runtime/invocation/next: park until an event comes (Init ends at the first)."""
    return await env.next_event(request)


def response(env: RuntimeSide, request: Request, request_id: str) -> Response:
    """POST /runtime/invocation/{id}/response (buffered)."""
    headers = request.headers
    refusal = env.refuse(request_id, headers.get(wire.INVOCATION_ID))
    if refusal is not None:
        return refusal
    mode = headers.get(wire.RESPONSE_MODE)
    if mode is not None and mode.lower() != "streaming":
        env.complete(
            InvocationOutcome(
                wire.platform_error(
                    "Runtime.InvalidResponseModeHeader", "Invalid function response mode"
                ),
                function_error=True,
                error_type="Runtime.InvalidResponseModeHeader",
            ),
            request_id,
        )
        return wire.error(400, "InvalidFunctionResponseMode", "Invalid function response mode")
    env.complete(
        InvocationOutcome(request.body, headers.get("content-type") or "application/json"),
        request_id,
    )
    return wire.ACCEPTED


async def streamed_response(
    env: RuntimeSide, request: Request, request_id: str, stream: BodyStream
) -> Response:
    """POST /runtime/invocation/{id}/response, streamed (chunked, errors in trailers)."""
    refusal = env.refuse(request_id, request.headers.get(wire.INVOCATION_ID))
    if refusal is not None:
        return refusal
    invocation, sink = env.invocation_of(request_id), env.sink_of(request_id)
    content_type = request.headers.get("content-type") or "application/octet-stream"
    if sink is not None:
        sink.put_nowait(("start", content_type, request_id))
    collected, total = bytearray(), 0
    async for chunk in stream:
        total += len(chunk)
        if env.invocation_of(request_id) is not invocation:
            continue  # timed out or killed meanwhile: drain and drop
        if sink is not None:
            sink.put_nowait(("chunk", chunk))
        elif total <= limits.RESPONSE_PAYLOAD:
            collected += chunk
    if sink is not None:
        sink.put_nowait(("end", None))
    if env.invocation_of(request_id) is not invocation or stream.aborted:
        return wire.ACCEPTED
    env.complete(
        streamed_outcome(
            stream.trailers, bytes(collected), total, content_type, buffered=sink is None
        ),
        request_id,
    )
    return wire.ACCEPTED


def streamed_outcome(
    trailers: dict[str, str], collected: bytes, total: int, content_type: str, buffered: bool
) -> InvocationOutcome:
    error_type = trailers.get(wire.ERROR_TYPE)
    if error_type:
        body = base64.b64decode(trailers.get(wire.ERROR_BODY, "")) or wire.platform_error(
            error_type, ""
        )
        return InvocationOutcome(body, "application/json", True, error_type, streamed=True)
    limit = limits.RESPONSE_PAYLOAD if buffered else limits.STREAMED_RESPONSE
    if total > limit:
        return InvocationOutcome(
            wire.platform_error(
                "Function.ResponseSizeTooLarge",
                f"Response payload size exceeded maximum allowed payload size ({limit} bytes).",
            ),
            function_error=True,
            error_type="Function.ResponseSizeTooLarge",
            streamed=True,
        )
    return InvocationOutcome(collected, content_type, streamed=True)


def error(env: RuntimeSide, request: Request, request_id: str) -> Response:
    """POST /runtime/invocation/{id}/error."""
    headers = request.headers
    refusal = env.refuse(request_id, headers.get(wire.INVOCATION_ID))
    if refusal is not None:
        return refusal
    env.complete(
        InvocationOutcome(
            wire.error_document(request.body, headers.get("content-type")),
            "application/json",
            function_error=True,
            error_type=wire.error_type_of(headers.get(wire.ERROR_TYPE), request.body),
        ),
        request_id,
    )
    return wire.ACCEPTED


def init_error(env: RuntimeSide, request: Request) -> Response:
    """POST /runtime/init/error."""
    return env.init_error(request.body, request.headers.get(wire.ERROR_TYPE))


def too_large(env: RuntimeSide, request_id: str) -> Response:
    """A response over 6 MB: the invocation fails with Function.ResponseSizeTooLarge."""
    if env.invocation_of(request_id) is not None:
        env.complete(
            InvocationOutcome(
                wire.platform_error(
                    "Function.ResponseSizeTooLarge",
                    "Response payload size exceeded maximum allowed payload "
                    f"size ({limits.RESPONSE_PAYLOAD} bytes).",
                ),
                function_error=True,
                error_type="Function.ResponseSizeTooLarge",
            ),
            request_id,
        )
    return wire.too_large(limits.RESPONSE_PAYLOAD)


def request_id_of(path: str) -> str:
    """The request id in `/2018-06-01/runtime/invocation/{id}/…` ("" for another path)."""
    if not path.startswith(wire.INVOCATION):
        return ""
    return path[len(wire.INVOCATION) :].partition("/")[0]


def is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True
