"""Stack operations on engines sharing a PostgreSQL store: an operation is leased to the engine
that runs it. An engine that starts leaves alone a stack another live engine is deploying;
when the deploying engine dies, one live engine takes the stack over (after the dead one's
lease ran out) and rolls it back. Real `lamina serve` engines on a real PostgreSQL, the real
`lamina deploy`, moto's server behind a proxy that holds CreateQueue for a while (so that a
deploy is in progress long enough to restart or kill an engine under it)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.acceptance.test_cluster import LEASE, kill_tree
from tests.conftest import ROOT, start_server

HOLD_S = 6.0  # how long the proxy holds each CreateQueue

TEMPLATE = {
    "Resources": {
        "Slow": {"Type": "AWS::SQS::Queue"},
        "Fn": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.12",
                "Handler": "index.handler",
                "Role": "arn:aws:iam::123456789012:role/r",
                "Code": {"ZipFile": "def handler(e, c):\n    return 1\n"},
                "Environment": {"Variables": {"QUEUE": {"Ref": "Slow"}}},
            },
        },
    }
}


class SlowProxy:
    """Forwards every request to moto; CreateQueue only after HOLD_S."""

    def __init__(self, target: str) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if b"CreateQueue" in body or "CreateQueue" in self.headers.get("x-amz-target", ""):
                    proxy.held += 1
                    time.sleep(HOLD_S)
                request = urllib.request.Request(
                    target + self.path,
                    data=body,
                    method="POST",
                    headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
                )
                try:
                    with urllib.request.urlopen(request, timeout=60) as answer:
                        status, headers, data = answer.status, answer.headers, answer.read()
                except urllib.error.HTTPError as error:
                    status, headers, data = error.code, error.headers, error.read()
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "server",
                        "date",
                    ):
                        self.send_header(key, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                return None

        self.held = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def proxy(moto):
    slow = SlowProxy(moto.endpoint)
    yield slow
    slow.close()


def deploy_in_background(path: Path, endpoint: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lamina", "deploy", str(path), "--json", "--endpoint-url", endpoint],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def stack_status(engine, name: str) -> str:
    return engine.get(f"/_lamina/stacks/{name}")["StackStatus"]


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


def test_a_live_engines_deploy_is_left_alone_and_a_dead_ones_is_rolled_back(
    postgres, proxy, tmp_path
):
    url = postgres.new_database(migrated=True)
    env = {"AWS_ENDPOINT_URL": proxy.endpoint}
    flags = ("--store", url, "--cluster-lease", LEASE)
    first = start_server(tmp_path / "a", *flags, env=env)
    second = start_server(tmp_path / "b", *flags, env=env)
    engines = [first, second]
    running: subprocess.Popen[str] | None = None
    try:
        app = tmp_path / "held"
        app.mkdir()
        template = json.loads(json.dumps(TEMPLATE))
        (app / "template.json").write_text(json.dumps(template))

        # the first engine deploys (its queue held by the proxy); the second restarts meanwhile
        running = deploy_in_background(app, first.endpoint)
        wait_until(lambda: proxy.held >= 1, 30, "the deploy to reach CreateQueue")
        assert stack_status(first, "held") == "CREATE_IN_PROGRESS"
        second.stop()
        second = start_server(tmp_path / "b2", *flags, env=env)
        engines.append(second)
        # the restarted engine has recovered what it found (its start is over): not this one
        wait_until(lambda: "Lamina ready" in second.log(), 30, "the engine's start to end")
        assert stack_status(second, "held") == "CREATE_IN_PROGRESS"
        out, err = running.communicate(timeout=60)
        assert running.returncode == 0, err + out
        assert json.loads(out)["StackStatus"] == "CREATE_COMPLETE"
        assert "finishing it" not in second.log()
        events = second.get("/_lamina/stacks/held/events?after=0")["Events"]
        assert not [e for e in events if "ROLLBACK" in e["ResourceStatus"]]

        # a deploy whose engine dies: the live engine takes it over and rolls it back
        template["Resources"]["Slower"] = {"Type": "AWS::SQS::Queue"}
        (app / "template.json").write_text(json.dumps(template))
        held = proxy.held
        running = deploy_in_background(app, first.endpoint)
        wait_until(lambda: proxy.held > held, 30, "the update to reach CreateQueue")
        kill_tree(first.process.pid)
        running.communicate(timeout=60)
        status = wait_until(
            lambda: (
                stack_status(second, "held")
                in ("UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED")
                and stack_status(second, "held")
            ),
            30,
            "the surviving engine to roll the update back",
        )
        assert status == "UPDATE_ROLLBACK_COMPLETE"
        assert "finishing it" in second.log()
        stack = second.get("/_lamina/stacks/held")
        assert {r["LogicalResourceId"] for r in stack["Resources"]} == {"Slow", "Fn"}
    finally:
        if running is not None and running.returncode is None:  # a failed wait left it running
            running.kill()
            running.communicate()  # its pipes closed and it reaped: no ResourceWarning later
        for engine in engines:
            engine.stop(signal.SIGKILL)
            kill_tree(engine.process.pid)
    for engine in engines[1:]:
        assert "Traceback" not in engine.log(), engine.log()
