"""Debug mode (`lamina debug`, PUT /_lamina/debug/FUNCTION, the console): the function's next
environment runs under debugpy (Python) or Node's inspector on 127.0.0.1:PORT.

Real clients: a Debug Adapter Protocol client over the socket (initialize, attach, a breakpoint
hit in a hot-reloaded folder, an expression evaluated in the handler's frame), and the Node
inspector's /json/list and WebSocket (Runtime.evaluate, Debugger.enable,
Runtime.runIfWaitingForDebugger), as VS Code speaks them. The timeout's suspension is shown by
outcomes: the same call times out with debug mode off and succeeds with it on."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.acceptance.conftest import module_client, module_engine
from tests.conftest import (
    PY_RUNTIME,
    ROLE,
    client,
    free_port,
    have_node,
    invoke_json,
    make_zip,
    start_unsandboxed,
)

PY_HANDLER = """\
import time


def handler(event, context):
    name = event.get("name", "nobody")
    time.sleep(event.get("sleep", 0))
    greeting = "hello " + name
    return {"greeting": greeting, "left_ms": context.get_remaining_time_in_millis(),
            "stream": context.log_stream_name}
"""
BREAK_LINE = 6  # `time.sleep(...)`: `name` is set

NODE_HANDLER = """\
export const handler = async (event, context) => {
  await new Promise((resolve) => setTimeout(resolve, event.sleep ?? 0));
  return { word: `hello ${event.name ?? 'nobody'}`, left_ms: context.getRemainingTimeInMillis() };
};
"""


class Dap:
    """A minimal Debug Adapter Protocol client (what VS Code speaks to debugpy)."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                break
            except OSError:
                assert time.monotonic() < deadline, f"nothing listens on {port}"
                time.sleep(0.05)
        self.buffer = b""
        self.seq = 0
        self.held: list[dict] = []

    def send(self, command: str, **arguments: object) -> int:
        self.seq += 1
        body = json.dumps(
            {"seq": self.seq, "type": "request", "command": command, "arguments": arguments}
        ).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self.seq

    def _read(self) -> dict:
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = int(head.split(b":")[1])
        while len(rest) < length:
            rest += self._recv()
        self.buffer = rest[length:]
        return json.loads(rest[:length])

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the debug adapter closed the connection")
        return chunk

    def wait(self, wanted) -> dict:
        for message in self.held:
            if wanted(message):
                self.held.remove(message)
                return message
        while True:
            message = self._read()
            if wanted(message):
                return message
            self.held.append(message)

    def response(self, seq: int) -> dict:
        return self.wait(lambda m: m["type"] == "response" and m["request_seq"] == seq)

    def event(self, name: str) -> dict:
        return self.wait(lambda m: m["type"] == "event" and m["event"] == name)

    def request(self, command: str, **arguments: object) -> dict:
        answer = self.response(self.send(command, **arguments))
        assert answer["success"], answer
        return answer

    def attach(self, breakpoints: dict[str, list[int]] | None = None) -> None:
        """initialize, attach, breakpoints, configurationDone: VS Code's attach sequence."""
        self.request(
            "initialize",
            adapterID="lamina-test",
            clientID="tests",
            linesStartAt1=True,
            columnsStartAt1=True,
            pathFormat="path",
        )
        attach = self.send("attach", justMyCode=False)
        self.event("initialized")
        for path, lines in (breakpoints or {}).items():
            verified = self.request(
                "setBreakpoints", source={"path": path}, breakpoints=[{"line": n} for n in lines]
            )
            assert all(b["verified"] for b in verified["body"]["breakpoints"]), verified
        self.request("configurationDone")
        assert self.response(attach)["success"]

    def close(self) -> None:
        self.sock.close()


# unsandboxed: the breakpoints name the host folder's paths; in a sandbox the code runs
# at /var/task and a debugger maps it with pathMappings (docs/ENVIRONMENT.md)
engine = module_engine("debug", "--sandbox", "none")
lam = module_client()


def debug(engine, name: str, method: str = "PUT", **body: object) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{engine.endpoint}/_lamina/debug/{name}",
        method=method,
        data=json.dumps(body).encode() if body or method == "PUT" else None,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, json.loads(text) if text else {}
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def hot_function(
    lam, name: str, folder: Path, source: str, filename: str, runtime: str = PY_RUNTIME
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / filename).write_text(source)
    lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Timeout=1,
        Handler=f"{filename.split('.')[0]}.handler",
        Code={"S3Bucket": "hot-reload", "S3Key": str(folder)},
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
    )


def in_background(call) -> tuple[threading.Thread, list]:
    results: list = []
    thread = threading.Thread(target=lambda: results.append(call()), daemon=True)
    thread.start()
    return thread, results


def test_a_breakpoint_is_hit_under_debugpy_and_the_timeout_does_not_fire(
    engine, lam, fname, tmp_path
):
    folder = tmp_path / "fn"
    hot_function(lam, fname, folder, PY_HANDLER, "handler.py")
    response, body = invoke_json(lam, fname, {"sleep": 1.5})  # Timeout is 1 s
    assert body["errorType"] == "Sandbox.Timedout"

    port = free_port()
    status, settings = debug(engine, fname, Port=port)
    assert status == 200
    assert settings == {
        "FunctionName": fname,
        "Version": "$LATEST",
        "Port": port,
        "Wait": False,
        "Qualifier": None,
        "Host": "127.0.0.1",
    }
    response, body = invoke_json(lam, fname, {"sleep": 1.5})
    assert "FunctionError" not in response, body
    assert body["greeting"] == "hello nobody" and body["left_ms"] > 3_000_000  # no 1 s deadline

    dap = Dap(port)
    try:
        dap.attach({str(folder / "handler.py"): [BREAK_LINE]})
        thread, results = in_background(lambda: invoke_json(lam, fname, {"name": "dap"})[1])
        stopped = dap.event("stopped")
        assert stopped["body"]["reason"] == "breakpoint"
        thread_id = stopped["body"]["threadId"]
        frame = dap.request("stackTrace", threadId=thread_id)["body"]["stackFrames"][0]
        assert (frame["name"], frame["line"], frame["source"]["path"]) == (
            "handler",
            BREAK_LINE,
            str(folder / "handler.py"),
        )
        value = dap.request("evaluate", expression="name", frameId=frame["id"], context="repl")
        assert value["body"]["result"] == "'dap'"
        assert thread.is_alive()  # held at the breakpoint
        dap.request("continue", threadId=thread_id)
        thread.join(30)
        assert results[0]["greeting"] == "hello dap"
    finally:
        dap.close()

    # two calls at once share the one debug environment, one after the other
    calls = [in_background(lambda: invoke_json(lam, fname, {"sleep": 0.3})[1]) for _ in range(2)]
    for thread, _ in calls:
        thread.join(30)
    assert calls[0][1][0]["stream"] == calls[1][1][0]["stream"] == results[0]["stream"]

    assert debug(engine, fname, method="DELETE")[0] == 204
    assert debug(engine, fname, method="GET")[0] == 404
    assert invoke_json(lam, fname, {"sleep": 1.5})[1]["errorType"] == "Sandbox.Timedout"
    with pytest.raises(OSError):  # the debug environment ended with debug mode
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_wait_holds_the_invocation_until_a_debugger_attaches(engine, lam, fname, tmp_path):
    hot_function(lam, fname, tmp_path / "fn", PY_HANDLER, "handler.py")
    port = free_port()
    assert debug(engine, fname, Port=port, Wait=True)[0] == 200
    thread, results = in_background(lambda: invoke_json(lam, fname, {"name": "waited"})[1])
    dap = Dap(port)
    try:
        dap.request(
            "initialize",
            adapterID="lamina-test",
            linesStartAt1=True,
            columnsStartAt1=True,
            pathFormat="path",
        )
        attach = dap.send("attach", justMyCode=False)
        dap.event("initialized")
        assert thread.is_alive() and not results  # attached, not configured: still held
        dap.request("configurationDone")
        dap.response(attach)
        thread.join(30)
        assert results[0]["greeting"] == "hello waited"
    finally:
        dap.close()
    assert debug(engine, fname, method="DELETE")[0] == 204


def inspector_targets(port: int, timeout: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            assert time.monotonic() < deadline, f"no inspector on {port}"
            time.sleep(0.05)


@pytest.mark.skipif(not have_node(), reason="node not installed")
def test_node_runs_under_its_inspector(engine, lam, fname, tmp_path):
    from websockets.sync.client import connect

    hot_function(lam, fname, tmp_path / "fn", NODE_HANDLER, "index.mjs", runtime="nodejs20.x")
    port = free_port()
    assert debug(engine, fname, Port=port)[0] == 200
    response, body = invoke_json(lam, fname, {"sleep": 1500})  # Timeout is 1 s
    assert "FunctionError" not in response and body["word"] == "hello nobody", body
    target = inspector_targets(port)[0]
    assert target["type"] == "node"
    with connect(target["webSocketDebuggerUrl"], close_timeout=1) as inspector:
        inspector.send(
            json.dumps(
                {
                    "id": 1,
                    "method": "Runtime.evaluate",
                    "params": {"expression": "process.env.AWS_LAMBDA_FUNCTION_NAME"},
                }
            )
        )
        answer = json.loads(inspector.recv(timeout=10))
        assert answer == {"id": 1, "result": {"result": {"type": "string", "value": fname}}}

    assert debug(engine, fname, Port=port, Wait=True)[0] == 200  # a new environment, waiting
    thread, results = in_background(lambda: invoke_json(lam, fname, {"name": "inspector"})[1])
    target = inspector_targets(port)[0]
    with connect(target["webSocketDebuggerUrl"], close_timeout=1) as inspector:
        inspector.send(json.dumps({"id": 1, "method": "Debugger.enable"}))
        while (message := json.loads(inspector.recv(timeout=10))).get("id") != 1:
            pass  # scriptParsed events
        assert "debuggerId" in message["result"]
        assert thread.is_alive() and not results  # held until the debugger lets it run
        inspector.send(json.dumps({"id": 2, "method": "Runtime.runIfWaitingForDebugger"}))
        thread.join(30)
    assert results[0]["word"] == "hello inspector"
    assert debug(engine, fname, method="DELETE")[0] == 204


def test_bad_requests_get_clear_errors(engine, lam, fname, tmp_path):
    assert debug(engine, "no-such-function", Port=free_port())[0] == 404
    lam.create_function(
        FunctionName=fname,
        Runtime="provided.al2023",
        Role=ROLE,
        Handler="x",
        Code={"ZipFile": make_zip({"bootstrap": "#!/bin/sh\n"})},
    )
    status, body = debug(engine, fname)
    assert status == 400 and "Python and Node.js" in body["message"]

    other = f"{fname}-py"
    hot_function(lam, other, tmp_path / "fn", PY_HANDLER, "handler.py")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        status, body = debug(engine, other, Port=taken.getsockname()[1])
        assert status == 409 and "in use" in body["message"]
    port = free_port()
    assert debug(engine, other, Port=port)[0] == 200
    third = f"{fname}-3"
    hot_function(lam, third, tmp_path / "fn3", PY_HANDLER, "handler.py")
    status, body = debug(engine, third, Port=port)
    assert status == 409 and f"taken by the debug mode of {other}" in body["message"]
    assert debug(engine, other, Port=0)[0] == 400
    lam.delete_function(FunctionName=other)  # debug mode ends with its function
    listed = json.loads(urllib.request.urlopen(f"{engine.endpoint}/_lamina/debug").read())
    assert all(s["FunctionName"] != other for s in listed["Debug"])


def test_the_lamina_debug_command(engine, lam, fname, tmp_path):
    hot_function(lam, fname, tmp_path / "fn", PY_HANDLER, "handler.py")
    port = free_port()
    env = dict(os.environ, LAMINA_ENDPOINT=engine.endpoint)
    done = subprocess.run(
        [sys.executable, "-m", "lamina", "debug", fname, "--port", str(port)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"listens on 127.0.0.1:{port}" in done.stdout
    assert invoke_json(lam, fname, {"sleep": 1.5})[1]["greeting"] == "hello nobody"
    done = subprocess.run(
        [sys.executable, "-m", "lamina", "debug", fname, "--off"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0 and "debug mode off" in done.stdout, done.stderr
    assert invoke_json(lam, fname, {"sleep": 1.5})[1]["errorType"] == "Sandbox.Timedout"
    done = subprocess.run(
        [sys.executable, "-m", "lamina", "debug", "missing-fn"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode != 0 and done.stderr.startswith("lamina: 404 ")
    assert "Traceback" not in done.stderr


def test_the_console_turns_debug_mode_on_and_off(engine, lam, fname, tmp_path):
    from tests.acceptance.test_console import ARGS, CHROMIUM, sync_playwright

    if sync_playwright is None or not Path(CHROMIUM).exists():
        pytest.skip(f"needs the playwright package and Chromium at {CHROMIUM}")
    from playwright.sync_api import expect

    hot_function(lam, fname, tmp_path / "fn", PY_HANDLER, "handler.py")
    port = free_port()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{engine.endpoint}/_lamina/#/functions/{fname}")
            expect(page.locator("#debug-status")).to_have_text("off")
            page.fill("#debug-port", str(port))
            page.check("#debug-wait")
            page.click("#debug-toggle")
            expect(page.locator("#debug-status")).to_contain_text(f"127.0.0.1:{port}")
            assert debug(engine, fname, method="GET")[1]["Wait"] is True
            expect(page.locator("#debug-toggle")).to_have_text("Stop debugging")
            page.click("#debug-toggle")
            expect(page.locator("#debug-status")).to_have_text("off")
            assert debug(engine, fname, method="GET")[0] == 404
        finally:
            browser.close()


def test_debug_mode_survives_an_engine_restart(tmp_path, fname):
    """Debug mode is kept in the store: after a restart on the same data directory it is
    still on (GET answers it, the timeout still does not fire, the debugger port listens);
    turned off, it stays off across the next restart; a deleted function's goes with it."""
    data = tmp_path / "data"
    first = start_unsandboxed(data)
    port = free_port()
    try:
        lam = client(first.endpoint)
        hot_function(lam, fname, tmp_path / "fn", PY_HANDLER, "handler.py")
        hot_function(lam, fname + "-gone", tmp_path / "gone", PY_HANDLER, "handler.py")
        assert debug(first, fname, Port=port)[0] == 200
        assert debug(first, fname + "-gone", Port=free_port())[0] == 200
        lam.delete_function(FunctionName=fname + "-gone")
    finally:
        first.stop()
    second = start_unsandboxed(data)
    try:
        status, settings = debug(second, fname, method="GET")
        assert (status, settings["Port"], settings["Version"]) == (200, port, "$LATEST")
        listed = json.loads(
            urllib.request.urlopen(f"{second.endpoint}/_lamina/debug", timeout=30).read()
        )["Debug"]
        assert [s["FunctionName"] for s in listed] == [fname]  # the deleted one's went too
        lam = client(second.endpoint)
        response, body = invoke_json(lam, fname, {"sleep": 1.5})  # Timeout is 1 s
        assert "FunctionError" not in response, body
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # debugpy listens
        assert debug(second, fname, method="DELETE")[0] == 204
    finally:
        second.stop()
    third = start_unsandboxed(data)
    try:
        assert debug(third, fname, method="GET")[0] == 404
    finally:
        third.stop()
    for engine in (first, second, third):
        assert "Traceback" not in engine.log(), engine.log()
