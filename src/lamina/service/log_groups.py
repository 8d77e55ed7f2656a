"""CloudWatch Logs' view of function logs: the calls `aws logs tail`, `sam logs` and deploy
tools make for Lambda's log groups (DescribeLogGroups, DescribeLogStreams, GetLogEvents,
FilterLogEvents), answered from the engine's own log files (runtime.logs).

A function's log group is `/aws/lambda/NAME`, in the account of the function: each caller
sees its own account's groups only (a function's log folder is named by its key,
domain.arns). It exists once the function has written a log
(as on AWS, where Lambda creates it at the first invocation) and stays after the function is
deleted, until retention removes the files. Each execution environment is one stream, named as
Lambda names them (`YYYY/MM/DD/[$LATEST]<hex>`). Each line is an event, its message ending with
a newline as Lambda's do.

Filter patterns: AWS's whole syntax (terms, JSON and space-delimited patterns), parsed and
matched by domain.log_patterns.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass
from typing import Any, Protocol

from lamina.domain import arns, errors, log_patterns

PREFIX = "/aws/lambda/"
NO_GROUP = "The specified log group does not exist."
NO_STREAM = "The specified log stream does not exist."
BAD_TOKEN = "The specified nextToken is invalid."


class Reader(Protocol):
    """runtime.logs.LogGroupReader."""

    def functions(self) -> list[tuple[str, int, int]]: ...
    def has(self, function: str) -> bool: ...
    def streams(self, function: str) -> list[tuple[str, int, int, int]]: ...
    def events(self, function: str, stream: str) -> list[tuple[int, str]] | None: ...


@dataclass(frozen=True)
class Event:
    stream: str
    index: int
    timestamp: int
    message: str

    @property
    def event_id(self) -> str:
        return f"{self.timestamp:024d}{zlib.crc32(self.stream.encode()):016d}{self.index:016d}"

    def key(self) -> tuple[int, str, int]:
        return (self.timestamp, self.stream, self.index)


class LogGroupService:
    """The CloudWatch Logs operations for Lambda's log groups (see the module docstring)."""

    def __init__(
        self, reader: Reader, region: str, account: str, flush: Any = lambda name: None
    ) -> None:
        self.reader = reader
        self.region = region
        self.account = account
        self.flush = flush

    def group_arn(self, group: str, account: str | None = None) -> str:
        return f"arn:aws:logs:{self.region}:{account or self.account}:log-group:{group}"

    def _owner(self, account: str | None) -> str:
        """The key prefix of `account`'s functions ("": the engine's own, domain.arns)."""
        return "" if account in (None, self.account) else account or ""

    # operations (`account`: the caller's; None: the engine's own) -------------------------
    def describe_log_groups(
        self, request: dict[str, Any], account: str | None = None
    ) -> dict[str, Any]:
        prefix = _text(request, "logGroupNamePrefix") or ""
        pattern = _text(request, "logGroupNamePattern")
        if prefix and pattern:
            raise errors.InvalidParameterValue(
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters."
            )
        owner = self._owner(account)
        groups: list[dict[str, Any]] = [
            {
                "logGroupName": PREFIX + arns.plain_name(key),
                "creationTime": created,
                "metricFilterCount": 0,
                "arn": self.group_arn(PREFIX + arns.plain_name(key), account) + ":*",
                "storedBytes": stored,
                "logGroupClass": "STANDARD",
                "logGroupArn": self.group_arn(PREFIX + arns.plain_name(key), account),
            }
            for key, created, stored in self.reader.functions()
            if arns.key_owner(key) == owner
        ]
        groups = [
            g
            for g in groups
            if g["logGroupName"].startswith(prefix)
            and (pattern is None or pattern.lower() in g["logGroupName"].lower())
        ]
        return _page(groups, "logGroups", request, 50)

    def describe_log_streams(
        self, request: dict[str, Any], account: str | None = None
    ) -> dict[str, Any]:
        function = self._function(request, account)
        prefix = _text(request, "logStreamNamePrefix") or ""
        order = _text(request, "orderBy") or "LogStreamName"
        if order not in ("LogStreamName", "LastEventTime"):
            raise errors.ValidationError.field(
                order,
                "orderBy",
                "Member must satisfy enum value set: [LogStreamName, LastEventTime]",
            )
        if order == "LastEventTime" and prefix:
            raise errors.InvalidParameterValue(
                "Cannot order by LastEventTime with a logStreamNamePrefix."
            )
        self.flush(function)
        group = PREFIX + arns.plain_name(function)
        streams = [
            {
                "logStreamName": name,
                "creationTime": created,
                "firstEventTimestamp": first,
                "lastEventTimestamp": last,
                "lastIngestionTime": last,
                "arn": f"{self.group_arn(group, account)}:log-stream:{name}",
                "storedBytes": 0,
            }
            for name, first, last, created in self.reader.streams(function)
            if name.startswith(prefix)
        ]
        field = "logStreamName" if order == "LogStreamName" else "lastEventTimestamp"
        streams.sort(
            key=lambda s: (s[field], s["logStreamName"]), reverse=bool(request.get("descending"))
        )
        return _page(streams, "logStreams", request, 50)

    def get_log_events(self, request: dict[str, Any], account: str | None = None) -> dict[str, Any]:
        function = self._function(request, account)
        stream = _text(request, "logStreamName")
        if not stream:
            raise errors.ValidationError.field("null", "logStreamName", "Member must not be null")
        self.flush(function)
        events = self.reader.events(function, stream)
        if events is None:
            raise errors.ResourceNotFound(NO_STREAM)
        limit = _limit(request, 10_000)
        start, end = _time(request, "startTime"), _time(request, "endTime")
        chosen = [
            i
            for i, (stamp, _) in enumerate(events)
            if (start is None or stamp >= start) and (end is None or stamp < end)
        ]
        token = _text(request, "nextToken")
        if token:
            direction, position = _position(token)
            chosen = (
                [i for i in chosen if i >= position][:limit]
                if direction == "f"
                else [i for i in chosen if i < position][-limit:]
            )
            if not chosen:
                return {
                    "events": [],
                    "nextForwardToken": f"f/{position:056d}",
                    "nextBackwardToken": f"b/{position:056d}",
                }
        elif request.get("startFromHead"):
            chosen = chosen[:limit]
        else:
            chosen = chosen[-limit:]
        first = chosen[0] if chosen else len(events)
        after = chosen[-1] + 1 if chosen else len(events)
        return {
            "events": [
                {"timestamp": events[i][0], "message": events[i][1], "ingestionTime": events[i][0]}
                for i in chosen
            ],
            "nextForwardToken": f"f/{after:056d}",
            "nextBackwardToken": f"b/{first:056d}",
        }

    def filter_log_events(
        self, request: dict[str, Any], account: str | None = None
    ) -> dict[str, Any]:
        function = self._function(request, account)
        names = request.get("logStreamNames")
        prefix = _text(request, "logStreamNamePrefix")
        if names is not None and prefix is not None:
            raise errors.InvalidParameterValue(
                "logStreamNames and logStreamNamePrefix are mutually exclusive."
            )
        if names is not None and (not isinstance(names, list) or not 1 <= len(names) <= 100):
            raise errors.ValidationError.field(
                names, "logStreamNames", "Member must have length less than or equal to 100"
            )
        matches = message_filter(_text(request, "filterPattern") or "")
        start, end = _time(request, "startTime"), _time(request, "endTime")
        limit = _limit(request, 10_000)
        after = _after(_text(request, "nextToken"))
        self.flush(function)
        found: list[Event] = []
        searched = []
        for stream, *_ in self.reader.streams(function):
            if (names is not None and stream not in names) or (
                prefix is not None and not stream.startswith(prefix)
            ):
                continue
            searched.append({"logStreamName": stream, "searchedCompletely": True})
            for index, (stamp, message) in enumerate(self.reader.events(function, stream) or ()):
                event = Event(stream, index, stamp, message)
                if (
                    (start is None or stamp >= start)
                    and (end is None or stamp <= end)
                    and (after is None or event.key() > after)
                    and matches(message)
                ):
                    found.append(event)
        found.sort(key=Event.key)
        page = found[:limit]
        body: dict[str, Any] = {
            "events": [
                {
                    "logStreamName": e.stream,
                    "timestamp": e.timestamp,
                    "message": e.message,
                    "ingestionTime": e.timestamp,
                    "eventId": e.event_id,
                }
                for e in page
            ],
            "searchedLogStreams": searched,
        }
        if len(found) > limit:
            last = page[-1]
            body["nextToken"] = base64.urlsafe_b64encode(
                json.dumps([last.timestamp, last.stream, last.index]).encode()
            ).decode()
        return body

    # helpers ------------------------------------------------------------------------------
    def _function(self, request: dict[str, Any], account: str | None) -> str:
        """The key of `account`'s function whose log group a request names (`logGroupName`,
        or `logGroupIdentifier`: a name or an ARN); AWS's 400 / not-found otherwise."""
        group = _text(request, "logGroupName")
        identifier = _text(request, "logGroupIdentifier")
        if group and identifier:
            raise errors.InvalidParameterValue(
                "LogGroup name and LogGroup ARN are mutually exclusive parameters."
            )
        group = group or identifier
        if not group:
            raise errors.InvalidParameterValue(
                "Should provide either name or ARN of the log group."
            )
        if group.startswith("arn:"):
            if group.split(":")[4:5] != [account or self.account]:
                raise errors.ResourceNotFound(NO_GROUP)  # another account's group
            group = group.partition(":log-group:")[2].removesuffix(":*")
        name = group[len(PREFIX) :] if group.startswith(PREFIX) else ""
        if not name or "/" in name or ":" in name:
            raise errors.ResourceNotFound(NO_GROUP)
        key = arns.function_key(self._owner(account), name)
        if not self.reader.has(key):
            raise errors.ResourceNotFound(NO_GROUP)
        return key


def message_filter(pattern: str) -> log_patterns.Matcher:
    """A predicate on messages for a CloudWatch filter pattern (domain.log_patterns)."""
    try:
        return log_patterns.compile_pattern(pattern)
    except log_patterns.PatternError as exc:
        raise errors.InvalidParameterValue(f"Invalid filter pattern: {exc}.") from None


def _text(request: dict[str, Any], key: str) -> str | None:
    value = request.get(key)
    if value is not None and not isinstance(value, str):
        raise errors.ValidationError.field(value, key, "Member must be a string")
    return value


def _time(request: dict[str, Any], key: str) -> int | None:
    value = request.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise errors.ValidationError.field(
            value, key, "Member must have value greater than or equal to 0"
        )
    return value


def _limit(request: dict[str, Any], high: int) -> int:
    value = request.get("limit", high)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
        raise errors.ValidationError.field(
            value, "limit", f"Member must have value less than or equal to {high}"
        )
    return value


def _position(token: str) -> tuple[str, int]:
    direction, _, number = token.partition("/")
    if direction not in ("f", "b") or not number.isdigit():
        raise errors.InvalidParameterValue(BAD_TOKEN)
    return direction, int(number)


def _after(token: str | None) -> tuple[int, str, int] | None:
    if not token:
        return None
    try:
        stamp, stream, index = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(stamp), str(stream), int(index)
    except (ValueError, TypeError):
        raise errors.InvalidParameterValue(BAD_TOKEN) from None


def _page(
    items: list[dict[str, Any]], member: str, request: dict[str, Any], high: int
) -> dict[str, Any]:
    limit = _limit(request, high)
    token = _text(request, "nextToken")
    start = 0
    if token:
        if not token.isdigit():
            raise errors.InvalidParameterValue(BAD_TOKEN)
        start = int(token)
    body: dict[str, Any] = {member: items[start : start + limit]}
    if start + limit < len(items):
        body["nextToken"] = str(start + limit)
    return body
