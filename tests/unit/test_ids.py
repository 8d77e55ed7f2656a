"""domain/ids: ids in the formats AWS and `uuid` write."""

from __future__ import annotations

import re
import time
import uuid

from lamina.domain import ids


def test_request_ids_are_version_4_uuids_each_new():
    made = {ids.request_id() for _ in range(2000)}
    assert len(made) == 2000
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_hex_ids_are_uuid4_hex_each_new():
    made = {ids.hex_id() for _ in range(2000)}
    assert len(made) == 2000
    for text in made:
        assert re.fullmatch(r"[0-9a-f]{32}", text)
        parsed = uuid.UUID(hex=text)
        assert parsed.hex == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # every variant nibble (8, 9, a, b) turns up
    assert {text[16] for text in made} == set("89ab")


def test_request_ids_sort_in_the_order_they_were_made():
    # the records' index on request ids appends rather than writing a random page per call
    made = [ids.request_id() for _ in range(2000)]
    millis = [int(text[:8] + text[9:13], 16) for text in made]
    assert millis == sorted(millis)
    assert abs(millis[-1] / 1000 - time.time()) < 5
    assert {text[19] for text in made} == set("89ab")
