"""Named SQL queries: each `-- name: NAME` block of a queries file is one Store operation."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


_PARAM = re.compile(r"(?<![:\w]):(\w+)")


def load(dialect: str) -> dict[str, str]:
    """{name: sql} from storage/queries/<dialect>.sql (PostgreSQL: :name → %(name)s)."""
    text = resources.files("lamina.storage").joinpath(f"queries/{dialect}.sql").read_text()
    parts = _NAME.split(text)
    found = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}
    if dialect == "postgres":
        found = {name: _PARAM.sub(r"%(\1)s", sql) for name, sql in found.items()}
    return found


def migrations(dialect: str) -> list[tuple[int, str]]:
    """[(number, sql)] from storage/migrations/<dialect>/NNNN_*.sql, in order."""
    folder = resources.files("lamina.storage").joinpath(f"migrations/{dialect}")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql") and entry.name[:4].isdigit():
            found.append((int(entry.name[:4]), entry.read_text()))
    return sorted(found)
