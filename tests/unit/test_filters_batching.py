"""Event filtering (EventBridge patterns) and batch rules, with no I/O."""

import base64
import json

import pytest

from lamina.domain import batching, errors, filters


def keep(pattern: dict, source: str, record: dict) -> bool:
    return filters.keep([filters.parse(json.dumps(pattern))], source, record)


@pytest.mark.parametrize(
    "pattern, record, expected",
    [
        ({"body": {"kind": ["order"]}}, {"body": '{"kind": "order"}'}, True),
        ({"body": {"kind": ["order"]}}, {"body": '{"kind": "other"}'}, False),
        ({"body": {"kind": ["order"]}}, {"body": "kind order"}, False),  # JSON pattern, text body
        ({"body": ["plain"]}, {"body": "plain"}, True),
        ({"body": ["plain"]}, {"body": '{"a": 1}'}, False),  # text pattern, JSON body
        ({"body": {"n": [{"numeric": [">", 10, "<=", 20]}]}}, {"body": '{"n": 15}'}, True),
        ({"body": {"n": [{"numeric": [">", 10, "<=", 20]}]}}, {"body": '{"n": 25}'}, False),
        ({"body": {"n": [{"numeric": ["=", 3]}]}}, {"body": '{"n": "3"}'}, False),
        ({"body": {"w": [{"anything-but": ["Rain"]}]}}, {"body": '{"w": "Sun"}'}, True),
        ({"body": {"w": [{"anything-but": ["Rain"]}]}}, {"body": '{"w": "Rain"}'}, False),
        ({"body": {"r": [{"prefix": "us-"}]}}, {"body": '{"r": "us-east-1"}'}, True),
        ({"body": {"f": [{"suffix": ".png"}]}}, {"body": '{"f": "a.jpg"}'}, False),
        ({"body": {"x": [{"exists": True}]}}, {"body": '{"x": null}'}, True),
        ({"body": {"x": [{"exists": False}]}}, {"body": '{"y": 1}'}, True),
        ({"body": {"x": [None]}}, {"body": '{"x": null}'}, True),
        ({"body": {"x": [""]}}, {"body": '{"x": ""}'}, True),
        ({"body": {"tags": ["a"]}}, {"body": '{"tags": ["b", "a"]}'}, True),  # any element
        ({"body": {"n": [300]}}, {"body": '{"n": 300.0}'}, False),  # by JSON text
        (
            {"attributes": {"ApproximateReceiveCount": ["1"]}},
            {"body": "x", "attributes": {"ApproximateReceiveCount": "1"}},
            True,
        ),
        ({"$or": [{"body": {"a": [1]}}, {"body": {"b": [2]}}]}, {"body": '{"b": 2}'}, True),
    ],
)
def test_sqs_patterns(pattern, record, expected):
    assert keep(pattern, "sqs", record) is expected


def test_kinesis_data_is_decoded_and_metadata_hoisted():
    record = {"kinesis": {"data": base64.b64encode(b'{"t": 55}').decode(), "partitionKey": "k1"}}
    assert keep({"data": {"t": [{"numeric": [">", 50]}]}}, "kinesis", record)
    assert keep({"partitionKey": ["k1"]}, "kinesis", record)
    text = {"kinesis": {"data": base64.b64encode(b"not json").decode(), "partitionKey": "k"}}
    assert not keep({"data": {"t": [1]}}, "kinesis", text)


def test_no_filters_keep_everything_and_any_filter_may_match():
    assert filters.keep([], "sqs", {"body": "x"})
    patterns = [filters.parse('{"body": ["a"]}'), filters.parse('{"body": ["b"]}')]
    assert filters.keep(patterns, "sqs", {"body": "b"})


@pytest.mark.parametrize(
    "text", ["{not json", "[1]", '{"a": 1}', '{"a": [{"regex": "x"}]}', '{"a": [[1]]}', "x" * 5000]
)
def test_invalid_patterns(text):
    with pytest.raises(errors.InvalidParameterValue, match="Invalid filter pattern definition."):
        filters.parse(text)


def test_stream_data_patterns_must_be_json():
    with pytest.raises(errors.InvalidParameterValue):
        filters.check_criteria([{"Pattern": '{"data": ["plain"]}'}], "kinesis")
    assert filters.check_criteria([{"Pattern": '{"data": {"a": [1]}}'}], "kinesis")
    with pytest.raises(errors.InvalidParameterValue):
        filters.check_criteria([{"Pattern": '{"a": [1]}'}] * 6, "sqs")


IDS = ["1", "2", "3"]


@pytest.mark.parametrize(
    "error, payload, report, expected",
    [
        (True, b"", True, batching.FAILURE),
        (False, b"garbage", False, batching.SUCCESS),
        (False, b"", True, batching.SUCCESS),
        (False, b"null", True, batching.SUCCESS),
        (False, b'{"batchItemFailures": []}', True, batching.SUCCESS),
        (False, b'{"batchItemFailures": null}', True, batching.SUCCESS),
        (False, b'{"other": 1}', True, batching.SUCCESS),
        (
            False,
            b'{"batchItemFailures": [{"itemIdentifier": "2"}]}',
            True,
            batching.BatchResult(False, ("2",)),
        ),
        (False, b'{"batchItemFailures": [{"itemIdentifier": ""}]}', True, batching.FAILURE),
        (False, b'{"batchItemFailures": [{"itemIdentifier": "9"}]}', True, batching.FAILURE),
        (False, b'{"batchItemFailures": [{"id": "2"}]}', True, batching.FAILURE),
        (False, b"not json", True, batching.FAILURE),
    ],
)
def test_partial_batch_responses(error, payload, report, expected):
    assert batching.result_of(error, payload, report, IDS) == expected


def test_stream_helpers():
    result = batching.BatchResult(False, ("3", "2"))
    assert batching.first_failed_index(result, IDS) == 1
    assert batching.after_stream_batch(
        batching.FAILURE, ["1", "2", "3"], 0, -1, True
    ) == batching.Bisect(2)
    assert [batching.retry_delay(n) for n in (1, 2, 3, 6, 10)] == [1, 2, 4, 30, 30]
    assert not batching.retries_exhausted(5, -1) and batching.retries_exhausted(3, 2)
    assert batching.too_old(0, 100, 60) and not batching.too_old(0, 100, -1)
    assert batching.cut([100] * 20, 10) == 10
    assert batching.cut([4 * 1024 * 1024, 3 * 1024 * 1024], 10) == 1
    assert batching.cut([7 * 1024 * 1024], 10) == 1
