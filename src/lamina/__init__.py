"""Lamina: AWS Lambda's invocation model, self-hosted.

The engine's hot modules may be compiled with mypyc (scripts/compile.py): C extensions beside
their sources, with a manifest of the sources they were built from (theirs, and those of the
modules they import, whose types are compiled in). When one of those has changed since (an
edit, a checkout), a compiled module could run code or types that are no longer there, so every
compiled module is then loaded from its source instead, as if never compiled; and so when
LAMINA_COMPILED=0 is set (to step through the engine's code in a debugger, say). `COMPILED`
says which: "mypyc", "none" (nothing compiled), "stale" or "off" (`lamina serve` logs it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

_HERE = Path(__file__).resolve().parent


class _FromSource:
    """A finder, first on sys.meta_path, that loads the named modules from their sources."""

    def __init__(self, sources: dict[str, Path]) -> None:
        self.sources = sources

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        source = self.sources.get(name)
        return None if source is None else importlib.util.spec_from_file_location(name, source)


def _source(name: str) -> Path:
    base = _HERE.parent.joinpath(*name.split("."))
    package = base / "__init__.py"
    return package if package.exists() else base.with_suffix(".py")


def _compiled() -> str:
    try:
        manifest = json.loads((_HERE / "_compiled.json").read_text())
        compiled: dict[str, str] = manifest["modules"]
        depends: dict[str, str] = manifest.get("depends", {})
        digests = {**depends, **compiled}  # (not written by scripts/compile.py: no build)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "none"
    sources = {name: _source(name) for name in compiled}
    try:  # the compiled modules, and the modules they import (their types are compiled in)
        fresh = all(
            hashlib.sha256(_source(name).read_bytes()).hexdigest() == digest
            for name, digest in digests.items()
        )
    except OSError:
        fresh = False
    off = os.environ.get("LAMINA_COMPILED") == "0"
    if fresh and not off:
        return "mypyc"
    sys.meta_path.insert(0, _FromSource(sources))
    return "off" if off else "stale"


COMPILED = _compiled()
