"""Pick the store back end from its URL: `sqlite:///path`, `postgresql://…`, `memory://`."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def open_store(url: str) -> Any:
    """A store object for `url` (not yet opened)."""
    if url.startswith("sqlite://"):  # sqlite:///abs/path.db or sqlite://relative/path.db
        from lamina.storage.sqlite import SqliteStore

        return SqliteStore(Path(url[len("sqlite://") :]))
    if url.startswith(("postgresql://", "postgres://")):
        from lamina.storage.postgres import PostgresStore

        return PostgresStore(url)
    if url == "memory://":
        from lamina.storage.memory import MemoryStore

        return MemoryStore()
    raise ValueError(
        f"unsupported store URL {url!r}: use sqlite:///PATH, "
        "postgresql://USER@HOST:PORT/DB or memory://"
    )
