"""Event filtering for event source mappings: EventBridge patterns on records (spec §17).

Theory of operation
-------------------
A mapping's `FilterCriteria` holds up to 5 patterns; a record is delivered if it matches any
of them (OR), else it is dropped (SQS: deleted; streams: skipped and checkpointed). A pattern
is a JSON object: every key must match (AND); a leaf is a list of alternatives (OR): exact
values (strings case-sensitive, numbers by their JSON text), `null`, `""`, or operators —
`anything-but`, `numeric`, `exists`, `prefix`, `suffix`, `equals-ignore-case`; `$or` takes
a list of patterns. A list in the record matches if any element does.

Lambda first decodes the record's data field (`body` for SQS, `data` for Kinesis, `key` /
`value` for Kafka) into JSON where it can; a pattern that expects JSON for a field that is
not JSON (or the reverse, for SQS) does not match. Source:
https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html
"""

from __future__ import annotations

import base64
import json
from typing import Any

from lamina.domain import errors

INVALID = "Invalid filter pattern definition."
MAX_FILTERS = 5
MAX_PATTERN = 4096
_OPERATORS = {"anything-but", "numeric", "exists", "prefix", "suffix", "equals-ignore-case"}
_MISSING = object()


def parse(text: Any) -> dict[str, Any]:
    """A pattern from its JSON text, or the 400 AWS gives for a bad one."""
    if not isinstance(text, str) or len(text) > MAX_PATTERN:
        raise errors.InvalidParameterValue(INVALID)
    try:
        pattern: dict[str, Any] = json.loads(text)
    except (ValueError, RecursionError):
        raise errors.InvalidParameterValue(INVALID) from None
    _check(pattern)
    return pattern


def _check(pattern: Any) -> None:
    if not isinstance(pattern, dict):
        raise errors.InvalidParameterValue(INVALID)
    for key, rule in pattern.items():
        if key == "$or":
            if not isinstance(rule, list) or not rule:
                raise errors.InvalidParameterValue(INVALID)
            for alternative in rule:
                _check(alternative)
        elif isinstance(rule, dict):
            _check(rule)
        elif isinstance(rule, list):
            for alternative in rule:
                if isinstance(alternative, dict) and (
                    len(alternative) != 1 or next(iter(alternative)) not in _OPERATORS
                ):
                    raise errors.InvalidParameterValue(INVALID)
                if isinstance(alternative, (list,)):
                    raise errors.InvalidParameterValue(INVALID)
        else:
            raise errors.InvalidParameterValue(INVALID)


def check_criteria(filters: list[Any], source: str) -> tuple[str, ...]:
    """The pattern texts of a FilterCriteria, checked (streams need JSON for `data`)."""
    if len(filters) > MAX_FILTERS:
        raise errors.InvalidParameterValue(INVALID)
    texts = []
    for entry in filters:
        text = entry.get("Pattern") if isinstance(entry, dict) else None
        pattern = parse(text)
        if (
            source in ("kinesis", "dynamodb")
            and "data" in pattern
            and not isinstance(pattern["data"], dict)
        ):
            raise errors.InvalidParameterValue(INVALID)
        texts.append(text)
    return tuple(texts)  # type: ignore[arg-type]


def matches(pattern: dict[str, Any], record: Any) -> bool:
    """Whether `record` (already decoded, see `decode`) matches `pattern`."""
    if not isinstance(record, dict):
        return False
    for key, rule in pattern.items():
        if key == "$or":
            if not any(matches(p, record) for p in rule):
                return False
        elif isinstance(rule, dict):
            if not matches(rule, record.get(key, _MISSING)):
                return False
        elif not _leaf(rule, record.get(key, _MISSING)):
            return False
    return True


def _leaf(alternatives: list[Any], value: Any) -> bool:
    if isinstance(value, list):
        return (
            any(_leaf(alternatives, item) for item in value)
            if value
            else _leaf(alternatives, _MISSING)
        )
    return any(_alternative(alt, value) for alt in alternatives)


def _alternative(alternative: Any, value: Any) -> bool:
    if isinstance(alternative, dict):
        ((operator, argument),) = alternative.items()
        return _operator(operator, argument, value)
    if value is _MISSING or isinstance(value, dict):
        return False
    if alternative is None or value is None:
        return alternative is None and value is None
    return json.dumps(alternative) == json.dumps(value)


def _operator(operator: str, argument: Any, value: Any) -> bool:
    if operator == "exists":
        return (value is not _MISSING) == bool(argument)
    if value is _MISSING:
        return False
    if operator == "prefix":
        return isinstance(value, str) and isinstance(argument, str) and value.startswith(argument)
    if operator == "suffix":
        return isinstance(value, str) and isinstance(argument, str) and value.endswith(argument)
    if operator == "equals-ignore-case":
        return (
            isinstance(value, str)
            and isinstance(argument, str)
            and value.lower() == argument.lower()
        )
    if operator == "anything-but":
        return _anything_but(argument, value)
    return _numeric(argument, value)


def _anything_but(argument: Any, value: Any) -> bool:
    if isinstance(argument, dict):  # {"anything-but": {"prefix": "x"}}
        ((inner, inner_argument),) = argument.items()
        return not _operator(inner, inner_argument, value)
    excluded = argument if isinstance(argument, list) else [argument]
    return not any(_alternative(item, value) for item in excluded)


def _numeric(argument: Any, value: Any) -> bool:
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not isinstance(argument, list)
        or len(argument) % 2
    ):
        return False
    checks = {
        "<": float.__lt__,
        "<=": float.__le__,
        ">": float.__gt__,
        ">=": float.__ge__,
        "=": float.__eq__,
    }
    for index in range(0, len(argument), 2):
        compare = checks.get(argument[index])
        if compare is None or not compare(float(value), float(argument[index + 1])):
            return False
    return True


def _as_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def _from_base64(data: str) -> Any:
    try:
        return _as_json(base64.b64decode(data).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return _MISSING


def decode(source: str, record: dict[str, Any]) -> dict[str, Any]:
    """The record as filters see it: the data field decoded to JSON where it is JSON."""
    view = dict(record)
    if source == "sqs" and isinstance(record.get("body"), str):
        view["body"] = _as_json(record["body"])
    elif source == "kinesis" and "kinesis" in record:
        view["data"] = _from_base64(record["kinesis"].get("data", ""))
        view.update({k: v for k, v in record["kinesis"].items() if k != "data"})
    elif source == "kafka":
        for field in ("key", "value"):
            if isinstance(record.get(field), str):
                view[field] = _from_base64(record[field])
    return view


def keep(patterns: list[dict[str, Any]], source: str, record: dict[str, Any]) -> bool:
    """Whether a record passes a mapping's filters (no filters: every record does)."""
    if not patterns:
        return True
    view = decode(source, record)
    for pattern in patterns:
        if (
            source == "sqs"
            and "body" in pattern
            and not _sqs_body_fits(pattern["body"], view.get("body"))
        ):
            continue
        if matches(pattern, view):
            return True
    return False


def _sqs_body_fits(rule: Any, body: Any) -> bool:
    """SQS: a JSON pattern needs a JSON body, a plain-string pattern a plain body (§17)."""
    return isinstance(rule, dict) == isinstance(body, (dict, list))
