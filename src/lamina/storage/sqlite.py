"""The default store: one SQLite file in the data directory, written by one thread.

Every operation runs on a single dedicated thread that owns the connection, so the event loop
never blocks on disk. WAL journal with `synchronous=FULL`: a change is on disk when its call
returns, which is what lets the API answer 202 only for an event that is durable.

Changes are group-committed: changes that arrive while a commit is under way are applied
together in the next transaction, each inside its own SAVEPOINT, so one failing change does
not undo the others and many concurrent writers share one fsync. SQLite has no
`SKIP LOCKED`; claims are safe because this one writer runs them one after another.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

from lamina.domain import errors
from lamina.storage import queries
from lamina.storage.base import SqlStore, Step

T = TypeVar("T")
Rows = list[tuple[Any, ...]]

# A batch of positional rows (the records') goes in as INSERTs of up to `_WIDEST` rows each,
# not one statement per row: each statement's step releases and retakes the GIL, and with the
# event loop busy that is a futex wake-up and a context switch per row. 64 rows of 11 columns
# stay under SQLite's oldest limit on bound variables (999).
_WIDEST = 64
_ONE_ROW = re.compile(r"VALUES\s*(\(\s*\?(?:\s*,\s*\?)*\s*\))")  # its one row of values

# CPython 3.11's sqlite3 "adapts" every None it binds: it looks up `__adapt__` on its protocol
# and `__conform__` on None, and each miss formats an AttributeError (about 3,300
# instructions a None, two in every records' row). An adapter registered for None is found
# first, in one dict lookup, and binds the same NULL. (Process-wide, and harmless: None still
# binds as NULL for every connection.)
sqlite3.register_adapter(type(None), lambda value: None)


class SqliteStore(SqlStore):
    """Store on SQLite (see the module docstring)."""

    all_claims_are_stale = True  # one node: claims found at start belong to a dead process
    integrity_errors = (sqlite3.IntegrityError,)

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sql = queries.load("sqlite")
        self._wide: dict[tuple[str, int], str] = {}  # (query, rows) → its many-rows INSERT
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lamina-sqlite")
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[tuple[Step, ...], asyncio.Future[list[Rows]]]] = []
        self._committing = False

    # the two primitives ------------------------------------------------------------------
    async def _query(self, name: str, params: dict[str, Any] | None = None) -> Rows:
        sql = self._sql[name]
        try:
            return await self._in_thread(lambda db: db.execute(sql, params or {}).fetchall())
        except sqlite3.OperationalError as exc:
            raise _unavailable(exc) from None

    async def _change(self, *steps: Step) -> list[Rows]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Rows]] = loop.create_future()
        self._pending.append((steps, future))
        if not self._committing:
            self._committing = True
            loop.create_task(self._commit_pending())
        return await future

    # plumbing ------------------------------------------------------------------------
    async def _in_thread(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._db is not None
            return fn(self._db)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _commit_pending(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    outcomes = await loop.run_in_executor(self._executor, self._apply, batch)
                except sqlite3.OperationalError as exc:  # disk full, I/O error: nothing happened
                    outcomes = [(False, _unavailable(exc))] * len(batch)
                except Exception as exc:
                    outcomes = [(False, exc)] * len(batch)
                for (_, future), (ok, value) in zip(batch, outcomes):
                    if not future.done():
                        if ok:
                            future.set_result(value)
                        else:
                            future.set_exception(value)
        finally:
            self._committing = False

    def _apply(self, batch: list[tuple[tuple[Step, ...], Any]]) -> list[tuple[bool, Any]]:
        db = self._db
        assert db is not None
        outcomes: list[tuple[bool, Any]] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for steps, _ in batch:
                db.execute("SAVEPOINT change")
                try:
                    outcomes.append((True, [self._step(db, step) for step in steps]))
                except sqlite3.OperationalError as exc:
                    db.execute("ROLLBACK TO change")
                    outcomes.append((False, _unavailable(exc)))
                except Exception as exc:
                    db.execute("ROLLBACK TO change")
                    outcomes.append((False, exc))
                db.execute("RELEASE change")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return outcomes

    def _step(self, db: sqlite3.Connection, step: Step) -> Rows:
        name, params = step
        if isinstance(params, list):
            if len(params) > 1 and isinstance(params[0], tuple) and self._wide_sql(name, 1):
                self._insert_rows(db, name, params)
            else:
                db.executemany(self._sql[name], params)
            return []
        return db.execute(self._sql[name], params).fetchall()

    def _insert_rows(self, db: sqlite3.Connection, name: str, rows: Rows) -> None:
        """`executemany` of a one-row positional INSERT, as statements of many rows each (64,
        then 32, 16, …, 1: a few prepared statements serve every batch size), in order."""
        width = len(rows[0])
        flat = list(chain.from_iterable(rows))
        start, left, size = 0, len(rows), _WIDEST
        while left:
            if left >= size:
                db.execute(self._wide_sql(name, size), flat[start : start + size * width])
                start, left = start + size * width, left - size
            else:
                size //= 2

    def _wide_sql(self, name: str, size: int) -> str:
        """Query `name` inserting `size` rows at once; "" when it is not a one-row INSERT of
        positional values (then its batches run row by row)."""
        sql = self._wide.get((name, size))
        if sql is None:
            one = self._sql[name]
            found = _ONE_ROW.search(one)
            sql = (
                ""
                if found is None
                else one[: found.start(1)]
                + ", ".join([found.group(1)] * size)
                + one[found.end(1) :]
            )
            self._wide[(name, size)] = sql
        return sql

    # lifecycle -----------------------------------------------------------------------
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
            await self._in_thread(lambda db: db.close())
            self._db = None
        self._executor.shutdown(wait=True)


def _migrate(db: sqlite3.Connection) -> None:
    """Apply every migration not applied yet, in order: by number, not above a maximum, so
    that a migration numbered below one already applied (branches land out of order) still
    runs. `user_version` keeps the highest applied, for stores made before the table."""
    known = queries.migrations("sqlite")
    db.executescript("CREATE TABLE IF NOT EXISTS lamina_migrations (version INTEGER PRIMARY KEY);")
    applied = {row[0] for row in db.execute("SELECT version FROM lamina_migrations")}
    if not applied:
        current = db.execute("PRAGMA user_version").fetchone()[0]
        applied = {number for number, _ in known if number <= current}
        db.executemany(
            "INSERT INTO lamina_migrations (version) VALUES (?)",
            [(number,) for number in sorted(applied)],
        )
        db.commit()
    for number, sql in known:
        if number not in applied:
            highest = max(applied | {number})
            db.executescript(
                f"BEGIN IMMEDIATE;\n{sql}\n"
                f"INSERT INTO lamina_migrations (version) VALUES ({number});\n"
                f"PRAGMA user_version = {highest};\nCOMMIT;"
            )
            applied.add(number)


def _unavailable(exc: Exception) -> errors.StoreUnavailable:
    return errors.StoreUnavailable(
        f"Lamina's store (SQLite) could not be used: {exc}. Nothing was changed; try again."
    )
