"""`GET /metrics` of a real engine, parsed with prometheus_client's own parser, against the
invocations the test made: sync successes and errors, a throttle, async retries and a discard."""

from __future__ import annotations

import time
import urllib.request

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from tests.acceptance.conftest import module_client, module_engine
from tests.conftest import FUNCTIONS, create_function, invoke_json, zip_dir

PACKAGE = zip_dir(FUNCTIONS / "python")


engine = module_engine("metrics", "--time-scale", "600")
mlam = module_client()


def scrape(engine) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(engine.endpoint + "/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(engine, predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        found = scrape(engine)
        if predicate(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_sync_counters_match_the_calls_made(engine, mlam, fname):
    create_function(mlam, fname, PACKAGE, handler="index.fail")
    good = f"{fname}-ok"
    create_function(mlam, good, PACKAGE, handler="index.echo")
    for n in range(5):
        invoke_json(mlam, good, {"n": n})
    for _ in range(3):
        response, _ = invoke_json(mlam, fname, {})
        assert response["FunctionError"] == "Unhandled"
    found = scrape(engine)
    assert value(found, "lamina_requests_total", function=good, type="RequestResponse") == 5
    assert value(found, "lamina_invocations_total", function=good, outcome="success") == 5
    assert value(found, "lamina_duration_seconds_count", function=good) == 5
    assert value(found, "lamina_cold_starts_total", function=good) == 1
    assert value(found, "lamina_init_duration_seconds_count", function=good) == 1
    assert value(found, "lamina_init_duration_seconds_sum", function=good) > 0
    assert value(found, "lamina_requests_total", function=fname, type="RequestResponse") == 3
    assert value(found, "lamina_invocations_total", function=fname, outcome="error") == 3
    errors = sum(
        v
        for (name, labels), v in found.items()
        if name == "lamina_errors_total" and ("function", fname) in labels
    )
    assert errors == 3
    assert value(found, "lamina_errors_total", function=good, error_type="None") == 0
    assert value(found, "lamina_concurrent_executions", function=good) == 0
    environments = sum(
        v
        for (name, labels), v in found.items()
        if name == "lamina_environments" and ("function", good) in labels
    )
    assert environments == 1


def test_throttles_are_counted(engine, mlam, fname):
    create_function(mlam, fname, PACKAGE, handler="index.echo")
    mlam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=0)
    for _ in range(2):
        with pytest.raises(ClientError) as caught:
            mlam.invoke(FunctionName=fname, Payload=b"{}")
        assert caught.value.response["Error"]["Code"] == "TooManyRequestsException"
    found = scrape(engine)
    assert value(found, "lamina_throttles_total", function=fname) == 2
    assert value(found, "lamina_requests_total", function=fname, type="RequestResponse") == 2
    assert value(found, "lamina_invocations_total", function=fname, outcome="success") == 0


def test_async_retries_and_discard_are_counted(engine, mlam, fname):
    create_function(mlam, fname, PACKAGE, handler="index.fail")
    mlam.put_function_event_invoke_config(FunctionName=fname, MaximumRetryAttempts=1)
    for _ in range(2):
        assert (
            mlam.invoke(FunctionName=fname, InvocationType="Event", Payload=b"{}")["StatusCode"]
            == 202
        )
    found = wait_for(
        engine,
        lambda f: (
            value(f, "lamina_async_discarded_total", function=fname, condition="RetriesExhausted")
            == 2
        ),
    )
    assert value(found, "lamina_requests_total", function=fname, type="Event") == 2
    assert value(found, "lamina_invocations_total", function=fname, outcome="error") == 4
    assert value(found, "lamina_async_retries_total", function=fname, reason="function_error") == 2
    assert (
        value(found, "lamina_async_discarded_total", function=fname, condition="RetriesExhausted")
        == 2
    )
    assert value(found, "lamina_async_queue_depth", function=fname) == 0
