"""What happened: invocation timelines and function logs, for the CLI, API and console."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from lamina.domain.model import AttemptRecord, InvocationSummary
from lamina.domain.observed import InvocationFilter
from lamina.service.ports import Store
from lamina.service.records import Recorder


class LogSource(Protocol):
    def read(
        self,
        function: str,
        since: str | None = None,
        limit: int = 1000,
        cursor: dict[str, int] | None = None,
    ) -> tuple[list[tuple[str, str, str]], dict[str, int]]: ...
    def runs(
        self, function: str, environment: str, request_id: str, max_lines: int = 500
    ) -> list[list[tuple[str, str]]]: ...


@dataclass(frozen=True)
class AttemptLog:
    """The log lines of one attempt, from its environment's stream."""

    attempt: int
    environment: str
    lines: list[tuple[str, str]]


class ObserveService:
    """Reads attempt records and logs back."""

    def __init__(
        self,
        store: Store,
        recorder: Recorder,
        logs: LogSource,
        flush_logs: Callable[[str], None] = lambda name: None,
    ) -> None:
        self.store = store
        self.recorder = recorder
        self.logs = logs
        self.flush_logs = flush_logs

    async def invocations(
        self, function: str | None, limit: int, before: float
    ) -> list[InvocationSummary]:
        await self.recorder.flush()
        return await self.store.list_invocations(function, limit, before)

    async def timeline(
        self, request_id: str
    ) -> tuple[InvocationSummary | None, list[AttemptRecord]]:
        await self.recorder.flush()
        return await self.store.get_invocation(request_id)

    def function_logs(
        self, function: str, since: str | None, limit: int, cursor: dict[str, int] | None = None
    ) -> tuple[list[tuple[str, str, str]], dict[str, int]]:
        """Lines of a function's log streams, and the cursor to read on from."""
        self.flush_logs(function)
        return self.logs.read(function, since, limit, cursor)

    async def find(self, wanted: InvocationFilter) -> list[InvocationSummary]:
        """Invocations by function, type, outcome and time, newest first."""
        await self.recorder.flush()
        return await self.store.find_invocations(wanted)

    def attempt_logs(self, function: str, records: list[AttemptRecord]) -> list[AttemptLog]:
        """The log lines of each attempt in `records` (one invocation's timeline)."""
        self.flush_logs(function)
        attempts = [
            r
            for r in records
            if r.kind == "attempt" and str(r.detail.get("environment", "")).isalnum()
        ]
        runs: dict[str, list[list[tuple[str, str]]]] = {}
        found = []
        for record in attempts:
            environment = str(record.detail["environment"])
            if environment not in runs:
                runs[environment] = self.logs.runs(function, environment, record.request_id)
            lines = runs[environment].pop(0) if runs[environment] else []
            found.append(AttemptLog(int(record.detail.get("attempt", 0)), environment, lines))
        return found
