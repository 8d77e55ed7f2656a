"""Engines sharing PostgreSQL count one account: concurrency, SDK retries, health, draining.

Every engine is a real `lamina serve` on loopback; PostgreSQL is real (tests/conftest.py);
"killing an engine" is SIGKILL of the engine and every process under it, as when its host
dies. The same checks, with engines as separate hosts behind HAProxy, are in
test_cluster_hosts.py.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import FUNCTIONS, client, create_function, start_unsandboxed, zip_dir

PACKAGE = zip_dir(FUNCTIONS / "async")
LEASE = "2"  # --cluster-lease for these engines: a dead engine is noticed within ~3 s


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (an engine and its runtimes: a dead host)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    doomed, todo = [], [pid]
    while todo:
        current = todo.pop()
        doomed.append(current)
        todo.extend(children.get(current, []))
    for victim in doomed:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass


def runs(runs_dir: Path, request_id: str) -> list[dict]:
    path = runs_dir / request_id
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def all_runs(runs_dir: Path) -> dict[str, list[dict]]:
    return {path.name: runs(runs_dir, path.name) for path in runs_dir.iterdir()}


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
        key=lambda edge: (edge[0], edge[1]),
    )
    most = running = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def intervals(runs_dir: Path, until: float | None = None) -> list[tuple[float, float]]:
    """[start, end] of each run; a run that never ended (its host died) ends at `until`."""
    found = []
    for lines in all_runs(runs_dir).values():
        starts = [line["at"] for line in lines if line["outcome"] == "start"]
        ends = [line["at"] for line in lines if line["outcome"] == "end"]
        for n, start in enumerate(starts):
            found.append((start, ends[n] if n < len(ends) else (until or time.time())))
    return found


def wait_for(predicate, timeout: float = 20.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(step)


def known(lam, name: str) -> bool:
    try:
        lam.get_function(FunctionName=name)
        return True
    except ClientError:
        return False


def post_invoke(
    endpoint: str, name: str, payload: dict, invocation_id: str, attempt: int, timeout: float = 60
) -> tuple[int, dict[str, str], dict]:
    """One attempt of an SDK call as botocore sends it (same invocation id on every attempt)."""
    request = urllib.request.Request(
        f"{endpoint}/2015-03-31/functions/{name}/invocations",
        data=json.dumps(payload).encode(),
        headers={
            "amz-sdk-invocation-id": invocation_id,
            "amz-sdk-request": f"attempt={attempt}; max=3",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def health(endpoint: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{endpoint}/_lamina/health", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def cluster(postgres, tmp_path):
    """start(n, *flags) → n engines on one new database; all stopped afterwards."""
    url = postgres.new_database(migrated=True)
    started = []

    def start(count: int, *flags: str):
        engines = [
            start_unsandboxed(
                tmp_path / f"e{len(started) + n}", "--store", url, "--cluster-lease", LEASE, *flags
            )
            for n in range(count)
        ]
        started.extend(engines)
        return engines

    yield start
    for engine in started:
        engine.stop(signal.SIGKILL)
        kill_tree(engine.process.pid)
    for engine in started:
        assert "Traceback" not in engine.log(), engine.log()


def make_function(engines, name: str, runs_dir: Path, **extra) -> list:
    clients = [client(e.endpoint) for e in engines]
    create_function(
        clients[0],
        name,
        PACKAGE,
        handler="index.slow",
        Timeout=60,
        Environment={"Variables": {"RUNS_DIR": str(runs_dir)}},
        **extra,
    )
    for lam in clients[1:]:
        wait_for(lambda lam=lam: known(lam, name), timeout=5)
    return clients


def test_reserved_concurrency_is_counted_across_engines(cluster, tmp_path):
    """Reserved concurrency 2 with three engines: at most 2 run at once in all, the rest
    get Lambda's 429; every engine can still run the function (idle shares move)."""
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    engines = cluster(3)
    clients = make_function(engines, "capped", runs_dir)
    clients[0].put_function_concurrency(FunctionName="capped", ReservedConcurrentExecutions=2)
    for lam in clients[1:]:
        wait_for(
            lambda lam=lam: (
                lam.get_function_concurrency(FunctionName="capped").get(
                    "ReservedConcurrentExecutions"
                )
                == 2
            ),
            timeout=1.0,
        )

    def call(n: int) -> str:
        try:
            response = clients[n % 3].invoke(
                FunctionName="capped", Payload=json.dumps({"seconds": 1.5}).encode()
            )
            assert response["StatusCode"] == 200 and "FunctionError" not in response
            return "ok"
        except ClientError as error:
            assert error.response["Error"]["Code"] == "TooManyRequestsException"
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 429
            assert error.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
            return "throttled"

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(call, range(12)))
    assert max_overlap(intervals(runs_dir)) <= 2
    assert outcomes.count("ok") >= 2 and outcomes.count("throttled") >= 4, outcomes
    for lam in clients:  # one after another: each engine gets a share when it needs one
        assert (
            lam.invoke(FunctionName="capped", Payload=json.dumps({"seconds": 0}).encode())[
                "StatusCode"
            ]
            == 200
        )
    assert max_overlap(intervals(runs_dir)) <= 2


def test_a_dead_engines_share_comes_back_within_seconds(cluster, tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    a, b = cluster(2)
    lam_a, lam_b = make_function([a, b], "held", runs_dir)
    lam_a.put_function_concurrency(FunctionName="held", ReservedConcurrentExecutions=2)
    wait_for(
        lambda: (
            lam_b.get_function_concurrency(FunctionName="held").get("ReservedConcurrentExecutions")
            == 2
        ),
        timeout=1.0,
    )
    pool = concurrent.futures.ThreadPoolExecutor(2)
    long_calls = [
        pool.submit(lam_a.invoke, FunctionName="held", Payload=json.dumps({"seconds": 60}).encode())
        for _ in range(2)
    ]
    wait_for(lambda: sum(1 for lines in all_runs(runs_dir).values() if lines) == 2)
    with pytest.raises(ClientError) as error:
        lam_b.invoke(FunctionName="held", Payload=b'{"seconds": 0}')
    assert error.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    kill_tree(a.process.pid)
    killed = time.monotonic()

    def runs_on_b() -> bool:
        try:
            return lam_b.invoke(FunctionName="held", Payload=b'{"seconds": 0}')["StatusCode"] == 200
        except ClientError as error:
            assert error.response["Error"]["Code"] == "TooManyRequestsException"
            return False

    wait_for(runs_on_b, timeout=10, step=0.1)
    recovered = time.monotonic() - killed
    assert recovered < float(LEASE) + 2.5, recovered
    pool.shutdown(wait=False, cancel_futures=True)
    for call in long_calls:
        with pytest.raises(Exception):  # noqa: B017 the engine died under them
            call.result(timeout=30)
    status = b.get("/_lamina/cluster")
    assert [e["Alive"] for e in status["Engines"]] in ([True], [False, True], [True, False])


def test_an_sdk_retry_on_another_engine_attaches_to_the_running_call(cluster, tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    a, b = cluster(2)
    make_function([a, b], "once", runs_dir)
    invocation_id = str(uuid.uuid4())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(post_invoke, a.endpoint, "once", {"seconds": 2}, invocation_id, 1)
        wait_for(lambda: all_runs(runs_dir))
        status, headers, body = post_invoke(b.endpoint, "once", {"seconds": 2}, invocation_id, 2)
        first_status, first_headers, first_body = first.result(timeout=30)
    assert (status, body) == (first_status, first_body) == (200, "slept")
    assert headers["x-amzn-RequestId"] == first_headers["x-amzn-RequestId"]
    (request_id,) = all_runs(runs_dir)
    assert [r["outcome"] for r in runs(runs_dir, request_id)] == ["start", "end"], "ran once"
    # a later retry, on either engine, gets the stored result at once
    again = post_invoke(b.endpoint, "once", {"seconds": 2}, invocation_id, 3)
    assert again[0] == 200 and again[1]["x-amzn-RequestId"] == request_id
    assert len(runs(runs_dir, request_id)) == 2


def test_a_retry_whose_engine_died_answers_as_a_failed_call(cluster, tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    a, b = cluster(2)
    make_function([a, b], "orphan", runs_dir)
    invocation_id = str(uuid.uuid4())
    pool = concurrent.futures.ThreadPoolExecutor(2)
    first = pool.submit(post_invoke, a.endpoint, "orphan", {"seconds": 60}, invocation_id, 1)
    wait_for(lambda: all_runs(runs_dir))
    retry = pool.submit(post_invoke, b.endpoint, "orphan", {"seconds": 60}, invocation_id, 2)
    time.sleep(0.5)  # the retry is waiting on b for the call on a
    assert not retry.done()
    kill_tree(a.process.pid)
    killed = time.monotonic()
    status, headers, body = retry.result(timeout=30)
    assert time.monotonic() - killed < float(LEASE) + 3
    assert status == 200 and headers["X-Amz-Function-Error"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    (request_id,) = all_runs(runs_dir)
    assert headers["x-amzn-RequestId"] == request_id
    assert [r["outcome"] for r in runs(runs_dir, request_id)] == ["start"], "not run again"
    with pytest.raises(Exception):  # noqa: B017 the engine died under the first attempt
        first.result(timeout=10)
    third = post_invoke(b.endpoint, "orphan", {"seconds": 60}, invocation_id, 3)
    assert (third[0], third[2]) == (status, body)
    trace = b.get(f"/_lamina/invocations/{request_id}")
    assert "engine_lost" in [r["Kind"] for r in trace["Timeline"]]
    assert (trace["Invocation"]["Status"], trace["Invocation"]["ErrorType"]) == (
        "error",
        "Runtime.ExitError",
    )
    pool.shutdown(wait=False)


def test_under_strict_parity_a_retry_on_another_engine_runs_again(cluster, tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    a, b = cluster(2, "--parity", "strict")
    make_function([a, b], "twice", runs_dir)
    invocation_id = str(uuid.uuid4())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(post_invoke, a.endpoint, "twice", {"seconds": 1}, invocation_id, 1)
        wait_for(lambda: all_runs(runs_dir))
        second = post_invoke(b.endpoint, "twice", {"seconds": 1}, invocation_id, 2)
        first.result(timeout=30)
    assert second[0] == 200 and len(all_runs(runs_dir)) == 2


def test_control_plane_changes_reach_every_engine_within_a_second(cluster, tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    engines = cluster(3)
    clients = make_function(engines, "seen", runs_dir)
    clients[1].update_function_configuration(FunctionName="seen", MemorySize=256)
    clients[2].put_function_concurrency(FunctionName="seen", ReservedConcurrentExecutions=7)
    changed = time.monotonic()
    for lam in clients:
        wait_for(
            lambda lam=lam: (
                lam.get_function(FunctionName="seen")["Configuration"]["MemorySize"] == 256
                and lam.get_function_concurrency(FunctionName="seen").get(
                    "ReservedConcurrentExecutions"
                )
                == 7
            ),
            timeout=1.0,
        )
    assert time.monotonic() - changed < 1.0


def test_health_draining_and_graceful_stop(cluster, tmp_path):
    """SIGTERM: health says draining at once, requests are still served for --drain-time,
    the running call finishes with its answer, queued events this engine claimed are handed
    back to the other engine, and the engine leaves the cluster without waiting for its lease."""
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    a, b = cluster(1, "--drain-time", "1.5") + cluster(1)
    wait_for(
        lambda: (
            health(a.endpoint)
            == (
                200,
                {
                    "status": "ok",
                    "engines": 2,
                    "store": "ok",
                    "engine": health(a.endpoint)[1]["engine"],
                    "region": "us-east-1",
                    "account": "123456789012",
                },
            )
        ),
        timeout=3,
    )
    lam_a, lam_b = make_function([a, b], "drained", runs_dir)
    lam_a.put_function_concurrency(FunctionName="drained", ReservedConcurrentExecutions=1)
    wait_for(
        lambda: (
            lam_b.get_function_concurrency(FunctionName="drained").get(
                "ReservedConcurrentExecutions"
            )
            == 1
        ),
        timeout=1.0,
    )
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(
            lam_a.invoke, FunctionName="drained", Payload=json.dumps({"seconds": 2.5}).encode()
        )
        wait_for(lambda: all_runs(runs_dir))
        events = [
            lam_a.invoke(
                FunctionName="drained",
                InvocationType="Event",
                Payload=json.dumps({"seconds": 0.2, "n": n}).encode(),
            )["ResponseMetadata"]["RequestId"]
            for n in range(3)
        ]
        a.process.send_signal(signal.SIGTERM)

        def draining() -> dict | None:
            status, body = health(a.endpoint)
            return body if status == 503 else None

        assert wait_for(draining, timeout=1.0, step=0.02)["status"] == "draining"
        assert lam_a.get_function(FunctionName="drained")  # still served while draining
        response = running.result(timeout=30)
    assert response["StatusCode"] == 200 and json.load(response["Payload"]) == "slept"
    assert a.process.wait(15) == 0
    wait_for(lambda: all(len(runs(runs_dir, e)) == 2 for e in events), timeout=20)
    for event in events:
        assert [r["outcome"] for r in runs(runs_dir, event)] == ["start", "end"]
    alive = [e for e in b.get("/_lamina/cluster")["Engines"] if e["Alive"]]
    assert [e["Address"] for e in alive] == [f"127.0.0.1:{b.port}"]
    assert "draining" in a.log()


def test_provisioned_concurrency_is_split_across_engines_and_comes_back(cluster, tmp_path):
    """Provisioned concurrency 3 with two engines: 3 environments in all (2 + 1); the
    configuration put on one engine is seen by the other within a second; when one engine
    dies, the other keeps all 3."""
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    a, b = cluster(2)
    lam_a, lam_b = make_function([a, b], "warm", runs_dir)
    wait_for(lambda: len(a.get("/_lamina/cluster")["Engines"]) == 2, timeout=3)
    version = lam_a.publish_version(FunctionName="warm")["Version"]
    wait_for(lambda: known(lam_b, f"warm:{version}"), timeout=5)
    lam_a.put_provisioned_concurrency_config(
        FunctionName="warm", Qualifier=version, ProvisionedConcurrentExecutions=3
    )
    wait_for(
        lambda: lam_b.list_provisioned_concurrency_configs(FunctionName="warm")[
            "ProvisionedConcurrencyConfigs"
        ],
        timeout=1.0,
    )

    def available(lam) -> int:
        config = lam.get_provisioned_concurrency_config(FunctionName="warm", Qualifier=version)
        return (
            config["AvailableProvisionedConcurrentExecutions"]
            if config["Status"] == "READY"
            else -1
        )

    wait_for(lambda: sorted(available(lam) for lam in (lam_a, lam_b)) == [1, 2], timeout=20)
    kill_tree(a.process.pid)
    wait_for(lambda: available(lam_b) == 3, timeout=15)
