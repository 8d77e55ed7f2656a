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
* Not events: bytecode caches (`__pycache__`, `*.pyc`; Lamina's Python runtimes keep theirs
  outside the folder anyway), editors' swap and backup files, and `.git`.
* A folder that does not exist (yet, or any more) is checked for every `MISSING_POLL_S`
  seconds; when it appears it is watched, and counted as changed. Invoking a function whose
  folder is missing gives a clear error (runtime.environment), not a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable

from lamina.domain.code import contains

log = logging.getLogger("lamina.hot_reload")

STEP_MS = 30
DEBOUNCE_MS = 400
MISSING_POLL_S = 0.25
_IGNORED_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache"}
_IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", ".swx", ".swo", "~", ".tmp", ".DS_Store")


def interesting(path: str) -> bool:
    """Whether an event on `path` may change what a function runs."""
    name = os.path.basename(path)
    if name.endswith(_IGNORED_SUFFIXES) or name == "4913":  # vim's write test
        return False
    return not _IGNORED_DIRS.intersection(path.split(os.sep))


class FolderWatcher:
    """Watches a set of folders with one task (see the module docstring)."""

    def __init__(self, on_change: Callable[[set[str]], None]) -> None:
        self.on_change = on_change
        self._folders: frozenset[str] = frozenset()
        self._task: asyncio.Task[None] | None = None
        self._restart = asyncio.Event()

    @property
    def folders(self) -> frozenset[str]:
        return self._folders

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def watch(self, folders: set[str]) -> None:
        """Watch exactly `folders` from now on (none: the task stops)."""
        wanted = frozenset(folders)
        if wanted == self._folders:
            return
        self._folders = wanted
        if not wanted:
            if self._task is not None:
                self._task.cancel()
                self._task = None
            return
        if self.running:
            self._restart.set()  # the watch in progress ends and starts on the new set
        else:
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                name="lamina-hot-reload")

    async def close(self) -> None:
        task, self._task = self._task, None
        self._folders = frozenset()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while self._folders:
            self._restart.clear()
            folders = self._folders
            present = {f for f in folders if os.path.isdir(f)}
            missing = folders - present
            try:
                await self._watch_once(present, missing)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one bad folder stop hot reload for the rest
                log.exception("hot reload: watching %s failed; trying again", sorted(present))
                await asyncio.sleep(1.0)

    async def _watch_once(self, present: set[str], missing: set[str]) -> None:
        poller = asyncio.get_running_loop().create_task(self._poll_missing(missing))
        try:
            if not present:
                await self._restart.wait()
                return
            from watchfiles import awatch

            async for changes in awatch(
                    *sorted(present), stop_event=self._restart, step=STEP_MS,
                    debounce=DEBOUNCE_MS, watch_filter=lambda _, path: interesting(path),
                    ignore_permission_denied=True, recursive=True):
                changed = {root for _, path in changes for root in present
                           if contains(root, path)}
                if changed:
                    self.on_change(changed)
                if any(not os.path.isdir(root) for root in changed):
                    return  # a folder went away: watch the rest, and wait for it to return
        finally:
            poller.cancel()

    async def _poll_missing(self, missing: set[str]) -> None:
        """Wait for a missing folder to appear: it changed, and is watched from now on."""
        while missing:
            await asyncio.sleep(MISSING_POLL_S)
            appeared = {folder for folder in missing if os.path.isdir(folder)}
            if appeared:
                self.on_change(appeared)
                self._restart.set()
                return
