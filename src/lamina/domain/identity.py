"""Who made a request: the account and principal a verified signature names (pure).

With `--auth none` (the default on loopback) nothing is verified and every request acts as the
engine's own account (`--account`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    account: str  # the 12-digit account the key belongs to
    access_key: str | None = None
    arn: str | None = None  # the principal, e.g. arn:aws:iam::111122223333:root
    function_arn: str | None = None  # set for a function's own short-lived credentials
