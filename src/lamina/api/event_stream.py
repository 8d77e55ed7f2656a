"""The AWS event-stream wire format (`application/vnd.amazon.eventstream`), encoding only.

Each message: total length (4 bytes), headers length (4), CRC32 of those 8 bytes (4), the
headers (name length 1 byte, name, type 7 = string, value length 2 bytes, value), the
payload, and a CRC32 of everything before it (4). InvokeWithResponseStream sends
`PayloadChunk` events with raw bytes and one `InvokeComplete` event with JSON (spec §5.2).
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

from lamina.domain import destinations


def message(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b"".join(_header(name.encode(), value.encode()) for name, value in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    body = prelude + struct.pack("!I", zlib.crc32(prelude)) + encoded + payload
    return body + struct.pack("!I", zlib.crc32(body))


def _header(name: bytes, value: bytes) -> bytes:
    """A string header (type 7): lengths in bytes, not characters."""
    return struct.pack("!B", len(name)) + name + b"\x07" + struct.pack("!H", len(value)) + value


def payload_chunk(data: bytes) -> bytes:
    return message(
        {
            ":event-type": "PayloadChunk",
            ":content-type": "application/octet-stream",
            ":message-type": "event",
        },
        data,
    )


def invoke_complete(details: dict[str, Any]) -> bytes:
    return message(
        {
            ":event-type": "InvokeComplete",
            ":content-type": "application/json",
            ":message-type": "event",
        },
        json.dumps(details).encode(),
    )


async def invoke_events(
    sink: asyncio.Queue[Any],
    task: asyncio.Future[Any],
    first: asyncio.Future[Any] | None,
    log_tail: bool,
) -> AsyncIterator[bytes]:
    """InvokeWithResponseStream's events: the runtime's chunks as they come (`first`, then
    `sink`, when it streams), else its whole payload; then `InvokeComplete`. (An async
    generator: here, not in api/invoke.py, which mypyc compiles and which has none.)"""
    if first is not None:  # the runtime streams: relay until it ends
        item = first.result()
        while item[0] != "end":
            if item[0] == "chunk":
                yield payload_chunk(item[1])
            item = await sink.get()
    result = await task
    outcome = result.outcome
    if not outcome.streamed and not outcome.function_error:
        yield payload_chunk(outcome.payload)
    details: dict[str, str] = {}
    if outcome.function_error:
        details["ErrorCode"] = outcome.error_type or "Unhandled"
        details["ErrorDetails"] = destinations.error_message_of(outcome.payload)
    if log_tail:
        details["LogResult"] = base64.b64encode(outcome.log_tail).decode()
    yield invoke_complete(details)
