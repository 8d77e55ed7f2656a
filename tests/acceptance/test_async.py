"""Asynchronous invocation end to end: boto3 → Lamina (time scaled 60×) → SQS/SNS in moto."""

from __future__ import annotations

import itertools
import json
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.acceptance.conftest import module_client, module_engine
from tests.conftest import FUNCTIONS, client, create_function, start_unsandboxed, zip_dir

PACKAGE = zip_dir(FUNCTIONS / "async")
SCALE = 60  # one real second is one engine minute


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


# the module's engines send to destinations at moto's
engine = module_engine(
    "async",
    "--sandbox",
    "none",
    "--time-scale",
    str(SCALE),
    "--log-level",
    "DEBUG",
    moto_env="AWS_ENDPOINT_URL",
)
alam = module_client()


@pytest.fixture(scope="module")
def sqs(moto):
    return moto.client("sqs")


def make(alam, name: str, handler: str, runs_dir: Path, **extra) -> str:
    create_function(
        alam,
        name,
        PACKAGE,
        handler=f"index.{handler}",
        Environment={"Variables": {"RUNS_DIR": str(runs_dir)}},
        **extra,
    )
    return name


def queue(sqs, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def receive(sqs, url: str, count: int = 1, timeout: float = 20.0) -> list[dict]:
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )
        found += response.get("Messages", [])
    return found


def runs(runs_dir: Path, request_id: str) -> list[dict]:
    path = runs_dir / request_id
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def timeline(engine, request_id: str, until_kind: str | None = None) -> list[dict]:
    """The invocation's records; with `until_kind`, wait (briefly) until one of that kind."""
    deadline = time.monotonic() + 5
    while True:
        entries = engine.get(f"/_lamina/invocations/{request_id}")["Timeline"]
        if (
            until_kind is None
            or any(e["Kind"] == until_kind for e in entries)
            or time.monotonic() > deadline
        ):
            return entries
        time.sleep(0.05)


def send(alam, name: str, payload: dict, **extra) -> str:
    response = alam.invoke(
        FunctionName=name, InvocationType="Event", Payload=json.dumps(payload).encode(), **extra
    )
    assert response["StatusCode"] == 202
    assert response["Payload"].read() == b""
    return response["ResponseMetadata"]["RequestId"]


# an engine whose clock moves only when a test advances it: Lambda's retry delays are
# checked exactly, whatever the load on the machine
virtual_engine = module_engine(
    "async-virtual", "--sandbox", "none", "--time-scale", "virtual", moto_env="AWS_ENDPOINT_URL"
)


def advance(engine, seconds: float) -> None:
    request = urllib.request.Request(
        engine.endpoint + "/_lamina/clock/advance",
        data=json.dumps({"Seconds": seconds}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def wait_kind(engine, request_id: str, kind: str, count: int = 1) -> list[dict]:
    """The invocation's records once `count` of `kind` are there (an event-driven wait)."""
    deadline = time.monotonic() + 30
    while True:
        entries = engine.get(f"/_lamina/invocations/{request_id}")["Timeline"]
        if sum(e["Kind"] == kind for e in entries) >= count:
            return entries
        assert time.monotonic() < deadline, (kind, count, entries)
        time.sleep(0.05)


def test_failing_event_runs_three_times_at_lambdas_delays_then_on_failure(
    sqs, virtual_engine, runs_dir, fname
):
    vlam = client(virtual_engine.endpoint)
    make(vlam, fname, "fail", runs_dir)
    url, arn = queue(sqs, f"{fname}-failures")
    vlam.put_function_event_invoke_config(
        FunctionName=fname, DestinationConfig={"OnFailure": {"Destination": arn}}
    )
    request_id = send(vlam, fname, {"order": 42})
    wait_kind(virtual_engine, request_id, "retry_scheduled", 1)
    # engine time stands still until advanced: a retry run early would be stamped 59 s on
    advance(virtual_engine, 59)
    advance(virtual_engine, 1)
    wait_kind(virtual_engine, request_id, "retry_scheduled", 2)
    advance(virtual_engine, 119)
    advance(virtual_engine, 1)
    messages = receive(sqs, url, timeout=15)
    vlam.close()
    assert len(messages) == 1
    record = json.loads(messages[0]["Body"])
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": request_id,
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
        "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{fname}:$LATEST",
    }
    assert record["requestPayload"] == {"order": 42}
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorMessage"] == "intentional failure"
    assert record["responsePayload"]["requestId"] == request_id
    assert list(record) == [
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    ]
    assert len(runs(runs_dir, request_id)) == 3
    entries = wait_kind(virtual_engine, request_id, "destination_delivered")
    kinds = [entry["Kind"] for entry in entries]
    assert kinds.count("attempt") == 3 and kinds.count("retry_scheduled") == 2
    assert "discarded" in kinds
    # Lambda's delays, 1 then 2 minutes, in engine time: as scheduled and as run
    attempts = [e["At"] for e in entries if e["Kind"] == "attempt"]
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(attempts)]
    assert gaps == [60.0, 120.0], gaps
    scheduled = [e for e in entries if e["Kind"] == "retry_scheduled"]
    assert [e["delay_s"] for e in scheduled] == [60.0, 120.0], scheduled


def test_no_retries_and_on_success(alam, sqs, runs_dir, fname):
    make(alam, fname, "fail", runs_dir)
    url, arn = queue(sqs, f"{fname}-f")
    alam.put_function_event_invoke_config(
        FunctionName=fname,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )
    request_id = send(alam, fname, {"n": 1})
    record = json.loads(receive(sqs, url)[0]["Body"])
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert len(runs(runs_dir, request_id)) == 1
    ok = make(alam, fname + "-ok", "succeed", runs_dir)
    ok_url, ok_arn = queue(sqs, f"{fname}-s")
    alam.put_function_event_invoke_config(
        FunctionName=ok, DestinationConfig={"OnSuccess": {"Destination": ok_arn}}
    )
    request_id = send(alam, ok, {"n": 2})
    record = json.loads(receive(sqs, ok_url)[0]["Body"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"handled": {"n": 2}}


def test_event_age_exceeded_looks_ahead(alam, sqs, runs_dir, fname):
    make(alam, fname, "fail", runs_dir)
    url, arn = queue(sqs, f"{fname}-age")
    alam.put_function_event_invoke_config(
        FunctionName=fname,
        MaximumEventAgeInSeconds=60,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )
    request_id = send(alam, fname, {})
    record = json.loads(receive(sqs, url)[0]["Body"])
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert len(runs(runs_dir, request_id)) == 1


def test_dead_letter_queue_gets_the_original_event(alam, sqs, runs_dir, fname):
    url, arn = queue(sqs, f"{fname}-dlq")
    make(alam, fname, "fail", runs_dir, DeadLetterConfig={"TargetArn": arn})
    alam.put_function_event_invoke_config(FunctionName=fname, MaximumRetryAttempts=1)
    request_id = send(alam, fname, {"keep": "me"})
    message = receive(sqs, url)[0]
    assert json.loads(message["Body"]) == {"keep": "me"}
    attributes = message["MessageAttributes"]
    assert attributes["RequestID"] == {"StringValue": request_id, "DataType": "String"}
    assert attributes["ErrorCode"] == {"StringValue": "200", "DataType": "Number"}
    assert attributes["ErrorMessage"]["StringValue"] == "intentional failure"
    assert len(runs(runs_dir, request_id)) == 2


def test_zero_reserved_concurrency_discards_without_running(alam, sqs, runs_dir, fname):
    make(alam, fname, "succeed", runs_dir)
    url, arn = queue(sqs, f"{fname}-zero")
    alam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=0)
    alam.put_function_event_invoke_config(
        FunctionName=fname, DestinationConfig={"OnFailure": {"Destination": arn}}
    )
    request_id = send(alam, fname, {})
    record = json.loads(receive(sqs, url)[0]["Body"])
    assert record["requestContext"]["condition"] == "ZeroReservedConcurrency"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert "responseContext" not in record
    assert runs(runs_dir, request_id) == []


def test_sns_destination(alam, sqs, moto, runs_dir, fname):
    sns = moto.client("sns")
    topic = sns.create_topic(Name=f"{fname}-topic")["TopicArn"]
    url, arn = queue(sqs, f"{fname}-sub")
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
    )
    make(alam, fname, "fail", runs_dir)
    alam.put_function_event_invoke_config(
        FunctionName=fname,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": topic}},
    )
    request_id = send(alam, fname, {"via": "sns"})
    record = json.loads(receive(sqs, url)[0]["Body"])
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "RetriesExhausted"


def test_lambda_destination_invokes_the_target_with_the_record(alam, engine, runs_dir, fname):
    target = make(alam, fname + "-target", "succeed", runs_dir)
    make(alam, fname, "succeed", runs_dir)
    alam.put_function_event_invoke_config(
        FunctionName=fname,
        DestinationConfig={
            "OnSuccess": {"Destination": f"arn:aws:lambda:us-east-1:123456789012:function:{target}"}
        },
    )
    request_id = send(alam, fname, {"chain": 1})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = [
            p
            for p in runs_dir.iterdir()
            if (event := json.loads(p.read_text().splitlines()[0])["event"])
            and isinstance(event, dict)
            and event.get("requestContext", {}).get("requestId") == request_id
        ]
        if found:
            break
        time.sleep(0.1)
    assert found, "the target function never received the record"
    event = json.loads(found[0].read_text().splitlines()[0])["event"]
    assert event["requestContext"]["condition"] == "Success"
    assert event["responsePayload"] == {"handled": {"chain": 1}}


def test_event_invoke_config_api(alam, runs_dir, fname):
    make(alam, fname, "succeed", runs_dir)
    with pytest.raises(ClientError) as error:
        alam.get_function_event_invoke_config(FunctionName=fname)
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert error.value.response["Error"]["Message"] == (
        f"The function arn:aws:lambda:us-east-1:123456789012:function:{fname}:$LATEST doesn't "
        "have an EventInvokeConfig"
    )
    put = alam.put_function_event_invoke_config(FunctionName=fname, MaximumEventAgeInSeconds=3600)
    assert put["FunctionArn"].endswith(f":{fname}:$LATEST")
    assert put["MaximumEventAgeInSeconds"] == 3600 and "MaximumRetryAttempts" not in put
    assert put["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    updated = alam.update_function_event_invoke_config(FunctionName=fname, MaximumRetryAttempts=1)
    assert (updated["MaximumRetryAttempts"], updated["MaximumEventAgeInSeconds"]) == (1, 3600)
    replaced = alam.put_function_event_invoke_config(FunctionName=fname, MaximumRetryAttempts=0)
    assert "MaximumEventAgeInSeconds" not in replaced
    listed = alam.list_function_event_invoke_configs(FunctionName=fname)
    assert [c["MaximumRetryAttempts"] for c in listed["FunctionEventInvokeConfigs"]] == [0]
    alam.delete_function_event_invoke_config(FunctionName=fname)
    assert (
        alam.list_function_event_invoke_configs(FunctionName=fname)["FunctionEventInvokeConfigs"]
        == []
    )


@pytest.mark.parametrize(
    "arguments, code, fragment",
    [
        ({"MaximumRetryAttempts": 3}, "ValidationException", "less than or equal to 2"),
        ({"MaximumEventAgeInSeconds": 59}, "ValidationException", "greater than or equal to 60"),
        ({"MaximumEventAgeInSeconds": 21601}, "ValidationException", "less than or equal to 21600"),
        ({}, "InvalidParameterValueException", "at least one of error handling or destination"),
        (
            {
                "DestinationConfig": {
                    "OnFailure": {"Destination": "arn:aws:dynamodb:us-east-1:123456789012:table/x"}
                }
            },
            "InvalidParameterValueException",
            "is invalid",
        ),
        (
            {
                "DestinationConfig": {
                    "OnFailure": {
                        "Destination": "arn:aws:lambda:us-east-1:123456789012:function:nothere"
                    }
                }
            },
            "InvalidParameterValueException",
            "is invalid",
        ),
    ],
)
def test_event_invoke_config_validation(engine, runs_dir, fname, arguments, code, fragment):
    raw = client(engine.endpoint, parameter_validation=False)
    make(raw, fname, "succeed", runs_dir)
    with pytest.raises(ClientError) as error:
        raw.put_function_event_invoke_config(FunctionName=fname, **arguments)
    assert error.value.response["Error"]["Code"] == code
    assert fragment in error.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as error:
        raw.put_function_event_invoke_config(
            FunctionName=fname,
            DestinationConfig={
                "OnSuccess": {
                    "Destination": f"arn:aws:lambda:us-east-1:123456789012:function:{fname}"
                }
            },
        )
    assert "destination for itself" in error.value.response["Error"]["Message"]
    raw.close()


def test_async_request_errors(alam, runs_dir, fname):
    make(alam, fname, "succeed", runs_dir)
    with pytest.raises(ClientError) as error:
        alam.invoke(FunctionName=fname, InvocationType="Event", Payload=b"x" * (1024 * 1024 + 1))
    assert error.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert "too large for the Event invocation type" in error.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as error:
        alam.invoke(FunctionName=fname, InvocationType="Event", Payload=b"{oops")
    assert error.value.response["Error"]["Code"] == "InvalidRequestContentException"
    with pytest.raises(ClientError) as error:
        alam.invoke(FunctionName=fname + "-none", InvocationType="Event", Payload=b"{}")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    response = alam.invoke_async(FunctionName=fname, InvokeArgs=b'{"legacy": true}')
    assert response["Status"] == 202


def test_sigkill_loses_nothing_and_reruns_the_running_event(tmp_path, runs_dir, fname):
    """Events accepted before a SIGKILL all run after the restart; the one running, again."""
    data = tmp_path / "data"
    first = start_unsandboxed(data, "--time-scale", str(SCALE))
    lam = client(first.endpoint)
    make(lam, fname, "slow", runs_dir, Timeout=30)
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=1)
    accepted = [send(lam, fname, {"seconds": 1.5, "n": n}) for n in range(4)]
    deadline = time.monotonic() + 10
    while not any(runs(runs_dir, r) for r in accepted) and time.monotonic() < deadline:
        time.sleep(0.05)
    running = [r for r in accepted if runs(runs_dir, r)]
    assert len(running) == 1, "one event should be running at the kill"
    first.stop(signal.SIGKILL)
    lam.close()
    second = start_unsandboxed(data, "--time-scale", str(SCALE))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(any(r["outcome"] == "end" for r in runs(runs_dir, r)) for r in accepted):
                break
            time.sleep(0.2)
        for request_id in accepted:
            assert any(r["outcome"] == "end" for r in runs(runs_dir, request_id)), request_id
        starts = [r for r in runs(runs_dir, running[0]) if r["outcome"] == "start"]
        assert len(starts) == 2, "the event running at the kill must run again"
    finally:
        second.stop()


@pytest.mark.soak
def test_many_events_behind_reserved_concurrency_one(tmp_path, fname):
    """10,000 events (LAMINA_SOAK_EVENTS; the default suite runs 2,000) queued for a function
    that may run one at a time: each runs exactly once, never two at once, the queue drains."""
    import concurrent.futures
    import os

    count = int(os.environ.get("LAMINA_SOAK_EVENTS", "2000"))
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    engine = start_unsandboxed(tmp_path / "data")
    lam = client(engine.endpoint, max_pool_connections=16)
    try:
        make(lam, fname, "slow", runs_dir)
        lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=1)
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            accepted = list(
                pool.map(lambda n: send(lam, fname, {"seconds": 0, "n": n}), range(count))
            )
        assert len(set(accepted)) == count
        deadline = time.monotonic() + 600
        while sum(1 for _ in runs_dir.iterdir()) < count or not all(
            len(runs(runs_dir, r)) == 2 for r in accepted[-20:]
        ):
            assert time.monotonic() < deadline, "the queue did not drain"
            time.sleep(0.5)
        spans = []
        for request_id in accepted:
            start, end = runs(runs_dir, request_id)  # exactly one run each
            assert (start["outcome"], end["outcome"]) == ("start", "end")
            spans.append((start["at"], end["at"]))
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "two ran at once"
        assert engine.get("/_lamina/health")["status"] == "ok"
    finally:
        lam.close()
        engine.stop()


def test_a_full_disk_refuses_events_loses_none_and_recovers(tmp_path, runs_dir, fname):
    """The engine's files may not grow past a limit (RLIMIT_FSIZE: writes fail with EFBIG, as
    on a full disk): Event invokes get an AWS-shaped 500 instead of a 202, the engine keeps
    serving, and once there is room again every event it accepted runs."""
    import resource

    engine = start_unsandboxed(tmp_path / "data")
    lam = client(engine.endpoint)
    try:
        make(lam, fname, "succeed", runs_dir)
        largest = max(p.stat().st_size for p in (tmp_path / "data").rglob("*") if p.is_file())
        resource.prlimit(
            engine.process.pid,
            resource.RLIMIT_FSIZE,  # soft limit: can be raised
            (largest + (1 << 20), resource.RLIM_INFINITY),
        )
        accepted, refused = [], None
        for n in range(200):
            try:
                accepted.append(send(lam, fname, {"n": n, "pad": "x" * 100_000}))
            except ClientError as error:
                refused = error.response
                break
        assert refused is not None and len(accepted) >= 3, (len(accepted), refused)
        assert refused["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert refused["Error"]["Code"] == "ServiceException"
        assert "could not be used" in refused["Error"]["Message"]
        assert lam.get_function(FunctionName=fname)["Configuration"]["FunctionName"] == fname

        resource.prlimit(
            engine.process.pid,
            resource.RLIMIT_FSIZE,
            (resource.RLIM_INFINITY, resource.RLIM_INFINITY),
        )
        accepted.append(send(lam, fname, {"n": "after"}))
        deadline = time.monotonic() + 60
        while not all(runs(runs_dir, r) for r in accepted) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [r for r in accepted if not runs(runs_dir, r)] == [], "accepted events lost"
        assert engine.process.poll() is None
    finally:
        lam.close()
        engine.stop()
    assert "Traceback" not in engine.log()
