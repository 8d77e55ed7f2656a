"""Records → Prometheus metrics: what each kind of record counts, and the scrape-time gauges."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lamina.domain import errors
from lamina.domain.model import AttemptRecord, InvocationSummary
from lamina.observability import logging as engine_logging
from lamina.observability.metrics import Metrics, Snapshot
from lamina.service.clock import VirtualClock
from lamina.service.records import Recorder
from lamina.storage.memory import MemoryStore


def samples(metrics: Metrics, snapshot: Snapshot | None = None) -> dict[tuple, float]:
    text = metrics.render(snapshot or Snapshot()).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[tuple, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_sync_call_counts_through_its_embedded_timeline():
    metrics = Metrics()
    summary = InvocationSummary("r1", "orders", None, "RequestResponse", 10.0)
    metrics.summary(summary)
    summary.status = "error"
    summary.timeline = [
        AttemptRecord("r1", 10.0, "accepted", {"type": "RequestResponse"}),
        AttemptRecord(
            "r1",
            10.2,
            "attempt",
            {
                "attempt": 1,
                "start": "cold",
                "init_ms": 120.0,
                "outcome": "error",
                "duration_ms": 30.0,
                "error_type": "TypeError",
            },
        ),
    ]
    metrics.summary(summary)
    found = samples(metrics)
    assert value(found, "lamina_requests_total", function="orders", type="RequestResponse") == 1
    assert value(found, "lamina_invocations_total", function="orders", outcome="error") == 1
    assert value(found, "lamina_errors_total", function="orders", error_type="TypeError") == 1
    assert value(found, "lamina_cold_starts_total", function="orders") == 1
    assert value(found, "lamina_duration_seconds_count", function="orders") == 1
    assert value(found, "lamina_duration_seconds_sum", function="orders") == 0.03
    assert value(found, "lamina_init_duration_seconds_sum", function="orders") == 0.12


def test_an_async_event_counts_retries_discard_and_the_dead_letter_delivery():
    metrics = Metrics()
    metrics.summary(InvocationSummary("e1", "jobs", None, "Event", 1.0, status="queued"))
    metrics.record("e1", "accepted", {"type": "Event"})
    for attempt in (1, 2, 3):
        metrics.record(
            "e1",
            "attempt",
            {
                "attempt": attempt,
                "start": "warm",
                "outcome": "error",
                "duration_ms": 2.0,
                "error_type": "RuntimeError",
            },
        )
    for _ in range(2):
        metrics.record("e1", "retry_scheduled", {"reason": "function_error"})
    metrics.record(
        "e1", "throttled", {"reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}
    )
    metrics.record("e1", "discarded", {"condition": "RetriesExhausted"})
    metrics.record("e1", "destination_queued", {"kind": "dlq"})
    metrics.record("e1", "destination_delivered", {"kind": "dlq", "attempt": 1})
    metrics.record("e1", "destination_delivered", {"kind": "on_failure", "attempt": 1})
    found = samples(metrics)
    assert value(found, "lamina_invocations_total", function="jobs", outcome="error") == 3
    assert value(found, "lamina_cold_starts_total", function="jobs") == 0
    assert value(found, "lamina_async_retries_total", function="jobs", reason="function_error") == 2
    assert value(found, "lamina_throttles_total", function="jobs") == 1
    assert (
        value(found, "lamina_async_discarded_total", function="jobs", condition="RetriesExhausted")
        == 1
    )
    assert value(found, "lamina_dead_lettered_total", function="jobs") == 1
    assert (
        value(
            found,
            "lamina_destination_deliveries_total",
            function="jobs",
            kind="dlq",
            result="queued",
        )
        == 1
    )
    assert (
        value(
            found,
            "lamina_destination_deliveries_total",
            function="jobs",
            kind="on_failure",
            result="delivered",
        )
        == 1
    )


def test_records_of_forgotten_or_unknown_requests_are_labelled_unknown():
    metrics = Metrics(remember=2)
    for n in range(3):
        metrics.summary(InvocationSummary(f"r{n}", f"f{n}", None, "Event", float(n)))
    metrics.record("r0", "caller_gone", {})
    metrics.record("r2", "caller_gone", {})
    metrics.record("r1", "not_a_kind_metrics_know", {})
    found = samples(metrics)
    assert value(found, "lamina_callers_gone_total", function="unknown") == 1
    assert value(found, "lamina_callers_gone_total", function="f2") == 1


def test_gauges_come_from_the_snapshot_of_the_scrape():
    found = samples(
        Metrics(),
        Snapshot(
            concurrency={"a": 2, "b": 0},
            queues={"a": (5, 61.5)},
            environments={("a", "$LATEST", "frozen"): 3},
            mappings=[("a", "uuid-1", 40, 12.0), ("a", "uuid-2", None, None)],
        ),
    )
    assert value(found, "lamina_concurrent_executions", function="a") == 2
    assert value(found, "lamina_concurrent_executions", function="b") == 0
    assert value(found, "lamina_async_queue_depth", function="a") == 5
    assert value(found, "lamina_async_event_age_seconds", function="a") == 61.5
    assert value(found, "lamina_environments", function="a", version="$LATEST", state="frozen") == 3
    assert value(found, "lamina_mapping_backlog", function="a", mapping="uuid-1") == 40
    assert value(found, "lamina_mapping_lag_seconds", function="a", mapping="uuid-1") == 12
    assert ("lamina_mapping_backlog", (("function", "a"), ("mapping", "uuid-2"))) not in found


def test_mapping_batches_feed_the_batch_size_histogram():
    metrics = Metrics()
    metrics.summary(InvocationSummary("b1", "consumer", None, "EventSourceMapping", 1.0))
    metrics.record(
        "b1",
        "accepted",
        {"type": "EventSourceMapping", "mapping": "uuid-1", "source": "sqs", "records": 7},
    )
    found = samples(metrics)
    assert (
        value(found, "lamina_mapping_batch_size_count", function="consumer", mapping="uuid-1") == 1
    )
    assert value(found, "lamina_mapping_batch_size_sum", function="consumer", mapping="uuid-1") == 7


def test_the_recorder_feeds_its_observer_and_drops_everything_when_disabled():
    async def main():
        store, clock, metrics = MemoryStore(), VirtualClock(), Metrics()
        on = Recorder(store, clock, observer=metrics)
        on.summary(InvocationSummary("r1", "f", None, "Event", 1.0))
        on.record("r1", "accepted", {"type": "Event"})
        await on.flush()
        off = Recorder(store, clock, observer=metrics, enabled=False)
        off.summary(InvocationSummary("r2", "f", None, "Event", 2.0))
        off.record("r2", "accepted", {"type": "Event"})
        await off.flush()
        assert list(store.invocations) == ["r1"] and len(store.records) == 1
        assert value(samples(metrics), "lamina_requests_total", function="f", type="Event") == 1

    asyncio.run(main())


def test_records_are_observed_once_even_when_a_write_is_retried():
    class Flaky(MemoryStore):
        failures = 1

        async def write_records(self, summaries, records):
            if self.failures:
                self.failures -= 1
                raise errors.StoreUnavailable("disk full")
            await super().write_records(summaries, records)

    async def main():
        store, metrics = Flaky(), Metrics()
        recorder = Recorder(store, VirtualClock(), observer=metrics)
        recorder.summary(InvocationSummary("r1", "f", None, "Event", 1.0, status="queued"))
        recorder.record("r1", "accepted", {"type": "Event"})
        assert value(samples(metrics), "lamina_requests_total", function="f", type="Event") == 0
        recorder.observe_pending()
        assert value(samples(metrics), "lamina_requests_total", function="f", type="Event") == 1
        recorder.summary(InvocationSummary("r1", "f", None, "Event", 1.0, status="success"))
        with pytest.raises(errors.StoreUnavailable):
            await recorder.flush()
        await recorder.flush()
        assert store.invocations["r1"].status == "success" and len(store.records) == 1
        assert value(samples(metrics), "lamina_requests_total", function="f", type="Event") == 1

    asyncio.run(main())


def test_json_engine_log_lines_carry_extras_and_exceptions():
    formatter = engine_logging.JsonFormatter()
    record = logging.LogRecord(
        "lamina.async", logging.WARNING, __file__, 1, "retry %s", ("x",), None
    )
    record.request_id = "r-1"
    line = json.loads(formatter.format(record))
    assert line["level"] == "WARNING" and line["logger"] == "lamina.async"
    assert line["message"] == "retry x" and line["request_id"] == "r-1"
    assert line["time"].endswith("Z") and "T" in line["time"]
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "lamina", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    assert "ValueError: boom" in json.loads(formatter.format(record))["exception"]
