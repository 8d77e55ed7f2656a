"""Request ids: random UUIDs in AWS's format, cheaper than `str(uuid.uuid4())`.

A Lambda request id is a version-4 UUID (`8a6e0d51-6c2f-4b5e-9f0e-2a1c3b4d5e6f`). One is made
for every API request, on the hot path; `uuid.uuid4()` builds a `UUID` object (an int, its
checks, its `__str__`) only to format it. This takes the same 16 random bytes from the OS and
formats them directly: the same format, the same randomness, about a third of the time.
"""

from __future__ import annotations

import os

_VARIANT = "89ab" * 4  # the variant nibble: 10xx


def request_id() -> str:
    """A new random (version 4, RFC 4122 variant) UUID, as AWS writes request ids."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16)]}{h[17:20]}-{h[20:]}"


def hex_id() -> str:
    """The same UUID as 32 hex digits without dashes (`uuid.uuid4().hex`): environment ids."""
    h = os.urandom(16).hex()
    return f"{h[:12]}4{h[13:16]}{_VARIANT[int(h[16], 16)]}{h[17:]}"
