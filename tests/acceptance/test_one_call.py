"""One call runs once: a 5 s function behind clients that time out after 2 s (spec §6.4).

On AWS each SDK retry of a timed-out synchronous call runs the function again (botocore
legacy: 5 runs, standard: 3, aws-sdk v2: 4). Lamina's default profile keeps the call alive
with interim 100 Continue heartbeats and attaches retries to the running call; `--parity
strict` reproduces AWS.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ReadTimeoutError

from tests.conftest import (
    FUNCTIONS,
    ROOT,
    client,
    create_function,
    have_node,
    start_unsandboxed,
    zip_dir,
)

PACKAGE = zip_dir(FUNCTIONS / "async")
JS = ROOT / "tests" / "js"


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("calls")


def _engine(tmp_path_factory, runs_dir, name: str, *flags: str):
    engine = start_unsandboxed(tmp_path_factory.mktemp(name) / "data", *flags)
    lam = client(engine.endpoint)
    create_function(
        lam,
        "slow",
        PACKAGE,
        handler="index.counted",
        Timeout=15,
        Environment={"Variables": {"RUNS_DIR": str(runs_dir)}},
    )
    lam.close()
    return engine


@pytest.fixture(scope="module")
def default_engine(tmp_path_factory, runs_dir):
    engine = _engine(tmp_path_factory, runs_dir, "default")  # heartbeats every 15 s
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def heartbeat_engine(tmp_path_factory, runs_dir):
    engine = _engine(tmp_path_factory, runs_dir, "beats", "--heartbeat-interval", "1")
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def attach_engine(tmp_path_factory, runs_dir):
    engine = _engine(tmp_path_factory, runs_dir, "attach", "--heartbeat-interval", "0")
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def strict_engine(tmp_path_factory, runs_dir):
    engine = _engine(tmp_path_factory, runs_dir, "strict", "--parity", "strict")
    yield engine
    engine.stop()


def call_boto3(engine, mode: str, marker: str) -> dict:
    lam = client(engine.endpoint, read_timeout=2, retries={"mode": mode})
    try:
        response = lam.invoke(
            FunctionName="slow", Payload=json.dumps({"marker": marker, "seconds": 5}).encode()
        )
        return json.loads(response["Payload"].read())
    finally:
        lam.close()


def runs(runs_dir: Path, marker: str) -> list[str]:
    path = runs_dir / marker
    return path.read_text().split() if path.exists() else []


def kinds(engine, request_id: str) -> list[str]:
    time.sleep(0.3)  # records are written in batches
    return [e["Kind"] for e in engine.get(f"/_lamina/invocations/{request_id}")["Timeline"]]


@pytest.mark.parametrize("mode", ["legacy", "standard"])
def test_boto3_retries_attach_to_the_running_call(default_engine, runs_dir, mode):
    marker = uuid.uuid4().hex
    body = call_boto3(default_engine, mode, marker)
    assert runs(runs_dir, marker) == [body["request_id"]], "the function ran more than once"
    assert body["marker"] == marker
    assert "attached" in kinds(default_engine, body["request_id"])


def test_heartbeats_keep_one_request_alive(heartbeat_engine, runs_dir):
    marker = uuid.uuid4().hex
    body = call_boto3(heartbeat_engine, "standard", marker)
    assert runs(runs_dir, marker) == [body["request_id"]]
    assert "attached" not in kinds(heartbeat_engine, body["request_id"]), (
        "the client should not have retried at all"
    )


def test_without_heartbeats_retries_still_attach(attach_engine, runs_dir):
    marker = uuid.uuid4().hex
    body = call_boto3(attach_engine, "legacy", marker)
    assert runs(runs_dir, marker) == [body["request_id"]]
    timeline = kinds(attach_engine, body["request_id"])
    assert timeline.count("attached") >= 2, timeline
    assert timeline.count("attempt") == 1


@pytest.mark.parametrize("mode, attempts", [("legacy", 5), ("standard", 3)])
def test_strict_parity_runs_every_attempt_as_aws_does(strict_engine, runs_dir, mode, attempts):
    marker = uuid.uuid4().hex
    with pytest.raises(ReadTimeoutError):
        call_boto3(strict_engine, mode, marker)
    deadline = time.monotonic() + 10
    while len(runs(runs_dir, marker)) < attempts and time.monotonic() < deadline:
        time.sleep(0.1)
    ran = runs(runs_dir, marker)
    assert len(ran) == attempts
    timeline = kinds(strict_engine, ran[0])
    assert timeline.count("sdk_retry") == attempts - 1


def node_call(engine, sdk: str, marker: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "NODE_EXTRA_CA_CERTS" and not k.startswith("AWS_")
    }
    out = subprocess.run(
        [
            "node",
            str(JS / "long_call.mjs"),
            engine.endpoint,
            "slow",
            sdk,
            "2000",
            json.dumps({"marker": marker, "seconds": 5}),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=JS,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


needs_sdks = pytest.mark.skipif(
    not have_node()
    or not (JS / "node_modules" / "aws-sdk").exists()
    or not (JS / "node_modules" / "@aws-sdk" / "client-lambda").exists(),
    reason="node or the AWS SDKs for JavaScript (scripts/setup --test) are missing",
)


@needs_sdks
def test_aws_sdk_v2_is_kept_waiting_by_heartbeats(heartbeat_engine, runs_dir):
    marker = uuid.uuid4().hex
    result = node_call(heartbeat_engine, "v2", marker)
    assert result["ok"], result
    assert result["payload"]["marker"] == marker
    assert runs(runs_dir, marker) == [result["payload"]["request_id"]]


@needs_sdks
@pytest.mark.parametrize("engine_name", ["default_engine", "heartbeat_engine"])
def test_aws_sdk_v3_with_a_throwing_request_timeout_runs_once(request, runs_dir, engine_name):
    engine = request.getfixturevalue(engine_name)
    marker = uuid.uuid4().hex
    result = node_call(engine, "v3", marker)
    assert result["ok"], result
    assert runs(runs_dir, marker) == [result["payload"]["request_id"]]


def test_retry_after_the_call_finished_gets_the_stored_result(attach_engine, runs_dir):
    """A retry that arrives after the call ended (same invocation id) is answered from the
    stored result, also after the engine restarted."""
    import urllib.request

    marker = uuid.uuid4().hex
    body = json.dumps({"marker": marker, "seconds": 1.2}).encode()
    invocation_id = str(uuid.uuid4())

    def post(attempt: int) -> tuple[str, dict]:
        request = urllib.request.Request(
            f"{attach_engine.endpoint}/2015-03-31/functions/slow/invocations",
            data=body,
            headers={
                "amz-sdk-invocation-id": invocation_id,
                "amz-sdk-request": f"attempt={attempt}; max=3",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.headers["x-amzn-RequestId"], json.loads(response.read())

    first_id, first = post(1)
    second_id, second = post(2)
    assert (second_id, second) == (first_id, first)
    assert runs(runs_dir, marker) == [first_id]
    attach_engine.stop()
    restarted = start_unsandboxed(
        attach_engine.data_dir, "--heartbeat-interval", "0", port=attach_engine.port
    )
    attach_engine.process = restarted.process
    third_id, third = post(3)
    assert (third_id, third) == (first_id, first)
    assert runs(runs_dir, marker) == [first_id]
