"""Log retention: a function's log files stay under a size and an age, so logs cannot fill
the disk (`lamina serve --logs-max-mb`, `--logs-max-age`).

Every `interval` seconds, per function folder of the logs directory:

* files last written more than `max_age` seconds ago are deleted (streams of environments
  still running are kept, however old);
* while the folder is over `max_bytes`, the least recently written file that no running
  environment writes to is deleted; if the streams being written are over the limit by
  themselves, the largest is rotated (its lines move to `<stream>.log.1`) and that file
  deleted in turn.

Per-stream rotation (`LogStream.max_bytes`) still bounds a single stream between passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from lamina.runtime.logs import LogStream

log = logging.getLogger("lamina.logs")


class LogRetention:
    """Enforces the size and age limits of function logs (see the module docstring)."""

    def __init__(
        self,
        logs_dir: Path,
        max_bytes: int | None,
        max_age: float | None,
        live: Callable[[], Iterable[LogStream]],
        interval: float = 10.0,
    ) -> None:
        self.logs_dir = logs_dir
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.live = live
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.max_bytes or self.max_age:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="lamina-log-retention"
            )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.enforce()
            except Exception:
                log.exception("log retention failed; trying again in %s s", self.interval)

    def enforce(self, now: float | None = None) -> int:
        """One pass over every function's logs; the number of files deleted."""
        if not self.logs_dir.is_dir():
            return 0
        live = {stream.path: stream for stream in self.live()}
        removed = 0
        for folder in sorted(self.logs_dir.iterdir()):
            if folder.is_dir():
                removed += self._enforce_folder(folder, live, time.time() if now is None else now)
        return removed

    def _enforce_folder(self, folder: Path, live: dict[Path, LogStream], now: float) -> int:
        files = _files(folder)
        removed = 0
        if self.max_age:
            for path, (mtime, _) in list(files.items()):
                if mtime < now - self.max_age and path not in live:
                    removed += _delete(path, files)
        if self.max_bytes:
            removed += self._shrink(files, live)
        return removed

    def _shrink(self, files: dict[Path, tuple[float, int]], live: dict[Path, LogStream]) -> int:
        assert self.max_bytes is not None
        removed = 0
        for path in sorted((p for p in files if p not in live), key=lambda p: files[p][0]):
            if _total(files) <= self.max_bytes:
                return removed
            removed += _delete(path, files)
        for path in sorted((p for p in files if p in live), key=lambda p: -files[p][1]):
            if _total(files) <= self.max_bytes:
                break
            live[path].rotate()
            files.pop(path)
            removed += 1
            with contextlib.suppress(OSError):
                path.with_suffix(".log.1").unlink()
        return removed


def _files(folder: Path) -> dict[Path, tuple[float, int]]:
    found = {}
    for path in folder.iterdir():
        if path.name.endswith((".log", ".log.1")):
            with contextlib.suppress(OSError):
                stat = path.stat()
                found[path] = (stat.st_mtime, stat.st_size)
    return found


def _total(files: dict[Path, tuple[float, int]]) -> int:
    return sum(size for _, size in files.values())


def _delete(path: Path, files: dict[Path, tuple[float, int]]) -> int:
    files.pop(path, None)
    try:
        path.unlink()
    except OSError:
        return 0
    return 1
