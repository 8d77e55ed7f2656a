"""The PostgreSQL store, for one engine or several sharing the work (psycopg 3, async).

* Claims use `FOR UPDATE SKIP LOCKED`, so several engines claim disjoint events, and every
  claim carries a lease: an engine that dies leaves claims that expire and that the others
  take back (`all_claims_are_stale` is False: at start only expired leases are released).
* `listen` keeps one connection in `LISTEN lamina`; a change (an event queued, a function
  changed) is announced with `pg_notify('lamina', '<kind>:<origin>')` in the same
  transaction, so other engines wake up without polling. `origin` names the store instance
  (one per engine) that made the change, so an engine can tell its own changes, which it
  has applied already, from another's.
* `try_lead` gives one engine a role (running the event source pollers) through a session
  advisory lock on a dedicated connection; when that engine dies, its connection and lock
  go, and another engine takes the role the next time it asks.
* Connections come from a pool that checks them before use: when PostgreSQL restarts, calls
  fail while it is down (and are reported as such), then the pool reconnects by itself.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from lamina.domain import errors
from lamina.storage import queries
from lamina.storage.base import SqlStore, Step
from lamina.storage.cluster import ClusterQueries

log = logging.getLogger("lamina.postgres")
Rows = list[tuple[Any, ...]]
CHANNEL = "lamina"
_MIGRATION_LOCK = 7_420_731  # pg_advisory_xact_lock key: one engine migrates at a time
_ROLE_LOCKS = 7_420_732  # pg_try_advisory_lock(key, role): one engine per role
# Changes other engines must hear about; the payload is the name of the query that made it.
NOTIFIED = frozenset(
    (
        "enqueue_event",
        "reschedule_event",
        "enqueue_delivery",
        "insert_function",
        "put_version",
        "delete_function",
        "set_reserved_concurrency",
        "put_event_config",
        "delete_event_config",
        "put_mapping",
        "delete_mapping",
        "settle_mapping",
        "set_function_tags",
        "put_policy",
        "delete_policy",
        "put_function_url",
        "delete_function_url",
        "insert_layer_version",
        "put_layer_version",
        "put_schedule",
        "delete_schedule",
        "advance_schedule",
        "enqueue_scheduled_event",
        "put_http_api",
        "delete_http_api",
        "put_provisioned",
        "delete_provisioned",
        "put_code_signing_config",
        "delete_code_signing_config",
        "insert_capacity_provider",
        "put_capacity_provider",
        "delete_capacity_provider",
        # engines sharing the store (storage.cluster): results others wait for, calls that ended
        # without one, claims of a dead engine given back
        "put_call_result",
        "unregister_call",
        "release_dead_events",
        "release_dead_deliveries",
        "release_expired_events",
        "release_expired_deliveries",
    )
)


class PostgresStore(ClusterQueries, SqlStore):
    """Store on PostgreSQL (see the module docstring)."""

    all_claims_are_stale = False
    integrity_errors = (psycopg.errors.UniqueViolation,)

    def __init__(self, url: str) -> None:
        self.url = url
        self._sql = queries.load("postgres")
        # A call waits at most 5 s for a connection: while PostgreSQL is down, requests fail
        # promptly (500 ServiceException) instead of hanging.
        self._pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=10,
            open=False,
            timeout=5,
            kwargs={"autocommit": True},
            check=AsyncConnectionPool.check_connection,
        )
        self._listener: asyncio.Task[None] | None = None
        self._leader: psycopg.AsyncConnection[Any] | None = None  # holds the roles' locks
        self._roles: set[str] = set()
        self._lead_lock = asyncio.Lock()
        self.origin = uuid.uuid4().hex[:12]

    # the two primitives ------------------------------------------------------------------
    async def _query(self, name: str, params: dict[str, Any] | None = None) -> Rows:
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(self._sql[name], params or {})
                return await cursor.fetchall() if cursor.description else []
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise _unavailable(exc) from None

    async def _change(self, *steps: Step) -> list[Rows]:
        try:
            return await self._transaction(steps)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise _unavailable(exc) from None

    async def _transaction(self, steps: tuple[Step, ...]) -> list[Rows]:
        results: list[Rows] = []
        async with self._pool.connection() as conn, conn.transaction():
            for name, params in steps:
                async with conn.cursor() as cursor:
                    if isinstance(params, list):
                        await cursor.executemany(self._sql[name], params)
                        results.append([])
                    else:
                        await cursor.execute(self._sql[name], params)
                        results.append(await cursor.fetchall() if cursor.description else [])
                if name in NOTIFIED:
                    await conn.execute(
                        "SELECT pg_notify(%s, %s)", (CHANNEL, f"{name}:{self.origin}")
                    )
        return results

    # lifecycle -----------------------------------------------------------------------
    async def open(self) -> None:
        await self._pool.open(wait=True, timeout=30)
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS lamina_schema (version INTEGER NOT NULL)"
            )
            cursor = await conn.execute("SELECT version FROM lamina_schema")
            applied = {row[0] for row in await cursor.fetchall()}
            for number, sql in queries.migrations("postgres"):
                if number not in applied:
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO lamina_schema (version) VALUES (%s)", (number,))

    async def close(self) -> None:
        await self._drop_leader()
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await self._pool.close()

    async def try_lead(self, role: str) -> bool:
        """A session advisory lock per role on one dedicated connection: the engine holding
        it leads; if the engine dies, PostgreSQL drops the connection and the lock with it,
        and the next engine to ask takes the role. Roles are asked one at a time: two asking
        at once would each open the connection, and the lock taken on the one replaced would
        go with it while this engine still believed it held the role."""
        async with self._lead_lock:
            return await self._try_lead(role)

    async def _try_lead(self, role: str) -> bool:
        try:
            if self._leader is None or self._leader.closed:
                self._roles.clear()
                self._leader = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=5
                )
            if role in self._roles:
                await self._leader.execute("SELECT 1")  # still connected: still holding it
                return True
            cursor = await self._leader.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (_ROLE_LOCKS, role)
            )
            row = await cursor.fetchone()
            if row and row[0]:
                self._roles.add(role)
                return True
            return False
        except psycopg.OperationalError as exc:
            log.warning("lost the PostgreSQL connection that holds %s (%s)", role, exc)
            await self._drop_leader()
            return False

    async def resign(self) -> None:
        await self._drop_leader()

    async def _drop_leader(self) -> None:
        self._roles.clear()
        if self._leader is not None:
            leader, self._leader = self._leader, None
            try:
                await leader.close()
            except psycopg.Error:
                pass

    async def listen(self, on_change: Callable[[str, bool], Any]) -> None:
        """Call `on_change(kind, own)` for each change announced by an engine sharing the
        store (`own`: by this one), and `on_change("reconnected", False)` after the
        notification connection was (re)opened: changes may have been missed meanwhile."""
        self._listener = asyncio.get_running_loop().create_task(
            self._listen(on_change), name="lamina-postgres-listen"
        )

    async def _listen(self, on_change: Callable[[str, bool], Any]) -> None:
        delay = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.1
                    on_change("reconnected", False)
                    async for notice in conn.notifies():
                        kind, _, origin = notice.payload.partition(":")
                        on_change(kind, origin == self.origin)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("lost the PostgreSQL notification connection (%s); reconnecting", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


def _unavailable(exc: Exception) -> errors.StoreUnavailable:
    return errors.StoreUnavailable(
        f"Lamina's store (PostgreSQL) is unavailable: {str(exc).strip() or type(exc).__name__}. "
        "Nothing was changed; try again."
    )
