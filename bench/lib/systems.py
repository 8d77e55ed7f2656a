"""One repeat's measurement of each system: the floor, Lamina, serverless-offline, MiniStack.

Each `measure_*` function starts what it measures, measures it with the same client
(tools/invoke_bench.py) and the same no-op functions, stops it, and returns a plain dict:

  floor      relay with the lean (raw-socket) worker, raw and boto3 clients; relay with an
             http.client worker, raw client; interpreter spawn times
  lamina     a fresh engine: cold starts (CreateFunction → first response) per runtime, then
             warm latency/throughput per runtime × client, memory after each raw run
  sls        a fresh `serverless offline` per runtime × client (as peer_sls.py does); its cold
             figure is the first call after the server is up (it has no CreateFunction)
  ministack  a fresh MiniStack: cold starts as for Lamina, then as Lamina

With `Context.warm_s` (invoke.py --warm S), each server and function is then kept at 16 raw
clients for S seconds and measured in three more c16 windows (`warmed`, beside the client
runs), after that system's own runs: the same for every system.

Before each system the machine is given a chance to go quiet (tools/quiet.py, bounded); what
was seen is kept as `quiet_gate`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import measure, servers
from .lambda_api import NOOP, LambdaApi, cold_start

sys.path.insert(0, str(measure.TOOLS))
import quiet  # tools/quiet.py (after sys.path)

RUNTIMES = ("python", "node")
CLIENTS = ("raw", "boto3")
MINISTACK_VERSION = "1.5.33"


@dataclass
class Context:
    """Everything a repeat needs; built once by invoke.py."""

    scratch: Path
    lamina: servers.LaminaCommand
    python: str | None
    node: str | None
    options: measure.BenchOptions
    cold_n: int = 5
    spawn_n: int = 15
    quiet_max_wait: float = 30.0
    warm_s: float = 0.0  # > 0: after each raw run, that long at c16, then 3 c16 windows
    ministack_exe: str | None = None
    sls_module: object | None = None
    log: list = field(default_factory=list)

    def say(self, text: str) -> None:
        print(time.strftime("%H:%M:%S ") + text, file=sys.stderr, flush=True)

    def gate(self) -> dict:
        return quiet.wait_quiet(max_wait_s=self.quiet_max_wait)


# ---------------------------------------------------------------------------- floor
def measure_floor(ctx: Context, rep: int) -> dict:
    out: dict = {"quiet_gate": ctx.gate()}
    floor_py = str(measure.TOOLS / "floor.py")
    for key, impl, clients in (
        ("relay_lean_w1", "raw-rawworker", CLIENTS),
        ("relay_httpclient_w1", "raw", ("raw",)),
    ):
        out[key] = {}
        with servers.FloorRelay(floor_py, impl, 1) as relay:
            for client in clients:
                label = f"floor/{key}/{client}/rep{rep}"
                out[key][client] = measure.invoke_bench(
                    relay.endpoint, "floor", client, relay.pid, ctx.options, label, kinds=()
                )
                ctx.say(f"{label}: {_brief(out[key][client])}")
            _warmed(ctx, out[key], relay.endpoint, "floor", relay.pid, f"floor/{key}/rep{rep}", ())
    out["spawn"] = measure.spawn_floor(ctx.python, ctx.node, ctx.spawn_n)
    ctx.say(
        f"floor/spawn/rep{rep}: "
        + ", ".join(
            f"{k}={v.get('p50_ms')}" for k, v in out["spawn"].items() if isinstance(v, dict)
        )
    )
    return out


# ---------------------------------------------------------------------------- lamina
def _cold_series(ctx: Context, endpoint: str, prefix: str, kind: str) -> dict:
    """One untimed primer (first function of its runtime on this engine), then cold_n."""
    api = LambdaApi(endpoint)
    payload = ctx.options.payload.encode()
    try:
        primer = cold_start(api, f"{prefix}-{kind}-primer", NOOP[kind], payload)
        samples = []
        for k in range(ctx.cold_n):
            samples.append(cold_start(api, f"{prefix}-{kind}-cold{k}", NOOP[kind], payload))
            time.sleep(0.2)  # let the engine finish post-invoke work (report, freeze)
        # keep only cold0 (the function the warm runs use), so that its environments are
        # the only ones of this runtime when memory is read
        for name in [primer.get("function")] + [s.get("function") for s in samples[1:]]:
            api.delete_function(name)
    finally:
        api.close()
    totals = sorted(s["total_ms"] for s in samples if "total_ms" in s)
    return {
        "primer": primer,
        "samples": samples,
        "total_ms_median": totals[(len(totals) - 1) // 2] if totals else None,
        "errors": sum(1 for s in samples if "error" in s),
    }


def _warm_runs(
    ctx: Context, endpoint: str, pid: int, names: dict[str, str], system: str, rep: int
) -> tuple[dict, dict]:
    warm: dict = {}
    memory: dict = {}
    for kind in RUNTIMES:
        warm[kind] = {}
        for client in CLIENTS:
            label = f"{system}/{kind}/{client}/rep{rep}"
            warm[kind][client] = measure.invoke_bench(
                endpoint, names[kind], client, pid, ctx.options, label
            )
            ctx.say(f"{label}: {_brief(warm[kind][client])}")
            if client == "raw":
                memory[kind] = measure.memory(pid, kind)
                memory[kind]["busy"] = warm[kind][client].get("busy", {}).get(kind)
        _warmed(ctx, warm[kind], endpoint, names[kind], pid, f"{system}/{kind}/rep{rep}")
    return warm, memory


def measure_lamina(
    ctx: Context, rep: int, extra: tuple[str, ...] = (), system: str = "lamina"
) -> dict:
    """One engine: cold starts, then the warm runs. `extra` are `lamina serve` flags (the
    sandbox comparison runs a second engine with `--sandbox none` as system lamina_none)."""
    out: dict = {"quiet_gate": ctx.gate(), "serve_args": list(extra)}
    data_dir = ctx.scratch / f"{system}-rep{rep}"
    shutil.rmtree(data_dir, ignore_errors=True)
    with servers.LaminaServer(ctx.lamina, data_dir, list(extra)) as engine:
        out["engine_startup_s"] = engine.startup_s
        out["sandbox"] = servers.overview(engine.endpoint).get("Sandbox")
        out["engine_idle"] = measure.memory(engine.pid, "python")["engine"]
        out["cold"] = {kind: _cold_series(ctx, engine.endpoint, "lam", kind) for kind in RUNTIMES}
        ctx.say(
            f"{system}/cold/rep{rep}: "
            + ", ".join(f"{k}={v['total_ms_median']} ms" for k, v in out["cold"].items())
        )
        names = {kind: f"lam-{kind}-cold0" for kind in RUNTIMES}
        out["warm"], out["memory"] = _warm_runs(
            ctx, engine.endpoint, engine.pid, names, system, rep
        )
    shutil.rmtree(data_dir, ignore_errors=True)
    return out


# ---------------------------------------------------------------------------- MiniStack
def measure_ministack(ctx: Context, rep: int) -> dict:
    out: dict = {"quiet_gate": ctx.gate(), "version": MINISTACK_VERSION}
    scratch = ctx.scratch / f"ministack-rep{rep}"
    shutil.rmtree(scratch, ignore_errors=True)
    with servers.MiniStackServer(ctx.ministack_exe, scratch) as server:
        out["engine_startup_s"] = server.startup_s
        out["engine_idle"] = measure.memory(server.pid, "python")["engine"]
        out["cold"] = {kind: _cold_series(ctx, server.endpoint, "ms", kind) for kind in RUNTIMES}
        ctx.say(
            f"ministack/cold/rep{rep}: "
            + ", ".join(f"{k}={v['total_ms_median']} ms" for k, v in out["cold"].items())
        )
        names = {kind: f"ms-{kind}-cold0" for kind in RUNTIMES}
        out["warm"], out["memory"] = _warm_runs(
            ctx, server.endpoint, server.pid, names, "ministack", rep
        )
    shutil.rmtree(scratch, ignore_errors=True)
    return out


# ---------------------------------------------------------------------------- serverless-offline
SLS_FUNCTIONS = {"python": "bench-dev-pyecho", "node": "bench-dev-nodeecho"}


def setup_sls(ctx: Context) -> dict:
    """npm install (first time) into the scratch project; a `python3` that is no shim."""
    sls = ctx.sls_module
    pybin = ctx.scratch / "pybin"
    pybin.mkdir(parents=True, exist_ok=True)
    link = pybin / "python3"
    if ctx.python and not link.exists():
        os.symlink(ctx.python, link)
    os.environ["BENCH_SLS_PYBIN"] = str(pybin)
    with contextlib.redirect_stdout(sys.stderr):  # setup() prints; stdout is for the table
        return sls.setup()


def measure_sls(ctx: Context, rep: int) -> dict:
    sls = ctx.sls_module
    out: dict = {"quiet_gate": ctx.gate(), "warm": {}, "memory": {}, "startup_s": []}
    for kind in RUNTIMES:
        out["warm"][kind] = {}
        for client in CLIENTS:
            label = f"sls/{kind}/{client}/rep{rep}"
            server = sls.Server(f"rep{rep}-{kind}-{client}")
            try:
                out["startup_s"].append(round(server.startup_s, 3))
                out.setdefault("engine_idle", measure.memory(server.p.pid, kind)["engine"])
                endpoint = f"http://127.0.0.1:{sls.PORT}"
                res = measure.invoke_bench(
                    endpoint,
                    SLS_FUNCTIONS[kind],
                    client,
                    server.p.pid,
                    ctx.options,
                    label,
                    first_call=True,
                )
                out["warm"][kind][client] = res
                if client == "raw":
                    out["memory"][kind] = measure.memory(server.p.pid, kind)
                    out["memory"][kind]["busy"] = res.get("busy", {}).get(kind)
                    _warmed(
                        ctx,
                        out["warm"][kind],
                        endpoint,
                        SLS_FUNCTIONS[kind],
                        server.p.pid,
                        f"sls/{kind}/rep{rep}",
                    )
                res["server_alive_after"] = server.alive()
            finally:
                server.stop()
            ctx.say(f"{label}: {_brief(res)}")
    return out


# ---------------------------------------------------------------------------- helpers
def _warmed(
    ctx: Context,
    into: dict,
    endpoint: str,
    function: str,
    pid: int,
    label: str,
    kinds: tuple[str, ...] = RUNTIMES,
) -> None:
    """With --warm S: the same server and function, after its own runs, S seconds at 16 raw
    clients and then three c16 windows taken as one, kept as into["warmed"] (every system
    alike)."""
    if ctx.warm_s <= 0:
        return
    res = measure.warmed_c16(
        endpoint, function, pid, ctx.options, ctx.warm_s, f"{label}/warmed", kinds
    )
    into["warmed"] = res
    trail = " → ".join(
        f"{w['cpu_us_per_call']:.0f}" for w in res.get("trajectory", []) if w["cpu_us_per_call"]
    )
    ctx.say(
        f"{label}/warmed {res.get('warm_s')} s: {_brief(res)} (c16 µs/call per window: {trail})"
    )


def _brief(res: dict) -> str:
    if "error" in res:
        return "ERROR " + res["error"][-300:]
    f = res["figures"]
    return (
        f"p50={f.get('p50_us')}us c1={f.get('c1_calls_per_s')} c4={f.get('c4_calls_per_s')} "
        f"c16={f.get('c16_calls_per_s')} cpu/call c16={f.get('c16_cpu_us_per_call')}us"
    )
