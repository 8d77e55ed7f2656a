#!/usr/bin/env python3
"""CPU per request of Lamina's HTTP server alone (src/lamina/http/server.py), beside a lean
raw protocol, paired per round.

Each server runs in its own process on uvloop with a handler that answers at once; a client
process drives it with 16 keep-alive connections (one thread each, raw sockets), and the
server process's CPU (user + system, from /proc) is divided by the requests answered. Two
shapes: `invoke` (one small POST and its answer, as the Lambda API's Invoke) and `runtime`
(a POST /response and a GET /next sent in one write, answered in one write with `coalesce`,
as the Runtime API's per-invocation pair). `--src` names each tree to import lamina from, so
two commits can be compared in one run (e.g. a checkout of main beside this worktree).

  .venv/bin/python bench/http_cpu.py --src /work/main/src,src --rounds 4
  .venv/bin/python bench/http_cpu.py --src /work/main/src,src --callgrind

`--callgrind` counts instead the user-space instructions per request of each server under
valgrind's callgrind (Ir of 1,600 requests less Ir of 400, over 4 connections): a figure that
the machine's load does not move. Prints one line per window and the median µs/request (or
the instructions per request) of each server and shape.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

INVOKE = (
    b"POST /2015-03-31/functions/noop/invocations HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n"
    b"Accept-Encoding: identity\r\nContent-Type: application/json\r\n"
    b"X-Amz-Invocation-Type: RequestResponse\r\nContent-Length: 2\r\n\r\n{}"
)
RUNTIME = (
    b"POST /2018-06-01/runtime/invocation/8f5e/response HTTP/1.1\r\nHost: runtime\r\n"
    b"Content-Length: 4\r\n\r\nnull"
    b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: runtime\r\n\r\n"
)
EVENT = b"{}"

SERVER = r"""
import asyncio, os, sys
import uvloop
shape, kind, LIMIT = sys.argv[1], sys.argv[2], int(sys.argv[3])
EVENT = b"{}"
STOP = None
SEEN = 0

def seen(n=1):  # with a LIMIT (under callgrind): stop once that many requests are answered
    global SEEN
    SEEN += n
    if LIMIT and SEEN >= LIMIT:
        asyncio.get_running_loop().call_later(0.05, STOP.set)

async def main():
    global STOP
    STOP = asyncio.Event()
    if kind == "lean":
        class Proto(asyncio.Protocol):
            def connection_made(self, t):
                self.t = t
                self.buf = bytearray()
            def data_received(self, data):
                self.buf += data
                out = []
                while True:
                    i = self.buf.find(b"\r\n\r\n")
                    if i < 0:
                        break
                    lines = bytes(self.buf[:i]).split(b"\r\n")
                    clen = 0
                    for line in lines[1:]:
                        if line[:15].lower() == b"content-length:":
                            clen = int(line[15:])
                    end = i + 4 + clen
                    if len(self.buf) < end:
                        break
                    del self.buf[:end]
                    out.append(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               b"Content-Length: %d\r\n\r\n%s" % (len(EVENT), EVENT))
                if out:
                    self.t.write(b"".join(out))
                    seen(len(out))
        server = await asyncio.get_running_loop().create_server(Proto, "127.0.0.1", 0)
    else:
        from lamina.http.server import Response, serve
        headers = [("Content-Type", "application/json")]

        async def handler(request):
            seen()
            if request.method == "POST" and shape == "runtime":
                return Response(202, headers, b'{"status":"OK"}')
            return Response(200, headers, EVENT)

        server = await serve(handler, "127.0.0.1", 0, body_limit=lambda p: 6 << 20,
                             too_large=lambda p, s: Response(413), coalesce=shape == "runtime")
    print(server.sockets[0].getsockname()[1], flush=True)
    await STOP.wait()

uvloop.run(main())
"""


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client(
    port: int, message: bytes, answers: int, stop: threading.Event, counts: list, slot: int
) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while not stop.is_set():
        sock.sendall(message)
        received = b""  # every answer ends with EVENT; the last is the one sent with it
        while received.count(b"HTTP/1.1 ") < answers or not received.endswith(EVENT):
            received += sock.recv(65536)
        counts[slot] += 1
    sock.close()


def window(port: int, pid: int, shape: str, seconds: float, clients: int) -> float:
    message, answers = (INVOKE, 1) if shape == "invoke" else (RUNTIME, 2)
    stop = threading.Event()
    counts = [0] * clients
    threads = [
        threading.Thread(target=client, args=(port, message, answers, stop, counts, slot))
        for slot in range(clients)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # warm-up
    before, done_before = cpu_seconds(pid), sum(counts)
    time.sleep(seconds)
    spent, done = cpu_seconds(pid) - before, sum(counts) - done_before
    stop.set()
    for thread in threads:
        thread.join()
    return spent * 1e6 / (done * answers)


def start(shape: str, name: str, limit: int = 0, wrap: tuple[str, ...] = ()) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(name) if name != "lean" else "")
    kind = "lean" if name == "lean" else "lamina"
    command = [*wrap, sys.executable, "-c", SERVER, shape, kind, str(limit)]
    stderr = subprocess.DEVNULL if wrap else None  # (valgrind's own report)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=env, text=True)


def instructions(shape: str, name: str, requests: int) -> int:
    """Ir of one server under callgrind answering `requests` requests (start-up included)."""
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "callgrind.out")
        proc = start(
            shape, name, requests, ("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}")
        )
        port = int(proc.stdout.readline())
        message, answers = (INVOKE, 1) if shape == "invoke" else (RUNTIME, 2)

        def one() -> None:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                for _ in range(requests // answers // 4):
                    sock.sendall(message)
                    received = b""
                    while received.count(b"HTTP/1.1 ") < answers or not received.endswith(EVENT):
                        received += sock.recv(65536)
                time.sleep(1)  # (the server stops before this connection closes)

        threads = [threading.Thread(target=one) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        proc.wait(300)
        with open(out) as f:
            return int(re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M).group(1))


def callgrind(args: argparse.Namespace) -> None:
    print("\n| shape | server | instructions/request |\n|---|---|---|")
    for shape in args.shapes.split(","):
        for name in ["lean", *args.src.split(",")]:
            per = (instructions(shape, name, 1600) - instructions(shape, name, 400)) / 1200
            print(f"| {shape} | {name} | {per:,.0f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default="src", help="comma-separated trees to import lamina from")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--shapes", default="invoke,runtime")
    ap.add_argument("--callgrind", action="store_true", help="count instructions instead")
    args = ap.parse_args()
    if args.callgrind:
        callgrind(args)
        return
    results: dict[tuple[str, str], list[float]] = {}
    for shape in args.shapes.split(","):
        servers = {}
        for name in ["lean", *args.src.split(",")]:
            proc = start(shape, name)
            servers[name] = (proc, int(proc.stdout.readline()))
        try:
            for round_ in range(args.rounds):
                order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
                for name in order:
                    proc, port = servers[name]
                    per = window(port, proc.pid, shape, args.seconds, args.clients)
                    results.setdefault((shape, name), []).append(per)
                    print(f"round {round_} {shape:8} {name:20} {per:7.1f} µs/request", flush=True)
        finally:
            for proc, _ in servers.values():
                proc.kill()
                proc.wait()
    print("\n| shape | server | µs/request (median) | ÷ lean |\n|---|---|---|---|")
    for (shape, name), values in results.items():
        lean = statistics.median(results[(shape, "lean")])
        med = statistics.median(values)
        print(f"| {shape} | {name} | {med:.1f} | {med / lean:.2f} |")


if __name__ == "__main__":
    main()
