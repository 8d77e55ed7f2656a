"""The default store: one SQLite file in the data directory, written by one thread.

Every operation runs on a single dedicated thread that owns the connection, so writes are
serialised without locks and the event loop never blocks on disk. WAL journal with
`synchronous=FULL`: a commit is on disk when the call returns.
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
from lamina.domain.model import AttemptRecord, FunctionConfig, InvocationSummary
from lamina.storage import queries, rows

T = TypeVar("T")


class SqliteStore:
    """Store on SQLite (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sql = queries.load("sqlite")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lamina-sqlite")
        self._db: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._db is not None
            return fn(self._db)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

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
            await self._run(lambda db: db.close())
            self._db = None
        self._executor.shutdown(wait=True)

    # functions ---------------------------------------------------------------------
    async def create_function(self, config: FunctionConfig, tags: dict[str, str],
                              created_at: float) -> None:
        def write(db: sqlite3.Connection) -> None:
            try:
                with _transaction(db):
                    db.execute(self._sql["insert_function"], {
                        "name": config.name, "created_at": created_at, "tags": json.dumps(tags)})
                    db.execute(self._sql["put_version"], rows.version_row(config))
            except sqlite3.IntegrityError:
                raise errors.ResourceConflict(f"Function already exist: {config.name}") from None
        await self._run(write)

    async def put_version(self, config: FunctionConfig) -> None:
        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(self._sql["put_version"], rows.version_row(config))
        await self._run(write)

    async def delete_function(self, name: str) -> None:
        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(self._sql["delete_function"], {"name": name})
        await self._run(write)

    async def list_versions(self) -> list[FunctionConfig]:
        def read(db: sqlite3.Connection) -> list[FunctionConfig]:
            return [rows.config_from_row(r[2]) for r in db.execute(self._sql["list_versions"])]
        return await self._run(read)

    async def list_function_tags(self) -> dict[str, dict[str, str]]:
        def read(db: sqlite3.Connection) -> dict[str, dict[str, str]]:
            return {r[0]: json.loads(r[1]) for r in db.execute(self._sql["list_function_tags"])}
        return await self._run(read)

    # attempt records ---------------------------------------------------------------
    async def write_records(self, summaries: list[InvocationSummary],
                            records: list[AttemptRecord]) -> None:
        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.executemany(self._sql["upsert_invocation"], [rows.summary_row(s) for s in summaries])
                db.executemany(self._sql["insert_record"], [rows.record_row(r) for r in records])
        await self._run(write)

    async def list_invocations(self, function: str | None, limit: int,
                               before: float) -> list[InvocationSummary]:
        def read(db: sqlite3.Connection) -> list[InvocationSummary]:
            cursor = db.execute(self._sql["list_invocations"],
                                {"function": function, "limit": limit, "before": before})
            return [InvocationSummary(*r) for r in cursor]
        return await self._run(read)

    async def get_invocation(self, request_id: str
                             ) -> tuple[InvocationSummary | None, list[AttemptRecord]]:
        def read(db: sqlite3.Connection) -> tuple[InvocationSummary | None, list[AttemptRecord]]:
            row = db.execute(self._sql["get_invocation"], {"request_id": request_id}).fetchone()
            records = [AttemptRecord(r[0], r[1], r[2], json.loads(r[3]))
                       for r in db.execute(self._sql["list_records"], {"request_id": request_id})]
            return (InvocationSummary(*row) if row else None), records
        return await self._run(read)


class _transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _migrate(db: sqlite3.Connection) -> None:
    current = db.execute("PRAGMA user_version").fetchone()[0]
    for number, sql in queries.migrations("sqlite"):
        if number > current:
            db.executescript("BEGIN IMMEDIATE;\n" + sql + f"\nPRAGMA user_version = {number};\nCOMMIT;")
