"""Function logs: one stream per execution environment, as CloudWatch Logs has (spec §9.6).

A stream is a file `<logs dir>/<function>/<stream>.log`; every line is stored as
`<ISO-8601 time>\\t<line>`. Platform lines (START, END, REPORT, INIT_START, timeouts) go into
the same stream as the runtime's stdout and stderr. While an invocation runs, its lines are
also kept in a small buffer, so `LogType: Tail` can return the last 4 KB.

Limits, so a function that prints gigabytes cannot fill the disk or the engine's memory: a
stream file is rotated at `max_bytes` (one older file is kept), a line longer than
`MAX_LINE` is cut, and the tail buffer keeps only its last `TAIL_KEEP` bytes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import BinaryIO

MAX_LINE = 256 * 1024
TAIL_KEEP = 8 * 1024


def iso_now(now: float | None = None) -> str:
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % (now % 1 * 1000)


class LogStream:
    """The log stream of one execution environment."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._file: BinaryIO | None = None
        self._size = 0
        self._partial = b""
        self._capture: bytearray | None = None

    # the runtime's own output -----------------------------------------------------------
    def write_output(self, chunk: bytes) -> None:
        if self._capture is not None:
            self._capture += chunk
            if len(self._capture) > 2 * TAIL_KEEP:
                del self._capture[:-TAIL_KEEP]
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE:
            lines.append(self._partial[:MAX_LINE])
            self._partial = b""
        if lines:
            stamp = iso_now().encode() + b"\t"
            self._write(b"".join(stamp + line[:MAX_LINE] + b"\n" for line in lines))

    # platform lines ---------------------------------------------------------------------
    def platform(self, line: str) -> None:
        """A line written by the engine (START, END, REPORT, …)."""
        encoded = line.encode()
        if self._capture is not None:
            self._capture += encoded + b"\n"
        self.flush_partial()
        self._write(iso_now().encode() + b"\t" + encoded + b"\n")

    def flush_partial(self) -> None:
        if self._partial:
            partial, self._partial = self._partial, b""
            self._write(iso_now().encode() + b"\t" + partial + b"\n")

    # per-invocation capture -------------------------------------------------------------
    def begin_capture(self) -> None:
        self._capture = bytearray()

    def end_capture(self) -> bytes:
        captured = bytes(self._capture or b"")
        self._capture = None
        return captured

    # file ------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab", buffering=65536)  # noqa: SIM115 - kept open
            self._size = self.path.stat().st_size
        if self._size + len(data) > self.max_bytes:
            self._rotate()
        assert self._file is not None
        self._file.write(data)
        self._size += len(data)

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        os.replace(self.path, self.path.with_suffix(".log.1"))
        self._file = open(self.path, "ab", buffering=65536)  # noqa: SIM115
        self._size = 0

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        self.flush_partial()
        if self._file is not None:
            self._file.close()
            self._file = None


def tail(captured: bytes, limit: int = 4096) -> bytes:
    """The last `limit` bytes of an invocation's log, as X-Amz-Log-Result carries it."""
    return captured[-limit:]


class LogReader:
    """Reads back the log streams of functions, merged in time order."""

    def __init__(self, logs_dir: Path, read_bytes: int = 1 << 20) -> None:
        self.logs_dir = logs_dir
        self.read_bytes = read_bytes

    def read(self, function: str, since: str | None = None, limit: int = 1000
             ) -> list[tuple[str, str, str]]:
        """[(timestamp, stream, line)] of `function`, oldest first, after `since` (ISO time)."""
        folder = self.logs_dir / function
        if not folder.is_dir():
            return []
        found: list[tuple[str, str, str]] = []
        for path in folder.iterdir():
            if not (path.name.endswith(".log") or path.name.endswith(".log.1")):
                continue
            stream = path.name.split(".log")[0]
            for line in self._tail_lines(path):
                stamp, _, text = line.partition("\t")
                if since is None or stamp > since:
                    found.append((stamp, stream, text))
        found.sort(key=lambda item: item[0])
        return found[-limit:]

    def _tail_lines(self, path: Path) -> list[str]:
        try:
            with open(path, "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - self.read_bytes))
                data = handle.read()
        except OSError:
            return []
        lines = data.decode("utf-8", "replace").split("\n")
        if size > self.read_bytes:
            lines = lines[1:]  # the first one is cut
        return [line for line in lines if line]
