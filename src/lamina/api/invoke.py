"""The Invoke endpoint: decode headers and payload, run, encode the outcome (spec §4)."""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from typing import Any, ClassVar

from lamina.api import durable, event_stream, wire
from lamina.api.context import ApiContext
from lamina.domain import arns, errors, limits
from lamina.http.server import Request, Response
from lamina.service.invoke import InvokeCommand

INVOKE = "lambda:InvokeFunction"  # the action Invoke, InvokeAsync and streaming calls need


class Heartbeat:
    """Interim `100 Continue` responses every `interval` seconds while a call runs (spec §6.4):
    botocore and the AWS SDKs for JavaScript skip them and restart their read timers, so a
    long call is not given up and retried by the client.

    All the calls of a loop with the same interval share one timer (`_Beats`): starting and
    stopping a call's heartbeat is an append and a flag, not a timer of its own each."""

    __slots__ = ("due", "request", "stopped")

    def __init__(self, request: Request, interval: float) -> None:
        self.request: Request | None = request
        self.stopped = interval <= 0
        self.due = 0.0
        if not self.stopped:
            loop = request.loop  # the serving loop: no `get_running_loop()` (a getpid on 3.11)
            _Beats.of(loop, interval).add(self, loop)

    def stop(self) -> None:
        self.stopped = True
        self.request = None  # its entry may wait up to an interval: not with the payload


class _Beats:
    """The running calls' heartbeats of one loop and interval, in the order they are due
    (each is due `interval` after it started or last beat, so appending keeps the order).
    One timer, at the first one due; stopped heartbeats are dropped when they come up. The
    timer waits at least `interval / 8`, so a beat may come up to that much late: the SDKs'
    read timeouts (60 s in botocore) leave room for it."""

    _each: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, _Beats]]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, interval: float) -> None:  # (no reference to its loop: a weak key)
        self.interval = interval
        self.slack = interval / 8
        self.queue: deque[Heartbeat] = deque()
        self.armed = False  # a timer is set (its handle is not kept: it refers to the loop)

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop, interval: float) -> _Beats:
        last = _last_beats
        if last is not None and last[0]() is loop and last[1].interval == interval:
            return last[1]  # every call of a running engine: no weak dictionary walked
        beats = cls._each.setdefault(loop, {})
        found = beats.get(interval)
        if found is None:
            found = beats[interval] = cls(interval)
        _remember(loop, found)
        return found

    def add(self, heartbeat: Heartbeat, loop: asyncio.AbstractEventLoop) -> None:
        heartbeat.due = loop.time() + self.interval
        self.queue.append(heartbeat)
        if not self.armed:
            self.armed = True
            loop.call_at(heartbeat.due, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        queue = self.queue
        while queue and (queue[0].stopped or queue[0].due <= now):
            heartbeat = queue.popleft()
            request = heartbeat.request
            if request is not None and request.send_interim(100):
                heartbeat.due = now + self.interval
                queue.append(heartbeat)
        while queue and queue[0].stopped:
            queue.popleft()
        self.armed = bool(queue)
        if queue:
            loop.call_at(max(queue[0].due, now + self.slack), self._tick, loop)


_last_beats: tuple[weakref.ref[asyncio.AbstractEventLoop], _Beats] | None = None


def _remember(loop: asyncio.AbstractEventLoop, beats: _Beats) -> None:
    global _last_beats
    _last_beats = (weakref.ref(loop), beats)


def _command(
    request: Request, found: arns.FunctionRef, kind: str, request_id: str | None = None
) -> InvokeCommand:
    """The call to run `found`; `request_id`, when given, becomes the invocation's request id
    (AWS answers a synchronous Invoke with the invocation's id as its x-amzn-RequestId)."""
    headers = request.headers
    return InvokeCommand(
        found,
        found.qualifier,
        wire.payload(request.body, kind),
        kind,
        log_tail=wire.log_type(headers.get("x-amz-log-type")),
        client_context=wire.client_context(headers.get("x-amz-client-context")),
        trace_id=headers.get("x-amzn-trace-id"),
        tenant_id=headers.get("x-amz-tenant-id"),
        sdk_invocation_id=headers.get("amz-sdk-invocation-id"),
        sdk_request=headers.get("amz-sdk-request"),
        request_id=request_id,
    )


async def invoke(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    kind = wire.invocation_type(request.headers.get("x-amz-invocation-type"))
    ref = ctx.qualified_ref(request, name, INVOKE)  # a plain name: found once per engine
    executions = ctx.durable
    if (
        executions is not None
        and executions.maybe_durable(ref.name)  # the caller's function's key
        and executions.is_durable(ref.name, ref.qualifier)
    ):
        return await durable.invoke(ctx, request, request_id, ref, ref.qualifier, kind)
    if kind == "Event":
        event_id = await ctx.async_invoke.accept(
            ref.name,
            ref.qualifier,
            wire.payload(request.body, kind),
            request.headers.get("x-amzn-trace-id"),
            request.headers.get("x-amz-tenant-id"),
        )
        return wire.empty_response(202, event_id)
    command = _command(request, ref, kind, request_id)
    heartbeat = Heartbeat(request, ctx.heartbeat_interval)
    try:
        result = await ctx.invoke.invoke(command)
    finally:
        heartbeat.stop()
    if not request.connected:
        ctx.invoke.recorder.record(
            result.request_id, "caller_gone", {"sdk_request": command.sdk_request}
        )
    outcome = result.outcome
    if outcome is None:  # DryRun
        return wire.empty_response(204, request_id)
    return wire.invoke_response(
        result.request_id,
        result.executed_version,
        outcome.payload,
        outcome.content_type,
        outcome.function_error,
        outcome.log_tail if command.log_tail else None,
    )


async def invoke_stream(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    """InvokeWithResponseStream: pieces reach the caller as the function writes them, as
    `PayloadChunk` events, then one `InvokeComplete` (spec §5.2)."""
    kind = wire.invocation_type(request.headers.get("x-amz-invocation-type"), streaming=True)
    command = _command(request, ctx.qualified_ref(request, name, INVOKE), kind)
    sink: asyncio.Queue[Any] = asyncio.Queue()
    task = asyncio.get_running_loop().create_task(ctx.invoke.invoke(command, stream_sink=sink))
    heartbeat = Heartbeat(request, ctx.heartbeat_interval)
    first = asyncio.ensure_future(sink.get())
    try:
        await asyncio.wait({task, first}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        heartbeat.stop()
    if not first.done():
        first.cancel()
        result = task.result()  # raises the error the caller must get (404, 429, …)
        if result.outcome is None:
            return wire.empty_response(204, request_id)
        version, invocation_id = result.executed_version, result.request_id
    else:
        version = ctx.functions.resolve(command.function.name, command.qualifier).version
        invocation_id = first.result()[2]
    headers = [
        ("x-amzn-RequestId", invocation_id),
        ("X-Amz-Executed-Version", version),
        ("Content-Type", "application/vnd.amazon.eventstream"),
    ]
    return Response(
        200,
        headers,
        stream=event_stream.invoke_events(
            sink, task, first if first.done() else None, command.log_tail
        ),
    )


async def invoke_async(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    """The deprecated InvokeAsync operation: an Event invoke with a 256 KB limit (spec §5.1)."""
    ref = ctx.function_ref(request, name, INVOKE)
    if len(request.body) > limits.INVOKE_ASYNC_PAYLOAD:
        raise errors.RequestTooLarge(
            f"{len(request.body)} byte payload is too large for the "
            f"Event invocation type (limit {limits.INVOKE_ASYNC_PAYLOAD} "
            "bytes)"
        )
    event_id = await ctx.async_invoke.accept(
        ref.name, ref.qualifier, wire.payload(request.body, "Event")
    )
    return wire.json_response(202, {"Status": 202}, event_id)
