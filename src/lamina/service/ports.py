"""What the services need from the outside, as Protocols (satisfied structurally).

`storage.*` implements `Store`; `runtime.pool.EnvironmentPool` implements `EnvironmentPool`.
The composition root (`app.py`) is the one place they are wired together.
"""

from __future__ import annotations

from typing import Protocol

from lamina.domain.model import (
    AttemptRecord,
    FunctionConfig,
    Invocation,
    InvocationOutcome,
    InvocationSummary,
    Package,
)


class Store(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def create_function(self, config: FunctionConfig, tags: dict[str, str],
                              created_at: float) -> None: ...
    async def put_version(self, config: FunctionConfig) -> None: ...
    async def delete_function(self, name: str) -> None: ...
    async def list_versions(self) -> list[FunctionConfig]: ...
    async def list_function_tags(self) -> dict[str, dict[str, str]]: ...
    async def write_records(self, summaries: list[InvocationSummary],
                            records: list[AttemptRecord]) -> None: ...
    async def list_invocations(self, function: str | None, limit: int,
                               before: float) -> list[InvocationSummary]: ...
    async def get_invocation(self, request_id: str
                             ) -> tuple[InvocationSummary | None, list[AttemptRecord]]: ...


class Environment(Protocol):
    id: str

    async def invoke(self, invocation: Invocation, want_tail: bool = False
                     ) -> InvocationOutcome: ...


class EnvironmentPool(Protocol):
    async def acquire(self, config: FunctionConfig) -> Environment: ...
    def release(self, env: Environment) -> None: ...
    def retire(self, name: str) -> None: ...


class Packages(Protocol):
    """Deployment packages (storage.code.CodeStore)."""

    def put(self, data: bytes) -> Package: ...
    def read(self, key: str) -> bytes | None: ...
