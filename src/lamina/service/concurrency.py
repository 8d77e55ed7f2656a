"""Admission: may this invocation attempt run now? (spec §8.2)

The account pool (default 1,000) is shared by functions without reserved concurrency; a
function with reserved concurrency is capped by it and has it to itself. A slot is taken
before an environment is borrowed and given back on every exit path
(`with limiter.lease(fn)`, or `acquire` / `release` around an async attempt).
Rules: https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from lamina.domain import errors, limits


class ConcurrencyLimiter:
    """Counts invocations in flight per function and in the unreserved pool."""

    def __init__(self, account_limit: int) -> None:
        self.account_limit = account_limit
        self.reserved: dict[str, int] = {}
        self.in_flight: Counter[str] = Counter()
        self.unreserved_in_flight = 0

    @property
    def unreserved_limit(self) -> int:
        return self.account_limit - sum(self.reserved.values())

    def available(self, function: str) -> int:
        """How many more invocations of `function` may start now."""
        reserved = self.reserved.get(function)
        if reserved is not None:
            return max(0, reserved - self.in_flight[function])
        return max(0, self.unreserved_limit - self.unreserved_in_flight)

    def acquire(self, function: str) -> None:
        """Take a slot for `function`, or raise the throttle Lambda answers."""
        reserved = self.reserved.get(function)
        if reserved is not None:
            if self.in_flight[function] >= reserved:
                raise errors.TooManyRequests("ReservedFunctionConcurrentInvocationLimitExceeded",
                                             retry_after=None)
        elif self.unreserved_in_flight >= self.unreserved_limit:
            raise errors.TooManyRequests("ConcurrentInvocationLimitExceeded")
        self.in_flight[function] += 1
        if reserved is None:
            self.unreserved_in_flight += 1

    def release(self, function: str) -> None:
        self.in_flight[function] -= 1
        if function not in self.reserved:
            self.unreserved_in_flight -= 1

    @contextmanager
    def lease(self, function: str) -> Iterator[None]:
        self.acquire(function)
        try:
            yield
        finally:
            self.release(function)

    def check_reservation(self, function: str, reserved: int) -> None:
        """Refuse a reservation that leaves fewer than 100 unreserved (spec §2.4)."""
        others = sum(v for k, v in self.reserved.items() if k != function)
        if self.account_limit - others - reserved < limits.MIN_UNRESERVED:
            raise errors.InvalidParameterValue(
                "Specified ReservedConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of "
                f"[{limits.MIN_UNRESERVED}].", typed=False)

    def set_reserved(self, function: str, reserved: int | None) -> None:
        """Change a reservation; invocations in flight keep the pool they were counted in."""
        was = self.reserved.get(function)
        if was is None and reserved is not None:
            self.unreserved_in_flight -= self.in_flight[function]
        elif was is not None and reserved is None:
            self.unreserved_in_flight += self.in_flight[function]
        if reserved is None:
            self.reserved.pop(function, None)
        else:
            self.reserved[function] = reserved
