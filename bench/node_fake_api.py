#!/usr/bin/env python3
"""Node.js runtimes of several bootstrap variants fed at once by a fake Runtime API.

Each variant is a directory holding a bootstrap.cjs (e.g. main's, extracted with `git archive
<rev> src/lamina/runtime/bootstraps/nodejs | tar -x -C /tmp/main`, and this tree's).
`--per` runtimes of each variant run side by side, started alternately, each with its own
port, Lamina's node flags and the variables the engine gives a runtime (no sandbox); events come at exponential intervals (mean 1/--rate s, ~150 calls/s per environment
is what 16 clients give each of 16 environments), and a runtime idle 5 ms after its answer
is frozen (SIGSTOP to its process group) and thawed (SIGCONT) before its next event, as the
engine does. CPU per call (every thread of a runtime, /proc/PID/task/*/schedstat; the main
thread and the others apart) is read at given call counts, so every variant is measured over
the same calls of its life: 150-900 is about a fresh engine's c16 window (bench/invoke.py),
5000-6500 a warmed one. All variants run at once, so a ratio between them is taken under the
same load; with two copies of one bootstrap, 4 runtimes each, 4 rounds gave 1.00 (0.98-1.02).

  .venv/bin/python bench/node_fake_api.py --variant main=/tmp/main/src/lamina/runtime/bootstraps/nodejs \
      --variant HEAD=src/lamina/runtime/bootstraps/nodejs --per 4 --rounds 4 --marks 150,900
  --flags "HEAD=--some-v8-flag" runs a variant's node with more flags.

Prints per round the median over each variant's runtimes (total, main thread, other threads,
µs per call) and the ratios to the first variant. Scratch in /tmp/lamina-node-fake-api.
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import time

from lamina.domain.model import FunctionConfig
from lamina.runtime.bootstrap import environment, node_flags
from lamina.runtime.launch import View

MEMORY_MB = 512
FLAGS = node_flags(MEMORY_MB)  # Lamina's flags for the function
CONFIG = FunctionConfig(
    name="f",
    runtime="nodejs20.x",
    handler="index.handler",
    role="arn:aws:iam::123456789012:role/r",
    code_sha256="c2hh",
    code_size=1,
    revision_id="r1",
    last_modified="now",
    memory_size=MEMORY_MB,
)
PAYLOAD = b'{"hello":"world"}'


def threads_cpu(pid):
    """CPU seconds of the process's main thread and of its other threads."""
    out = {"main": 0.0, "other": 0.0}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as stat:
                ns = int(stat.read().split()[0])
        except OSError:
            continue
        out["main" if int(tid) == pid else "other"] += ns / 1e9
    return out


class Runtime:
    def __init__(self, variant, path, marks, rate, extra_flags):
        self.variant, self.path, self.marks, self.rate = variant, path, marks, rate
        self.extra_flags = extra_flags
        self.calls = 0
        self.readings = {}
        self.frozen = False
        self.freeze_handle = None
        self.pending_next = None  # transport waiting for an event
        self.done = asyncio.get_event_loop().create_future()
        self.seq = 0

    async def start(self, task_root):
        loop = asyncio.get_event_loop()
        self.server = await loop.create_server(lambda: Conn(self), "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        view = View(task_root, self.path, None, None, None, False)
        env = environment(  # the variables the engine gives a runtime (no sandbox)
            CONFIG,
            region="us-east-1",
            api_address=f"127.0.0.1:{port}",
            view=view,
            stream="s",
            credentials={},
            interpreter=None,
            extra={},
        )
        self.proc = await asyncio.create_subprocess_exec(
            shutil.which("node") or "/usr/bin/node",
            *FLAGS,
            *self.extra_flags,
            f"{self.path}/bootstrap.cjs",
            env=env,
            cwd=task_root,
            stdout=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )

    def thaw(self):
        if self.frozen:
            os.killpg(self.proc.pid, signal.SIGCONT)
            self.frozen = False

    def freeze(self):
        self.freeze_handle = None
        if not self.frozen and self.pending_next is not None:
            os.killpg(self.proc.pid, signal.SIGSTOP)
            self.frozen = True

    def on_next(self, conn):
        self.pending_next = conn
        loop = asyncio.get_event_loop()
        self.freeze_handle = loop.call_later(0.005, self.freeze)
        delay = random.expovariate(self.rate)
        loop.call_later(delay, self.deliver)

    def deliver(self):
        if self.freeze_handle is not None:
            self.freeze_handle.cancel()
            self.freeze_handle = None
        self.thaw()
        conn, self.pending_next = self.pending_next, None
        if self.calls in self.marks:
            self.readings[self.calls] = threads_cpu(self.proc.pid)
        if self.calls >= max(self.marks):
            if not self.done.done():
                self.done.set_result(True)
            return
        self.seq += 1
        rid = f"{self.seq:08d}-0000-4000-8000-{random.getrandbits(48):012x}"
        deadline = int(time.time() * 1000) + 30000
        head = (
            f"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: {rid}\r\n"
            f"Lambda-Runtime-Deadline-Ms: {deadline}\r\n"
            f"Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:f\r\n"
            f"Lambda-Runtime-Invocation-Id: {rid}\r\n"
            f"Content-Type: application/json\r\n"
            f"Content-Length: {len(PAYLOAD)}\r\n\r\n"
        ).encode()
        conn.transport.write(head + PAYLOAD)
        self.calls += 1


ACCEPTED = b'HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"status":"OK"}'


class Conn(asyncio.Protocol):
    def __init__(self, rt):
        self.rt = rt
        self.buf = b""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length :]
            if head.startswith("GET"):
                self.rt.on_next(self)
            else:
                self.transport.write(ACCEPTED)


async def round_(variants, per, rate, marks, task_root, flags):
    rts = []
    for i in range(per):
        names = list(variants)
        if i % 2:
            names.reverse()
        for v in names:
            rt = Runtime(v, variants[v], marks, rate, flags.get(v, []))
            await rt.start(task_root)
            rts.append(rt)
    await asyncio.wait_for(asyncio.gather(*(r.done for r in rts)), timeout=600)
    for r in rts:
        r.thaw()
        r.proc.kill()
        await r.proc.wait()
        r.server.close()
    return rts


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--variant", action="append", required=True)
    p.add_argument("--flags", action="append", default=[], help="V=--flag --flag")
    p.add_argument("--per", type=int, default=4)
    p.add_argument("--rate", type=float, default=150)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--marks", default="150,900,5000,6500")
    p.add_argument("--out", default="/tmp/lamina-node-fake-api.jsonl")
    a = p.parse_args()
    variants = {n: os.path.abspath(d) for n, d in (v.split("=", 1) for v in a.variant)}
    flags = {f.split("=", 1)[0]: f.split("=", 1)[1].split() for f in a.flags}
    marks = [int(x) for x in a.marks.split(",")]
    task_root = "/tmp/lamina-node-fake-api"
    os.makedirs(task_root, exist_ok=True)
    with open(f"{task_root}/index.js", "w") as index:
        index.write("exports.handler = async (event) => event;\n")
    spans = list(zip(marks[0::2], marks[1::2]))
    results = {v: {s: [] for s in spans} for v in variants}
    for r in range(a.rounds):
        rts = asyncio.run(round_(variants, a.per, a.rate, marks, task_root, flags))
        line = {}
        for v in variants:
            for first, last in spans:

                def us_per_call(rt, threads=("main", "other"), first=first, last=last):
                    spent = sum(rt.readings[last][t] - rt.readings[first][t] for t in threads)
                    return 1e6 * spent / (last - first)

                mine = [x for x in rts if x.variant == v]
                med = statistics.median(us_per_call(x) for x in mine)
                results[v][(first, last)].append(med)
                line[f"{v} {first}-{last}"] = (
                    round(med, 1),
                    round(statistics.median(us_per_call(x, ("main",)) for x in mine), 1),
                    round(statistics.median(us_per_call(x, ("other",)) for x in mine), 1),
                )
        print(f"round {r} load {os.getloadavg()[0]:.1f}", json.dumps(line), flush=True)
        with open(a.out, "a") as out:
            record = {"time": time.time(), "variants": variants, "flags": flags, **line}
            out.write(json.dumps(record) + "\n")
    base = list(variants)[0]
    for s in spans:
        for v in variants:
            ratios = [x / y for x, y in zip(results[v][s], results[base][s])]
            print(
                f"calls {s[0]}-{s[1]} {v}: {statistics.median(results[v][s]):.1f} us/call "
                f"(ratio to {base} {statistics.median(ratios):.3f}, {min(ratios):.2f}-{max(ratios):.2f}; "
                + " ".join(f"{x:.2f}" for x in ratios)
                + ")"
            )


if __name__ == "__main__":
    main()
