"""The shared HTTP/1.1 server against real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lamina.http.server import MAX_PIPELINED, Request, Response, serve

EXAMPLES = int(os.environ.get("LAMINA_FUZZ_EXAMPLES") or 15)


async def _broken_stream():
    yield b"first"
    raise RuntimeError("the source of this stream failed")


async def _echo(request: Request) -> Response:
    if request.path == "/broken-stream":
        return Response(200, [], stream=_broken_stream())
    if request.path == "/slow":
        await asyncio.sleep(0.05)
        request.send_interim(100)
    return Response(200, [("X-Path", request.path)], request.body or request.path.encode())


def _too_large(path: str, size: int) -> Response:
    return Response(413, [], f"{path} {size}".encode())


def exchange(port: int, data: bytes, read_until: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while read_until not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def with_server(check, handler=_echo, body_limit=lambda path: 10) -> None:
    async def main() -> None:
        server = await serve(handler, "127.0.0.1", 0, body_limit=body_limit, too_large=_too_large)
        port = server.sockets[0].getsockname()[1]
        try:
            await asyncio.get_running_loop().run_in_executor(None, check, port)
        finally:
            server.close()

    asyncio.run(main())


def test_a_request_carries_the_loop_that_serves_it():
    seen = []

    async def handler(request: Request) -> Response:
        seen.append(request.loop is asyncio.get_running_loop())
        return Response(200, [], b"ok")

    async def main() -> None:
        server = await serve(
            handler, "127.0.0.1", 0, body_limit=lambda path: 10, too_large=_too_large
        )
        port = server.sockets[0].getsockname()[1]
        try:
            request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
            answer = await asyncio.get_running_loop().run_in_executor(
                None, exchange, port, request, b"ok"
            )
        finally:
            server.close()
        assert answer.startswith(b"HTTP/1.1 200")

    asyncio.run(main())
    assert seen == [True]


def test_keep_alive_and_pipelined_requests_answer_in_order():
    def check(port: int) -> None:
        out = exchange(
            port,
            b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\n",
            b"/fast",
        )
        assert out.index(b"HTTP/1.1 100 Continue") < out.index(b"/slow") < out.index(b"/fast")

    with_server(check)


def test_over_limit_body_is_refused_early_and_connection_stays_usable():
    def check(port: int) -> None:
        out = exchange(
            port,
            b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n"
            + b"a" * 20
            + b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n",
            b"/after",
        )
        assert out.startswith(b"HTTP/1.1 413")
        assert b"/big 20" in out and out.endswith(b"/after")
        chunked = exchange(
            port,
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
            b"\r\n\r\n8\r\naaaaaaaa\r\n8\r\naaaaaaaa\r\n0\r\n\r\n",
            b"413",
        )
        assert chunked.startswith(b"HTTP/1.1 413")

    with_server(check)


def test_expect_continue_and_percent_decoding():
    def check(port: int) -> None:
        out = exchange(
            port,
            b"POST /a%3Ab HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: 2\r\n\r\nhi",
            b"hi",
        )
        assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK")
        assert b"X-Path: /a:b" in out

    with_server(check)


def test_garbage_gets_400_and_close():
    def check(port: int) -> None:
        out = exchange(port, b"\x00\x01 not http\r\n\r\n", b"bad request")
        assert out.startswith(b"HTTP/1.1 400")

    with_server(check)


def test_a_stream_that_fails_midway_ends_the_connection():
    def check(port: int) -> None:
        out = exchange(
            port,
            b"GET /broken-stream HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n",
            b"never",
        )
        assert out.startswith(b"HTTP/1.1 200") and b"5\r\nfirst\r\n" in out
        assert b"0\r\n\r\n" not in out, "no end chunk: the client sees the body cut short"
        assert b"/after" not in out, "the connection was closed"

    with_server(check)


def test_coalesce_holds_an_answer_until_the_queued_request_behind_it_is_answered():
    """A Runtime API face (`coalesce`): the answer to the first of two pipelined requests
    goes out with the second's, in order; a lone request is answered at once."""
    release = asyncio.Event()

    async def handler(request: Request) -> Response:
        if request.path == "/next":
            await release.wait()
        return Response(202 if request.path == "/response" else 200, [], request.path.encode())

    async def main() -> None:
        server = await serve(
            handler, "127.0.0.1", 0, body_limit=lambda p: 10, too_large=_too_large, coalesce=True
        )
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"POST /response HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            alone = await asyncio.wait_for(reader.readuntil(b"/response"), 5)
            assert alone.startswith(b"HTTP/1.1 202 Accepted\r\n")  # nothing behind it
            writer.write(
                b"POST /response HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET /next HTTP/1.1\r\n\r\n"
            )
            with pytest.raises(asyncio.TimeoutError):  # the 202 is held meanwhile
                await asyncio.wait_for(reader.read(1), 0.1)
            release.set()
            both = await asyncio.wait_for(reader.readuntil(b"/next"), 5)
            assert both.startswith(b"HTTP/1.1 202 Accepted\r\n")
            assert both.index(b"/response") < both.index(b"HTTP/1.1 200 OK")
        finally:
            writer.close()
            server.close()

    asyncio.run(main())


# Plain requests and ones with chunked bodies, `Expect`, repeated headers and encoded paths, as
# (bytes sent, answer expected): mixed on one connection, they are answered in order.
_MIXED = [
    (b"GET /simple HTTP/1.1\r\nHost: x\r\n\r\n", b"/simple"),
    (b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", b"hello"),
    (b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", b"abc"),
    (b"POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok", b"ok"),
    (b"GET /dup HTTP/1.1\r\nX-A: 1\r\nX-A: 2\r\n\r\n", b"/dup"),
    (b"GET /k%41 HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", b"/kA"),
]


@pytest.mark.fuzz
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.sampled_from(_MIXED), min_size=1, max_size=6),
    st.lists(st.integers(1, 40), min_size=1, max_size=8),
)
def test_common_and_other_requests_mixed_and_split_anyhow_answer_in_order(requests, cuts):
    """However the bytes of pipelined requests are cut into reads, each is answered once, in
    order, whatever they carry."""
    stream = b"".join(sent for sent, _ in requests)
    pieces, at = [], 0
    for cut in cuts:
        pieces.append(stream[at : at + cut])
        at += cut
    pieces.append(stream[at:])

    def check(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for piece in pieces:
                if piece:
                    sock.sendall(piece)
                    time.sleep(0.002)  # (most pieces arrive as reads of their own)
            received = b""
            while received.count(b"HTTP/1.1 200") < len(requests):
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
        bodies = [part.split(b"\r\n\r\n", 1)[1] for part in received.split(b"HTTP/1.1 200 OK")[1:]]
        assert [body.split(b"HTTP/1.1 100")[0] for body in bodies] == [
            answer for _, answer in requests
        ]

    with_server(check)


_ATTRIBUTES = (
    "method",
    "raw_path",
    "path",
    "query",
    "headers",
    "body",
    "stream",
    "http_version",
    "caller",
)


async def _describe(request: Request) -> Response:
    """Answers with what the server made of the request."""
    if request.path == "/slow":
        await asyncio.sleep(0.01)
    seen = {
        "version": request.http_version,
        "method": request.method,
        "path": request.path,
        "raw_path": request.raw_path,
        "query": request.query,
        "headers": request.headers,
        "body": request.body.decode("latin-1"),
        "interim": request.send_interim(102) if request.path == "/interim" else None,
        "unset": [name for name in _ATTRIBUTES if not hasattr(request, name)],
    }
    return Response(200, [("Content-Type", "application/json")], json.dumps(seen).encode())


def _receive(sock: socket.socket, data: bytes, count: int, status: bytes = b"") -> bytes:
    """Send `data`; what comes back until `count` answers (of `status`, if given) are in and
    the last of them has ended (every `_describe` answer ends with "}")."""
    sock.sendall(data)
    received = b""
    while received.count(b"HTTP/1.1 " + status) < count or not received.endswith(b"}"):
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    return received


def _answers(port: int, data: bytes, count: int) -> list[dict]:
    """Send `data` on one connection; the JSON bodies of the first `count` 200 answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        received = _receive(sock, data, count, b"200 OK")
    parts = received.split(b"HTTP/1.1 ")  # (interim answers in between are left out)
    return [json.loads(part.split(b"\r\n\r\n", 1)[1]) for part in parts if part[:3] == b"200"]


def test_each_pipelined_request_has_its_own_version_headers_and_target():
    """Requests on one connection, in one write: each keeps its HTTP version (1.1 or 1.0,
    with or without a Connection header), its headers (names lower-case, repeated ones joined
    with commas, values decoded as latin-1) and its target (the same one again, then others)."""
    sent = (
        b"GET /v?a=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\nX-B: caf\xe9\r\n\r\n"
        b"GET /v?a=1 HTTP/1.1\r\nHost: y\r\n\r\n"
        b"POST /w%41?b=2 HTTP/1.1\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /interim HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        b"GET /interim HTTP/1.1\r\n\r\n"
        b"GET /v?a=1 HTTP/1.0\r\n\r\n"
    )

    def check(port: int) -> None:
        seen = _answers(port, sent, 6)
        assert [s["version"] for s in seen] == ["1.1", "1.1", "1.1", "1.0", "1.1", "1.0"]
        assert seen[0]["headers"] == {"host": "x", "x-a": "1,2", "x-b": "café"}
        assert seen[1]["headers"] == {"host": "y"}
        assert [(s["path"], s["raw_path"], s["query"]) for s in seen[:3]] == [
            ("/v", "/v", "a=1"),
            ("/v", "/v", "a=1"),
            ("/wA", "/w%41", "b=2"),
        ]
        assert seen[2]["method"] == "POST" and seen[2]["body"] == "abc"
        assert [s["interim"] for s in seen[3:5]] == [False, True]  # none in HTTP/1.0
        assert all(s["unset"] == [] for s in seen), "the server sets every slot of a Request"

    with_server(check, _describe)


def test_requests_piled_past_the_pipelining_limit_pause_reading_and_all_get_answered():
    """More requests in one write than MAX_PIPELINED: reading pauses, resumes as the queue
    drains, and every request is answered, in order; the connection goes on serving."""
    count = MAX_PIPELINED * 3
    sent = b"".join(b"GET /slow?n=%d HTTP/1.1\r\n\r\n" % n for n in range(count))

    def check(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            for _ in range(2):  # the second time on a connection that was paused
                received = _receive(sock, sent, count, b"200 OK")
                queries = [
                    json.loads(p.split(b"\r\n\r\n", 1)[1])["query"]
                    for p in received.split(b"HTTP/1.1 ")[1:]
                ]
                assert queries == ["n=%d" % n for n in range(count)]

    with_server(check, _describe)


def test_each_path_keeps_its_body_limit_when_the_target_changes_and_comes_back():
    def check(port: int) -> None:
        sent = (
            b"".join(
                b"POST %s HTTP/1.1\r\nContent-Length: 6\r\n\r\nsix..." % path
                for path in (b"/small?a", b"/big?b", b"/small?a", b"/sm%61ll?c", b"/big?b")
            )
            + b"GET /end HTTP/1.1\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            received = _receive(sock, sent, 6)
        statuses = [part[:3] for part in received.split(b"HTTP/1.1 ")[1:]]
        assert statuses == [b"413", b"200", b"413", b"413", b"200", b"200"]
        assert b"/small 6" in received  # the 413's body: the path and the declared size

    with_server(check, _describe, body_limit=lambda path: 100 if path == "/big" else 5)


def test_a_refused_request_that_asks_to_close_is_answered_after_those_before_it_then_closed():
    def check(port: int) -> None:
        sent = (
            b"GET /slow HTTP/1.1\r\n\r\n"
            b"POST /small HTTP/1.1\r\nConnection: close\r\nContent-Length: 6\r\n\r\nsix..."
            b"GET /never HTTP/1.1\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(sent)
            received = b""
            while chunk := sock.recv(65536):  # until the server closes
                received += chunk
        statuses = [part[:3] for part in received.split(b"HTTP/1.1 ")[1:]]
        assert statuses == [b"200", b"413"] and b"/never" not in received
        assert b"Connection: close" in received.split(b"HTTP/1.1 413")[1]

    with_server(check, _describe, body_limit=lambda path: 5)


def test_many_targets_on_one_connection_each_keep_their_path_and_query():
    """More distinct targets than a connection keeps split (8), twice over, interleaved."""
    targets = [b"/t%d%%2F?q=%d" % (n % 11, n % 11) for n in range(24)]  # 11 distinct ones
    sent = b"".join(b"GET %s HTTP/1.1\r\n\r\n" % target for target in targets)

    def check(port: int) -> None:
        seen = _answers(port, sent, len(targets))
        assert [(s["path"], s["query"]) for s in seen] == [
            ("/t%d/" % (n % 11), "q=%d" % (n % 11)) for n in range(24)
        ]

    with_server(check, _describe)
