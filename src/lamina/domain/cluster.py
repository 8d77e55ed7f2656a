"""Engines sharing one store: what one engine knows of the others (values, no I/O).

See docs/CLUSTER.md. Times are PostgreSQL's clock (epoch seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

UNRESERVED = "*"  # the pool of functions without reserved concurrency (never a function name)


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """One engine as the store knows it."""

    engine: str
    address: str
    state: str  # "ready" | "draining"
    started_at: float
    lease_until: float
    alive: bool  # its lease has not run out


@dataclass(frozen=True, slots=True)
class Renewal:
    """The answer to a lease renewal: until when (store clock), and whether the lease had run
    out before it (then every grant the engine held is void)."""

    lease_until: float
    lost: bool


@dataclass(frozen=True, slots=True)
class Grant:
    """The answer to a request for more of a pool: how many were given, how many other live
    engines hold (what asking them could free) and how many other engines are live."""

    given: int
    held_by_others: int
    others: int
    renewal: Renewal


@dataclass(frozen=True, slots=True)
class RunningCall:
    """A synchronous call running on some engine, as a retry on another engine finds it."""

    request_id: str
    engine: str
    engine_alive: bool
    started_at: float
