"""Request ids: UUIDs in AWS's format, cheaper than `str(uuid.uuid4())`.

A Lambda request id is a version-4 UUID (`8a6e0d51-6c2f-4b5e-9f0e-2a1c3b4d5e6f`). One is made
for every API request, on the hot path; `uuid.uuid4()` builds a `UUID` object (an int, its
checks, its `__str__`) only to format it, from 16 bytes read from the OS (a system call).

`request_id` keeps that format (the version nibble 4, the RFC 4122 variant) but leads with the
time in milliseconds (48 bits, as UUIDv7 does) and fills the other 74 bits from `random` (the
Mersenne Twister, seeded from the OS at start and again in a forked child): ids made one after
another sort one after another. Every invocation's record is keyed by its request id; a random
key puts each new row in a random page of that index (an index page written per call, half of
what the records' writes cost), a time-ordered one appends them (docs/PERFORMANCE.md). Nothing
reads a request id for its randomness: AWS's are opaque strings to callers and functions.
"""

from __future__ import annotations

import os
import time
from random import getrandbits

# the variant nibble (10xx) for a random hex digit, looked up by the digit itself (an
# `int(digit, 16)` per id costs more than the rest of the id)
_VARIANT = {digit: "89ab"[int(digit, 16) % 4] for digit in "0123456789abcdef"}


def request_id() -> str:
    """A new version-4-formatted (RFC 4122 variant) UUID, as AWS writes request ids, that
    sorts after the ones made before it (to the millisecond)."""
    h = "%031x" % (time.time_ns() // 1_000_000 << 76 | getrandbits(76))  # `%`: no __format__
    return f"{h[:8]}-{h[8:12]}-4{h[12:15]}-{_VARIANT[h[15]]}{h[16:19]}-{h[19:]}"


def hex_id() -> str:
    """A random version 4 UUID as 32 hex digits without dashes (`uuid.uuid4().hex`):
    environment ids."""
    h = os.urandom(16).hex()
    return f"{h[:12]}4{h[13:16]}{_VARIANT[h[16]]}{h[17:]}"
