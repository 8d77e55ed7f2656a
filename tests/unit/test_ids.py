"""domain/ids: ids in the formats AWS and `uuid` write, made from os.urandom."""

from __future__ import annotations

import re
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
