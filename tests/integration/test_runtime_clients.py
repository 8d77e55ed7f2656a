"""The Runtime API clients of Lamina's Python and Node.js bootstraps, against a real loopback
server (the Node.js one run by `node`).

Each bootstrap sends each answer and the next `next` in one write (HTTP/1.1 pipelining) and
reads into one buffer made at start. Checked here: both responses come back in order from
one write, a body larger than the read buffer arrives whole, a response split anywhere is
put together, and what a `Connection: close` answer left unanswered is sent again on a new
connection.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import threading
from pathlib import Path
from types import ModuleType

import pytest

import lamina

BOOTSTRAP = Path(lamina.__file__).parent / "runtime" / "bootstraps" / "python" / "bootstrap.py"


def _bootstrap() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lamina_python_bootstrap", BOOTSTRAP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Server:
    """Answers each request on a connection with the next scripted reply, split in pieces
    sent apart; records what it received on each connection."""

    def __init__(self, replies: list[tuple[bytes, bool]], piece: int = 7) -> None:
        self.replies = replies  # (raw response, close the connection after it)
        self.piece = piece
        self.received: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.replies:
            connection, _ = self.listener.accept()
            with connection:
                data = b""
                while self.replies:
                    while data.count(b"\r\n\r\n") == 0:
                        chunk = connection.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    if not data:
                        break
                    head, _, rest = data.partition(b"\r\n\r\n")
                    length = int(
                        next(
                            (
                                line.split(b":")[1]
                                for line in head.split(b"\r\n")
                                if line.lower().startswith(b"content-length:")
                            ),
                            b"0",
                        )
                    )
                    while len(rest) < length:
                        rest += connection.recv(65536)
                    self.received.append(head + b"\r\n\r\n" + rest[:length])
                    data = rest[length:]
                    reply, close = self.replies.pop(0)
                    for start in range(0, len(reply), self.piece):  # the client joins the pieces
                        connection.sendall(reply[start : start + self.piece])
                    if close:
                        break


def response(status: int, body: bytes, extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def test_pipelined_answer_and_next_come_back_in_order():
    client = _bootstrap().RuntimeClient
    big = b"e" * 200_000  # larger than the read buffer
    server = Server(
        [
            (response(200, b"first", "Lambda-Runtime-Aws-Request-Id: r1\r\n"), False),
            (response(202, b'{"status":"OK"}'), False),
            (response(200, big, "Lambda-Runtime-Aws-Request-Id: r2\r\n"), False),
        ]
    )
    runtime = client(server.address)
    next_message = runtime.message("GET", "/2018-06-01/runtime/invocation/next")
    status, headers, body = runtime.exchange((next_message,))[0]
    assert (status, headers["lambda-runtime-aws-request-id"], body) == (200, "r1", b"first")
    answer = runtime.message("POST", "/2018-06-01/runtime/invocation/r1/response", b'"ok"')
    accepted, event = runtime.exchange((answer, next_message))
    assert accepted[0] == 202
    assert (event[0], event[1]["lambda-runtime-aws-request-id"]) == (200, "r2")
    assert event[2] == big
    assert server.received[1].startswith(b"POST /2018-06-01/runtime/invocation/r1/response")
    assert server.received[1].endswith(b'"ok"')
    assert server.received[2].startswith(b"GET /2018-06-01/runtime/invocation/next")


def test_what_a_closing_answer_left_unanswered_is_sent_again():
    client = _bootstrap().RuntimeClient
    server = Server(
        [
            (response(202, b'{"status":"OK"}', "Connection: close\r\n"), True),
            (response(200, b"{}", "Lambda-Runtime-Aws-Request-Id: r2\r\n"), False),
        ]
    )
    runtime = client(server.address)
    answer = runtime.message("POST", "/2018-06-01/runtime/invocation/r1/response", b"{}")
    next_message = runtime.message("GET", "/2018-06-01/runtime/invocation/next")
    accepted, event = runtime.exchange((answer, next_message))
    assert (accepted[0], event[0], event[1]["lambda-runtime-aws-request-id"]) == (202, 200, "r2")
    assert len(server.received) == 2  # the `next` the closing connection dropped, sent anew
    assert server.received[1].startswith(b"GET /2018-06-01/runtime/invocation/next")


NODE_CLIENT = BOOTSTRAP.parent.parent / "nodejs" / "client.cjs"
NODE_SCRIPT = """
import { RuntimeClient } from %s;
const client = new RuntimeClient(process.argv.at(-1));
const out = [];
const first = await client.next();
out.push([first.status, first.headers['lambda-runtime-aws-request-id'], first.body.length]);
const accepted = await client.postResponse('r1', '"ok"');
out.push([accepted.status]);
const event = await client.next();
out.push([event.status, event.headers['lambda-runtime-aws-request-id'], event.body.length]);
process.stdout.write(JSON.stringify(out));
"""


def _node_client(address: str) -> list[list[object]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = NODE_SCRIPT % json.dumps(NODE_CLIENT.as_uri())
    done = subprocess.run(
        [node, "--input-type=module", "-e", script, address],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(done.stdout)


def test_node_client_pipelines_and_resends_what_a_closing_answer_dropped():
    big = b"e" * 200_000
    server = Server(
        [
            (response(200, b"{}", "Lambda-Runtime-Aws-Request-Id: r1\r\n"), False),
            (response(202, b'{"status":"OK"}', "Connection: close\r\n"), True),
            (response(200, big, "Lambda-Runtime-Aws-Request-Id: r2\r\n"), False),
        ]
    )
    assert _node_client(server.address) == [[200, "r1", 2], [202], [200, "r2", len(big)]]
    assert server.received[1].startswith(b"POST /2018-06-01/runtime/invocation/r1/response")
    assert server.received[2].startswith(b"GET /2018-06-01/runtime/invocation/next")


def test_node_client_reads_interim_responses_several_in_one_read_and_any_spelling():
    server = Server(
        [
            (
                b"HTTP/1.1 100 Continue\r\n\r\n"
                + response(200, b"{}", "lambda-runtime-aws-request-id:  r1 \r\n"),
                False,
            ),
            # the answer's 202 and the next event in one send, so in one read
            (
                response(202, b'{"status":"OK"}')
                + response(200, b"[1]", "LAMBDA-RUNTIME-AWS-REQUEST-ID: r2\r\n"),
                False,
            ),
            (b"", False),  # for the `next`: its event went with the 202
        ],
        piece=65536,
    )
    assert _node_client(server.address) == [[200, "r1", 2], [202], [200, "r2", 3]]


def test_node_client_pipelines_answer_and_next_on_one_connection():
    server = Server(
        [
            (response(200, b"{}", "Lambda-Runtime-Aws-Request-Id: r1\r\n"), False),
            (response(202, b'{"status":"OK"}'), False),
            (response(200, b"[1]", "Lambda-Runtime-Aws-Request-Id: r2\r\n"), False),
        ]
    )
    assert _node_client(server.address) == [[200, "r1", 2], [202], [200, "r2", 3]]
