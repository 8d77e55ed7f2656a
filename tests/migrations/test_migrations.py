"""The migration tier: every migration runs on a database that holds the rows the schema
before it held, and today's store reads all of them back (SQLite and a real PostgreSQL).

For a stop point K, migrations run one at a time through the store's own runner (the list it
reads cut after each number), and after migration N the rows of seeds.STEPS[N] go in as plain
SQL; past K, today's store opens the database as an engine would, applying what is left in
one go, and every step's check reads its rows back through the Store API. Data-driven: a new
migration without a seed step fails `test_every_migration_has_a_seed_step`, and a table or a
column no step fills fails the chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from lamina.storage import queries
from lamina.storage.sqlite import SqliteStore
from tests.migrations.seeds import STEPS, Db, Step

Migrations = list[tuple[int, str]]


def migrations_in(folder: Path) -> Migrations:
    """[(number, sql)] of a migrations folder, as `queries.migrations` reads the package's."""
    return sorted(
        (int(p.name[:4]), p.read_text())
        for p in folder.iterdir()
        if p.name.endswith(".sql") and p.name[:4].isdigit()
    )


def numbers(dialect: str) -> list[int]:
    return [number for number, _ in queries.migrations(dialect)]


@contextlib.contextmanager
def only(migrations: Migrations) -> Iterator[None]:
    """The store's runner sees `migrations` as every migration there is."""
    with mock.patch.object(queries, "migrations", lambda dialect: list(migrations)):
        yield


@dataclass
class Target:
    """One empty database of one dialect."""

    dialect: str
    where: str

    def store(self) -> Any:
        if self.dialect == "sqlite":
            return SqliteStore(Path(self.where))
        from lamina.storage.postgres import PostgresStore

        return PostgresStore(self.where)

    @contextlib.contextmanager
    def db(self) -> Iterator[Db]:
        if self.dialect == "sqlite":
            conn = sqlite3.connect(self.where, isolation_level=None)
            try:
                yield Db("sqlite", conn)
            finally:
                conn.close()
            return
        import psycopg

        with psycopg.connect(self.where, autocommit=True) as conn:
            yield Db("postgres", conn)


async def _open_close(target: Target, migrations: Migrations) -> None:
    with only(migrations):
        store = target.store()
        await store.open()
        await store.close()


def _seed(target: Target, number: int, steps: dict[int, Step]) -> None:
    assert number in steps, f"migration {number:04d} has no seed step in tests/migrations/seeds.py"
    with target.db() as db:
        steps[number].seed(db)
        empty = db.empty_columns()
    assert not empty, (
        f"after migration {number:04d} and its seed step, no row holds a value in {empty}: "
        "seed them (tests/migrations/seeds.py)"
    )


async def migrate_seed_and_read(
    target: Target, migrations: Migrations, stop: int, steps: dict[int, Step] = STEPS
) -> list[int]:
    """Migrations up to `stop` one by one, each followed by its seed step; then today's
    store opens the database (applying the rest) and every seeded step's check runs.
    Returns the numbers seeded."""
    seeded = []
    for index, (number, _) in enumerate(migrations):
        if number > stop:
            break
        await _open_close(target, migrations[: index + 1])
        _seed(target, number, steps)
        seeded.append(number)
    with only(migrations):
        store = target.store()
        await store.open()
        try:
            for number in seeded:
                try:
                    await steps[number].check(store)
                except AssertionError as exc:
                    raise AssertionError(
                        f"the data of migration {number:04d}'s schema did not read back: {exc}"
                    ) from exc
        finally:
            await store.close()
    return seeded


@pytest.fixture
def sqlite_target(tmp_path: Path) -> Target:
    return Target("sqlite", str(tmp_path / "lamina.db"))


@pytest.fixture
def postgres_target(postgres: Any) -> Target:
    """An empty database of the session's PostgreSQL, made from template0 (never from a
    template that may already hold the schema)."""
    import psycopg

    name = f"migrations_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    return Target("postgres", postgres.url(name))


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_every_migration_has_a_seed_step(dialect: str) -> None:
    mine = {n for n, s in STEPS.items() if dialect in s.dialects}
    missing = [f"{n:04d}" for n in numbers(dialect) if n not in mine]
    assert not missing, f"{dialect} migrations without a seed step (tests/migrations/seeds.py)"
    assert mine <= set(numbers(dialect)), "a seed step for a migration that does not exist"


@pytest.mark.parametrize("stop", numbers("sqlite"))
def test_sqlite_keeps_every_schemas_data(sqlite_target: Target, stop: int) -> None:
    """Stopped after `stop` (its data in), the store opens and migrates the rest."""
    seeded = asyncio.run(migrate_seed_and_read(sqlite_target, queries.migrations("sqlite"), stop))
    assert seeded == [n for n in numbers("sqlite") if n <= stop]


@pytest.mark.parametrize("stop", [numbers("postgres")[0], numbers("postgres")[-1]])
def test_postgres_keeps_every_schemas_data(postgres_target: Target, stop: int) -> None:
    """The whole chain (each migration on the data of all before it), and a database of
    the first schema brought up to date in the store's one transaction."""
    migrations = queries.migrations("postgres")
    seeded = asyncio.run(migrate_seed_and_read(postgres_target, migrations, stop))
    assert seeded == [n for n in numbers("postgres") if n <= stop]


# the tier can fail ------------------------------------------------------------------------
def _copy(tmp_path: Path, dialect: str) -> Path:
    """A copy of the package's migrations of `dialect`, to break."""
    folder = tmp_path / f"migrations-{dialect}"
    source = resources.files("lamina.storage").joinpath(f"migrations/{dialect}")
    with resources.as_file(source) as path:
        shutil.copytree(path, folder)
    return folder


BREAKS = {
    # rows of an earlier schema gone: a table no row is left in
    "aliases": ("DELETE FROM aliases;", r"no row holds a value in \['aliases\.function"),
    # some rows gone: what was stored before does not read back
    "a version": (
        "DELETE FROM function_versions WHERE version = '1';",
        "migration 0005's schema did not read back",
    ),
}


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
@pytest.mark.parametrize("lost", sorted(BREAKS))
def test_a_migration_that_loses_rows_fails_the_tier(tmp_path: Path, request, dialect, lost):
    """0006 (provisioned concurrency), in a copy, broken to delete rows stored before it."""
    if dialect == "postgres":
        target = request.getfixturevalue("postgres_target")
    else:
        target = Target("sqlite", str(tmp_path / "broken.db"))
    folder = _copy(tmp_path, dialect)
    (path,) = folder.glob("0006_*.sql")
    sql, failure = BREAKS[lost]
    path.write_text(f"{path.read_text()}\n{sql}\n")
    last = numbers(dialect)[-1]
    with pytest.raises(AssertionError, match=failure):
        asyncio.run(migrate_seed_and_read(target, migrations_in(folder), last))


def test_a_new_migration_without_a_seed_step_fails_the_tier(sqlite_target: Target, tmp_path):
    folder = _copy(tmp_path, "sqlite")
    (folder / "0999_widgets.sql").write_text("CREATE TABLE widgets (id TEXT PRIMARY KEY);")
    with pytest.raises(AssertionError, match="0999 has no seed step"):
        asyncio.run(migrate_seed_and_read(sqlite_target, migrations_in(folder), 999))


def test_a_new_column_no_step_fills_fails_the_tier(sqlite_target: Target, tmp_path) -> None:
    """A step that seeds nothing for the column its migration adds is caught."""
    folder = _copy(tmp_path, "sqlite")
    (folder / "0999_sizes.sql").write_text("ALTER TABLE functions ADD COLUMN size INTEGER;")

    async def nothing(store: Any) -> None:
        return None

    steps = {**STEPS, 999: Step(lambda db: None, nothing)}
    with pytest.raises(AssertionError, match=r"functions\.size"):
        asyncio.run(migrate_seed_and_read(sqlite_target, migrations_in(folder), 999, steps))
