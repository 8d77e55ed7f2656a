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

import calendar
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

MAX_LINE = 256 * 1024
TAIL_KEEP = 8 * 1024


_second: list[Any] = [-1, ""]  # the whole second last formatted, and its text
_milli: list[Any] = [-1, ""]  # the millisecond last formatted, and its text


def iso_now(now: float | None = None) -> str:
    milli = int((time.time() if now is None else now) * 1000)
    if milli != _milli[0]:  # lines of the same millisecond share their stamp
        whole, fraction = divmod(milli, 1000)
        if whole != _second[0]:  # ... and of the same second its date and time
            _second[:] = [whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))]
        _milli[:] = [milli, "%s.%03dZ" % (_second[1], fraction)]  # `%`: no __format__
    text: str = _milli[1]
    return text


class LogStream:
    """The log stream of one execution environment."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._file: BinaryIO | None = None
        self._size = 0
        self._partial = b""
        self._capture: bytearray | None = None
        self.dirty = False
        self.closed = False  # the environment is gone: a late line is appended, not kept open

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
    def platform(self, line: str, tail: bool = True) -> None:
        """A line written by the engine (START, END, REPORT, …); `tail` False: left out of
        the invocation's log tail (INIT_START, which AWS's tail does not show)."""
        if self._capture is not None and tail:
            self._capture += line.encode() + b"\n"
        if self._partial:
            self.flush_partial()
        self._write(f"{iso_now()}\t{line}\n".encode())

    def platform_pair(self, first: str, second: str) -> None:
        """Two platform lines at once (END and REPORT): one time stamp, one write."""
        if self._capture is not None:
            self._capture += f"{first}\n{second}\n".encode()
        if self._partial:
            self.flush_partial()
        stamp = iso_now()
        self._write(f"{stamp}\t{first}\n{stamp}\t{second}\n".encode())

    def flush_partial(self) -> None:
        if self._partial:
            partial, self._partial = self._partial, b""
            self._write(iso_now().encode() + b"\t" + partial + b"\n")

    # per-invocation capture -------------------------------------------------------------
    def begin_capture(self) -> None:
        self._capture = bytearray()

    def captured(self) -> bytes:
        """What the capture holds now (it goes on)."""
        return bytes(self._capture or b"")

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
            self.rotate()
        assert self._file is not None
        self._file.write(data)
        self._size += len(data)
        self.dirty = True
        if self.closed:  # the REPORT of an environment that died under its invocation
            self._close_file()

    def rotate(self) -> None:
        """Move what was written to `<stream>.log.1` (replacing it) and start afresh."""
        if self._file is None:
            if self.path.exists():
                os.replace(self.path, self.path.with_suffix(".log.1"))
            return
        self._file.close()
        os.replace(self.path, self.path.with_suffix(".log.1"))
        self._file = open(self.path, "ab", buffering=65536)  # noqa: SIM115
        self._size = 0

    def flush(self) -> None:
        if self._file is not None and self.dirty:
            self._file.flush()
            self.dirty = False

    def close(self) -> None:
        self.flush_partial()
        self.closed = True
        self._close_file()

    def move_to(self, path: Path) -> None:
        """Write on at the end of the stream file `path` (a reset environment's, whose stream
        this environment continues); what this one wrote so far goes there first."""
        self._close_file()
        if path != self.path and self.path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "rb") as written, open(path, "ab") as target:
                shutil.copyfileobj(written, target)
            self.path.unlink()
        self.path = path

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self.dirty = False


def tail(captured: bytes, limit: int = 4096) -> bytes:
    """The last `limit` bytes of an invocation's log, as X-Amz-Log-Result carries it."""
    return captured[-limit:]


class LogReader:
    """Reads back the log streams of a function, merged in time order.

    A read returns, with its lines, a cursor: the byte offset reached in each stream file.
    Reading on from a cursor returns exactly the lines written since, whatever their time
    stamps, so `lamina logs --follow` neither skips nor repeats a line when invocations
    overlap.
    """

    def __init__(self, logs_dir: Path, read_bytes: int = 1 << 20) -> None:
        self.logs_dir = logs_dir
        self.read_bytes = read_bytes

    def read(
        self,
        function: str,
        since: str | None = None,
        limit: int = 1000,
        cursor: dict[str, int] | None = None,
    ) -> tuple[list[tuple[str, str, str]], dict[str, int]]:
        """([(timestamp, stream, line)] oldest first, cursor after them).

        Without a cursor: the last `limit` lines (after `since`, an ISO time, if given).
        With one: the lines written after it (at most `read_bytes` per stream per call; the
        returned cursor says how far that went, so nothing is skipped).
        """
        folder = self.logs_dir / function
        found: list[tuple[str, str, str]] = []
        reached: dict[str, int] = {}
        if folder.is_dir():
            for path in sorted(folder.glob("*.log")):
                start = None if cursor is None else cursor.get(path.name, 0)
                lines, reached[path.name] = self._lines(path, start)
                stream = path.name[: -len(".log")]
                for line in lines:
                    stamp, _, text = line.partition("\t")
                    if since is None or stamp > since:
                        found.append((stamp, stream, text))
        found.sort(key=lambda item: item[0])
        return (found[-limit:] if cursor is None else found), reached

    def runs(
        self, function: str, environment: str, request_id: str, max_lines: int = 500
    ) -> list[list[tuple[str, str]]]:
        """[(timestamp, line)] of each run of `request_id` in `environment`'s stream, oldest
        first: from its START line to its REPORT line, with the stream's Init lines before
        the first START when that run is this request's (a cold start)."""
        folder = self.logs_dir / function
        if not environment.isalnum() or not folder.is_dir():
            return []
        paths = sorted(folder.glob(f"*{environment}.log.1")) + sorted(
            folder.glob(f"*{environment}.log")
        )
        return _runs_of(_stamped_lines(paths), request_id, max_lines)

    def _lines(self, path: Path, start: int | None) -> tuple[list[str], int]:
        """Complete lines from `start` (None: the file's last `read_bytes`), and the offset
        just after the last of them."""
        try:
            with open(path, "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                tail = start is None
                if start is None:
                    start = max(0, size - self.read_bytes)
                elif start > size:  # rotated since: read the new file from its start
                    start = 0
                handle.seek(start)
                data = handle.read(self.read_bytes)
        except OSError:
            return [], start or 0
        end = data.rfind(b"\n") + 1
        lines = data[:end].decode("utf-8", "replace").split("\n")
        if tail and start > 0:
            lines = lines[1:]  # the first one is cut
        return [line for line in lines if line], start + end


def _stamped_lines(paths: list[Path]) -> Iterator[tuple[str, str]]:
    for path in paths:
        try:
            with open(path, "rb") as handle:
                for raw in handle:
                    stamp, _, text = raw.decode("utf-8", "replace").rstrip("\n").partition("\t")
                    yield stamp, text
        except OSError:
            continue


def _runs_of(
    lines: Iterator[tuple[str, str]], request_id: str, max_lines: int
) -> list[list[tuple[str, str]]]:
    runs: list[list[tuple[str, str]]] = []
    init: list[tuple[str, str]] | None = []
    current: list[tuple[str, str]] | None = None
    for stamp, text in lines:
        if text.startswith("START RequestId: "):
            if current is not None:
                runs.append(current)
            ours = text[len("START RequestId: ") :].split(" ", 1)[0] == request_id
            current = (init or []) if ours else None
            init = None
        elif current is None:
            if init is not None and len(init) < max_lines:
                init.append((stamp, text))
            continue
        if current is not None and len(current) < max_lines:
            current.append((stamp, text))
        if current is not None and text.startswith(f"REPORT RequestId: {request_id}"):
            runs.append(current)
            current = None
    if current is not None:
        runs.append(current)
    return runs


# CloudWatch Logs' view of the same files (service.log_groups) ---------------------------------
def stream_name(filename: str) -> str:
    """Lambda's stream name (`YYYY/MM/DD/[$LATEST]<hex>`) of a stream file's name."""
    base = filename.removesuffix(".1").removesuffix(".log")
    return base[:10].replace("-", "/") + base[10:11].replace("-", "/") + base[11:]


def stream_file(name: str) -> str:
    """The file name of a stream (`stream_name`'s inverse)."""
    return name.replace("/", "-") + ".log"


def epoch_ms(stamp: str) -> int:
    """`2026-01-02T03:04:05.678Z` → milliseconds since the epoch (0 if it does not parse)."""
    try:
        whole = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
        return whole * 1000 + int(stamp[20:23] or 0)
    except (ValueError, IndexError):
        return 0


class LogGroupReader:
    """A function's log folder read as a CloudWatch log group: its streams, their events."""

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = logs_dir

    def functions(self) -> list[tuple[str, int, int]]:
        """(function, creation time in ms, stored bytes) of every function with logs."""
        found = []
        if self.logs_dir.is_dir():
            for folder in sorted(self.logs_dir.iterdir()):
                if folder.is_dir():
                    files = list(folder.glob("*.log*"))
                    created = min(
                        (f.stat().st_mtime for f in files), default=folder.stat().st_mtime
                    )
                    found.append(
                        (folder.name, int(created * 1000), sum(f.stat().st_size for f in files))
                    )
        return found

    def has(self, function: str) -> bool:
        return (self.logs_dir / function).is_dir()

    def streams(self, function: str) -> list[tuple[str, int, int, int]]:
        """(stream name, first event ms, last event ms, creation ms) of a function's streams."""
        folder = self.logs_dir / function
        found = []
        for path in sorted(folder.glob("*.log")) if folder.is_dir() else ():
            older = path.with_suffix(".log.1")
            first = _first_stamp(older) or _first_stamp(path)
            last = _last_stamp(path) or _last_stamp(older)
            if first is None:
                continue
            created = epoch_ms(first)
            found.append((stream_name(path.name), created, epoch_ms(last or first), created))
        return found

    def events(self, function: str, stream: str) -> list[tuple[int, str]] | None:
        """[(timestamp ms, message)] of one stream, oldest first; None if there is none."""
        path = self.logs_dir / function / stream_file(stream)
        if "/" in function or not path.is_file():
            return None
        events = []
        for older_or_current in (path.with_suffix(".log.1"), path):
            for stamp, text in _stamped_lines([older_or_current]):
                events.append((epoch_ms(stamp), text + "\n"))
        return events


def _first_stamp(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            line = handle.readline()
    except OSError:
        return None
    return line.decode("utf-8", "replace").partition("\t")[0] or None


def _last_stamp(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - 65536))
            lines = handle.read().rstrip(b"\n").split(b"\n")
    except OSError:
        return None
    return lines[-1].decode("utf-8", "replace").partition("\t")[0] or None if lines else None
