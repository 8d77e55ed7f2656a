"""domain.batching's stream decisions: retry, bisect, partial failure, give up (pure).

Properties over generated batches (hypothesis), and a whole shard lane driven by the
decision alone: with BisectBatchOnFunctionError every poison record ends up alone in a
batch that is given up, and every other record succeeds exactly once after its retries.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lamina.domain import batching
from lamina.domain.batching import (
    FAILURE,
    RECORD_AGE_EXCEEDED,
    RETRY_ATTEMPTS_EXHAUSTED,
    SUCCESS,
    BatchResult,
    Bisect,
    GiveUp,
    RetryBatch,
    Succeeded,
)

# few examples and no deadline: a fast default suite on 2 shared cores; no example database
# written into the working tree
FAST = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

batches = st.integers(1, 40).map(lambda n: [str(100 + i) for i in range(n)])
max_retries = st.one_of(st.just(-1), st.integers(0, 10))


@FAST
@given(batches, st.integers(0, 20), max_retries, st.booleans())
def test_a_success_is_done_whatever_came_before(
    ids: list[str], retries: int, most: int, bisect: bool
) -> None:
    assert batching.after_stream_batch(SUCCESS, ids, retries, most, bisect) == Succeeded()


@FAST
@given(batches, st.integers(0, 20), max_retries)
def test_a_failed_batch_is_split_in_halves_before_any_retry(
    ids: list[str], retries: int, most: int
) -> None:
    decision = batching.after_stream_batch(FAILURE, ids, retries, most, True)
    if len(ids) == 1:  # a record alone cannot be split: it is retried or given up
        assert isinstance(decision, (RetryBatch, GiveUp)) and decision.done == 0
        return
    assert isinstance(decision, Bisect)
    first, second = ids[: decision.at], ids[decision.at :]
    assert first and second and 0 <= len(first) - len(second) <= 1


@FAST
@given(batches, st.data(), st.integers(0, 20), max_retries, st.booleans())
def test_a_partial_failure_completes_what_precedes_the_lowest_failure(
    ids: list[str], data: st.DataObject, retries: int, most: int, bisect: bool
) -> None:
    failed = data.draw(st.lists(st.sampled_from(ids), min_size=1, unique=True))
    decision = batching.after_stream_batch(
        BatchResult(False, tuple(failed)), ids, retries, most, bisect
    )
    assert isinstance(decision, (RetryBatch, GiveUp))  # never bisected
    assert decision.done == min(ids.index(f) for f in failed)
    assert all(i not in failed for i in ids[: decision.done])


@FAST
@given(batches, max_retries)
def test_retries_count_to_maximum_retry_attempts_then_give_up(ids: list[str], most: int) -> None:
    retries, seen = 0, []
    for _ in range(15):
        decision = batching.after_stream_batch(FAILURE, ids, retries, most, False)
        if isinstance(decision, GiveUp):
            assert decision == GiveUp(0, RETRY_ATTEMPTS_EXHAUSTED)
            break
        assert isinstance(decision, RetryBatch) and decision.retry == retries + 1
        retries = decision.retry
        seen.append(batching.retry_delay(retries))
    if most == -1:
        assert len(seen) == 15  # -1: retried until the records expire
    else:
        assert len(seen) == most
    assert seen == sorted(seen) and all(1.0 <= d <= 30.0 for d in seen)


@FAST
@given(st.floats(0, 1e6), st.floats(0, 1e6), st.one_of(st.just(-1), st.integers(60, 604800)))
def test_records_older_than_the_maximum_age_are_not_run(
    oldest: float, now: float, age: int
) -> None:
    decision = batching.before_stream_batch(oldest, now, age)
    expired = age != -1 and now - oldest > age
    assert decision == (GiveUp(0, RECORD_AGE_EXCEEDED) if expired else None)


def lane(records: list[str], poison: set[str], most: int) -> tuple[list[str], list[list[str]], int]:
    """A shard lane acting on the decisions only: (records that succeeded in order, batches
    given up, invocations)."""
    done: list[str] = []
    given_up: list[list[str]] = []
    invocations = 0

    def process(batch: list[str]) -> None:
        nonlocal invocations
        retries = 0
        while True:
            invocations += 1
            result = FAILURE if poison & set(batch) else SUCCESS
            decision = batching.after_stream_batch(result, batch, retries, most, True)
            if isinstance(decision, Succeeded):
                done.extend(batch)
                return
            if isinstance(decision, Bisect):
                process(batch[: decision.at])
                process(batch[decision.at :])
                return
            done.extend(batch[: decision.done])
            batch = batch[decision.done :]
            if isinstance(decision, GiveUp):
                given_up.append(batch)
                return
            retries = decision.retry

    process(records)
    return done, given_up, invocations


@FAST
@given(batches, st.data(), st.integers(0, 3))
def test_bisect_isolates_each_poison_record(ids: list[str], data: st.DataObject, most: int) -> None:
    poison = set(data.draw(st.lists(st.sampled_from(ids), unique=True)))
    done, given_up, invocations = lane(ids, poison, most)
    assert given_up == [[p] for p in ids if p in poison]
    assert done == [i for i in ids if i not in poison]  # in order, each once
    assert invocations >= len(given_up) * (most + 1)


# Kafka: several partitions (lanes) per batch, failures named by partition and offset
kafka_batches = st.lists(st.sampled_from(["t-0", "t-1", "u-0"]), min_size=1, max_size=30)


def _kafka(lanes: list[str]) -> list[str]:
    """Identifiers for records of these partitions, offsets rising within each."""
    seen: dict[str, int] = {}
    ids = []
    for name in lanes:
        seen[name] = seen.get(name, -1) + 1
        ids.append(batching.kafka_identifier(name, seen[name]))
    return ids


def _response(*items: object) -> bytes:
    return json.dumps({"batchItemFailures": [{"itemIdentifier": i} for i in items]}).encode()


def test_kafka_failures_are_named_by_partition_and_offset() -> None:
    ids = _kafka(["t-0", "t-0", "t-1"])
    partial = batching.result_of(
        False, _response({"partition": "t-0", "offset": 1}), True, ids, True
    )
    assert partial == BatchResult(False, ("t-0@1",))
    as_text = _response({"partition": "t-1", "offset": "0"})
    assert batching.result_of(False, as_text, True, ids, True).failed == ("t-1@0",)
    for wrong in (
        "t-0@1",  # the streams' string form
        {"partition": "t-0", "offset": 7},  # not in the batch
        {"partition": "t-0"},
        {"partition": "t-0", "offset": 1, "topic": "t"},
        {"partition": 0, "offset": 1},
        {"partition": "t-0", "offset": True},
        {"partition": "t-0", "offset": "-1"},
    ):
        assert batching.result_of(False, _response(wrong), True, ids, True) == FAILURE, wrong
    assert batching.result_of(False, b'{"batchItemFailures": []}', True, ids, True) == SUCCESS
    assert (
        batching.result_of(False, _response({"partition": "t-0", "offset": 1}), False, ids, True)
        == SUCCESS
    )


@FAST
@given(kafka_batches, st.data(), st.integers(0, 5), max_retries, st.booleans())
def test_a_kafka_partial_failure_resumes_each_named_partition(
    lanes: list[str], data: st.DataObject, retries: int, most: int, bisect: bool
) -> None:
    ids = _kafka(lanes)
    failed = data.draw(st.lists(st.sampled_from(ids), min_size=1, unique=True))
    decision = batching.after_stream_batch(
        BatchResult(False, tuple(failed)), ids, retries, most, bisect, lanes
    )
    assert isinstance(decision, (RetryBatch, GiveUp)) and decision.rest is not None
    again = {ids[p] for p in decision.rest}
    for position, identifier in enumerate(ids):
        named = [ids.index(f) for f in failed if lanes[ids.index(f)] == lanes[position]]
        assert (identifier in again) == bool(named and position >= min(named)), identifier
    assert list(decision.rest) == sorted(decision.rest)  # offset order kept


def test_kafka_infinite_retries_with_a_destination_are_ten() -> None:
    assert batching.kafka_max_retries(-1, True) == 10
    assert batching.kafka_max_retries(-1, False) == -1
    assert batching.kafka_max_retries(3, True) == 3
    assert batching.kafka_max_retries(0, True) == 0
