"""Debug mode rows (migration 0023) in both stores: SQLite and a real PostgreSQL. What one
store wrote, a store opened again on the same database reads: debug mode survives a restart."""

from __future__ import annotations

import asyncio

from lamina.domain.debug import DebugSettings
from lamina.storage.postgres import PostgresStore
from lamina.storage.sqlite import SqliteStore

LIVE = DebugSettings("orders", "3", 5679, wait=True, qualifier="live")
LATEST = DebugSettings("orders", "$LATEST", 5678)
OTHER = DebugSettings("billing", "$LATEST", 9229)


async def exercise(open_store) -> None:
    first = open_store()
    await first.open()
    for settings in (LIVE, LATEST, OTHER):
        await first.put_debug_mode(settings)
    await first.put_debug_mode(DebugSettings("orders", "3", 5680, qualifier="live"))  # changed
    await first.close()
    again = open_store()  # "after a restart"
    await again.open()
    try:
        assert await again.list_debug_modes() == [
            OTHER,
            LATEST,
            DebugSettings("orders", "3", 5680, qualifier="live"),
        ]
        await again.delete_debug_mode("orders", "$LATEST")
        assert [(s.function, s.version) for s in await again.list_debug_modes()] == [
            ("billing", "$LATEST"),
            ("orders", "3"),
        ]
        await again.delete_debug_mode("orders")  # every version of a deleted function
        assert await again.list_debug_modes() == [OTHER]
    finally:
        await again.close()


def test_sqlite_keeps_debug_mode(tmp_path):
    asyncio.run(exercise(lambda: SqliteStore(tmp_path / "lamina.db")))


def test_postgres_keeps_debug_mode(postgres):
    url = postgres.new_database(migrated=True)
    asyncio.run(exercise(lambda: PostgresStore(url)))
