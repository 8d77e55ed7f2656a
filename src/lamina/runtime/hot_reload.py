"""Hot reload: watch the folders functions and layers run from, and say which changed.

Theory of operation
-------------------
* One task watches every hot-reload folder of the engine (watchfiles: Rust's notify, inotify
  on Linux, recursive). It runs while at least one function (or a layer one uses) runs from a
  folder, and stops when none does; `watch(folders)` gives it the current set, at start (the
  functions loaded from the store) and after every change of a function.
* notify's events are batched: a batch is handed over `STEP_MS` after the last event of a
  burst (an editor's save is several events), and at most `DEBOUNCE_MS` after its first.
  `on_change` gets the watched folders that had an event; the pool retires the environments
  that run from them, so the next invocation starts on the code as saved.
* notify watches a fixed set of paths, so a new folder means a new watch. Nothing is missed
  in between: before the old watch stops, each folder it watched is fingerprinted (every
  entry's path, size and modification time); once the new watch is in place they are
  fingerprinted again, and a folder whose fingerprint differs counts as changed. A folder
  that is no longer wanted is simply ignored until the next new watch.
* Not events: bytecode caches (`__pycache__`, `*.pyc`; Lamina's Python runtimes keep theirs
  outside the folder anyway), editors' swap and backup files, and `.git`.
* A folder that does not exist (yet, or any more) is checked for every `MISSING_POLL_S`
  seconds; when it appears it is watched and, once the watch is in place, counted as changed.
  Invoking a function whose folder is missing gives a clear error (runtime.environment).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Callable

from lamina.domain.code import contains

log = logging.getLogger("lamina.hot_reload")
logging.getLogger("watchfiles").setLevel(logging.WARNING)  # not a line per batch

STEP_MS = 30
DEBOUNCE_MS = 400
WAKE_MS = 250  # notify's thread comes back this often when nothing changes
MISSING_POLL_S = 0.25
_IGNORED_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache"}
_IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", ".swx", ".swo", "~", ".tmp", ".DS_Store")


def interesting(path: str) -> bool:
    """Whether an event on `path` may change what a function runs."""
    name = os.path.basename(path)
    if name.endswith(_IGNORED_SUFFIXES) or name == "4913":  # vim's write test
        return False
    return not _IGNORED_DIRS.intersection(path.split(os.sep))


def fingerprint(folder: str) -> str:
    """Every entry's path, size and modification time under `folder` (blocking)."""
    digest = hashlib.blake2b(digest_size=16)
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _IGNORED_DIRS)
        for name in sorted(files) + dirs:
            path = os.path.join(root, name)
            if not interesting(path):
                continue
            try:
                info = os.lstat(path)
            except OSError:
                continue
            digest.update(f"{path}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest() if os.path.isdir(folder) else "missing"


def fingerprints(folders: frozenset[str]) -> dict[str, str]:
    return {folder: fingerprint(folder) for folder in folders}


class FolderWatcher:
    """Watches a set of folders with one task (see the module docstring)."""

    def __init__(self, on_change: Callable[[set[str]], None]) -> None:
        self.on_change = on_change
        self._folders: frozenset[str] = frozenset()
        self._task: asyncio.Task[None] | None = None
        self._restart = asyncio.Event()
        self._restarting: asyncio.Task[None] | None = None
        self._watched: frozenset[str] = frozenset()  # what notify watches now
        self._before: dict[str, str] = {}  # fingerprints taken before the last new watch

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def status(self) -> dict[str, bool]:
        """Each folder, and whether changes to it are being watched now (False: it does not
        exist, or its watch is still starting)."""
        return {folder: folder in self._watched for folder in sorted(self._folders)}

    def watch(self, folders: set[str]) -> None:
        """Watch exactly `folders` from now on (none: the task stops)."""
        wanted = frozenset(folders)
        added = wanted - self._folders
        self._folders = wanted
        if not wanted:
            if self._task is not None:
                self._task.cancel()
                self._task = None
            self._watched = frozenset()
            return
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="lamina-hot-reload"
            )
        elif added and (self._restarting is None or self._restarting.done()):
            self._restarting = asyncio.get_running_loop().create_task(self._new_watch())

    async def close(self) -> None:
        for task in (self._restarting, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._restarting = None
        self._folders = self._watched = frozenset()

    async def _new_watch(self) -> None:
        """Fingerprint the folders, then let the watch start again on the new set."""
        self._before = await asyncio.to_thread(fingerprints, self._folders)
        self._restart.set()

    async def _run(self) -> None:
        self._before = await asyncio.to_thread(fingerprints, self._folders)
        while self._folders:
            self._restart.clear()
            present = frozenset(f for f in self._folders if os.path.isdir(f))
            try:
                await self._watch_once(present, self._folders - present)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one bad folder stop hot reload for the rest
                log.exception("hot reload: watching %s failed; trying again", sorted(present))
                await asyncio.sleep(1.0)

    async def _watch_once(self, present: frozenset[str], missing: frozenset[str]) -> None:
        poller = asyncio.get_running_loop().create_task(self._poll_missing(missing))
        try:
            if not present:
                await self._restart.wait()
                return
            from watchfiles import awatch

            async for changes in awatch(
                *sorted(present),
                stop_event=self._restart,
                step=STEP_MS,
                debounce=DEBOUNCE_MS,
                rust_timeout=WAKE_MS,
                yield_on_timeout=True,
                watch_filter=lambda _, path: interesting(path),
                ignore_permission_denied=True,
                recursive=True,
            ):
                if self._watched != present:  # the first turn: notify's watches are in place
                    await self._started(present)
                changed = {
                    root
                    for _, path in changes
                    for root in present
                    if contains(root, path) and root in self._folders
                }
                if changed:
                    self.on_change(changed)
                if any(not os.path.isdir(root) for root in changed):
                    return  # a folder went away: watch the rest, and wait for it to return
        finally:
            self._watched = frozenset()
            poller.cancel()

    async def _started(self, present: frozenset[str]) -> None:
        """What changed while no watch was in place: folders whose fingerprint moved, and
        folders that appeared."""
        before, self._before = self._before, {}
        self._watched = present
        after = await asyncio.to_thread(fingerprints, present)
        missed = {f for f in present if after[f] != before.get(f, after[f])}
        if missed:
            self.on_change(missed)

    async def _poll_missing(self, missing: frozenset[str]) -> None:
        """Wait for a missing folder to appear: it is watched from now on, and counts as
        changed once its watch is in place (an environment may have started from it before)."""
        while missing:
            await asyncio.sleep(MISSING_POLL_S)
            appeared = {folder for folder in missing if os.path.isdir(folder)}
            if appeared:
                before = await asyncio.to_thread(fingerprints, self._folders)
                self._before = {**before, **dict.fromkeys(appeared, "appeared")}
                self._restart.set()
                return
