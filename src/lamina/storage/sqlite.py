"""The default store: one SQLite file in the data directory, written by one thread.

Every operation runs on a single dedicated thread that owns the connection, so the event loop
never blocks on disk. WAL journal with `synchronous=FULL`: a write is on disk when its call
returns, which is what lets the API answer 202 only for an event that is durable.

Writes are group-committed: writes that arrive while a commit is under way are applied
together in the next transaction, each inside its own SAVEPOINT, so one failing write does
not undo the others and many concurrent writers share one fsync.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from lamina.domain import errors
from lamina.domain.model import (
    AsyncEvent,
    AttemptRecord,
    Delivery,
    EventInvokeConfig,
    FunctionConfig,
    InvocationSummary,
)
from lamina.storage import queries, rows

T = TypeVar("T")
Write = Callable[[sqlite3.Connection], Any]


class SqliteStore:
    """Store on SQLite (see the module docstring)."""

    all_claims_are_stale = True  # one node: claims found at start belong to a dead process

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sql = queries.load("sqlite")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lamina-sqlite")
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[Write, asyncio.Future[Any]]] = []
        self._committing = False

    # plumbing ----------------------------------------------------------------------
    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._db is not None
            return fn(self._db)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _write(self, fn: Write) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((fn, future))
        if not self._committing:
            self._committing = True
            loop.create_task(self._commit_pending())
        return await future

    async def _commit_pending(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    outcomes = await loop.run_in_executor(self._executor, self._apply, batch)
                except Exception as exc:  # the commit itself failed: nothing in it happened
                    outcomes = [(False, exc)] * len(batch)
                for (_, future), (ok, value) in zip(batch, outcomes):
                    if future.done():
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        finally:
            self._committing = False

    def _apply(self, batch: list[tuple[Write, asyncio.Future[Any]]]) -> list[tuple[bool, Any]]:
        db = self._db
        assert db is not None
        outcomes: list[tuple[bool, Any]] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for fn, _ in batch:
                db.execute("SAVEPOINT w")
                try:
                    outcomes.append((True, fn(db)))
                except Exception as exc:
                    db.execute("ROLLBACK TO w")
                    outcomes.append((False, exc))
                db.execute("RELEASE w")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return outcomes

    def _exec(self, name: str, params: dict[str, Any]) -> Write:
        sql = self._sql[name]
        return lambda db: db.execute(sql, params).rowcount

    # lifecycle ---------------------------------------------------------------------
    async def open(self) -> None:
        def connect() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=5000")
            _migrate(db)
            self._db = db
        await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        if self._db is not None:
            while self._committing:
                await asyncio.sleep(0.001)
            await self._read(lambda db: db.close())
            self._db = None
        self._executor.shutdown(wait=True)

    # functions ---------------------------------------------------------------------
    async def create_function(self, config: FunctionConfig, tags: dict[str, str],
                              created_at: float) -> None:
        def write(db: sqlite3.Connection) -> None:
            try:
                db.execute(self._sql["insert_function"], {
                    "name": config.name, "created_at": created_at, "tags": json.dumps(tags)})
            except sqlite3.IntegrityError:
                raise errors.ResourceConflict(f"Function already exist: {config.name}") from None
            db.execute(self._sql["put_version"], rows.version_row(config))
        await self._write(write)

    async def put_version(self, config: FunctionConfig) -> None:
        await self._write(self._exec("put_version", rows.version_row(config)))

    async def delete_function(self, name: str) -> None:
        await self._write(self._exec("delete_function", {"name": name}))

    async def list_versions(self) -> list[FunctionConfig]:
        def read(db: sqlite3.Connection) -> list[FunctionConfig]:
            return [rows.config_from_row(r[2]) for r in db.execute(self._sql["list_versions"])]
        return await self._read(read)

    async def list_function_tags(self) -> dict[str, dict[str, str]]:
        def read(db: sqlite3.Connection) -> dict[str, dict[str, str]]:
            return {r[0]: json.loads(r[1]) for r in db.execute(self._sql["list_function_tags"])}
        return await self._read(read)

    async def set_reserved_concurrency(self, name: str, reserved: int | None) -> None:
        await self._write(self._exec("set_reserved_concurrency",
                                     {"name": name, "reserved": reserved}))

    async def list_reserved_concurrency(self) -> dict[str, int]:
        def read(db: sqlite3.Connection) -> dict[str, int]:
            return dict(db.execute(self._sql["list_reserved_concurrency"]).fetchall())
        return await self._read(read)

    # attempt records ---------------------------------------------------------------
    async def write_records(self, summaries: list[InvocationSummary],
                            records: list[AttemptRecord]) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.executemany(self._sql["upsert_invocation"], [rows.summary_row(s) for s in summaries])
            db.executemany(self._sql["insert_record"], [rows.record_row(r) for r in records])
        await self._write(write)

    async def list_invocations(self, function: str | None, limit: int,
                               before: float) -> list[InvocationSummary]:
        def read(db: sqlite3.Connection) -> list[InvocationSummary]:
            cursor = db.execute(self._sql["list_invocations"],
                                {"function": function, "limit": limit, "before": before})
            return [InvocationSummary(*r) for r in cursor]
        return await self._read(read)

    async def get_invocation(self, request_id: str
                             ) -> tuple[InvocationSummary | None, list[AttemptRecord]]:
        def read(db: sqlite3.Connection) -> tuple[InvocationSummary | None, list[AttemptRecord]]:
            row = db.execute(self._sql["get_invocation"], {"request_id": request_id}).fetchone()
            records = [AttemptRecord(r[0], r[1], r[2], json.loads(r[3]))
                       for r in db.execute(self._sql["list_records"], {"request_id": request_id})]
            return (InvocationSummary(*row) if row else None), records
        return await self._read(read)

    # the async event queue ---------------------------------------------------------
    async def enqueue_event(self, event: AsyncEvent) -> None:
        await self._write(self._exec("enqueue_event", rows.event_row(event)))

    async def due_functions(self, now: float) -> dict[str, int]:
        def read(db: sqlite3.Connection) -> dict[str, int]:
            return dict(db.execute(self._sql["due_functions"], {"now": now}).fetchall())
        return await self._read(read)

    async def claim_events(self, function: str, now: float, limit: int, owner: str,
                           lease_until: float) -> list[AsyncEvent]:
        params = {"function": function, "now": now, "limit": limit, "owner": owner,
                  "lease_until": lease_until}

        def write(db: sqlite3.Connection) -> list[AsyncEvent]:
            return [AsyncEvent(*r) for r in db.execute(self._sql["claim_events"], params)]
        claimed = await self._write(write)
        return sorted(claimed, key=lambda e: e.due_at)

    async def next_due(self, after: float) -> float | None:
        return await self._read(
            lambda db: db.execute(self._sql["next_due"], {"after": after}).fetchone()[0])

    async def next_delivery_due(self) -> float | None:
        return await self._read(
            lambda db: db.execute(self._sql["next_delivery_due"]).fetchone()[0])

    async def reschedule_event(self, event: AsyncEvent) -> None:
        await self._write(self._exec("reschedule_event", {
            "request_id": event.request_id, "due_at": event.due_at,
            "invocations": event.invocations, "throttles": event.throttles}))

    async def finish_event(self, request_id: str, deliveries: list[Delivery]) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.executemany(self._sql["enqueue_delivery"], [rows.delivery_row(d) for d in deliveries])
            db.execute(self._sql["finish_event"], {"request_id": request_id})
        await self._write(write)

    async def release_claims(self, now: float, owner: str) -> int:
        def write(db: sqlite3.Connection) -> int:
            params = {"now": now, "owner": owner}
            events = db.execute(self._sql["release_expired_events"], params).rowcount
            return events + db.execute(self._sql["release_expired_deliveries"], params).rowcount
        return int(await self._write(write))

    async def queue_stats(self) -> dict[str, tuple[int, float]]:
        def read(db: sqlite3.Connection) -> dict[str, tuple[int, float]]:
            return {r[0]: (r[1], r[2]) for r in db.execute(self._sql["queue_stats"])}
        return await self._read(read)

    # event invoke configs -----------------------------------------------------------
    async def put_event_config(self, config: EventInvokeConfig) -> None:
        await self._write(self._exec("put_event_config", rows.event_config_row(config)))

    async def delete_event_config(self, function: str, qualifier: str) -> None:
        await self._write(self._exec("delete_event_config",
                                     {"function": function, "qualifier": qualifier}))

    async def list_event_configs(self) -> list[EventInvokeConfig]:
        def read(db: sqlite3.Connection) -> list[EventInvokeConfig]:
            return [rows.event_config_from_row(r[0])
                    for r in db.execute(self._sql["list_event_configs"])]
        return await self._read(read)

    # destination deliveries ----------------------------------------------------------
    async def enqueue_delivery(self, delivery: Delivery) -> None:
        await self._write(self._exec("enqueue_delivery", rows.delivery_row(delivery)))

    async def claim_deliveries(self, now: float, limit: int, owner: str,
                               lease_until: float) -> list[Delivery]:
        params = {"now": now, "limit": limit, "owner": owner, "lease_until": lease_until}

        def write(db: sqlite3.Connection) -> list[Delivery]:
            return [rows.delivery_from_row(r)
                    for r in db.execute(self._sql["claim_deliveries"], params)]
        return await self._write(write)

    async def reschedule_delivery(self, delivery: Delivery) -> None:
        await self._write(self._exec("reschedule_delivery", {
            "id": delivery.id, "due_at": delivery.due_at, "attempts": delivery.attempts}))

    async def finish_delivery(self, delivery_id: str) -> None:
        await self._write(self._exec("finish_delivery", {"id": delivery_id}))


def _migrate(db: sqlite3.Connection) -> None:
    current = db.execute("PRAGMA user_version").fetchone()[0]
    for number, sql in queries.migrations("sqlite"):
        if number > current:
            db.executescript("BEGIN IMMEDIATE;\n" + sql + f"\nPRAGMA user_version = {number};\nCOMMIT;")
