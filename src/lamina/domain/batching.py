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
* **Batch size**: at most `BatchSize` records and 6 MB of payload.

Pure functions, no I/O. Sources:
https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html,
https://docs.aws.amazon.com/lambda/latest/dg/kinesis-batchfailurereporting.html
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


def result_of(
    function_error: bool, payload: bytes, report_failures: bool, identifiers: list[str]
) -> BatchResult:
    """Interpret an invocation of a batch (the identifiers of its records, in order)."""
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
    return _failures(response["batchItemFailures"], identifiers)


def _failures(entries: Any, identifiers: list[str]) -> BatchResult:
    if not entries:
        return SUCCESS
    if not isinstance(entries, list):
        return FAILURE
    known = set(identifiers)
    failed = []
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != {"itemIdentifier"}:
            return FAILURE
        identifier = entry["itemIdentifier"]
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
    retry number `retry`, `retry_delay(retry)` seconds from now."""

    done: int
    retry: int


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The first `done` records succeeded; send the rest to the on-failure destination with
    `condition` and move past them."""

    done: int
    condition: str


StreamDecision = Succeeded | Bisect | RetryBatch | GiveUp
SUCCEEDED = Succeeded()


def before_stream_batch(oldest_arrival: float, now: float, max_age: int) -> GiveUp | None:
    """A batch whose oldest record is older than `MaximumRecordAgeInSeconds` is not run."""
    return GiveUp(0, RECORD_AGE_EXCEEDED) if too_old(oldest_arrival, now, max_age) else None


def after_stream_batch(
    result: BatchResult, identifiers: list[str], retries: int, max_retries: int, bisect: bool
) -> StreamDecision:
    """What a stream poller does after a batch with these records ran: `result` is its
    outcome (`result_of`), `retries` the retries this batch has had so far."""
    if result.ok:
        return SUCCEEDED
    if result.whole_batch_failed and bisect and len(identifiers) > 1:
        return Bisect((len(identifiers) + 1) // 2)
    done = first_failed_index(result, identifiers)
    if retries_exhausted(retries + 1, max_retries):
        return GiveUp(done, RETRY_ATTEMPTS_EXHAUSTED)
    return RetryBatch(done, retries + 1)
