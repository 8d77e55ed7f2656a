"""Admission: may this invocation attempt run now? (spec §8.2)

The account pool (default 1,000) is shared by functions without reserved concurrency; a
function with reserved concurrency is capped by it and has it to itself. A lease is taken
before an environment is borrowed and released on every exit path (`with limiter.lease(fn)`).
Theory and rules: https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from lamina.domain import errors


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

    @contextmanager
    def lease(self, function: str) -> Iterator[None]:
        reserved = self.reserved.get(function)
        if reserved is not None:
            if self.in_flight[function] >= reserved:
                raise errors.TooManyRequests("ReservedFunctionConcurrentInvocationLimitExceeded")
        elif self.unreserved_in_flight >= self.unreserved_limit:
            raise errors.TooManyRequests("ConcurrentInvocationLimitExceeded")
        self.in_flight[function] += 1
        if reserved is None:
            self.unreserved_in_flight += 1
        try:
            yield
        finally:
            self.in_flight[function] -= 1
            if reserved is None:
                self.unreserved_in_flight -= 1
