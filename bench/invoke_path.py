#!/usr/bin/env python3
"""CPU per warm Invoke of the engine's own path above the environment, in one process.

An engine built by `lamina.app` in this process, its pool given a stub environment that
answers at once, and 16 concurrent callers of its Lambda API handler (the raw client's no-op
Invoke: no SDK headers, no socket): what is left is the Invoke decode, the invoke service,
the attempt, the limiter, the heartbeat, the ids, the records' queue and rows, the metrics and
the SQLite writes. The records are flushed every --batch calls (400: what 0.2 s holds at 2,000
calls/s). Prints CPU µs per call of each thread (event loop, SQLite writer) per repeat.

  .venv/bin/python bench/invoke_path.py                 # CPU per call, 5 repeats of 8,000
  .venv/bin/python bench/invoke_path.py --callgrind     # instructions per call (valgrind)

With --callgrind the measured calls (one repeat of -n, default 1,600, then one of 2n) run
under `valgrind --tool=callgrind`, which counts instructions: a figure that does not move with
the load of a shared machine (CPU time does, ±30 %). Callgrind zeroes the counters of the
marking thread only, so the SQLite thread's share is the difference of the two runs (before
2026-12-03's perf-records, its start-up and warm-up were counted in: about 93,000 of the
321,800 per call then measured). It runs the engine's sources (LAMINA_COMPILED=0) unless
LAMINA_COMPILED=1 is set: then the compiled build (scripts/compile.py) if it is current (the
stubs stand in for the pool and its environments, which the attempt holds as the ports'
Protocols, so compiled code takes them). PYTHONPATH=<tree>/src measures another tree (a
snapshot bench/cpu_ab.py compiled, say). Writes nothing in the repository.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

# The sources by default; LAMINA_COMPILED=1: the compiled build (see the docstring).
os.environ.setdefault("LAMINA_COMPILED", "0")

from lamina.api.stacks import _InProcess  # noqa: E402
from lamina.app import Engine  # noqa: E402
from lamina.config import Config  # noqa: E402
from lamina.domain.model import InvocationOutcome  # noqa: E402
from lamina.http.server import Request  # noqa: E402

HEADERS = {
    "content-type": "application/json",
    "host": "localhost:9001",
    "x-amz-invocation-type": "RequestResponse",
    "content-length": "2",
}
PATH = "/2015-03-31/functions/f/invocations"


class _Env:
    async def invoke(self, invocation: Any, want_tail: bool = False, sink: Any = None) -> Any:
        return InvocationOutcome(b'{"ok":1}', duration_ms=0.2, environment_id="e1")


class _Pool:
    """The engine's pool, but every environment is the stub."""

    def __init__(self, real: Any) -> None:
        self.real = real

    async def acquire(self, config: Any, tenant: Any = None) -> _Env:
        return _Env()

    def release(self, env: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _threads() -> dict[str, float]:
    names = {t.native_id: t.name.split("_")[0] for t in threading.enumerate()}
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(tid), "other")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf(
            "SC_CLK_TCK"
        )
    return out


async def _create(engine: Engine) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    body = {
        "FunctionName": "f",
        "Runtime": f"python3.{sys.version_info.minor}",
        "Handler": "app.handler",
        "Role": "arn:aws:iam::123456789012:role/r",
        "Code": {"ZipFile": base64.b64encode(buffer.getvalue()).decode()},
    }
    request = Request(
        "POST", "/2015-03-31/functions", "", dict(HEADERS), json.dumps(body).encode(), _InProcess()
    )
    response = await engine.api(request)
    assert response.status == 201, response.body
    for _ in range(100):
        if engine.functions.resolve("f", None).state == "Active":
            return
        await asyncio.sleep(0.05)


async def _calls(engine: Engine, clients: int, each: int) -> None:
    connection = _InProcess()

    async def client() -> None:
        for _ in range(each):
            request = Request("POST", PATH, "", dict(HEADERS), b"{}", connection)
            response = await engine.api(request)
            assert response.status == 200, response.body

    await asyncio.gather(*(client() for _ in range(clients)))


async def _main(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="lamina-invoke-path-"))
    engine = Engine(Config(port=0, data_dir=data, pollers=False, sandbox="none"))
    await engine.start()
    import lamina

    print(f"lamina {lamina.COMPILED} from {Path(lamina.__file__).parent}", file=sys.stderr)
    try:
        await _create(engine)
        engine.attempts.pool = _Pool(engine.attempts.pool)  # type: ignore[assignment]
        await _calls(engine, 16, 200)  # warm
        engine.recorder.interval = 1e9  # flushed by count, not by time (valgrind is slow)
        engine.recorder.max_batch = args.batch
        await engine.recorder.flush()
        for _ in range(args.repeat):
            before = _threads()
            if args.marked:
                os.getppid()  # callgrind: counters zeroed here ...
            await _calls(engine, 16, args.n // 16)
            await engine.recorder.flush()
            if args.marked:
                os.getpgrp()  # ... and dumped here
            after = _threads()
            spent = {k: (v - before.get(k, 0.0)) / args.n * 1e6 for k, v in after.items()}
            print(
                "CPU µs/call: "
                + ", ".join(f"{k} {v:.1f}" for k, v in sorted(spent.items()) if v > 0.05)
            )
    finally:
        await engine.stop()


def _callgrind_run(args: argparse.Namespace, n: int) -> tuple[int, int]:
    """Instructions of the event loop's thread over `n` measured calls, and of the other
    threads (the SQLite writer) from their start."""
    from lib import measure  # (bench/lib, beside this file)

    argv = [sys.executable, __file__, "--marked", "--repeat", "1", "-n", str(n)]
    return measure.marked_instructions_by_thread(argv + ["--batch", str(args.batch)])


def _callgrind(args: argparse.Namespace) -> None:
    """Two runs, of n and 2n calls: the other threads' counts start with the engine's, so
    their share per call is the difference between the runs, divided by n."""
    loop, others = _callgrind_run(args, args.n)
    loop2, others2 = _callgrind_run(args, 2 * args.n)
    per_loop = (loop + loop2) / (3 * args.n)
    per_others = (others2 - others) / args.n
    print(
        f"instructions per call: {per_loop + per_others:,.0f} (event loop {per_loop:,.0f}, "
        f"SQLite thread {per_others:,.0f}; {args.n} and {2 * args.n} calls)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=None, help="calls per repeat")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=400, help="records flushed every N calls")
    parser.add_argument("--callgrind", action="store_true", help="count instructions")
    parser.add_argument("--marked", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.callgrind:
        args.n = args.n or 1600
        _callgrind(args)
        return
    args.n = args.n or 8000
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    started = time.monotonic()
    asyncio.run(_main(args))
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
