"""Admission: may this invocation attempt run now? (spec §8.2)

The account pool (default 1,000) is shared by functions without reserved concurrency; a
function with reserved concurrency is capped by it and has it to itself. A slot is taken
before an environment is borrowed and given back on every exit path: a `Lease`, held with
`async with limiter.lease(fn): ...` or by hand (`take`/`wait`, `give`: service.attempt, the
path of every invocation).
Rules: https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html

Alone on its store an engine counts by itself. Engines sharing PostgreSQL count cluster-wide
with `quotas` (service.cluster.SharedQuotas): each engine holds a grant of every pool it uses,
leased from the store, and admits a call only inside it, so taking a slot costs no round trip
unless the grant is used up (docs/CLUSTER.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from lamina.domain import errors, limits
from lamina.domain.cluster import UNRESERVED

RESERVED_FULL = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_FULL = "ConcurrentInvocationLimitExceeded"


class Quotas(Protocol):
    """This engine's grants of the pools, when engines share the store."""

    def allows(self, pool: str, in_flight: int) -> bool: ...
    def note(self, pool: str, in_flight: int) -> None: ...
    async def grow(self, pool: str, in_flight: int, reason: str) -> None: ...
    async def room(self, pool: str, in_flight: int, wanted: int) -> int: ...
    def shrink(self, pool: str) -> None: ...


class ConcurrencyLimiter:
    """Counts invocations in flight per function and in the unreserved pool."""

    def __init__(self, account_limit: int, quotas: Quotas | None = None) -> None:
        self.account_limit = account_limit
        self.quotas = quotas
        self.reserved: dict[str, int] = {}
        self.in_flight: Counter[str] = Counter()
        self.unreserved_in_flight = 0
        # provisioned concurrency is carved out of a function's reservation: calls of a
        # version it does not cover share what is left (set by the app: ProvisionedService)
        self.provisioned_total: Callable[[str], int] = lambda function: 0
        self.provisioned_for: Callable[[str, str], bool] = lambda function, version: False
        self.provisioned_in_flight: Counter[str] = Counter()

    @property
    def unreserved_limit(self) -> int:
        return self.account_limit - sum(self.reserved.values())

    def pool_of(self, function: str) -> str:
        return function if function in self.reserved else UNRESERVED

    def used(self, pool: str) -> int:
        """Invocations in flight on this engine counted in `pool`."""
        return self.unreserved_in_flight if pool == UNRESERVED else self.in_flight[pool]

    def available(self, function: str) -> int:
        """How many more invocations of `function` may start now on this engine's count (with
        shared quotas: its grant may have to grow first)."""
        reserved = self.reserved.get(function)
        if reserved is not None:
            return max(0, reserved - self.in_flight[function])
        return max(0, self.unreserved_limit - self.unreserved_in_flight)

    async def room(self, function: str, wanted: int) -> int:
        """How many of `wanted` invocations of `function` may start now (the async
        dispatcher claims no more; with shared quotas, after asking the store to grow this
        engine's grant toward it)."""
        free = min(wanted, self.available(function))
        if self.quotas is None or free <= 0:
            return free
        pool = self.pool_of(function)
        return await self.quotas.room(pool, self.used(pool), free)

    def _check(self, function: str, covered: bool | None = None) -> tuple[str, int, str]:
        """(pool, in flight in it, throttle reason), or the throttle Lambda answers;
        `covered` False: a call of a version no provisioned concurrency covers, which may
        only use the part of the reservation provisioned concurrency leaves."""
        reserved = self.reserved.get(function)
        if reserved is not None:
            used = self.in_flight[function]
            if used >= reserved:
                raise errors.TooManyRequests(RESERVED_FULL)
            if covered is False and (
                used - self.provisioned_in_flight[function]
                >= reserved - self.provisioned_total(function)
            ):
                raise errors.TooManyRequests(RESERVED_FULL)
            return function, used, RESERVED_FULL
        if self.unreserved_in_flight >= self.unreserved_limit:
            raise errors.TooManyRequests(ACCOUNT_FULL)
        return UNRESERVED, self.unreserved_in_flight, ACCOUNT_FULL

    async def acquire(self, function: str, covered: bool | None = None) -> None:
        """Take a slot for `function`, or raise the throttle Lambda answers (with shared
        quotas, after asking the store for more when this engine's grant is used up)."""
        pool, used, reason = self._check(function, covered)
        quotas = self.quotas
        if quotas is not None:
            while not quotas.allows(pool, used):
                await quotas.grow(pool, used, reason)
                pool, used, reason = self._check(function, covered)  # others came meanwhile
            quotas.note(pool, used + 1)
        self._count(function, pool)

    def take(self, function: str, covered: bool | None = None) -> None:
        """`acquire` for an engine alone on its store (no quotas: nothing to wait for), in
        one plain call: the path of every invocation."""
        self._count(function, self._check(function, covered)[0])

    def _count(self, function: str, pool: str) -> None:
        self.in_flight[function] += 1
        if pool == UNRESERVED:
            self.unreserved_in_flight += 1

    def release(self, function: str) -> None:
        self.in_flight[function] -= 1
        if function not in self.reserved:
            self.unreserved_in_flight -= 1

    def lease(self, function: str, version: str | None = None) -> Lease:
        """`async with limiter.lease(fn):` holds a slot for the block; with the `version`
        called, a version provisioned concurrency does not cover gets only what the
        reservation has left beside it (AWS's rule)."""
        if version is None or function not in self.reserved:
            return Lease(self, function)
        return Lease(self, function, self.provisioned_for(function, version))

    def check_reservation(self, function: str, reserved: int) -> None:
        """Refuse a reservation that leaves fewer than 100 unreserved (spec §2.4)."""
        others = sum(v for k, v in self.reserved.items() if k != function)
        if self.account_limit - others - reserved < limits.MIN_UNRESERVED:
            raise errors.InvalidParameterValue(
                "Specified ReservedConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of "
                f"[{limits.MIN_UNRESERVED}].",
                typed=False,
            )

    def set_reserved(self, function: str, reserved: int | None) -> None:
        """Change a reservation; invocations in flight keep the pool they were counted in."""
        was = self.reserved.get(function)
        if was == reserved:
            return
        if was is None and reserved is not None:
            self.unreserved_in_flight -= self.in_flight[function]
        elif was is not None and reserved is None:
            self.unreserved_in_flight += self.in_flight[function]
        if reserved is None:
            self.reserved.pop(function, None)
        else:
            self.reserved[function] = reserved
        if self.quotas is not None:  # grants sized for the old limits go back to the store
            self.quotas.shrink(UNRESERVED)
            self.quotas.shrink(function)


class Lease:
    """A concurrency slot held for an `async with` block, or taken and given back by hand
    (`take` or `await wait()`, then `give`: the attempt's path, no coroutine per step)."""

    __slots__ = ("covered", "function", "limiter", "provisioned")

    def __init__(
        self, limiter: ConcurrencyLimiter, function: str, covered: bool | None = None
    ) -> None:
        self.limiter = limiter
        self.function = function
        self.covered = covered
        self.provisioned = False

    def take(self) -> bool:
        """Take the slot now (True), or raise the throttle; False when engines share the
        store and taking it may need a round trip first: then `await wait()`."""
        limiter = self.limiter
        if limiter.quotas is not None:
            return False
        limiter.take(self.function, self.covered)
        self._taken()
        return True

    async def wait(self) -> None:
        """Take the slot, asking the store for a larger grant if this engine's is used up."""
        await self.limiter.acquire(self.function, self.covered)
        self._taken()

    def _taken(self) -> None:
        self.provisioned = self.covered is True  # a call of a covered version
        if self.provisioned:
            self.limiter.provisioned_in_flight[self.function] += 1

    def give(self) -> None:
        """Give the slot back."""
        if self.provisioned:
            self.limiter.provisioned_in_flight[self.function] -= 1
        self.limiter.release(self.function)

    async def __aenter__(self) -> None:
        if not self.take():
            await self.wait()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.give()
