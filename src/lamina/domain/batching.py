"""Batch rules of event source mappings (spec §12.3, §12.4, §14.2).

Theory of operation
-------------------
* **Partial batch response** (`FunctionResponseTypes: ["ReportBatchItemFailures"]`): the
  function returns `{"batchItemFailures": [{"itemIdentifier": id}, …]}`. Empty or null
  failures, an empty or null response, and (streams) a response without the key mean
  complete success. An entry without an identifier, with a wrong key, or (SQS) with an id
  not in the batch makes the whole batch a failure. Otherwise the listed records failed:
  SQS keeps (does not delete) them; streams retry from the lowest listed sequence number.
* **Stream retries** (Kinesis, DynamoDB Streams, Kafka): a failing batch is retried until it
  succeeds, its records are older than `MaximumRecordAgeInSeconds`, or
  `MaximumRetryAttempts` is used up (-1: forever). `BisectBatchOnFunctionError` splits a
  batch that failed as a whole in halves first; splitting does not count as a retry. A
  partial failure completes the records before the lowest failed one and retries from it
  (no bisect). Back-off between retries: 1 s doubling to 30 s (spec §20 #25).
  `before_stream_batch` and `after_stream_batch` return the decision; the poller acts on it.
* **Kafka** (Amazon MSK and self-managed Apache Kafka) takes the same controls. A batch holds
  several partitions (`lanes`), each in offset order; a partial failure names records as
  `{"itemIdentifier": {"partition": "<topic>-<partition>", "offset": N}}` and Lambda
  resumes each named partition from its lowest named offset, the other partitions being
  done. Infinite retries with an on-failure destination mean 10 retries
  (`kafka_max_retries`).
* **Batch size**: at most `BatchSize` records and 6 MB of payload.

Pure functions, no I/O. Sources:
https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html,
https://docs.aws.amazon.com/lambda/latest/dg/kinesis-batchfailurereporting.html,
https://docs.aws.amazon.com/lambda/latest/dg/kafka-retry-configurations.html,
https://docs.aws.amazon.com/lambda/latest/dg/kafka-on-failure-destination.html
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_BATCH_BYTES = 6 * 1024 * 1024

RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a batch's outcome means for its records."""

    ok: bool  # complete success
    failed: tuple[str, ...] = ()  # identifiers reported as failed (a partial failure)

    @property
    def whole_batch_failed(self) -> bool:
        return not self.ok and not self.failed


SUCCESS = BatchResult(True)
FAILURE = BatchResult(False)


def kafka_identifier(lane: str, offset: int) -> str:
    """A Kafka record's identifier: its `<topic>-<partition>` key and its offset."""
    return f"{lane}@{offset}"


def _kafka_item(value: Any) -> str | None:
    """The identifier a Kafka `itemIdentifier` object names, None if it is malformed."""
    if not isinstance(value, dict) or set(value) != {"partition", "offset"}:
        return None
    lane, offset = value["partition"], value["offset"]
    if isinstance(offset, str) and offset.isdigit():
        offset = int(offset)
    if not isinstance(lane, str) or not isinstance(offset, int) or isinstance(offset, bool):
        return None
    return kafka_identifier(lane, offset)


def result_of(
    function_error: bool,
    payload: bytes,
    report_failures: bool,
    identifiers: list[str],
    kafka: bool = False,
) -> BatchResult:
    """Interpret an invocation of a batch (the identifiers of its records, in order; Kafka's
    from `kafka_identifier`, its failures named by partition and offset)."""
    if function_error:
        return FAILURE
    if not report_failures:
        return SUCCESS
    try:
        response = json.loads(payload) if payload else None
    except (ValueError, RecursionError):
        return FAILURE
    if response is None:
        return SUCCESS
    if not isinstance(response, dict) or "batchItemFailures" not in response:
        return SUCCESS  # a response that reports nothing: every record succeeded
    return _failures(response["batchItemFailures"], identifiers, kafka)


def _failures(entries: Any, identifiers: list[str], kafka: bool = False) -> BatchResult:
    if not entries:
        return SUCCESS
    if not isinstance(entries, list):
        return FAILURE
    known = set(identifiers)
    failed = []
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != {"itemIdentifier"}:
            return FAILURE
        identifier = _kafka_item(entry["itemIdentifier"]) if kafka else entry["itemIdentifier"]
        if not isinstance(identifier, str) or not identifier or identifier not in known:
            return FAILURE
        failed.append(identifier)
    return BatchResult(False, tuple(failed))


def first_failed_index(result: BatchResult, identifiers: list[str]) -> int:
    """Streams: the position of the lowest reported sequence number (retry from there)."""
    if not result.failed:
        return 0
    failed = set(result.failed)
    return next(i for i, identifier in enumerate(identifiers) if identifier in failed)


def lanes_to_retry(
    result: BatchResult, identifiers: list[str], lanes: list[str]
) -> tuple[int, ...]:
    """Kafka: the positions to run again after a partial failure: in each lane (partition)
    with a reported record, that record and what follows it in the lane."""
    failed, start = set(result.failed), dict[str, int]()
    for position, (identifier, lane) in enumerate(zip(identifiers, lanes, strict=True)):
        if identifier in failed:
            start.setdefault(lane, position)
    return tuple(p for p, lane in enumerate(lanes) if lane in start and p >= start[lane])


def kafka_max_retries(max_retries: int, has_destination: bool) -> int:
    """Kafka: infinite retries with an on-failure destination are 10 retries."""
    return 10 if max_retries == -1 and has_destination else max_retries


def retry_delay(retries: int) -> float:
    """Seconds before retrying a failing stream batch the `retries`-th time."""
    return min(2.0 ** max(retries - 1, 0), 30.0)


def retries_exhausted(retries: int, max_retries: int) -> bool:
    return max_retries != -1 and retries > max_retries


def too_old(oldest_arrival: float, now: float, max_age: int) -> bool:
    return max_age != -1 and now - oldest_arrival > max_age


def cut(sizes: list[int], batch_size: int, max_bytes: int = MAX_BATCH_BYTES) -> int:
    """How many of the next records fit one batch (at least one)."""
    total = 0
    for count, size in enumerate(sizes[:batch_size]):
        total += size
        if total > max_bytes and count > 0:
            return count
    return min(len(sizes), batch_size)


@dataclass(frozen=True, slots=True)
class Succeeded:
    """The batch is done: checkpoint past it."""


@dataclass(frozen=True, slots=True)
class Bisect:
    """Run `batch[:at]`, then `batch[at:]`, as batches of their own (not a retry)."""

    at: int


@dataclass(frozen=True, slots=True)
class RetryBatch:
    """The first `done` records succeeded (checkpoint past them); run the rest again as
    retry number `retry`, `retry_delay(retry)` seconds from now. With lanes (Kafka), `rest`
    names the positions to run again."""

    done: int
    retry: int
    rest: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The first `done` records succeeded; send the rest (with lanes: the positions in
    `rest`) to the on-failure destination with `condition` and move past them."""

    done: int
    condition: str
    rest: tuple[int, ...] | None = None


StreamDecision = Succeeded | Bisect | RetryBatch | GiveUp
SUCCEEDED = Succeeded()


def before_stream_batch(oldest_arrival: float, now: float, max_age: int) -> GiveUp | None:
    """A batch whose oldest record is older than `MaximumRecordAgeInSeconds` is not run."""
    return GiveUp(0, RECORD_AGE_EXCEEDED) if too_old(oldest_arrival, now, max_age) else None


def after_stream_batch(
    result: BatchResult,
    identifiers: list[str],
    retries: int,
    max_retries: int,
    bisect: bool,
    lanes: list[str] | None = None,
) -> StreamDecision:
    """What a stream poller does after a batch with these records ran: `result` is its
    outcome (`result_of`), `retries` the retries this batch has had so far; `lanes` (Kafka)
    the partition of each record, whose partial failures are resumed per partition."""
    if result.ok:
        return SUCCEEDED
    if result.whole_batch_failed and bisect and len(identifiers) > 1:
        return Bisect((len(identifiers) + 1) // 2)
    done, rest = first_failed_index(result, identifiers), None
    if lanes is not None and result.failed:
        done, rest = 0, lanes_to_retry(result, identifiers, lanes)
    if retries_exhausted(retries + 1, max_retries):
        return GiveUp(done, RETRY_ATTEMPTS_EXHAUSTED, rest)
    return RetryBatch(done, retries + 1, rest)
