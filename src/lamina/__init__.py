"""Lamina: AWS Lambda's invocation model, self-hosted.

The engine's hot modules may be compiled with mypyc (scripts/compile.py): C extensions beside
their sources, with a manifest of the sources they were built from. When a source has changed
since (an edit, a checkout), a compiled module would run code that is no longer there, so every
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


def _compiled() -> str:
    try:
        manifest: dict[str, str] = json.loads((_HERE / "_compiled.json").read_text())["modules"]
    except (OSError, ValueError, KeyError, TypeError):
        return "none"
    if not isinstance(manifest, dict):  # (not written by scripts/compile.py)
        return "none"
    sources = {
        name: _HERE.parent.joinpath(*name.split(".")).with_suffix(".py") for name in manifest
    }
    try:
        fresh = all(
            hashlib.sha256(sources[name].read_bytes()).hexdigest() == digest
            for name, digest in manifest.items()
        )
    except OSError:
        fresh = False
    off = os.environ.get("LAMINA_COMPILED") == "0"
    if fresh and not off:
        return "mypyc"
    sys.meta_path.insert(0, _FromSource(sources))
    return "off" if off else "stale"


COMPILED = _compiled()
