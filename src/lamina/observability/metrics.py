"""Prometheus metrics, derived from the records the engine writes anyway.

`Metrics` is the Recorder's observer: it sees every timeline entry (`record`) and every
invocation summary (`summary`) as it is recorded and turns it into counter and histogram
updates, O(1) each, with no I/O and no lock: the numbers are plain floats in dicts, changed
and read on the event loop only (prometheus_client writes the exposition at scrape time). A summary teaches it which function a request id belongs
to (a bounded map, oldest forgotten first), so entries need not carry the function.

Gauges (concurrency, async queues, environments, mappings) are not kept here: the API
gathers a `Snapshot` at scrape time and `render` writes it with the counters.

A leaf: it imports nothing of Lamina, and what it reads are plain attributes and dicts.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST
UNKNOWN = "unknown"
DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
)
INIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


@dataclass
class Snapshot:
    """Gauge values read at scrape time."""

    concurrency: dict[str, int] = field(default_factory=dict)  # function → in flight
    queues: dict[str, tuple[int, float]] = field(default_factory=dict)  # → (depth, age s)
    environments: dict[tuple[str, str, str], int] = field(default_factory=dict)
    mappings: list[tuple[str, str, int | None, float | None]] = field(default_factory=list)


class _Counter:
    """A labelled counter kept as plain numbers: updated on the event loop, read at scrape."""

    def __init__(self, name: str, doc: str, labels: tuple[str, ...]) -> None:
        self.name, self.doc, self.labels = name, doc, labels
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *labels: str) -> None:
        values = self.values
        values[labels] = values.get(labels, 0) + 1

    def family(self) -> Metric:
        found = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        for labels, value in sorted(self.values.items()):
            found.add_metric(list(labels), value)
        return found


class _Histogram:
    """A labelled histogram kept as bucket counts (non-cumulative until the scrape)."""

    def __init__(
        self, name: str, doc: str, labels: tuple[str, ...], bounds: tuple[float, ...]
    ) -> None:
        self.name, self.doc, self.labels, self.bounds = name, doc, labels, bounds
        self.values: dict[tuple[str, ...], list[float]] = {}

    def observe(self, amount: float, *labels: str) -> None:
        counts = self.values.get(labels)
        if counts is None:
            counts = self.values[labels] = [0.0] * (len(self.bounds) + 2)
        counts[bisect_left(self.bounds, amount)] += 1
        counts[-1] += amount

    def family(self) -> Metric:
        found = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        for labels, counts in sorted(self.values.items()):
            cumulative = list(accumulate(counts[:-1]))
            buckets = [(_bound(b), c) for b, c in zip((*self.bounds, math.inf), cumulative)]
            found.add_metric(list(labels), buckets, counts[-1])
        return found


def _bound(value: float) -> str:
    return "+Inf" if math.isinf(value) else repr(float(value))


class Metrics:
    """Counters and histograms of invocations; the Recorder's observer."""

    def __init__(self, remember: int = 100_000) -> None:
        self.remember = remember
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._families: list[_Counter | _Histogram] = []
        self._define()
        self._gauges = _Gauges(self._families)
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self._gauges)
        self._handlers: dict[str, Callable[[str, dict[str, Any]], None]] = {
            "accepted": self._accepted,
            "attempt": self._attempt,
            "throttled": lambda fn, d: self.throttles.inc(fn),
            "rejected": lambda fn, d: self.rejected.inc(fn, str(d.get("error"))),
            "retry_scheduled": lambda fn, d: self.retries.inc(fn, str(d.get("reason"))),
            "discarded": lambda fn, d: self.discarded.inc(fn, str(d.get("condition"))),
            "dropped": lambda fn, d: self.dropped.inc(fn),
            "destination_queued": self._delivery("queued"),
            "destination_delivered": self._delivery("delivered"),
            "destination_retry": self._delivery("retry"),
            "destination_failed": self._delivery("failed"),
            "attached": lambda fn, d: self.attached.inc(fn, str(d.get("call"))),
            "sdk_retry": lambda fn, d: self.sdk_retries.inc(fn),
            "caller_gone": lambda fn, d: self.callers_gone.inc(fn),
            "fault_injected": lambda fn, d: self.faults.inc(fn, str(d.get("action"))),
        }

    def _define(self) -> None:
        def counter(name: str, doc: str, *labels: str) -> _Counter:
            found = _Counter(name, doc, ("function", *labels))
            self._families.append(found)
            return found

        def histogram(name: str, doc: str, bounds: tuple[float, ...], *labels: str) -> _Histogram:
            found = _Histogram(name, doc, ("function", *labels), bounds)
            self._families.append(found)
            return found

        self.requests = counter("lamina_requests", "Invocation requests accepted", "type")
        self.invocations = counter(
            "lamina_invocations", "Times function code ran (attempts)", "outcome"
        )
        self.errors = counter(
            "lamina_errors", "Attempts that ended in a function error", "error_type"
        )
        self.throttles = counter("lamina_throttles", "Requests or attempts throttled (429)")
        self.rejected = counter("lamina_rejected", "Requests refused before running", "error")
        self.cold_starts = counter("lamina_cold_starts", "Attempts that started an environment")
        self.duration = histogram("lamina_duration_seconds", "Attempt duration", DURATION_BUCKETS)
        self.init_duration = histogram(
            "lamina_init_duration_seconds", "Init duration of cold starts", INIT_BUCKETS
        )
        self.retries = counter("lamina_async_retries", "Async retries scheduled", "reason")
        self.discarded = counter("lamina_async_discarded", "Async events given up", "condition")
        self.dropped = counter("lamina_async_dropped", "Async events whose function is gone")
        self.deliveries = counter(
            "lamina_destination_deliveries",
            "Destination and dead-letter deliveries",
            "kind",
            "result",
        )
        self.dead_lettered = counter(
            "lamina_dead_lettered", "Events delivered to a dead-letter queue or topic"
        )
        self.attached = counter(
            "lamina_sdk_retries_attached", "SDK retries answered by the call they repeat", "call"
        )
        self.sdk_retries = counter("lamina_sdk_retries", "SDK retries run again (strict parity)")
        self.callers_gone = counter(
            "lamina_callers_gone", "Synchronous callers that left before the answer"
        )
        self.faults = counter(
            "lamina_faults_injected", "Attempts replaced by a fault rule", "action"
        )
        self.batch_size = histogram(
            "lamina_mapping_batch_size",
            "Records per batch an event source mapping invoked",
            BATCH_BUCKETS,
            "mapping",
        )

    # the Recorder's observer -------------------------------------------------------------
    def summary(self, summary: Any) -> None:
        """An invocation's summary: remember its function; count its embedded timeline."""
        owners = self._owners
        if summary.request_id not in owners:
            owners[summary.request_id] = summary.function
            if len(owners) > self.remember:
                owners.popitem(last=False)
        timeline = getattr(summary, "timeline", None)
        if timeline:
            handlers, function = self._handlers, summary.function  # its entries are its own
            for entry in timeline:
                handler = handlers.get(entry.kind)
                if handler is not None:
                    handler(function, entry.detail)

    def record(self, request_id: str, kind: str, detail: dict[str, Any]) -> None:
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(self._owners.get(request_id, UNKNOWN), detail)

    def _accepted(self, function: str, detail: dict[str, Any]) -> None:
        self.requests.inc(function, str(detail.get("type")))
        if "mapping" in detail and "records" in detail:  # a batch an event source mapping sent
            self.batch_size.observe(detail["records"], function, str(detail["mapping"]))

    def _attempt(self, function: str, detail: dict[str, Any]) -> None:
        outcome = str(detail.get("outcome"))
        self.invocations.inc(function, outcome)
        if outcome != "success":
            self.errors.inc(function, str(detail.get("error_type")))
        self.duration.observe(detail.get("duration_ms", 0.0) / 1000, function)
        if detail.get("start") == "cold":
            self.cold_starts.inc(function)
            if detail.get("init_ms") is not None:
                self.init_duration.observe(detail["init_ms"] / 1000, function)

    def _delivery(self, result: str) -> Callable[[str, dict[str, Any]], None]:
        def count(function: str, detail: dict[str, Any]) -> None:
            kind = str(detail.get("kind"))
            self.deliveries.inc(function, kind, result)
            if kind == "dlq" and result == "delivered":
                self.dead_lettered.inc(function)

        return count

    # exposition --------------------------------------------------------------------------
    def render(self, snapshot: Snapshot, only: dict[str, str] | None = None) -> bytes:
        """The Prometheus text exposition: counters as they stand, gauges from `snapshot`;
        with `only` (function key: the name its label shows), the series of those functions
        alone (one account's view, labelled with its plain names)."""
        self._gauges.snapshot = snapshot
        self._gauges.only = only
        try:
            return generate_latest(self.registry)
        finally:
            self._gauges.only = None


class _Gauges:
    """The registry's one collector: the counters and histograms as they stand, and the
    gauges of the snapshot taken for this scrape."""

    def __init__(self, families: list[_Counter | _Histogram]) -> None:
        self.families = families
        self.snapshot = Snapshot()
        self.only: dict[str, str] | None = None  # every series names its function: keep these

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if self.only is None:
            yield from self._collect()
            return
        only = self.only
        for metric in self._collect():
            metric.samples = [
                s._replace(labels={**s.labels, "function": only[s.labels["function"]]})
                for s in metric.samples
                if s.labels.get("function") in only
            ]
            yield metric

    def _collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.family()
        snap = self.snapshot
        running = GaugeMetricFamily(
            "lamina_concurrent_executions", "Invocations running now", labels=["function"]
        )
        for function, count in sorted(snap.concurrency.items()):
            running.add_metric([function], count)
        yield running
        yield from _queue_families(snap.queues)
        environments = GaugeMetricFamily(
            "lamina_environments", "Execution environments", labels=["function", "version", "state"]
        )
        for labels, count in sorted(snap.environments.items()):
            environments.add_metric(list(labels), count)
        yield environments
        yield from _mapping_families(snap.mappings)


def _queue_families(queues: dict[str, tuple[int, float]]) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "lamina_async_queue_depth", "Async events waiting or running", labels=["function"]
    )
    age = GaugeMetricFamily(
        "lamina_async_event_age_seconds",
        "Age of the oldest queued async event (engine seconds)",
        labels=["function"],
    )
    for function, (count, oldest_age) in sorted(queues.items()):
        depth.add_metric([function], count)
        age.add_metric([function], oldest_age)
    return iter((depth, age))


def _mapping_families(
    mappings: list[tuple[str, str, int | None, float | None]],
) -> Iterator[Metric]:
    backlog = GaugeMetricFamily(
        "lamina_mapping_backlog", "Records waiting in the source", labels=["function", "mapping"]
    )
    lag = GaugeMetricFamily(
        "lamina_mapping_lag_seconds",
        "Age of the oldest record not yet processed",
        labels=["function", "mapping"],
    )
    for function, uuid, waiting, behind in mappings:
        if waiting is not None:
            backlog.add_metric([function, uuid], waiting)
        if behind is not None:
            lag.add_metric([function, uuid], behind)
    return iter((backlog, lag))
