"""Lambda Managed Instances' invocation model, driven with boto3: a function on a capacity
provider runs in environments that take up to PerExecutionEnvironmentMaxConcurrency
invocations at once (Python: one worker process per slot; Node.js: concurrently in one
thread; awslambdaric 4.x in a `provided` runtime: its own worker processes).

What users meet there and nowhere else: invocations that overlap in one environment (one log
stream), module globals that race (Node.js) or are not shared at all (Python's processes), one
/tmp for all of them, a timeout that answers its caller without stopping the environment, and
a second environment (or a 429) once every slot is taken.
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.acceptance.test_capacity_providers import new_provider, on_provider
from tests.acceptance.test_versions import error_of
from tests.conftest import (
    client,
    create_function,
    have_node,
    invoke_json,
    make_zip,
    ric_package,
    ric_python,
)

PYTHON = make_zip(
    {
        "index.py": """
import json, logging, os, time

counter = 0  # per worker process: concurrent invocations never see each other's


def handler(event, context):
    global counter
    start = time.time()
    logging.getLogger().info("working on %s", event.get("tag"))
    with open("/tmp/shared.log", "a") as shared:  # one /tmp for the whole environment
        shared.write(context.aws_request_id + "\\n")
    seen = counter
    time.sleep(event.get("sleep", 0))
    counter = seen + 1
    end = time.time()
    with open("/tmp/shared.log") as shared:
        in_tmp = shared.read().split()
    if event.get("mark"):
        with open("/tmp/" + event["mark"], "w") as marker:
            marker.write(str(context.get_remaining_time_in_millis()))
    return {"pid": os.getpid(), "start": start, "end": end, "counter": counter,
            "stream": context.log_stream_name, "request_id": context.aws_request_id,
            "max_concurrency": os.environ.get("AWS_LAMBDA_MAX_CONCURRENCY"),
            "tmp": in_tmp, "files": sorted(os.listdir("/tmp"))}
"""
    }
)

NODE = make_zip(
    {
        "index.mjs": """
let counter = 0; // one module for every invocation of this worker thread
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const handler = async (event, context) => {
  const start = Date.now();
  console.log(`working on ${event.tag}`);
  const seen = counter;          // read ...
  await sleep(event.sleep || 0); // ... others run meanwhile ...
  counter = seen + 1;            // ... write: a lost update
  console.log(`done with ${event.tag}`);
  return { pid: process.pid, start: start / 1000, end: Date.now() / 1000, counter,
           stream: context.logStreamName, requestId: context.awsRequestId,
           maxConcurrency: process.env.AWS_LAMBDA_MAX_CONCURRENCY };
};
"""
    }
)


def managed_function(
    lam,
    name: str,
    package: bytes,
    runtime: str,
    concurrency: int,
    timeout: int = 30,
    handler: str = "index.handler",
    **extra,
) -> str:
    arn = new_provider(lam)["CapacityProviderArn"]
    create_function(
        lam,
        name,
        package,
        runtime=runtime,
        handler=handler,
        Timeout=timeout,
        CapacityProviderConfig=on_provider(arn, PerExecutionEnvironmentMaxConcurrency=concurrency),
        **extra,
    )
    return arn


def together(server, name: str, events: list[dict], **extra) -> list[tuple[dict, object]]:
    """Invoke `name` with every event at once (a client per call, as separate callers)."""

    def call(event: dict) -> tuple[dict, object]:
        caller = client(server.endpoint)
        try:
            return invoke_json(caller, name, event, **extra)
        finally:
            caller.close()

    with ThreadPoolExecutor(len(events)) as pool:
        return list(pool.map(call, events))


def overlapping(results: list[dict]) -> bool:
    """Every invocation started before any of them ended."""
    return max(r["start"] for r in results) < min(r["end"] for r in results)


def environments(server, name: str) -> list[dict]:
    return server.get(f"/_lamina/functions/{name}")["Environments"]


def stream_events(server, name: str, stream: str) -> list[dict]:
    logs = client(server.endpoint, "logs")
    try:
        return logs.get_log_events(
            logGroupName=f"/aws/lambda/{name}", logStreamName=stream, startFromHead=True
        )["events"]
    finally:
        logs.close()


def test_python_invocations_overlap_in_one_environment_of_worker_processes(server, lam, fname):
    managed_function(lam, fname, PYTHON, "python3.13", concurrency=3)
    results = together(server, fname, [{"sleep": 1.5, "tag": n} for n in range(3)])
    bodies = [body for response, body in results]
    assert all(r["StatusCode"] == 200 and "FunctionError" not in r for r, _ in results), bodies
    assert len({b["stream"] for b in bodies}) == 1, "one environment, one log stream"
    assert overlapping(bodies), bodies
    assert [e["MaxConcurrency"] for e in environments(server, fname)] == [3]
    assert {b["max_concurrency"] for b in bodies} == {"3"}
    # AWS's Python runtime: one process per concurrent request, each with its own globals
    assert len({b["pid"] for b in bodies}) == 3, "three worker processes"
    assert [b["counter"] for b in bodies] == [1, 1, 1], "module globals are per process"
    # ... but /tmp is one for the environment: each saw the others' writes
    ids = {b["request_id"] for b in bodies}
    assert all(ids <= set(b["tmp"]) for b in bodies), bodies

    # JSON logs (Managed Instances always use them): each record names its own request
    records = [
        json.loads(e["message"])
        for e in stream_events(server, fname, bodies[0]["stream"])
        if e["message"].startswith("{")
    ]
    working = {
        r["message"]: r["requestId"]
        for r in records
        if r.get("level") == "INFO" and r.get("message", "").startswith("working on")
    }
    assert [working[f"working on {n}"] for n in range(3)] == [b["request_id"] for b in bodies]
    assert {r["record"]["requestId"] for r in records if r.get("type") == "platform.report"} == ids


@pytest.mark.skipif(not have_node(), reason="node is not installed")
def test_node_invocations_share_one_module_and_race(server, lam, fname):
    managed_function(lam, fname, NODE, "nodejs22.x", concurrency=4)
    results = together(server, fname, [{"sleep": 1200, "tag": f"t{n}"} for n in range(4)])
    bodies = [body for response, body in results]
    assert all(r["StatusCode"] == 200 and "FunctionError" not in r for r, _ in results), bodies
    assert len({b["stream"] for b in bodies}) == 1 and overlapping(bodies), bodies
    assert len({b["pid"] for b in bodies}) == 1, "one process (one worker thread per vCPU)"
    assert {b["maxConcurrency"] for b in bodies} == {"4"}
    # four read-modify-writes across an await: three updates are lost, as users meet it
    assert [b["counter"] for b in bodies] == [1, 1, 1, 1]
    _, after = invoke_json(lam, fname, {"tag": "after"})
    assert after["counter"] == 2, "the module lives on in the environment"

    # console's records carry their own invocation's id however the invocations interleave
    records = [
        json.loads(e["message"])
        for e in stream_events(server, fname, bodies[0]["stream"])
        if e["message"].startswith("{")
    ]
    for word in ("working on", "done with"):  # before and after the await
        by_tag = {
            r["message"].split()[-1]: r["requestId"]
            for r in records
            if str(r.get("message", "")).startswith(word)
        }
        assert [by_tag[f"t{n}"] for n in range(4)] == [b["requestId"] for b in bodies], word


def test_a_timeout_answers_its_caller_and_spares_the_others(server, lam, fname):
    """AWS: a timed-out invocation fails for its caller, but Lambda does not stop it and the
    environment's other invocations go on."""
    managed_function(lam, fname, PYTHON, "python3.13", concurrency=2, timeout=2)
    results = together(server, fname, [{"sleep": 3.5, "mark": "late"}, {"sleep": 0.5}])
    (slow, slow_body), (quick, quick_body) = results
    assert slow["FunctionError"] == "Unhandled"
    assert slow_body["errorType"] == "Sandbox.Timedout"
    assert slow_body["errorMessage"].endswith("Task timed out after 2.00 seconds")
    assert quick["StatusCode"] == 200 and "FunctionError" not in quick, quick_body
    # the environment lives on, and the timed-out handler ran to its end (seeing no time left)
    deadline = time.monotonic() + 10
    while True:
        _, body = invoke_json(lam, fname, {})
        assert body["stream"] == quick_body["stream"], "the same environment"
        if "late" in body["files"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "late" in body["files"], body


def test_a_second_environment_when_every_slot_is_taken(server, lam, fname):
    managed_function(lam, fname, PYTHON, "python3.13", concurrency=2)
    results = together(server, fname, [{"sleep": 2} for _ in range(3)])
    bodies = [body for _, body in results]
    streams = [b["stream"] for b in bodies]
    assert sorted(streams.count(s) for s in set(streams)) == [1, 2], streams
    views = environments(server, fname)
    assert len(views) == 2 and all(v["InFlight"] == [] for v in views), views


def test_every_environment_full_is_a_throttle(server, lam, fname):
    """MaxExecutionEnvironments caps a version's environments; an invocation that finds every
    slot of every one taken is throttled (429), as AWS rejects invocations past capacity."""
    managed_function(lam, fname, PYTHON, "python3.13", concurrency=2)
    version = lam.publish_version(FunctionName=fname)["Version"]
    lam.put_function_scaling_config(
        FunctionName=fname,
        Qualifier=version,
        FunctionScalingConfig={"MinExecutionEnvironments": 0, "MaxExecutionEnvironments": 1},
    )
    with ThreadPoolExecutor(2) as pool:
        running = [
            pool.submit(
                invoke_json, client(server.endpoint), fname, {"sleep": 3}, Qualifier=version
            )
            for _ in range(2)
        ]
        deadline = time.monotonic() + 30
        while not any(len(e["InFlight"]) == 2 for e in environments(server, fname)):
            assert time.monotonic() < deadline, environments(server, fname)
            time.sleep(0.05)
        detail = server.get(f"/_lamina/functions/{fname}")
        view = next(e for e in detail["Environments"] if len(e["InFlight"]) == 2)
        assert view["MaxConcurrency"] == 2 and view["State"] == "busy"
        assert detail["Concurrency"]["InFlight"] == 2, "each invocation counts, not each env"
        code, message, status = error_of(
            lam.invoke, FunctionName=fname, Qualifier=version, Payload=b"{}"
        )
        assert (code, status) == ("TooManyRequestsException", 429), message
        finished = [future.result() for future in running]
    assert all(body["counter"] == 1 for _, body in finished)
    assert set(view["InFlight"]) == {body["request_id"] for _, body in finished}


def test_awslambdaric_runs_its_own_workers(server, lam, fname):
    """A `provided` runtime with AWS's Python runtime interface client (4.x) inside: it reads
    AWS_LAMBDA_MAX_CONCURRENCY and forks that many workers, as on AWS."""
    slow = (
        "import os, time\n"
        "def handler(event, context):\n"
        "    start = time.time()\n"
        "    time.sleep(event['sleep'])\n"
        "    return {'pid': os.getpid(), 'start': start, 'end': time.time(),\n"
        "            'stream': context.log_stream_name}\n"
    )
    managed_function(
        lam,
        fname,
        ric_package({"slow.py": slow}),
        "provided.al2023",
        concurrency=3,
        handler="slow.handler",
        Environment={"Variables": {"RIC_PYTHON": ric_python()}},
    )
    results = together(server, fname, [{"sleep": 1.5} for _ in range(3)])
    bodies = [body for response, body in results]
    assert all(r["StatusCode"] == 200 and "FunctionError" not in r for r, _ in results), bodies
    assert len({b["stream"] for b in bodies}) == 1 and overlapping(bodies), bodies
    assert len({b["pid"] for b in bodies}) == 3, "awslambdaric's worker processes"


def test_default_functions_keep_one_invocation_per_environment(server, lam):
    """Beside them, a function without a capacity provider is unchanged: two at once are two
    environments."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    create_function(lam, name, PYTHON, runtime="python3.13", Timeout=30)
    results = together(server, name, [{"sleep": 1} for _ in range(2)])
    bodies = [body for _, body in results]
    assert len({b["stream"] for b in bodies}) == 2
    assert {b["max_concurrency"] for b in bodies} == {None}
    assert [e["MaxConcurrency"] for e in environments(server, name)] == [1, 1]
