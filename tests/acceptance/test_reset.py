"""Lambda's reset keeps /tmp: after a timeout, a crash or an out-of-memory kill, the next call
runs a new Init (a new runtime) that still sees what the function left in /tmp; another
function never does, a tenant's goes to that tenant only, and an environment that ended
normally (idle expiry, a new configuration) leaves nothing. With the sandbox (bubblewrap:
/tmp) and without it (`--sandbox none`: the environment's TMPDIR), driven with boto3; no
mount is left behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.acceptance.conftest import module_client, module_engine
from tests.conftest import (
    create_function,
    invoke_json,
    make_zip,
    sandboxed,
)

HANDLER = """
import os, time, uuid

RUNTIME = uuid.uuid4().hex  # one per Init
TMP = os.environ.get("TMPDIR", "/tmp")

def handler(event, context):
    path = os.path.join(TMP, "marker")
    if "write" in event:
        with open(path, "w") as handle:
            handle.write(event["write"])
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("exit"):
        os._exit(3)
    chunks = []
    for _ in range(event.get("megabytes", 0)):
        chunks.append(b"x" * (1 << 20))
        time.sleep(0.002)
    marker = None
    if os.path.exists(path):
        with open(path) as handle:
            marker = handle.read()
    stat = os.statvfs(TMP)
    return {"runtime": RUNTIME, "marker": marker, "stream": context.log_stream_name,
            "flags": stat.f_flag, "mb": stat.f_blocks * stat.f_frsize >> 20}
"""

IDLE_S = 2


engine = module_engine(
    "reset",
    "--idle-timeout",
    str(IDLE_S),
    params={sandbox: ("--sandbox", sandbox) for sandbox in ("auto", "none")},
)
lam = module_client()
logs = module_client("logs")


def _function(lam, name: str, timeout: int = 1, **extra) -> None:
    create_function(lam, name, make_zip({"index.py": HANDLER}), Timeout=timeout, **extra)


def _call(lam, name: str, event: dict, **extra) -> tuple[dict, dict | bytes]:
    response, body = invoke_json(lam, name, event, LogType="Tail", **extra)
    return response, body


def _cold(response: dict) -> bool:
    import base64

    return "Init Duration" in base64.b64decode(response["LogResult"]).decode()


def test_tmp_outlives_a_timeout_into_a_new_init(lam, engine, fname):
    _function(lam, fname, EphemeralStorage={"Size": 600})
    _, first = _call(lam, fname, {"write": "before the timeout"})
    response, body = _call(lam, fname, {"sleep": 5})
    assert response.get("FunctionError") == "Unhandled", body
    assert body["errorType"] == "Sandbox.Timedout"
    response, after = _call(lam, fname, {})
    assert _cold(response)  # Init ran again: INIT_START … Init Duration
    assert after["runtime"] != first["runtime"]
    assert after["marker"] == "before the timeout"
    if sandboxed(engine):  # the same tmpfs: its size, still nosuid and nodev in its new place
        assert after["mb"] == first["mb"] == 600
        assert after["flags"] & (os.ST_NOSUID | os.ST_NODEV) == os.ST_NOSUID | os.ST_NODEV


# a PYTHON* variable keeps a function from spare runtimes: its sandbox starts for it
@pytest.mark.parametrize("variables", [{}, {"PYTHONHASHSEED": "0"}], ids=["spare", "own"])
def test_tmp_outlives_a_crash_for_the_same_function_only(lam, fname, variables):
    _function(lam, fname, Environment={"Variables": variables})
    other = fname + "-other"
    _function(lam, other)
    _, first = _call(lam, fname, {"write": "before the crash"})
    response, body = _call(lam, fname, {"exit": True})
    assert body["errorType"] == "Runtime.ExitError", body
    assert "exit status 3" in body["errorMessage"]
    _, elsewhere = _call(lam, other, {})  # another function starts meanwhile: not its /tmp
    assert elsewhere["marker"] is None
    response, after = _call(lam, fname, {})
    assert _cold(response) and after["runtime"] != first["runtime"]
    assert after["marker"] == "before the crash"
    assert after["stream"] == first["stream"]  # the same environment's stream goes on
    # the replacement is an ordinary environment: warm, then reset again, still the same /tmp
    assert _call(lam, fname, {"write": "again"})[1]["runtime"] == after["runtime"]
    _call(lam, fname, {"exit": True})
    assert _call(lam, fname, {})[1]["marker"] == "again"


def test_the_log_stream_goes_on_across_a_reset(lam, logs, fname):
    """On Lambda the reset happens inside the environment: the crash, the new Init and the
    next invocation are in one log stream."""
    _function(lam, fname)
    _, first = _call(lam, fname, {})
    _, body = _call(lam, fname, {"exit": True})
    assert body["errorType"] == "Runtime.ExitError"
    _, after = _call(lam, fname, {})
    assert after["stream"] == first["stream"] and after["runtime"] != first["runtime"]
    events = logs.get_log_events(
        logGroupName=f"/aws/lambda/{fname}", logStreamName=first["stream"], startFromHead=True
    )["events"]
    lines = [event["message"] for event in events]
    assert sum(line.startswith("INIT_START") for line in lines) == 2, lines
    assert sum(line.startswith("START RequestId") for line in lines) == 3, lines
    streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{fname}")["logStreams"]
    assert [s["logStreamName"] for s in streams] == [first["stream"]]


def test_a_tenants_tmp_goes_to_that_tenant_only(lam, fname):
    _function(lam, fname, TenancyConfig={"TenantIsolationMode": "PER_TENANT"})
    _call(lam, fname, {"write": "blue's"}, TenantId="blue")
    _, body = _call(lam, fname, {"exit": True}, TenantId="blue")
    assert body["errorType"] == "Runtime.ExitError"
    assert _call(lam, fname, {}, TenantId="green")[1]["marker"] is None
    assert _call(lam, fname, {}, TenantId="blue")[1]["marker"] == "blue's"


def test_tmp_outlives_running_out_of_memory(lam, fname):
    _function(lam, fname, timeout=30, MemorySize=128)
    _, first = _call(lam, fname, {"write": "before the kill"})
    _, body = _call(lam, fname, {"megabytes": 400})
    assert body["errorType"] == "Runtime.OutOfMemory", body
    response, after = _call(lam, fname, {})
    assert _cold(response) and after["runtime"] != first["runtime"]
    assert after["marker"] == "before the kill"


def test_an_ordinary_end_leaves_an_empty_tmp(lam, fname):
    _function(lam, fname)
    _, first = _call(lam, fname, {"write": "warm only"})
    assert _call(lam, fname, {})[1]["marker"] == "warm only"  # warm: the same /tmp
    time.sleep(IDLE_S + 1.5)  # the environment expires (reaped every IDLE_S / 4)
    response, later = _call(lam, fname, {})
    assert _cold(response) and later["runtime"] != first["runtime"]
    assert later["marker"] is None
    # a crash, then a new configuration: the kept /tmp goes with the old one
    _call(lam, fname, {"write": "old configuration"})
    _call(lam, fname, {"exit": True})
    lam.update_function_configuration(FunctionName=fname, Description="new")
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    assert _call(lam, fname, {})[1]["marker"] is None


def test_a_kept_tmp_nobody_takes_expires(lam, engine, fname):
    _function(lam, fname)
    _call(lam, fname, {"write": "left behind"})
    _call(lam, fname, {"exit": True})
    time.sleep(IDLE_S + 1.5)
    assert _call(lam, fname, {})[1]["marker"] is None


def test_nothing_is_left_mounted_or_on_disk(lam, engine, fname):
    """Runs last in the module: once every environment has expired, the engine's slots have
    no mount left (the engine mounts in a namespace of its own: read its mountinfo) and no
    kept directory remains."""
    slots = str((engine.data_dir / "sandbox" / "slots").resolve())
    _function(lam, fname)
    _call(lam, fname, {"write": "x"})
    _call(lam, fname, {"exit": True})  # kept, never taken
    if sandboxed(engine):
        assert _slot_mounts(engine, slots)  # the kept /tmp, and what is still warm
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        functions = engine.get("/_lamina/overview")["Functions"]
        if not any(function.get("Environments") for function in functions):
            break
        time.sleep(0.5)
    time.sleep(IDLE_S + 1)  # kept /tmp directories expire too
    assert _slot_mounts(engine, slots) == []
    kept = engine.data_dir / "kept-tmp"
    assert not kept.exists() or list(kept.iterdir()) == []
    if sandboxed(engine):
        assert not any(Path(slots).glob("*/tmp/*"))


def _slot_mounts(engine, slots: str) -> list[str]:
    info = Path(f"/proc/{engine.process.pid}/mountinfo").read_text().splitlines()
    return [line.split()[4] for line in info if line.split()[4].startswith(slots + "/")]
