"""A small HTTP/1.1 server on asyncio and httptools, shared by both of Lamina's HTTP faces.

Theory of operation
-------------------
Both faces (the Lambda API and the per-environment Runtime API) sit on the invoke hot path, so
they use one lean protocol class instead of a framework (measured: an asyncio protocol with
httptools answers a loopback round trip in ~75 us, aiohttp in ~265 us; see
docs/ARCHITECTURE.md).

* One `HttpProtocol` per connection. httptools parses; a complete request becomes a `Request`
  and is handed to the face's `handler` coroutine by the connection's one responder task,
  which lives as long as the connection and waits for the next request between requests
  (cheaper than a task per request: no Task, coroutine or registry entry per request). The
  request target is decoded and split when the headers are complete, unless it is the
  connection's last one again (a keep-alive client sends the same target again and again).
  The parse callbacks do the least they can: some ten of them run per warm call.
* One request at a time per connection: requests that arrive together (pipelined) are
  queued and answered in order. A face may ask (`coalesce`) that an answer be held while
  the request behind it is already queued, and sent with that request's answer in one
  write: a runtime that pipelines its `/response` and its next `next` gets the 202 with its
  next event, one write and one wake-up per call instead of two. A request refused before
  its body is read (413) is answered in its turn too, never ahead of the answers before
  it; after a request that ends the connection (`Connection: close`, HTTP/1.0) the
  connection closes once that is answered, and bytes sent after it are dropped. Reading
  goes on while a request is handled, so a client that goes away is noticed
  (`Request.connected`); it pauses only if a client piles up more than `MAX_PIPELINED`
  requests.
* A face may ask for some requests to be handed over as soon as their headers arrive
  (`streams_body`), with the body read while it comes (`Request.stream`, trailers
  included); a response may be a stream too, sent with chunked encoding as it is produced.
* A handler may write interim `1xx` responses (`Request.send_interim`) before its final
  `Response`; long synchronous invocations use this for heartbeats.
* Bodies are limited per path by `body_limit(path)` (or one int for all paths); a declared
  or chunked body over the limit gets the face's `too_large(path, size)` response as soon
  as the answers before it are out, and the rest of that body is read and dropped, so
  nothing large is buffered and the connection stays usable.
* `Expect: 100-continue` is answered before the body is read.
* A face may track its connections (`Connections`) to stop gracefully: once `closing`, every
  response ends its connection, and idle connections are closed at once.
* Limits against slow or hostile clients (`Limits`, on a tracked face): a request line and
  headers over `MAX_HEAD` get 431 and the connection closed; a client that takes more than
  `header_timeout` s to send them (slowloris, or a connection that never sends a byte), or
  that stays idle more than `idle_timeout` s between requests (a request begins with its
  target: the first bytes of a method alone do not end the idling), is disconnected; past
  `max_connections` open, the longest idle connection is closed to let a new one in (or the
  new one, if none is idle). One timer per face checks every connection each second, so
  the per-request path only notes the time a request began.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from time import monotonic
from typing import Any, Protocol, cast
from urllib.parse import unquote

import httptools

log = logging.getLogger("lamina.http")
MAX_PIPELINED = 8  # requests queued on one connection before reading pauses
MAX_HEAD = 65_536  # request line + headers (an ALB takes 64 KB of headers); more gets 431

REASONS = {
    100: b"Continue",
    200: b"OK",
    201: b"Created",
    202: b"Accepted",
    204: b"No Content",
    303: b"See Other",
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    409: b"Conflict",
    412: b"Precondition Failed",
    413: b"Request Entity Too Large",
    415: b"Unsupported Media Type",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
}
_STATUS_LINES = {
    status: b"HTTP/1.1 %d %s\r\n" % (status, reason) for status, reason in REASONS.items()
}
_METHODS = {m.encode(): m for m in ("GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS")}
# header names as they come → their lower-case text: one dict lookup per header instead of
# a decode and a `lower` (clients send the same few names again and again)
_NAMES: dict[bytes, str] = {}


class Response:
    """An HTTP response: status, header pairs, and a body of bytes or an async stream of them
    (a stream is sent with chunked transfer encoding, each piece as it comes)."""

    __slots__ = ("_headers", "body", "status", "stream")

    def __init__(
        self,
        status: int = 200,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        stream: AsyncIterator[bytes] | None = None,
    ) -> None:
        self.status = status
        self._headers = headers if headers is not None else []
        self.body = body
        self.stream = stream

    # (a property, not an attribute, so that `HeadResponse` may make its pairs only when
    # asked: compiled code (mypyc) cannot override an attribute with a property)
    @property
    def headers(self) -> list[tuple[str, str]]:
        return self._headers

    @headers.setter
    def headers(self, pairs: list[tuple[str, str]]) -> None:
        self._headers = pairs

    def encode(self, keep_alive: bool) -> bytes:
        """The head and body (the head only, for a streamed response), in one buffer."""
        status = _STATUS_LINES.get(self.status)
        if status is None:
            status = b"HTTP/1.1 %d %s\r\n" % (self.status, REASONS.get(self.status, b"Unknown"))
        try:
            lines = "\r\n".join(map(": ".join, self.headers))  # no Python frame per header
        except TypeError:  # a value that is not a str (read untyped: compiled code checks)
            pairs: list[tuple[Any, Any]] = cast(Any, self.headers)
            lines = "\r\n".join([f"{name}: {value}" for name, value in pairs])
        if lines:
            lines += "\r\n"
        close = b"" if keep_alive else b"Connection: close\r\n"
        if self.stream is not None:
            return b"%s%sTransfer-Encoding: chunked\r\n%s\r\n" % (
                status,
                lines.encode("latin-1"),
                close,
            )
        return b"%s%sContent-Length: %d\r\n%s\r\n%s" % (
            status,
            lines.encode("latin-1"),
            len(self.body),
            close,
            self.body,
        )


class HeadResponse(Response):
    """A response whose header lines are made as one string (`head`, each line ending in
    CRLF) and encoded with its body in one formatting: what it says is `Response.encode`'s,
    header for header. The hot paths' answers (an Invoke's, a runtime's next event); the
    header pairs are made from the lines only if asked for."""

    __slots__ = ("_head",)

    def __init__(self, status: int, head: str, body: bytes) -> None:  # no pairs made
        self.status = status
        self.body = body
        self.stream = None
        self._head = head

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [_pair(line) for line in self._head.split("\r\n") if line]

    @headers.setter
    def headers(self, pairs: list[tuple[str, str]]) -> None:
        self._head = "".join([f"{name}: {value}\r\n" for name, value in pairs])

    def encode(self, keep_alive: bool) -> bytes:
        status = _STATUS_LINES.get(self.status)
        if not keep_alive or status is None:
            return super().encode(keep_alive)
        return b"%s%sContent-Length: %d\r\n\r\n%s" % (
            status,
            self._head.encode("latin-1"),
            len(self.body),
            self.body,
        )


def _name(name: bytes) -> str:
    """A header name's lower-case text, remembered for the next time (for 256 names: a client
    may send any)."""
    key = name.decode("latin-1").lower()
    if len(_NAMES) < 256:
        _NAMES[name] = key
    return key


def _pair(line: str) -> tuple[str, str]:
    name, _, value = line.partition(": ")
    return name, value


class BodyStream:
    """The body of a request, read while it arrives (e.g. a streamed function response)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._chunks: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.finished = False
        self.aborted = False
        self.trailers: dict[str, str] = {}

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._wake()

    def finish(self) -> None:
        self.finished = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> BodyStream:
        return self

    async def __anext__(self) -> bytes:
        while not self._chunks:
            if self.finished:
                raise StopAsyncIteration
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            self._waiter = self._loop.create_future()
            await self._waiter
        return self._chunks.popleft()


class Channel(Protocol):
    """What a `Request` uses of the connection it came on: an `HttpProtocol`, or the
    in-process one of api/stacks.py (a call made inside the engine)."""

    closed: bool

    @property
    def _loop(self) -> asyncio.AbstractEventLoop: ...

    def write_interim(self, status: int) -> bool: ...


class Request:
    """One parsed request. `headers` keys are lower-case; `path` is percent-decoded."""

    __slots__ = (
        "_protocol",
        "body",
        "caller",
        "headers",
        "http_version",
        "method",
        "path",
        "query",
        "raw_path",
        "stream",
    )

    def __init__(
        self,
        method: str,
        raw_path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        protocol: Channel,
        http_version: str = "1.1",
        stream: BodyStream | None = None,
        path: str | None = None,
    ) -> None:
        self.method = method
        self.raw_path = raw_path
        self.path = path if path is not None else _decode_path(raw_path)
        self.query = query
        self.headers = headers
        self.body = body
        self.stream = stream
        self.http_version = http_version
        self._protocol = protocol
        self.caller: Any = None  # domain.identity.Caller once a signature is verified

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop serving this request: for a handler's timers and futures without
        `asyncio.get_running_loop()` (a `getpid()` system call on Python 3.11)."""
        return self._protocol._loop

    def send_interim(self, status: int = 100) -> bool:
        """Write an interim 1xx response now; False if the connection is gone or the client
        speaks HTTP/1.0 (which has no interim responses)."""
        if self.http_version == "1.0":
            return False
        return self._protocol.write_interim(status)

    @property
    def connected(self) -> bool:
        return not self._protocol.closed

    def query_params(self) -> dict[str, str]:
        if not self.query:
            return {}
        out: dict[str, str] = {}
        for pair in self.query.split("&"):
            key, _, value = pair.partition("=")
            out[unquote(key.replace("+", " "))] = unquote(value.replace("+", " "))
        return out


async def _ready(response: Response) -> Response:
    return response


def _unhandled(request: Request) -> Response:
    """The answer to a request whose handler raised (logged here); the connection ends."""
    log.exception("unhandled error answering %s %s", request.method, request.raw_path)
    return Response(500, [("Content-Type", "text/plain")], b"internal error")


def _decode_path(raw_path: str) -> str:
    """The percent-decoded path (most paths have nothing to decode)."""
    return unquote(raw_path) if "%" in raw_path else raw_path


Handler = Callable[[Request], Awaitable[Response]]
StreamsBody = Callable[[str, str, dict[str, str]], bool]
Accept = Callable[[Any, Any], bool]  # (peer address, local address) of a new connection
BodyLimit = Callable[[str], int] | int  # the largest body for a path, or for every path


class Limits:
    """How long a client may take and how many connections a face keeps (module docstring)."""

    __slots__ = ("header_timeout", "idle_timeout", "max_connections")

    def __init__(
        self,
        header_timeout: float = 10.0,
        idle_timeout: float = 300.0,
        max_connections: int = 10_000,
    ) -> None:
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections


class Connections:
    """The open connections of one server, so that it can stop gracefully (`close`) and hold
    its clients to `limits`."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.open: set[HttpProtocol] = set()
        self.closing = False
        self.limits = limits or Limits()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, connection: HttpProtocol) -> bool:
        """Take a new connection; False if it must be closed (too many, none idle)."""
        if self._timer is None and not self.closing:
            self._timer = asyncio.get_running_loop().call_later(1.0, self._sweep)
        if len(self.open) >= self.limits.max_connections:
            idle = [c for c in self.open if not c.busy]
            if not idle:
                return False
            oldest = min(idle, key=lambda c: c.since)
            self.open.discard(oldest)  # now: connection_lost comes later
            oldest.abort()
        self.open.add(connection)
        return True

    def _sweep(self) -> None:
        """Every second: end connections past the header or idle timeout."""
        now = monotonic()
        for connection in list(self.open):
            connection.check(now, self.limits)
        self._timer = (
            None if self.closing else asyncio.get_running_loop().call_later(1.0, self._sweep)
        )

    def close(self) -> None:
        """From now on each response ends its connection; idle connections end now."""
        self.closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for connection in list(self.open):
            connection.close_if_idle()

    def busy(self) -> int:
        """Connections with a request being answered."""
        return sum(1 for connection in self.open if connection.busy)


def _never(method: str, path: str, headers: dict[str, str]) -> bool:
    return False


class HttpProtocol(asyncio.Protocol):
    """One connection of a `Server` (see the module docstring)."""

    def __init__(
        self,
        handler: Handler,
        body_limit: BodyLimit,
        too_large: Callable[[str, int], Response],
        streams_body: StreamsBody = _never,
        connections: Connections | None = None,
        accept: Accept | None = None,
        coalesce: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        # The loop, looked up once: on Python 3.11 each `asyncio.get_running_loop()` is a
        # getpid() system call (the check was dropped in 3.12).
        self._loop = loop or asyncio.get_running_loop()
        self._handler = handler
        self._coalesce = coalesce
        self._accept = accept
        self._connections = connections
        self._streams_body = streams_body
        self._stream: BodyStream | None = None
        self._in_body = False
        self._body_limit = body_limit
        self._too_large = too_large
        self._limit = 0
        self._digits = 1  # digits of `_limit`
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        # the last few request targets (bytes) → raw path, query, path, body limit, its digits
        self._targets: dict[bytes, tuple[str, str, str, int, int]] = {}
        self._raw_path = ""  # the request target, split and decoded once its headers are in
        self._query = ""
        self._path = ""
        self._method = ""
        self._headers: dict[str, str] = {}
        self._header_name = b""
        self._body: list[bytes] = []
        self._body_size = 0
        self._discarding = False
        # what answers each request in order: (handler, request, keep-alive), or for a
        # request refused before its body was read (`_reject`), (_ready, its answer, …)
        self._queue: deque[tuple[Callable[[Any], Awaitable[Response]], Any, bool]] = deque()
        self._responding = False  # the responder task exists
        self._paused = False  # reading paused: too many requests queued
        self._ending = False  # a request queued says the connection ends after its answer
        self._waiter: asyncio.Future[None] | None = None  # it waits for the next request
        self._reading = False  # between the start and the end of a request
        self._head = 0  # bytes of the request line and headers so far
        self.since = 0.0  # when the connection opened, a request began, or one was answered
        self.closed = False

    # asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        if self._accept is not None and not self._accept(
            transport.get_extra_info("peername"), transport.get_extra_info("sockname")
        ):
            self.closed = True
            transport.abort()  # type: ignore[attr-defined]  # refused before a byte is read
            return
        self.since = monotonic()
        if self._connections is not None and not self._connections.add(self):
            transport.abort()  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._connections is not None:
            self._connections.open.discard(self)
        if self._stream is not None and not self._stream.finished:
            self._stream.aborted = True  # the sender went away before the end
            self._stream.finish()
        self._wake_responder()  # an idle responder ends

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(b"upgrade not supported")
        except httptools.HttpParserError:
            if not self._ending:  # (bytes after a request that ends the connection: dropped)
                self._fail(b"bad request")  # (a no-op if the connection is closing already)

    # httptools callbacks -----------------------------------------------------------
    # (No `on_message_begin`: a request begins with its target, and one callback fewer per
    # request is ~1,000 instructions less.)
    def on_url(self, url: bytes) -> None:
        if self._reading:  # a later piece of the target
            self._url = url = self._url + url
        else:  # a request begins
            self._reading = True
            if self._connections is not None:
                self.since = monotonic()
            self._discarding = False
            self._stream = None
            self._in_body = False
            self._url = url
            self._headers = {}
            self._body = []
            self._body_size = 0
        self._head = len(url)  # the head so far: the target, then each header
        if len(url) > MAX_HEAD:
            self._head_too_large()

    def on_header(self, name: bytes, value: bytes) -> None:
        # Called ten times a call: kept to the common case (a known name, not repeated).
        self._head = head = self._head + len(name) + len(value) + 4
        if self._in_body:
            self._trailer(name, value)
            return
        if head > MAX_HEAD:
            self._head_too_large()
        headers = self._headers
        key = _NAMES.get(name) or _name(name)
        if key in headers:
            headers[key] += "," + value.decode("latin-1")  # a repeated header: one list
        else:
            headers[key] = value.decode("latin-1")

    def _trailer(self, name: bytes, value: bytes) -> None:
        """A trailer, after a chunked body: the stream's, if the body is one."""
        if self._stream is not None:
            self._stream.trailers[_NAMES.get(name) or _name(name)] = value.decode("latin-1")

    def _head_too_large(self) -> None:
        self._fail(b"request header fields too large", 431)
        raise httptools.HttpParserError("head too large")  # stops this feed_data

    def on_headers_complete(self) -> None:
        url = self._url
        target = self._targets.get(url)  # a keep-alive client sends the same targets again
        if target is None:
            target = self._target(url)
        self._raw_path, self._query, self._path, self._limit, self._digits = target
        headers = self._headers
        declared = headers.get("content-length")
        # (a length with fewer digits than the limit's is within it: no int made)
        if declared is not None and len(declared) >= self._digits and self._over(declared):
            return
        self._in_body = True
        if "expect" in headers and headers["expect"].lower() == "100-continue":
            self.write_interim(100)
        verb: bytes = self._parser.get_method()
        self._method = method = _METHODS.get(verb) or verb.decode("latin-1")
        if self._streams_body is not _never and self._streams_body(method, self._path, headers):
            self._dispatch_stream(method)

    def _target(self, url: bytes) -> tuple[str, str, str, int, int]:
        """A new request target split and decoded, with its path's body limit (and the
        limit's digits), kept for the next time (the last few targets of a connection)."""
        raw_path, _, query = url.decode("latin-1").partition("?")
        path = unquote(raw_path) if "%" in raw_path else raw_path
        limit = self._body_limit
        if not isinstance(limit, int):
            limit = limit(path)
        if len(self._targets) >= 8:
            self._targets.clear()
        self._targets[url] = target = (raw_path, query, path, limit, len(str(limit)))
        return target

    def _over(self, declared: str) -> bool:
        """A declared body over the limit is refused before it is read."""
        if declared.isdigit() and int(declared) > self._limit:
            self._reject(self._too_large(self._path, int(declared)))
            return True
        return False

    def on_body(self, body: bytes) -> None:
        if self._stream is not None:  # (the reader of a stream enforces its own limit)
            self._stream.feed(body)
            return
        if self._discarding:
            return
        self._body_size = size = self._body_size + len(body)
        if size > self._limit:
            self._reject(self._too_large(self._path, size))
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        """Queue the request for the responder, and wake it if it waits (every request
        but a streamed one, which `on_headers_complete` queued)."""
        self._reading = False
        if self._discarding:  # answered (`_reject`); closed after that unless kept alive
            return
        if self._stream is not None:  # queued already, when its headers came
            self._stream.finish()
            return
        body = self._body
        parser = self._parser
        keep_alive: bool = parser.should_keep_alive()
        headers = self._headers
        request = Request(
            self._method,
            self._raw_path,
            self._query,
            headers,
            body[0] if len(body) == 1 else b"".join(body),
            self,
            # (as `_version` says, without a call)
            "1.1" if keep_alive and "connection" not in headers else parser.get_http_version(),
            None,
            self._path,
        )
        self._queue.append((self._handler, request, keep_alive))
        waiter = self._waiter
        if waiter is not None and keep_alive and not waiter.done():
            self._waiter = None  # the responder waits for this request (the common case)
            waiter.set_result(None)
        else:
            self._queued(keep_alive)

    def _version(self, headers: dict[str, str]) -> tuple[str, bool]:
        """The request's HTTP version, and whether the connection is kept alive after it."""
        parser = self._parser
        keep_alive: bool = parser.should_keep_alive()
        # Kept alive without a Connection header: HTTP/1.1 (llhttp takes only 0.9, 1.0, 1.1
        # and 2.0, and keeps only 1.1 alive by default); `get_http_version` formats a string.
        if keep_alive and "connection" not in headers:
            return "1.1", True
        return parser.get_http_version(), keep_alive

    def _dispatch_stream(self, method: str) -> None:
        """Queue a request whose body is read while the handler runs (`Request.stream`)."""
        self._stream = stream = BodyStream(self._loop)
        version, keep_alive = self._version(self._headers)
        request = Request(
            method,
            self._raw_path,
            self._query,
            self._headers,
            b"",
            self,
            version,
            stream,
            self._path,
        )
        self._queue.append((self._handler, request, keep_alive))
        self._queued(keep_alive)

    def _queued(self, keep_alive: bool) -> None:
        """A request is queued: wake the responder if it waits, start it if there is none."""
        queue = self._queue
        if not keep_alive:
            self._ending = True  # answered, then closed
        if len(queue) == 1:
            waiter = self._waiter
            if waiter is not None:  # the responder waits for this request
                self._waiter = None
                if not waiter.done():  # (a cancelled one: the loop is ending)
                    waiter.set_result(None)
            elif not self._responding:
                self._responding = True
                self._loop.create_task(self._responder())
        elif len(queue) > MAX_PIPELINED and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True

    def _wake_responder(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # responding --------------------------------------------------------------------
    async def _responder(self) -> None:
        """The connection's one task: answer queued requests one after another, in the order
        they came, and wait for the next one, until the connection is done."""
        queue = self._queue
        transport = self._transport
        assert transport is not None  # (made with the connection, before any request)
        connections, coalesce, new_future = (
            self._connections,
            self._coalesce,
            self._loop.create_future,
        )
        held = b""  # answers held for the one behind them (`coalesce`)
        try:
            while True:
                if not queue:
                    if self.closed:
                        return
                    if self._paused:  # requests had piled up
                        self._paused = False
                        transport.resume_reading()
                    self._waiter = waiter = new_future()
                    await waiter
                    continue
                answer, request, keep_alive = queue[0]
                try:
                    response = await answer(request)
                except Exception:  # each face maps its own errors; this is the last guard
                    response, keep_alive = _unhandled(request), False
                queue.popleft()
                if self.closed:
                    return
                if connections is not None:
                    self.since = monotonic()
                    keep_alive = keep_alive and not connections.closing
                data = response.encode(keep_alive)
                if response.stream is not None:
                    transport.write(held + data)
                    held = b""
                    await self._write_stream(response.stream)
                elif queue and keep_alive and coalesce:
                    held += data  # the next request is queued: its answer takes this along
                    continue
                else:
                    transport.write(held + data if held else data)
                    held = b""
                if not keep_alive:
                    queue.clear()
                    transport.close()
                    return
        finally:
            self._responding = False
            self._waiter = None

    async def _write_stream(self, stream: AsyncIterator[bytes]) -> None:
        """Send each piece as it comes; a client that went away stops the writing only. A
        stream that fails midway ends the connection (the head is sent: no error can follow)."""
        try:
            async for piece in stream:
                if self.closed or self._transport is None:
                    continue
                if piece:
                    self._transport.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        except Exception:
            log.exception("a streamed response failed midway")
            if self._transport is not None:
                self._transport.close()
            return
        if not self.closed and self._transport is not None:
            self._transport.write(b"0\r\n\r\n")

    @property
    def busy(self) -> bool:
        """A request is being answered (or has arrived in part)."""
        return bool(self._queue) or self._reading

    def close_if_idle(self) -> None:
        if not self.busy and self._transport is not None:
            self._transport.close()

    def check(self, now: float, limits: Limits) -> None:
        """End the connection if its client is past `limits` (see the module docstring)."""
        if self._queue:
            return  # a request is being answered: the handler's own timeouts apply
        if self._reading and not self._in_body:
            if now - self.since > limits.header_timeout:
                self.abort()  # headers too slow (or none at all)
        elif not self._reading and now - self.since > (
            limits.idle_timeout if self._targets else limits.header_timeout  # (served before)
        ):
            self.abort()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def write_interim(self, status: int) -> bool:
        if self.closed or self._transport is None or self._transport.is_closing():
            return False
        self._transport.write(b"HTTP/1.1 %d %s\r\n\r\n" % (status, REASONS.get(status, b"")))
        return True

    def _reject(self, response: Response) -> None:
        """Answer before the body is read (after the answers to the requests before this
        one: pipelined answers go out in order), and drop the rest of this request's body."""
        self._discarding = True
        self._body = []
        keep_alive: bool = self._parser.should_keep_alive()
        self._queue.append((_ready, response, keep_alive))
        self._queued(keep_alive)

    def _fail(self, message: bytes, status: int = 400) -> None:
        """The peer broke HTTP: answer 400 (or `status`) and close."""
        if self._transport is not None and not self._transport.is_closing():
            response = Response(status, [("Content-Type", "text/plain")], message)
            self._transport.write(response.encode(keep_alive=False))
            self._transport.close()


def bound_port(server: asyncio.AbstractServer) -> int:
    """The port `server` listens on (its first socket). uvloop's `Server.sockets` is a list
    where typeshed says a tuple: read untyped, which compiled code (mypyc) would check."""
    sockets: Any = cast(Any, server).sockets
    return int(sockets[0].getsockname()[1])


async def serve(
    handler: Handler,
    host: str,
    port: int,
    *,
    body_limit: BodyLimit,
    too_large: Callable[[str, int], Response],
    streams_body: StreamsBody = _never,
    backlog: int = 1024,
    connections: Connections | None = None,
    accept: Accept | None = None,
    coalesce: bool = False,
) -> asyncio.Server:
    """Listen on host:port and answer every request with `handler`.

    `body_limit(path)` (or `body_limit`, an int) is the largest body a request may have.
    `streams_body(method, path, headers)` says which requests are handed to the handler as
    soon as their headers arrive, with the body to read from `Request.stream`.
    `accept(peer, local)`, when given, decides on each new connection: False closes it.
    `coalesce`: hold an answer while the next request is queued, send both in one write.
    """
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: HttpProtocol(
            handler, body_limit, too_large, streams_body, connections, accept, coalesce, loop
        ),
        host,
        port,
        backlog=backlog,
        reuse_address=True,
    )
