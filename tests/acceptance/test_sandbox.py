"""Lambda's execution environment as functions see it from inside, under the bubblewrap sandbox:
/var/task, /opt with a layer's files, a private /tmp bounded by EphemeralStorage and kept
while warm, nothing else writable, the engine's data and the host's files and other functions
invisible, a non-root user, only the environment's own processes. Python, Node.js, a
`provided` bootstrap and AWS's awslambdaric, driven with boto3."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import (
    create_function,
    have_node,
    invoke_json,
    make_zip,
    ric_package,
    ric_python,
    sandboxed,
)


@pytest.fixture(scope="module", autouse=True)
def need_sandbox(server):
    """These tests need the sandbox; where bubblewrap cannot run they say why they skip."""
    sandbox = server.get("/_lamina/overview").get("Sandbox") or {}
    if not sandboxed(server):
        pytest.skip(
            "functions run without a sandbox here: "
            f"{sandbox.get('Warning') or 'the engine runs with --sandbox none'} "
            "(CI installs bubblewrap and runs these)"
        )


PROBE_PY = """
import errno, json, os, sys

def _try_write(path):
    try:
        with open(path, "w") as handle:
            handle.write("x")
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    os.remove(path)
    return "written"

def handler(event, context):
    if event.get("fill_tmp"):
        written = 0
        try:
            with open("/tmp/fill", "wb") as handle:
                chunk = b"\\0" * (1 << 20)
                while written < 20000:
                    handle.write(chunk)
                    handle.flush()
                    written += 1
        except OSError as exc:
            result = {"mb": written, "error": errno.errorcode.get(exc.errno)}
        else:
            result = {"mb": written, "error": None}
        os.remove("/tmp/fill")
        return result
    if event.get("keep"):
        with open("/tmp/kept", "w") as handle:
            handle.write(event["keep"])
    stat = os.statvfs("/tmp")
    layer = None
    if os.path.exists("/opt/data/hello.txt"):
        with open("/opt/data/hello.txt") as handle:
            layer = handle.read()
    try:
        import greeting
        layer_module = greeting.__file__
    except ImportError:
        layer_module = None
    import boto3
    return {
        "uid": os.getuid(), "gid": os.getgid(), "cwd": os.getcwd(),
        "task": sorted(os.listdir("/var/task")),
        "env": {k: os.environ.get(k) for k in
                ("LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "LAMINA_OPT_DIR", "TMPDIR")},
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "visible": {path: os.path.exists(path) for path in event.get("paths", [])},
        "writes": {path: _try_write(path) for path in
                   ("/var/task/new", "/opt/new", "/var/runtime/new", "/new", "/etc/new",
                    "/usr/new", "/tmp/new")},
        "tmp": sorted(os.listdir("/tmp")),
        "tmp_mb": stat.f_blocks * stat.f_frsize // (1 << 20),
        "layer_file": layer, "layer_module": layer_module,
        "boto3": boto3.__file__, "executable": sys.executable,
    }
"""


def _probe(lam, name: str, event: dict | None = None) -> dict:
    response, body = invoke_json(lam, name, event or {})
    assert "FunctionError" not in response, body
    return body


def _publish_layer(lam) -> str:
    package = make_zip(
        {"data/hello.txt": "from a layer\n", "python/greeting.py": "WORD = 'hello'\n"}
    )
    layer = lam.publish_layer_version(
        LayerName=f"l-{uuid.uuid4().hex[:10]}", Content={"ZipFile": package}
    )
    return layer["LayerVersionArn"]


def test_python_sees_lambdas_layout_and_nothing_of_the_host(lam, server, fname):
    other = fname + "-other"
    create_function(lam, other, make_zip({"index.py": PROBE_PY}))
    create_function(lam, fname, make_zip({"index.py": PROBE_PY}), Layers=[_publish_layer(lam)])
    data_dir = str(Path(server.data_dir).resolve())
    secret_paths = [
        data_dir,
        str(Path(data_dir) / "lamina.db"),
        str(Path.home()),
        "/root",
        "/home",
        str(Path(__file__).resolve().parent),
        os.getcwd(),
    ]
    seen = _probe(lam, fname, {"paths": secret_paths})
    assert (seen["uid"], seen["gid"]) == (993, 990)
    assert seen["cwd"] == "/var/task"
    assert seen["task"] == ["index.py"]
    assert seen["env"] == {
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "LAMINA_OPT_DIR": None,
        "TMPDIR": None,
    }
    assert seen["layer_file"] == "from a layer\n"
    assert seen["layer_module"] == "/opt/python/greeting.py"
    assert seen["boto3"] == "/var/runtime/boto3/__init__.py"
    assert seen["visible"] == {path: False for path in secret_paths}
    assert seen["writes"]["/tmp/new"] == "written"
    for path in ("/var/task/new", "/opt/new", "/var/runtime/new", "/new", "/etc/new", "/usr/new"):
        assert seen["writes"][path] in ("EROFS", "EACCES"), (path, seen["writes"])
    # bwrap's init is pid 1 and the runtime pid 2: none of the host's processes
    assert seen["pids"][:2] == [1, 2] and len(seen["pids"]) <= 3, seen["pids"]
    assert seen["tmp_mb"] == 512
    # another function's code, and this function's own on the host, are not there
    other_seen = _probe(lam, other, {"paths": ["/var/task/index.py"]})
    assert other_seen["layer_file"] is None and other_seen["layer_module"] is None


def test_tmp_is_private_kept_while_warm_and_bounded(lam, fname):
    create_function(
        lam, fname, make_zip({"index.py": PROBE_PY}), EphemeralStorage={"Size": 600}, Timeout=60
    )  # writing 600 MB takes seconds on a busy machine
    other = fname + "-b"
    create_function(lam, other, make_zip({"index.py": PROBE_PY}))
    first = _probe(lam, fname, {"keep": "mine"})
    assert "kept" in first["tmp"] and first["tmp_mb"] == 600
    assert "kept" in _probe(lam, fname)["tmp"]  # the same environment, warm
    assert "kept" not in _probe(lam, other)["tmp"]  # another function's /tmp
    filled = _probe(lam, fname, {"fill_tmp": True})
    assert filled["error"] == "ENOSPC"
    assert 590 <= filled["mb"] <= 600, filled


def test_tmp_is_new_for_a_new_environment(lam, fname):
    create_function(lam, fname, make_zip({"index.py": PROBE_PY}))
    assert "kept" in _probe(lam, fname, {"keep": "x"})["tmp"]
    lam.update_function_configuration(FunctionName=fname, Description="new environment")
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    assert _probe(lam, fname)["tmp"] == []


PROBE_JS = r"""
const fs = require('fs');
function tryWrite(path) {
  try { fs.writeFileSync(path, 'x'); fs.unlinkSync(path); return 'written'; }
  catch (err) { return err.code; }
}
exports.handler = async (event, context) => {
  if (event.keep) fs.writeFileSync('/tmp/kept', event.keep);
  return {
    uid: process.getuid(), cwd: process.cwd(), task: fs.readdirSync('/var/task').sort(),
    taskRoot: process.env.LAMBDA_TASK_ROOT, optVar: process.env.LAMINA_OPT_DIR || null,
    pids: fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).sort((a, b) => a - b),
    visible: Object.fromEntries((event.paths || []).map((p) => [p, fs.existsSync(p)])),
    writes: Object.fromEntries(['/var/task/new', '/opt/new', '/new', '/tmp/new']
      .map((p) => [p, tryWrite(p)])),
    tmp: fs.readdirSync('/tmp').sort(),
    layer: fs.existsSync('/opt/data/hello.txt') ? fs.readFileSync('/opt/data/hello.txt', 'utf8') : null,
    tenantId: context.tenantId ?? null,
  };
};
"""


@pytest.mark.skipif(not have_node(), reason="node is not installed")
def test_nodejs_sees_the_same_environment(lam, server, fname):
    create_function(
        lam,
        fname,
        make_zip({"index.js": PROBE_JS}),
        runtime="nodejs20.x",
        Layers=[_publish_layer(lam)],
    )
    data_dir = str(Path(server.data_dir).resolve())
    seen = _probe(lam, fname, {"keep": "node", "paths": [data_dir, "/root", "/home"]})
    assert seen["uid"] == 993
    assert (seen["cwd"], seen["taskRoot"], seen["task"]) == ("/var/task", "/var/task", ["index.js"])
    assert seen["optVar"] is None
    assert seen["layer"] == "from a layer\n"
    assert seen["visible"] == {data_dir: False, "/root": False, "/home": False}
    assert seen["writes"]["/tmp/new"] == "written"
    assert all(
        seen["writes"][p] in ("EROFS", "EACCES") for p in ("/var/task/new", "/opt/new", "/new")
    )
    assert seen["pids"][:2] == [1, 2] and len(seen["pids"]) <= 3
    assert "kept" in _probe(lam, fname)["tmp"]


PROVIDED = r"""#!/bin/sh
# A custom runtime in sh and curl that answers with what it sees.
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  headers=$(mktemp)
  curl -sS -D "$headers" -o /dev/null "$api/invocation/next"
  request_id=$(grep -i '^lambda-runtime-aws-request-id:' "$headers" | tr -d '\r' | cut -d' ' -f2)
  rm -f "$headers"
  if echo x > /var/task/new 2>/dev/null; then task=writable; else task=readonly; fi
  echo kept > /tmp/kept
  pids=$(ls /proc | grep -c '^[0-9]')
  layer=$(cat /opt/data/hello.txt 2>/dev/null | tr -d '\n')
  if [ -e /root ]; then root=visible; else root=hidden; fi
  curl -sS -o /dev/null -X POST -d "{\"uid\":$(id -u),\"task\":\"$task\",\"pids\":$pids,\"layer\":\"$layer\",\"root\":\"$root\",\"pwd\":\"$(pwd)\",\"bootstrap\":\"$0\"}" \
    "$api/invocation/$request_id/response"
done
"""


def test_provided_bootstrap_runs_as_on_lambda(lam, fname):
    create_function(
        lam,
        fname,
        make_zip({"bootstrap": PROVIDED}, {"bootstrap": 0o755}),
        runtime="provided.al2023",
        Layers=[_publish_layer(lam)],
    )
    seen = _probe(lam, fname)
    assert seen == {
        "uid": 993,
        "task": "readonly",
        "pids": seen["pids"],
        "layer": "from a layer",
        "root": "hidden",
        "pwd": "/var/task",
        "bootstrap": "/var/task/bootstrap",
    }
    assert seen["pids"] <= 6  # init, the shell, and the commands of its pipeline


RIC_PROBE = """
import os
def handler(event, context):
    return {"uid": os.getuid(), "task_root": os.environ["LAMBDA_TASK_ROOT"],
            "cwd": os.getcwd(), "pids": len([p for p in os.listdir("/proc") if p.isdigit()]),
            "tenant": context.tenant_id, "root": os.path.exists("/root")}
"""


def test_awslambdaric_in_the_sandbox(lam, fname):
    create_function(
        lam,
        fname,
        ric_package({"probe.py": RIC_PROBE}),
        handler="probe.handler",
        runtime="provided.al2023",
        Environment={"Variables": {"RIC_PYTHON": ric_python()}},
    )
    seen = _probe(lam, fname)
    assert seen == {
        "uid": 993,
        "task_root": "/var/task",
        "cwd": "/var/task",
        "pids": seen["pids"],
        "tenant": None,
        "root": False,
    }
    assert seen["pids"] <= 3
    assert _probe(lam, fname)["uid"] == 993  # warm, and awslambdaric echoes the invocation id


def test_sandbox_shares_the_engines_session_only_without_a_terminal(lam, server, fname):
    """A sandbox gets a session of its own only to keep it from the engine's terminal; an
    engine without one keeps its sandboxes in its session (one scheduling autogroup)."""
    create_function(lam, fname, make_zip({"index.py": PROBE_PY}))
    _probe(lam, fname)
    environments = server.get(f"/_lamina/functions/{fname}")["Environments"]
    runtime = environments[0]["Pid"]
    engine = server.process.pid
    with open(f"/proc/{engine}/stat") as stat:
        terminal = int(stat.read().rsplit(")", 1)[1].split()[4])  # tty_nr
    assert runtime and runtime != engine
    assert (os.getsid(runtime) == os.getsid(engine)) is (terminal == 0)
    assert os.getpgid(runtime) != os.getpgid(engine)  # its own group: one signal reaches it


CHILD_PY = """
import subprocess

started = []

def handler(event, context):
    if not started:
        started.append(subprocess.Popen(["sleep", "300"]))
        return "started"
    with open("/proc/%d/stat" % started[0].pid) as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]  # its state, seen while thawed
"""


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def test_a_frozen_environment_stops_the_runtime_and_what_it_started(lam, server, fname):
    """Lamina's Python runtime leads a process group of its own in its sandbox, which what
    the function starts joins: freezing stops that group (the runtime and its child here)
    and leaves bwrap's two waiting processes asleep; the next call thaws them all."""
    create_function(lam, fname, make_zip({"index.py": CHILD_PY}))
    assert invoke_json(lam, fname, {})[1] == "started"
    runtime = server.get(f"/_lamina/functions/{fname}")["Environments"][0]["Pid"]
    with open(f"/proc/{runtime}/task/{runtime}/children") as children:
        (child,) = [int(pid) for pid in children.read().split()]
    init = _parent(runtime)
    assert os.getpgid(runtime) == runtime == os.getpgid(child)
    # (the group's SIGSTOP reaches each process alone: a child woken by it stops a moment
    # after node does, on a busy machine)
    deadline = time.monotonic() + 5
    while (_state(runtime), _state(child)) != ("T", "T") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (_state(runtime), _state(child)) == ("T", "T"), "frozen with what it started"
    assert "T" not in (_state(init), _state(_parent(init))), "bwrap and its init stay asleep"
    # thawed with the runtime: sleeping again, or still on its way back to sleep after SIGCONT
    assert invoke_json(lam, fname, {})[1] in ("S", "R"), "thawed with the runtime"


CHILD_JS = """
const { spawn } = require("child_process");
const fs = require("fs");
let child;
exports.handler = async () => {
  if (!child) {
    child = spawn("sleep", ["300"], { stdio: "ignore" });
    return "started";
  }
  // its state, seen while thawed
  return fs.readFileSync(`/proc/${child.pid}/stat`, "utf8").split(")").pop().trim().split(" ")[0];
};
"""


def test_a_frozen_nodejs_environment_stops_node_and_what_it_started(lam, server, fname):
    """Node cannot lead a process group of its own, so a Node.js environment is frozen
    whole (bwrap's group): node and what the function started are stopped between calls
    (as on Lambda, which freezes everything in the environment), and thawed by the next."""
    create_function(lam, fname, make_zip({"index.js": CHILD_JS}), runtime="nodejs20.x")
    assert invoke_json(lam, fname, {})[1] == "started"
    runtime = server.get(f"/_lamina/functions/{fname}")["Environments"][0]["Pid"]
    with open(f"/proc/{runtime}/task/{runtime}/children") as children:
        (child,) = [int(pid) for pid in children.read().split()]
    # (the group's SIGSTOP reaches each process alone: a child woken by it stops a moment
    # after node does, on a busy machine)
    deadline = time.monotonic() + 5
    while (_state(runtime), _state(child)) != ("T", "T") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (_state(runtime), _state(child)) == ("T", "T"), "frozen with what it started"
    assert invoke_json(lam, fname, {})[1] in ("S", "R"), "thawed with node"
