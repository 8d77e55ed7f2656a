#!/usr/bin/env python3
"""Peer baseline: serverless-offline (serverless framework v3) on this machine.

Sub-commands (run in this order; each is bounded in time and call count):
  setup   create the scratch project: npm install serverless@3 and
          serverless-offline@13, write serverless.yml and trivial Python and
          Node handlers (echo, raise, sleep past timeout, mark-and-fail)
  bench   for each function (pyecho, nodeecho) x client (raw, boto3) x repeat:
          start a fresh `serverless offline`, run invoke_bench.py with
          --first-call (cold start) and concurrency 1,4,16, stop it.  Then
          the async (Event) accept rate with the raw client.
  probe   run probe_semantics.py against fresh servers (python set, then
          node set) and record whether the server survived
  all     setup + bench + probe

The scratch project lives in $BENCH_SCRATCH (default: <tempdir>/slsbench),
outside the repository.  Results go to $BENCH_OUT (default: the scratch dir)
as JSON lines, one file per sub-command.  Only 127.0.0.1 is contacted.
Servers are stopped by PID (their own process group, created here).
Before each server start it waits for a quiet machine (see quiet.py) and
records what it saw as quiet_gate.

Copied from shared/bench/tools/peer_sls.py into Lamina's bench/tools/.
Changes: the server (not npm) runs without NODE_EXTRA_CA_CERTS (it costs
~140 ms per node start here; Lamina's runtimes do not get it either), and
with $BENCH_SLS_PYBIN first on PATH when set (a directory whose `python3`
is a real interpreter, not the pyenv shim).  bench/invoke.py imports this
module and uses setup() and Server; `probe` needs probe_semantics.py,
which is not copied here.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import quiet  # noqa: E402  (sibling module)

SCRATCH = os.environ.get("BENCH_SCRATCH", os.path.join(tempfile.gettempdir(), "slsbench"))
OUT = os.environ.get("BENCH_OUT", SCRATCH)
PORT = int(os.environ.get("BENCH_SLS_PORT", "3002"))
PY = os.environ.get("BENCH_PYTHON", sys.executable)  # needs boto3

SERVERLESS_YML = """\
service: bench
frameworkVersion: '3'
provider:
  name: aws
  region: us-east-1
  stage: dev
  timeout: 6
  environment:
    BENCH_MARK_DIR: ${env:BENCH_MARK_DIR}
plugins:
  - serverless-offline
functions:
  pyecho:   {handler: handler.echo, runtime: python3.11}
  pyerror:  {handler: handler.boom, runtime: python3.11}
  pyslow:   {handler: handler.slow, runtime: python3.11, timeout: 2}
  pymark:   {handler: handler.mark_and_fail, runtime: python3.11}
  pymaybe:  {handler: handler.maybe_fail, runtime: python3.11}
  nodeecho: {handler: handler_node.echo, runtime: nodejs20.x}
  nodeerror: {handler: handler_node.boom, runtime: nodejs20.x}
  nodeslow: {handler: handler_node.slow, runtime: nodejs20.x, timeout: 2}
  nodemark: {handler: handler_node.markAndFail, runtime: nodejs20.x}
  nodemaybe: {handler: handler_node.maybeFail, runtime: nodejs20.x}
"""

HANDLER_PY = """\
import os
import time


def echo(event, context):
    return event


def boom(event, context):
    raise ValueError("boom from python")


def slow(event, context):
    time.sleep(5)
    return {"slept": 5}


def maybe_fail(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail")
    return event


def mark_and_fail(event, context):
    d = os.environ["BENCH_MARK_DIR"]
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "pymark.log"), "a") as f:
        f.write("%f\\n" % time.time())
    raise RuntimeError("mark and fail")
"""

HANDLER_NODE = """\
'use strict';
const fs = require('fs');
const path = require('path');

module.exports.echo = async (event) => event;
module.exports.boom = async () => { throw new Error('boom from node'); };
module.exports.slow = async () => {
  await new Promise((r) => setTimeout(r, 5000));
  return { slept: 5 };
};
module.exports.maybeFail = async (event) => {
  if (event.fail) throw new Error('asked to fail');
  return event;
};
module.exports.markAndFail = async () => {
  const d = process.env.BENCH_MARK_DIR;
  fs.mkdirSync(d, { recursive: true });
  fs.appendFileSync(path.join(d, 'nodemark.log'), Date.now() + '\\n');
  throw new Error('mark and fail');
};
"""


def sls_env(server=False):
    env = dict(os.environ)
    if server:
        env.pop("NODE_EXTRA_CA_CERTS", None)
        pybin = os.environ.get("BENCH_SLS_PYBIN")
        if pybin:
            env["PATH"] = pybin + os.pathsep + env.get("PATH", "")
    env.update(
        {
            # keep the framework offline and quiet: no telemetry, no update checks,
            # static dummy credentials so no credential provider looks elsewhere
            "SLS_TELEMETRY_DISABLED": "1",
            "SLS_TRACKING_DISABLED": "1",
            "SLS_NOTIFICATIONS_MODE": "off",
            "SLS_DEPRECATION_DISABLE": "*",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "BENCH_MARK_DIR": os.path.join(SCRATCH, "marks"),
        }
    )
    return env


def setup():
    os.makedirs(SCRATCH, exist_ok=True)
    if not os.path.exists(os.path.join(SCRATCH, "node_modules", "serverless-offline")):
        if not os.path.exists(os.path.join(SCRATCH, "package.json")):
            subprocess.run(
                ["npm", "init", "-y"],
                cwd=SCRATCH,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "serverless@3", "serverless-offline@13"],
            cwd=SCRATCH,
            check=True,
            env=sls_env(),
            timeout=900,
        )
    for name, text in (
        ("serverless.yml", SERVERLESS_YML),
        ("handler.py", HANDLER_PY),
        ("handler_node.js", HANDLER_NODE),
    ):
        with open(os.path.join(SCRATCH, name), "w") as f:
            f.write(text)
    os.makedirs(os.path.join(SCRATCH, "marks"), exist_ok=True)
    vers = {}
    for pkg in ("serverless", "serverless-offline"):
        with open(os.path.join(SCRATCH, "node_modules", pkg, "package.json")) as f:
            vers[pkg] = json.load(f)["version"]
    print(json.dumps({"setup": SCRATCH, "versions": vers}))
    return vers


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Server:
    def __init__(self, tag):
        if port_open(PORT):
            raise SystemExit("port %d already in use" % PORT)
        self.log_path = os.path.join(SCRATCH, "offline-%s.log" % tag)
        self.log = open(self.log_path, "w")
        argv = [
            "node",
            os.path.join("node_modules", "serverless", "bin", "serverless.js"),
            "offline",
            "--host",
            "127.0.0.1",
            "--lambdaPort",
            str(PORT),
            "--httpPort",
            str(PORT + 10),
            "--websocketPort",
            str(PORT + 11),
            "--albPort",
            str(PORT + 12),
            "--noSponsor",
        ]
        self.t_spawn = time.perf_counter()
        # own process group, so its python children can be stopped with it
        self.p = subprocess.Popen(
            argv,
            cwd=SCRATCH,
            env=sls_env(server=True),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        end = time.time() + 60
        while time.time() < end:
            if port_open(PORT):
                self.startup_s = time.perf_counter() - self.t_spawn
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise SystemExit("serverless offline did not start; see " + self.log_path)

    def alive(self):
        return self.p.poll() is None

    def children(self):
        out = subprocess.run(
            ["ps", "-o", "pid=,args=", "-g", str(self.p.pid)], capture_output=True, text=True
        ).stdout
        return [line for line in out.splitlines() if "invoke.py" in line and "/bin/sh" not in line]

    def stop(self):
        # the group id is the server's own PID (start_new_session above)
        try:
            os.killpg(self.p.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.p.wait(5)
        try:
            os.killpg(self.p.pid, signal.SIGKILL)  # stray children of the group
        except ProcessLookupError:
            pass
        self.log.close()


def run_bench(function, client, mode, extra, label, server):
    argv = [
        PY,
        os.path.join(HERE, "invoke_bench.py"),
        "--endpoint",
        "http://127.0.0.1:%d" % PORT,
        "--function",
        function,
        "--client",
        client,
        "--mode",
        mode,
        "--server-pids",
        str(server.p.pid),
        "--label",
        label,
    ] + extra
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return {"label": label, "error": r.stderr[-2000:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def bench(repeat, duration, n):
    path = os.path.join(OUT, "sls_bench.jsonl")
    results = []
    plan = []
    for rep in range(repeat):
        for fn in ("pyecho", "nodeecho"):
            for client in ("raw", "boto3"):
                plan.append((rep, fn, client, "sync"))
    for rep in range(repeat):
        for fn in ("nodeecho", "pyecho"):
            plan.append((rep, fn, "raw", "async"))
    with open(path, "w") as out:
        for rep, fn, client, mode in plan:
            label = "sls/%s/%s/%s/rep%d" % (fn, client, mode, rep)
            gate = quiet.wait_quiet()
            srv = Server("bench")
            try:
                if mode == "sync":
                    extra = [
                        "--first-call",
                        "-n",
                        str(n),
                        "--warmup",
                        "20",
                        "--concurrency",
                        "1,4,16",
                        "--duration",
                        str(duration),
                    ]
                elif fn == "nodeecho":
                    # every Event invocation that finds no idle environment makes
                    # a new one (a worker thread for Node): keep the counts small
                    extra = [
                        "-n",
                        "50",
                        "--warmup",
                        "5",
                        "--concurrency",
                        "1,4",
                        "--duration",
                        "2",
                        "--max-calls",
                        "200",
                        "--tp-warmup-calls",
                        "5",
                        "--tp-warmup-s",
                        "0.5",
                        "--tp-warmup-min",
                        "1",
                        "--timeout",
                        "10",
                    ]
                else:
                    # ... and a new process for Python: sequential only, few calls
                    extra = [
                        "-n",
                        "30",
                        "--warmup",
                        "0",
                        "--concurrency",
                        "",
                        "--timeout",
                        "10",
                        "--max-seconds",
                        "30",
                    ]
                res = run_bench("bench-dev-" + fn, client, mode, extra, label, srv)
                res["quiet_gate"] = gate
                res["server_startup_s"] = round(srv.startup_s, 3)
                res["python_envs_after"] = len(srv.children())
                res["server_alive_after"] = srv.alive()
            finally:
                srv.stop()
            out.write(json.dumps(res) + "\n")
            out.flush()
            s = res.get("summary", {})
            print(
                "%s first=%s p50=%s c1=%s c4=%s c16=%s"
                % (
                    label,
                    s.get("first_call_ms"),
                    s.get("latency_p50_us"),
                    s.get("calls_per_s_c1"),
                    s.get("calls_per_s_c4"),
                    s.get("calls_per_s_c16"),
                ),
                file=sys.stderr,
                flush=True,
            )
            results.append(res)
    return path


def probe(retry_wait):
    path = os.path.join(OUT, "sls_probe.jsonl")
    marks = os.path.join(SCRATCH, "marks")
    with open(path, "w") as out:
        for lang in ("py", "node"):
            srv = Server("probe-" + lang)
            try:
                argv = [
                    PY,
                    os.path.join(HERE, "probe_semantics.py"),
                    "--endpoint",
                    "http://127.0.0.1:%d" % PORT,
                    "--label",
                    "sls-" + lang,
                    "--echo",
                    "bench-dev-%secho" % lang,
                    "--error",
                    "bench-dev-%serror" % lang,
                    "--slow",
                    "bench-dev-%sslow" % lang,
                    "--mark",
                    "bench-dev-%smark" % lang,
                    "--mark-file",
                    os.path.join(marks, "%smark.log" % lang),
                    "--maybe",
                    "bench-dev-%smaybe" % lang,
                    "--retry-wait",
                    str(retry_wait),
                ]
                r = subprocess.run(argv, capture_output=True, text=True, timeout=900)
                res = (
                    json.loads(r.stdout.strip().splitlines()[-1])
                    if r.returncode == 0
                    else {"error": r.stderr[-2000:]}
                )
                time.sleep(1)
                res["server_alive_after"] = srv.alive()
                res["server_exit_code"] = srv.p.poll()
            finally:
                srv.stop()
            with open(srv.log_path) as f:
                res["server_log_tail"] = f.read()[-1500:]
            out.write(json.dumps(res) + "\n")
            print(
                "probe %s done alive_after=%s" % (lang, res.get("server_alive_after")),
                file=sys.stderr,
            )
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=("setup", "bench", "probe", "all"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--retry-wait", type=float, default=10.0)
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    if args.cmd in ("setup", "all"):
        setup()
    if args.cmd in ("bench", "all"):
        print(bench(args.repeat, args.duration, args.n))
    if args.cmd in ("probe", "all"):
        print(probe(args.retry_wait))
    return 0


if __name__ == "__main__":
    sys.exit(main())
