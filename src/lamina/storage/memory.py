"""The in-memory store: the reference semantics of the Store operations, for unit tests."""

from __future__ import annotations

import copy
import dataclasses

from lamina.domain import errors
from lamina.domain.model import AttemptRecord, FunctionConfig, InvocationSummary


class MemoryStore:
    """Store kept in dictionaries; nothing survives the process."""

    def __init__(self) -> None:
        self.functions: dict[str, dict[str, str]] = {}
        self.versions: dict[tuple[str, str], FunctionConfig] = {}
        self.invocations: dict[str, InvocationSummary] = {}
        self.records: list[AttemptRecord] = []

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def create_function(self, config: FunctionConfig, tags: dict[str, str],
                              created_at: float) -> None:
        if config.name in self.functions:
            raise errors.ResourceConflict(f"Function already exist: {config.name}")
        self.functions[config.name] = dict(tags)
        self.versions[(config.name, config.version)] = config

    async def put_version(self, config: FunctionConfig) -> None:
        self.versions[(config.name, config.version)] = config

    async def delete_function(self, name: str) -> None:
        self.functions.pop(name, None)
        for key in [k for k in self.versions if k[0] == name]:
            del self.versions[key]

    async def list_versions(self) -> list[FunctionConfig]:
        return [self.versions[k] for k in sorted(self.versions)]

    async def list_function_tags(self) -> dict[str, dict[str, str]]:
        return copy.deepcopy(self.functions)

    async def write_records(self, summaries: list[InvocationSummary],
                            records: list[AttemptRecord]) -> None:
        for summary in summaries:
            self.invocations[summary.request_id] = dataclasses.replace(summary)
        self.records.extend(records)

    async def list_invocations(self, function: str | None, limit: int,
                               before: float) -> list[InvocationSummary]:
        found = [s for s in self.invocations.values()
                 if (function is None or s.function == function) and s.accepted_at < before]
        found.sort(key=lambda s: s.accepted_at, reverse=True)
        return found[:limit]

    async def get_invocation(self, request_id: str
                             ) -> tuple[InvocationSummary | None, list[AttemptRecord]]:
        return (self.invocations.get(request_id),
                [r for r in self.records if r.request_id == request_id])
