"""The Runtime API face of one environment: route a runtime's request to its environment.

One listener per environment on loopback (the runtime only knows host:port). Each endpoint is
decoded here and answered by the environment, which owns the state (spec §10.1).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from lamina.domain import states
from lamina.http.server import Request, Response
from lamina.runtime.runtime_api import handlers, wire
from lamina.runtime.runtime_api.handlers import RuntimeSide

_NOT_SUPPORTED = {
    "/2020-08-15/logs": "Logs.NotSupported",
    "/2022-07-01/telemetry": "Telemetry.NotSupported",
}


def runtime_api_handler(
    env: RuntimeSide, current: Callable[[], bool] | None = None
) -> Callable[[Request], Awaitable[Response]]:
    """The request handler of `env`'s Runtime API listener: the path picks the handler.

    `current()` False: the listener was replaced (a re-init), and what its runtime still sends
    is refused."""

    async def handle(request: Request) -> Response:
        if current is not None and not current():
            return wire.invalid_transition(states.DEAD, states.READY)
        path, method = request.path, request.method
        if path == wire.NEXT and method == "GET":
            return await env.next_event(request)  # handlers.next_invocation, one frame less
        if path.startswith(wire.INVOCATION) and method == "POST":
            request_id, _, action = path[len(wire.INVOCATION) :].partition("/")
            if action == "response" and request.stream is not None:
                return await handlers.streamed_response(env, request, request_id, request.stream)
            if action == "response":
                return handlers.response(env, request, request_id)
            if action == "error":
                return handlers.error(env, request, request_id)
        if path == wire.INIT_ERROR and method == "POST":
            return handlers.init_error(env, request)
        if path == wire.PING:
            return Response(200, [("Content-Type", "text/plain")], b"pong")
        if path in _NOT_SUPPORTED:
            return wire.error(202, _NOT_SUPPORTED[path], "Lamina does not support this API yet")
        if path.startswith("/2020-01-01/extension/"):
            return wire.error(
                403, "Extension.NotSupported", "Lamina does not run external extensions yet"
            )
        return wire.not_found()

    return handle


def streams_body(method: str, path: str, headers: dict[str, str]) -> bool:
    """A streamed function response is read while the runtime writes it (spec §5.3)."""
    return (
        method == "POST"
        and path.endswith("/response")
        and headers.get(wire.RESPONSE_MODE, "").lower() == "streaming"
    )
