#!/usr/bin/env python3
"""Instructions (or CPU) per warm call of Lamina's HTTP layer alone, in the engine's shape.

One process, uvloop, 16 pairs of connections fed in memory (`HttpProtocol.data_received`, as
uvloop calls it; the transport's `write` is a list's `append`): each call is a client's Invoke
request on one connection, whose handler waits for the outcome; the runtime's held `next` on
the other connection is answered with the event (together with the held 202, `coalesce`);
then the runtime's pipelined `POST …/response` + `GET …/next` arrive, the first resolves the
outcome and the client's answer is written. The handlers do nothing else, so what is counted
is the server's share of a call: parsing, `Request`, the responder's wake-ups and awaits,
encoding and writing. The bytes are those the raw client (`http.client`) and the Python
runtime send.

  .venv/bin/python bench/http_path.py                # CPU µs per call, 5 repeats
  .venv/bin/python bench/http_path.py --callgrind    # instructions per call (valgrind)
  .venv/bin/python bench/http_path.py --callgrind --src /work/main/src,src

With --callgrind the measured calls run under `valgrind --tool=callgrind` with the counters
zeroed just before them and dumped just after (`--zero-before=getppid`,
`--dump-before=getpgrp`): a figure the machine's load does not move. `--src` names trees to
import lamina from (one figure each, e.g. main's checkout beside this worktree).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lib import measure

INVOKE = (
    b"POST /2015-03-31/functions/noop/invocations HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n"
    b"Accept-Encoding: identity\r\nContent-Length: 17\r\nContent-Type: application/json\r\n"
    b'\r\n{"hello":"world"}'
)
RUNTIME = (
    b"POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: runtime\r\n"
    b"Content-Length: 4\r\nContent-Type: application/json\r\n\r\nnull"
    b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: runtime\r\n\r\n"
)
ANSWER = (
    "x-amzn-RequestId: 8f5e0c2a-1b3d-4e5f-8a9b-0c1d2e3f4a5b\r\n"
    "X-Amz-Executed-Version: $LATEST\r\nContent-Type: application/json\r\n"
)
EVENT = (
    "Lambda-Runtime-Aws-Request-Id: %s\r\nLambda-Runtime-Deadline-Ms: 1764770000000\r\n"
    "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:noop\r\n"
    "Lambda-Runtime-Invocation-Id: 1\r\nContent-Type: application/json\r\n"
    "Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n"
)


class Transport:
    """What the server calls on a transport; `write` is a list's append (a C call)."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.write = self.out.append

    def get_extra_info(self, name: str) -> None:
        return None

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


class Pair:
    """One client connection and one runtime connection, with the state between them (the
    runtime's is made as the Runtime API's is: `coalesce`, and its `streams_body` rule)."""

    def __init__(self, server: object, loop: asyncio.AbstractEventLoop, rid: int) -> None:
        from lamina.runtime.runtime_api.server import streams_body

        self.loop = loop
        self.rid = b"%032x" % rid
        self.event: asyncio.Future[bytes] = loop.create_future()  # the runtime's next
        self.outcome: asyncio.Future[bytes] | None = None  # the client's answer
        self.client = server.HttpProtocol(self.invoke, 6 << 20, self.too_large, loop=loop)
        self.runtime = server.HttpProtocol(
            self.runtime_api, 6 << 20, self.too_large, streams_body, coalesce=True, loop=loop
        )
        self.client_out = Transport()
        self.runtime_out = Transport()
        self.client.connection_made(self.client_out)
        self.runtime.connection_made(self.runtime_out)
        self.server = server
        self.runtime.data_received(b"GET" + RUNTIME.split(b"GET", 1)[1])  # the first next

    def too_large(self, path: str, size: int) -> object:
        return self.server.Response(413)

    async def invoke(self, request: object) -> object:
        self.outcome = outcome = self.loop.create_future()
        self.event.set_result(request.body)  # type: ignore[attr-defined]
        body = await outcome
        return self.server.HeadResponse(200, ANSWER, body)

    async def runtime_api(self, request: object) -> object:
        if request.method == "POST":  # type: ignore[attr-defined]
            self.outcome.set_result(request.body)  # type: ignore[union-attr,attr-defined]
            return self.server.Response(202, [("Content-Type", "application/json")], b"{}")
        self.event = event = self.loop.create_future()
        payload = await event
        return self.server.HeadResponse(200, EVENT % self.rid.decode(), payload)


async def calls(pairs: list[Pair], each: int) -> None:
    runtime = RUNTIME.replace(b"%s", pairs[0].rid)
    for _ in range(each):
        for pair in pairs:
            pair.client.data_received(INVOKE)
        await asyncio.sleep(0)  # the invoke handlers run and hand over the events
        await asyncio.sleep(0)  # the runtimes' responders write them
        for pair in pairs:
            pair.runtime.data_received(runtime)
        await asyncio.sleep(0)  # the runtimes' answers resolve the outcomes
        await asyncio.sleep(0)  # the clients' responders write them
    for pair in pairs:
        assert len(pair.client_out.out) >= each, "an Invoke went unanswered"
        del pair.client_out.out[:], pair.runtime_out.out[:]


async def run(args: argparse.Namespace) -> None:
    from lamina.http import server

    loop = asyncio.get_running_loop()
    pairs = [Pair(server, loop, k) for k in range(16)]
    await calls(pairs, 100)  # warm
    for _ in range(args.repeat):
        started = time.process_time()
        if args.marked:
            os.getppid()  # callgrind: counters zeroed here ...
        await calls(pairs, args.n // 16)
        if args.marked:
            os.getpgrp()  # ... and dumped here
        spent = time.process_time() - started
        print(f"CPU µs/call: {spent / args.n * 1e6:.1f}", flush=True)


def callgrind(args: argparse.Namespace, src: str) -> int:
    argv = [sys.executable, __file__, "--marked", "--repeat", "1", "-n", str(args.n)]
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src))
    total, dumped = measure.marked_instructions(argv, env)
    print(f"{src}: {total // args.n:,} instructions per call ({args.n} calls; {dumped})")
    return total // args.n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1600, help="calls per repeat")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--callgrind", action="store_true", help="count instructions")
    parser.add_argument("--src", default="src", help="comma-separated trees (--callgrind)")
    parser.add_argument("--marked", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.callgrind:
        for src in args.src.split(","):
            callgrind(args, src)
        return
    import uvloop

    uvloop.run(run(args))


if __name__ == "__main__":
    main()
