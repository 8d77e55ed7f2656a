"""What happened: invocation timelines and function logs, for the CLI, API and console."""

from __future__ import annotations

from typing import Protocol

from lamina.domain.model import AttemptRecord, InvocationSummary
from lamina.service.ports import Store
from lamina.service.records import Recorder


class LogSource(Protocol):
    def read(self, function: str, since: str | None = None, limit: int = 1000,
             cursor: dict[str, int] | None = None
             ) -> tuple[list[tuple[str, str, str]], dict[str, int]]: ...


class ObserveService:
    """Reads attempt records and logs back."""

    def __init__(self, store: Store, recorder: Recorder, logs: LogSource) -> None:
        self.store = store
        self.recorder = recorder
        self.logs = logs

    async def invocations(self, function: str | None, limit: int,
                          before: float) -> list[InvocationSummary]:
        await self.recorder.flush()
        return await self.store.list_invocations(function, limit, before)

    async def timeline(self, request_id: str
                       ) -> tuple[InvocationSummary | None, list[AttemptRecord]]:
        await self.recorder.flush()
        return await self.store.get_invocation(request_id)

    def function_logs(self, function: str, since: str | None, limit: int,
                      cursor: dict[str, int] | None = None
                      ) -> tuple[list[tuple[str, str, str]], dict[str, int]]:
        """Lines of a function's log streams, and the cursor to read on from."""
        return self.logs.read(function, since, limit, cursor)
