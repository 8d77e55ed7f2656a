"""Spare runtimes (Python, Node.js): a cold start without the interpreter's start-up on its path.

Theory of operation
-------------------
* Most of a cold start is the interpreter starting and the bootstrap importing what it needs
  (Python's json, socket …; Node's start and the runtime's modules), before any of the
  function's code runs. For each interpreter that has started an environment once, the
  engine keeps one runtime started ahead (`bootstrap.py --standby`, `bootstrap.cjs
  --standby`), already past those imports and blocked reading stdin.
* A new environment takes it and writes one line on its stdin: the environment variables
  and working directory. The bootstrap sets them (Python: `os.environ`, `chdir`, `tzset`;
  Node: `process.env`, whose TZ takes effect on assignment, `chdir`, and NODE_PATH for
  `require`) and goes on as a freshly spawned one would: imports the handler, calls `next`.
  Init Duration is then the handler's import and the first round trip. A new spare starts
  at once, off the request's path.
* Only what the interpreter reads at its own start cannot be handed over later, so a
  function whose variables set `PYTHON*` (Node: `NODE_*`, `UV_*`), `LANG` or `LC_*`, or
  whose code or layers have a `lib/` directory or top-level shared objects (found through
  `LD_LIBRARY_PATH`, which the dynamic loader reads once) is spawned as before, and so is
  one started through a wrapper script (AWS_LAMBDA_EXEC_WRAPPER).
* A spare has Lambda's bare environment (PATH, LANG, TZ) until assigned, no engine
  variables. Spares are killed when the engine stops.
* With the sandbox, a spare is a sandbox whose /var/task, /opt and /tmp are filled when it is
  taken (`sandbox.Slots`); the launcher (launch.py) says how a spare starts and ends.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lamina.runtime import supervisor

log = logging.getLogger("lamina.runtime")

STANDBY_ENV = {
    "PATH": "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
}
# variables an interpreter reads at its own start, per runtime family
_READ_AT_START = {"python": ("PYTHON", "LANG", "LC_"), "nodejs": ("NODE_", "UV_", "LANG", "LC_")}


def eligible(family: str, variables: dict[str, str], *roots: Path | None) -> bool:
    """Whether a function's runtime may start from a spare (see the module docstring);
    `roots` are its code and its merged layers."""
    prefixes = _READ_AT_START.get(family)
    if prefixes is None or any(name.startswith(prefixes) for name in variables):
        return False
    if variables.get("AWS_LAMBDA_EXEC_WRAPPER"):
        return False  # the wrapper starts the interpreter (bootstrap.with_wrapper)
    try:
        return not any(
            (root / "lib").exists() or any(".so" in entry.suffixes for entry in root.iterdir())
            for root in roots
            if root is not None
        )
    except OSError:
        return False


@dataclass
class Spare:
    """A started runtime waiting for its assignment (and, sandboxed, its slot)."""

    popen: subprocess.Popen[bytes]
    discard: Callable[[], None]
    slot: Path | None = None  # a sandboxed spare's mount points (sandbox.Slots)


def plain_spare(argv: list[str]) -> Spare:
    popen = supervisor.prestart([*argv, "--standby"], STANDBY_ENV, "/")
    return Spare(popen, lambda: supervisor.discard(popen))


class Spares:
    """At most one started, unassigned runtime per command line."""

    def __init__(self, start: Callable[[list[str]], Spare] = plain_spare) -> None:
        self._start = start
        self._ready: dict[tuple[str, ...], Spare] = {}
        self._closed = False

    def take(self, argv: list[str]) -> Spare | None:
        """The spare for `argv`, if one is ready; a new one starts after this call."""
        key = tuple(argv)
        spare = self._ready.pop(key, None)
        if not self._closed:
            asyncio.get_running_loop().call_soon(self._refill, key)
        if spare is not None and spare.popen.poll() is not None:
            spare.discard()  # it died while waiting
            return None
        return spare

    def _refill(self, key: tuple[str, ...]) -> None:
        if self._closed or key in self._ready:
            return
        try:
            self._ready[key] = self._start(list(key))
        except (supervisor.SpawnError, OSError) as exc:
            log.warning("could not start a spare runtime: %s", exc)

    def close(self) -> None:
        self._closed = True
        for spare in self._ready.values():
            spare.discard()
        self._ready.clear()
