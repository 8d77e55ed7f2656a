"""The HTTP server against hostile clients, over real sockets: headers past the limit, slow
clients (slowloris), connections that never send, idle keep-alives, thousands of idle
connections; and hypothesis feeding the parser random and mutated requests."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lamina.http.server import MAX_HEAD, Connections, Limits, Request, Response, serve

EXAMPLES = int(os.environ.get("LAMINA_FUZZ_EXAMPLES") or 60)


async def _echo(request: Request) -> Response:
    return Response(200, [], request.body or request.path.encode())


def _too_large(path: str, size: int) -> Response:
    return Response(413, [], b"too large")


def with_server(check, limits: Limits | None = None) -> None:
    async def main() -> None:
        connections = Connections(limits)
        server = await serve(
            _echo,
            "127.0.0.1",
            0,
            body_limit=lambda path: 1 << 20,
            too_large=_too_large,
            connections=connections,
        )
        port = server.sockets[0].getsockname()[1]
        try:
            await asyncio.get_running_loop().run_in_executor(None, check, port, connections)
        finally:
            connections.close()
            server.close()

    asyncio.run(main())


def ask(
    port: int, data: bytes = b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n", timeout: float = 5
) -> bytes:
    """Send `data` and read until the server closes or 0.3 s of quiet after an answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read(sock)


def read(sock: socket.socket) -> bytes:
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return received
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
        sock.settimeout(0.3)


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closes `sock` (fails past `seconds`)."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_headers_past_the_limit_get_431_and_close():
    def check(port: int, connections: Connections) -> None:
        huge = b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MAX_HEAD + b"\r\n\r\n"
        assert ask(port, huge).startswith(b"HTTP/1.1 431 ")
        many = (
            b"GET /ok HTTP/1.1\r\n"
            + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 60) for i in range(2000))
            + b"\r\n"
        )
        assert ask(port, many).startswith(b"HTTP/1.1 431 ")
        long_url = b"GET /" + b"p" * MAX_HEAD + b" HTTP/1.1\r\n\r\n"
        assert ask(port, long_url).startswith(b"HTTP/1.1 431 ")
        assert ask(port).endswith(b"/ok"), "others are still served"

    with_server(check)


def test_slow_clients_are_disconnected_and_others_served_meanwhile():
    def check(port: int, connections: Connections) -> None:
        slow = socket.create_connection(("127.0.0.1", port))
        silent = socket.create_connection(("127.0.0.1", port))
        started = time.monotonic()
        slow.sendall(b"GET /slow HTTP/1.1\r\n")
        while time.monotonic() - started < 1.2:  # a header byte every 0.1 s (slowloris)
            try:
                slow.sendall(b"X")
            except OSError:
                break
            assert ask(port).endswith(b"/ok")
            time.sleep(0.1)
        assert closed_within(slow, 3) < 3
        assert closed_within(silent, 3) < 3
        assert time.monotonic() - started < 4.5
        slow.close()
        silent.close()

    with_server(check, Limits(header_timeout=1.0, idle_timeout=30))


def test_idle_keep_alive_connections_are_closed():
    def check(port: int, connections: Connections) -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).endswith(b"/ok")
            time.sleep(0.5)  # idle, but within the idle timeout: still usable
            sock.sendall(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).endswith(b"/again")
            assert 1.0 < closed_within(sock, 4) < 4

    with_server(check, Limits(header_timeout=0.5, idle_timeout=1.5))


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_thousands_of_idle_connections_past_the_cap_evict_the_oldest():
    count, cap = 2000, 500

    def check(port: int, connections: Connections) -> None:
        before = _open_fds()
        sockets = []
        try:
            for _ in range(count):
                sockets.append(socket.create_connection(("127.0.0.1", port)))
            deadline = time.monotonic() + 10
            while len(connections.open) < cap and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.5)  # the server accepts the rest of its backlog (evicting)
            started = time.monotonic()
            assert ask(port).endswith(b"/ok"), "a new client is served"
            # served by eviction, not after the 30 s header or idle timeouts (the bound leaves
            # room for a loaded machine: 4.4 s was seen with the suite on 3 workers)
            assert time.monotonic() - started < 10
            assert len(connections.open) <= cap
            # the test holds `count` client ends; the server no more than `cap` + a few
            assert _open_fds() - before - count <= cap + 10
            newest = sockets[-1]
            newest.sendall(b"GET /newest HTTP/1.1\r\nHost: x\r\n\r\n")
            newest.settimeout(5)
            assert newest.recv(4096).endswith(b"/newest")
        finally:
            for sock in sockets:
                sock.close()

    with_server(check, Limits(header_timeout=30, idle_timeout=30, max_connections=cap))


# hypothesis on the parser ------------------------------------------------------------------
VALID = [
    b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
    b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 6))):
        where = draw(st.integers(0, len(data)))
        kind = draw(st.integers(0, 2))
        if kind == 0 and data:
            del data[min(where, len(data) - 1)]
        elif kind == 1:
            data[where:where] = draw(st.binary(min_size=1, max_size=8))
        else:
            data[where:where] = draw(
                st.sampled_from(
                    [
                        b"\r\n",
                        b"\x00",
                        b" ",
                        b":",
                        b"Content-Length: 99999999999999999999\r\n",
                        b"Transfer-Encoding: chunked\r\n",
                        b"Content-Length: -1\r\n",
                        b"Expect: 100-continue\r\n",
                        b"Upgrade: h2c\r\nConnection: upgrade\r\n",
                        b"\xff\xfe",
                        b"%00%2e%2e/",
                        b"ffffffffffffffff\r\n",
                    ]
                )
            )
    return bytes(data)


@pytest.mark.fuzz
def test_the_parser_answers_or_closes_for_any_bytes(caplog: pytest.LogCaptureFixture):
    """Any bytes get an HTTP answer or a clean close, within the timeouts; the server logs no
    error and goes on serving."""
    caplog.set_level(logging.WARNING)

    def check(port: int, connections: Connections) -> None:
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(st.one_of(mutated(), st.binary(max_size=300)))
        def one(data: bytes) -> None:
            answer = ask(port, data, timeout=3)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 "), answer[:200]

        one()
        assert ask(port).endswith(b"/ok")

    with_server(check, Limits(header_timeout=1.0, idle_timeout=1.0))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
