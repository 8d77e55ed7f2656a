"""Rows ⇄ domain objects, shared by the SQL back ends."""

from __future__ import annotations

import _json
import dataclasses
import json
import operator
from json.encoder import encode_basestring_ascii
from typing import Any

from lamina.domain.capacity import CapacityProvider
from lamina.domain.layers import LayerVersion
from lamina.domain.model import (
    Alias,
    AsyncEvent,
    AttemptRecord,
    Delivery,
    EventInvokeConfig,
    FunctionConfig,
    InvocationSummary,
    ResourcePolicy,
)
from lamina.domain.stacks import Stack, StackEvent
from lamina.domain.urls import FunctionUrlConfig

# The records, written for every invocation, are encoded by the C encoder that json.dumps'
# `separators=(",", ":")` would use, made once and called directly: json.dumps makes a new
# encoder per call and reaches it through two Python frames. Same text. Records are trees of
# fresh dicts and lists, never cycles: no circular check (no `markers` dict of ids).
_c_compact = _json.make_encoder(
    None, json.JSONEncoder().default, encode_basestring_ascii, None, ":", ",", False, False, True
)


def _compact(value: Any) -> str:
    return "".join(_c_compact(value, 0))


# The columns of `upsert_invocation` before its timeline, read from a summary in one C call.
_summary_head = operator.attrgetter(
    "request_id",
    "function",
    "qualifier",
    "invocation_type",
    "accepted_at",
    "status",
    "finished_at",
    "attempts",
    "error_type",
    "duration_ms",
)


def version_row(config: FunctionConfig) -> dict[str, Any]:
    return {
        "name": config.name,
        "version": config.version,
        "config": json.dumps(config.to_dict(), separators=(",", ":")),
    }


def config_from_row(text: str) -> FunctionConfig:
    return FunctionConfig.from_dict(json.loads(text))


def summary_rows(summaries: list[InvocationSummary]) -> list[tuple[Any, ...]]:
    """The positional rows of `upsert_invocation`, one per invocation in a records' batch (a
    tuple binds no names), made in one loop (a batch holds hundreds)."""
    head, text = _summary_head, timeline_text
    return [
        (*head(s), None if s.timeline is None else text(s.accepted_at, s.timeline))
        for s in summaries
    ]


def timeline_text(accepted_at: float, timeline: list[AttemptRecord]) -> str:
    """A summary's embedded timeline as stored: `{"us": [[µs after accepted_at, kind,
    detail], ...]}`. Whole microseconds, not the epoch seconds themselves: a float such as
    1764756000.123456 costs a shortest-repr conversion each, an int next to nothing. The
    base is the row's own `accepted_at`, which an update leaves as first written (the one
    writer of embedded timelines, service/invoke.py, writes one summary object per call)."""
    return _compact(
        {"us": [[round((r.at - accepted_at) * 1e6), r.kind, r.detail] for r in timeline]}
    )


def timeline_from_text(request_id: str, accepted_at: float, text: str) -> list[AttemptRecord]:
    """The timeline `timeline_text` wrote, or one written before it (`[[at, kind, detail],
    ...]`, epoch seconds)."""
    if text[0] == "{":
        return [
            AttemptRecord(request_id, accepted_at + us / 1e6, kind, detail)
            for us, kind, detail in json.loads(text)["us"]
        ]
    return [AttemptRecord(request_id, at, kind, detail) for at, kind, detail in json.loads(text)]


def summary_from_row(row: tuple[Any, ...]) -> InvocationSummary:
    """A summary (with its embedded timeline when the row has one)."""
    timeline = None
    if len(row) > 10 and row[10]:
        timeline = timeline_from_text(row[0], row[4], row[10])
    summary = InvocationSummary(*row[:10])
    summary.timeline = timeline
    return summary


def record_rows(records: list[AttemptRecord]) -> list[tuple[Any, ...]]:
    """The positional rows of `insert_record`, made in one loop."""
    encode = _compact
    return [(r.request_id, r.at, r.kind, encode(r.detail)) for r in records]


def event_row(event: AsyncEvent) -> dict[str, Any]:
    return {
        "request_id": event.request_id,
        "function": event.function,
        "qualifier": event.qualifier,
        "payload": event.payload,
        "accepted_at": event.accepted_at,
        "due_at": event.due_at,
        "invocations": event.invocations,
        "throttles": event.throttles,
        "trace_id": event.trace_id,
        "tenant_id": event.tenant_id,
    }


def event_config_row(config: EventInvokeConfig) -> dict[str, Any]:
    return {
        "function": config.function,
        "qualifier": config.qualifier,
        "config": json.dumps(dataclasses.asdict(config), separators=(",", ":")),
    }


def event_config_from_row(text: str) -> EventInvokeConfig:
    return EventInvokeConfig(**json.loads(text))


def policy_row(policy: ResourcePolicy) -> dict[str, Any]:
    return {
        "function": policy.function,
        "qualifier": policy.qualifier,
        "policy": json.dumps(dataclasses.asdict(policy), separators=(",", ":")),
    }


def policy_from_row(text: str) -> ResourcePolicy:
    values = json.loads(text)
    return ResourcePolicy(**{**values, "statements": tuple(values["statements"])})


def layer_row(layer: LayerVersion) -> dict[str, Any]:
    return {
        "name": layer.name,
        "version": layer.version,
        "layer": json.dumps(layer.to_dict(), separators=(",", ":")),
    }


def delivery_row(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "request_id": delivery.request_id,
        "kind": delivery.kind,
        "target": delivery.target,
        "body": delivery.body,
        "attributes": json.dumps(delivery.attributes, separators=(",", ":")),
        "attempts": delivery.attempts,
        "due_at": delivery.due_at,
    }


def delivery_from_row(row: tuple[Any, ...]) -> Delivery:
    return Delivery(
        row[0], row[1], row[2], row[3], bytes(row[4]), json.loads(row[5]), row[6], row[7]
    )


def event_from_row(row: tuple[Any, ...]) -> AsyncEvent:
    values = list(row)
    values[3] = bytes(values[3])
    return AsyncEvent(*values)


def alias_row(alias: Alias) -> dict[str, Any]:
    return {
        "function": alias.function,
        "name": alias.name,
        "config": json.dumps(alias.to_dict(), separators=(",", ":")),
    }


def url_row(config: FunctionUrlConfig) -> dict[str, Any]:
    return {
        "function": config.function,
        "qualifier": config.qualifier,
        "url_id": config.url_id,
        "config": json.dumps(dataclasses.asdict(config), separators=(",", ":")),
    }


def url_from_row(text: str) -> FunctionUrlConfig:
    return FunctionUrlConfig(**json.loads(text))


def stack_row(stack: Stack) -> dict[str, Any]:
    return {
        "name": stack.name,
        "stack_id": stack.stack_id,
        "status": stack.status,
        "updated_at": stack.updated_at,
        "stack": stack.to_json(),
    }


def stack_event_row(stack_id: str, event: StackEvent) -> dict[str, Any]:
    return {
        "stack_id": stack_id,
        "seq": event.seq,
        "event": json.dumps(event.to_dict(), separators=(",", ":")),
    }


def provider_row(provider: CapacityProvider) -> dict[str, Any]:
    return {"name": provider.name, "config": json.dumps(provider.to_dict(), separators=(",", ":"))}
