"""Durable executions in the SQL stores: one row per execution, written with compare-and-set.

Every change of an execution (a checkpoint, a timer, a callback, an invocation's start or
end) reads the row, applies `domain.durable` and writes it back only if `seq` is unchanged,
so engines sharing PostgreSQL never overwrite each other's change: the loser reads again.
"""

from __future__ import annotations

from typing import Any

from lamina.domain.durable import Execution

ExecutionRow = tuple[str, str, str, str, str, float, float | None]


def _columns(ex: Execution) -> dict[str, Any]:
    return {"arn": ex.arn, "function": ex.function, "version": ex.version, "name": ex.name,
            "status": ex.status, "started_at": ex.started_at, "ended_at": ex.ended_at,
            "due_at": ex.next_due(), "expires_at": ex.expires_at, "doc": ex.to_json()}


class DurableSql:
    """The durable execution operations of `SqlStore` (over its `_query` and `_change`)."""

    async def _query(self, name: str, params: dict[str, Any] | None = None) -> list[Any]:
        raise NotImplementedError

    async def _change(self, *steps: Any) -> list[list[Any]]:
        raise NotImplementedError

    async def insert_execution(self, ex: Execution) -> bool:
        """Store a new execution; False if its function already has one of that name."""
        (rows,) = await self._change(("insert_execution", _columns(ex)))
        return bool(rows)

    async def get_execution(self, arn: str) -> tuple[int, Execution] | None:
        rows = await self._query("get_execution", {"arn": arn})
        return (rows[0][0], Execution.from_json(rows[0][1])) if rows else None

    async def find_execution(self, function: str, name: str) -> tuple[int, Execution] | None:
        rows = await self._query("find_execution", {"function": function, "name": name})
        return (rows[0][0], Execution.from_json(rows[0][1])) if rows else None

    async def update_execution(self, ex: Execution, seq: int) -> bool:
        """Write `ex` if the row is still at `seq`; False if someone changed it first."""
        (rows,) = await self._change(("update_execution", {**_columns(ex), "seq": seq}))
        return bool(rows)

    async def list_executions(self, function: str) -> list[ExecutionRow]:
        return [tuple(r) for r in await self._query("list_executions", {"function": function})]

    async def due_executions(self, now: float, limit: int) -> list[str]:
        return [r[0] for r in await self._query("due_executions", {"now": now, "limit": limit})]

    async def next_execution_due(self) -> float | None:
        rows = await self._query("next_execution_due")
        return rows[0][0] if rows else None

    async def running_executions(self) -> list[str]:
        return [r[0] for r in await self._query("running_executions")]

    async def purge_executions(self, now: float) -> int:
        (rows,) = await self._change(("purge_executions", {"now": now}))
        return len(rows)


class DurableMemory:
    """The same operations for `MemoryStore` (the reference semantics)."""

    def __init__(self) -> None:
        self.executions: dict[str, tuple[int, str]] = {}

    async def insert_execution(self, ex: Execution) -> bool:
        if any(Execution.from_json(doc).name == ex.name and Execution.from_json(doc).function
               == ex.function for _, doc in self.executions.values()):
            return False
        self.executions[ex.arn] = (1, ex.to_json())
        return True

    async def get_execution(self, arn: str) -> tuple[int, Execution] | None:
        found = self.executions.get(arn)
        return (found[0], Execution.from_json(found[1])) if found else None

    async def find_execution(self, function: str, name: str) -> tuple[int, Execution] | None:
        for seq, doc in self.executions.values():
            ex = Execution.from_json(doc)
            if ex.function == function and ex.name == name:
                return seq, ex
        return None

    async def update_execution(self, ex: Execution, seq: int) -> bool:
        found = self.executions.get(ex.arn)
        if found is None or found[0] != seq:
            return False
        self.executions[ex.arn] = (seq + 1, ex.to_json())
        return True

    def _all(self) -> list[Execution]:
        return [Execution.from_json(doc) for _, doc in self.executions.values()]

    async def list_executions(self, function: str) -> list[ExecutionRow]:
        found = sorted((e for e in self._all() if e.function == function),
                       key=lambda e: (e.started_at, e.arn))
        return [(e.arn, e.function, e.version, e.name, e.status, e.started_at, e.ended_at)
                for e in found]

    async def due_executions(self, now: float, limit: int) -> list[str]:
        due = sorted((e.next_due(), e.arn) for e in self._all()
                     if e.next_due() is not None and e.next_due() <= now)  # type: ignore[operator]
        return [arn for _, arn in due[:limit]]

    async def next_execution_due(self) -> float | None:
        times = [t for t in (e.next_due() for e in self._all()) if t is not None]
        return min(times) if times else None

    async def running_executions(self) -> list[str]:
        return [e.arn for e in self._all() if e.status == "RUNNING"]

    async def purge_executions(self, now: float) -> int:
        gone = [e.arn for e in self._all() if e.expires_at is not None and e.expires_at < now]
        for arn in gone:
            del self.executions[arn]
        return len(gone)
