"""Durable executions in the SQL stores: a row per execution, a row per operation, a row per
history event; a change writes what it changed, with compare-and-set on the execution's row.

A change (a checkpoint, a timer, a callback, an invocation's start or end) reads the
execution's row and the operations it needs, applies `domain.durable`, and writes back the
row (only if `seq` is unchanged), the operations it changed and the events it added, in one
transaction. The operations and events carry the write's `writer` token and land only if
the row now bears it, so engines sharing PostgreSQL never overwrite each other's change: the
loser writes nothing and reads again. A checkpoint's cost follows what it changed, not the
size of the execution.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from lamina.domain.durable import Execution

ExecutionRow = tuple[str, str, str, str, str, float, float | None]


def _columns(ex: Execution, writer: str) -> dict[str, Any]:
    return {
        "arn": ex.arn,
        "function": ex.function,
        "version": ex.version,
        "name": ex.name,
        "status": ex.status,
        "started_at": ex.started_at,
        "ended_at": ex.ended_at,
        "due_at": ex.next_due(),
        "expires_at": ex.expires_at,
        "doc": ex.to_json(),
        "writer": writer,
    }


def _parts(ex: Execution, writer: str) -> list[tuple[str, Any]]:
    """The changed operations and the new events of `ex`, as store steps."""
    steps: list[tuple[str, Any]] = []
    ops = [
        {
            "arn": ex.arn,
            "id": op_id,
            "position": ex.operations[op_id]["_Position"],
            "writer": writer,
            "doc": json.dumps(ex.operations[op_id], separators=(",", ":")),
        }
        for op_id in ex.dirty
    ]
    if ops:
        steps.append(("put_execution_operation", ops))
    events = [
        {
            "arn": ex.arn,
            "event_id": event["EventId"],
            "writer": writer,
            "doc": json.dumps(event, separators=(",", ":")),
        }
        for event in ex.new_events
    ]
    if events:
        steps.append(("add_execution_event", events))
    return steps


def _wanted(ex: Execution, operations: Any) -> Any:
    """The operations to read with `ex`: `all`, or ids (the root operation always, since
    ending the execution changes it), or none (None: the row alone)."""
    if operations is None or operations is all:
        return operations
    ids = operations(ex) if callable(operations) else operations
    return ids if ids is all else list(dict.fromkeys([ex.id, *ids]))


class DurableSql:
    """The durable execution operations of `SqlStore` (over its `_query` and `_change`)."""

    async def _query(self, name: str, params: dict[str, Any] | None = None) -> list[Any]:
        raise NotImplementedError

    async def _change(self, *steps: Any) -> list[list[Any]]:
        raise NotImplementedError

    async def insert_execution(self, ex: Execution) -> bool:
        """Store a new execution; False if its function already has one of that name."""
        writer = uuid.uuid4().hex
        rows, *_ = await self._change(
            ("insert_execution", _columns(ex, writer)), *_parts(ex, writer)
        )
        if rows:
            ex.saved()
        return bool(rows)

    async def get_execution(self, arn: str, operations: Any = None) -> tuple[int, Execution] | None:
        """The execution (its row) and the operations asked for: None, `all` (every one, in
        the order they started), ids, or a function of the row that says which."""
        rows = await self._query("get_execution", {"arn": arn})
        if not rows:
            return None
        ex = Execution.from_json(rows[0][1])
        wanted = _wanted(ex, operations)
        if wanted is all:
            ex.load(
                [json.loads(r[0]) for r in await self._query("execution_operations", {"arn": arn})],
                complete=True,
            )
        elif wanted:
            found = []
            for op_id in wanted:
                op_rows = await self._query("execution_operation", {"arn": arn, "id": op_id})
                found += [json.loads(r[0]) for r in op_rows]
            ex.load(found)
        return rows[0][0], ex

    async def find_execution(self, function: str, name: str) -> tuple[int, Execution] | None:
        rows = await self._query("find_execution", {"function": function, "name": name})
        return (rows[0][0], Execution.from_json(rows[0][1])) if rows else None

    async def update_execution(self, ex: Execution, seq: int) -> bool:
        """Write `ex` if the row is still at `seq`; False if someone changed it first."""
        writer = uuid.uuid4().hex
        rows, *_ = await self._change(
            ("update_execution", {**_columns(ex, writer), "seq": seq}), *_parts(ex, writer)
        )
        if rows:
            ex.saved()
        return bool(rows)

    async def execution_events(
        self, arn: str, offset: int, limit: int, reverse: bool
    ) -> list[dict[str, Any]]:
        name = "execution_events_reversed" if reverse else "execution_events"
        rows = await self._query(name, {"arn": arn, "offset": offset, "limit": limit})
        return [json.loads(r[0]) for r in rows]

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
        *_, rows = await self._change(
            ("purge_execution_operations", {"now": now}),
            ("purge_execution_events", {"now": now}),
            ("purge_executions", {"now": now}),
        )
        return len(rows)


class DurableMemory:
    """The same operations for `MemoryStore` (the reference semantics)."""

    def __init__(self) -> None:
        self.executions: dict[str, tuple[int, str]] = {}
        self.execution_ops: dict[str, dict[str, str]] = {}  # arn → id → doc, in order
        self.execution_log: dict[str, list[str]] = {}  # arn → events

    def _write(self, ex: Execution, seq: int) -> None:
        self.executions[ex.arn] = (seq, ex.to_json())
        ops = self.execution_ops.setdefault(ex.arn, {})
        for op_id in ex.dirty:
            ops[op_id] = json.dumps(ex.operations[op_id])
        self.execution_log.setdefault(ex.arn, []).extend(json.dumps(e) for e in ex.new_events)
        ex.saved()

    async def insert_execution(self, ex: Execution) -> bool:
        if any(
            Execution.from_json(doc).name == ex.name
            and Execution.from_json(doc).function == ex.function
            for _, doc in self.executions.values()
        ):
            return False
        self._write(ex, 1)
        return True

    async def get_execution(self, arn: str, operations: Any = None) -> tuple[int, Execution] | None:
        found = self.executions.get(arn)
        if found is None:
            return None
        ex = Execution.from_json(found[1])
        ops = self.execution_ops.get(arn, {})
        wanted = _wanted(ex, operations)
        if wanted is all:
            ex.load(
                sorted((json.loads(doc) for doc in ops.values()), key=lambda op: op["_Position"]),
                complete=True,
            )
        elif wanted:
            ex.load([json.loads(ops[i]) for i in wanted if i in ops])
        return found[0], ex

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
        self._write(ex, seq + 1)
        return True

    async def execution_events(
        self, arn: str, offset: int, limit: int, reverse: bool
    ) -> list[dict[str, Any]]:
        events = self.execution_log.get(arn, [])
        ordered = list(reversed(events)) if reverse else events
        return [json.loads(e) for e in ordered[offset : offset + limit]]

    def _all(self) -> list[Execution]:
        return [Execution.from_json(doc) for _, doc in self.executions.values()]

    async def list_executions(self, function: str) -> list[ExecutionRow]:
        found = sorted(
            (e for e in self._all() if e.function == function), key=lambda e: (e.started_at, e.arn)
        )
        return [
            (e.arn, e.function, e.version, e.name, e.status, e.started_at, e.ended_at)
            for e in found
        ]

    async def due_executions(self, now: float, limit: int) -> list[str]:
        due = sorted(
            (at, e.arn) for e in self._all() if (at := e.next_due()) is not None and at <= now
        )
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
            self.execution_ops.pop(arn, None)
            self.execution_log.pop(arn, None)
        return len(gone)
