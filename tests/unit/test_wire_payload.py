"""wire.payload decodes UTF-8 itself and leaves every other encoding to json: it accepts and
refuses exactly what json.loads(bytes) does, with the same messages."""

from __future__ import annotations

import json

import pytest

from lamina.api import wire
from lamina.domain import errors

BODIES = [
    b"{}",
    b'{"a": [1, 2.5, null, true]}',
    '{"é": "ü"}'.encode(),
    b"\xef\xbb\xbf{}",  # a UTF-8 BOM: json.loads(bytes) takes it
    '{"a": "é"}'.encode("utf-16"),
    '{"a": 1}'.encode("utf-32"),
    b'"\xed\xa0\x80"',  # a lone surrogate, which json's own decoding lets through
    b"\xff\xfe",
    b"{bad",
    b'{"a": "\xff"}',
    b"[" * 100_000,
    b" \t{}\r\n",  # whitespace around a value
    b"   ",  # whitespace alone: "Expecting value" at its end
    b'{"a": 1} x',  # "Extra data"
    b"[1,]",
    b"nul",
    b'"\\ud800"',
]


@pytest.mark.parametrize("body", BODIES)
def test_payload_accepts_and_refuses_as_json_loads_of_bytes(body: bytes) -> None:
    try:
        json.loads(body)
        expected = None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        expected = str(exc)
    if expected is None:
        assert wire.payload(body, "RequestResponse") == body
    else:
        with pytest.raises(errors.InvalidRequestContent) as raised:
            wire.payload(body, "RequestResponse")
        assert raised.value.message.endswith(expected)
