"""Child processes: spawn, watch, signal, reap. Knows nothing about Lambda.

Each child runs in its own process group (in the engine's session), so one signal reaches the
runtime and everything it started: SIGSTOP freezes the environment, SIGCONT thaws it, SIGKILL
ends it. If the engine dies, the group becomes orphaned; the kernel then sends SIGHUP and
SIGCONT to a stopped (frozen) group, and a running runtime sees its Runtime API connection
close: either way no environment outlives the engine for long.

Exit is noticed through a pidfd on the event loop (no thread per child); output (stdout and
stderr together) is read from a non-blocking pipe as it comes.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
from collections.abc import Callable

FILE_LIMIT = 1024  # open files per environment, as on Lambda (the engine lifts its own)


class SpawnError(Exception):
    """The child could not be started (missing or non-executable program)."""


class Child:
    """One child process and its process group."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        on_output: Callable[[bytes], None],
        on_exit: Callable[[int], None],
        spare: subprocess.Popen[bytes] | None = None,
        new_session: bool = False,
    ) -> None:
        self.argv = argv
        self._new_session = new_session
        self._env = env
        self._cwd = cwd
        self._on_output = on_output
        self._on_exit = on_exit
        self._spare = spare
        self._popen: subprocess.Popen[bytes] | None = None
        self._pidfd = -1
        self._out_fd = -1
        self.returncode: int | None = None
        self._memory = MemoryProbe()

    @property
    def pid(self) -> int:
        return self._popen.pid if self._popen else -1

    @property
    def runtime_pid(self) -> int:
        return self.pid if self.alive else 0

    def start(self) -> None:
        if self._spare is not None:
            self._popen = self._spare
            self._assign(self._spare)
        else:
            try:
                self._popen = subprocess.Popen(
                    self.argv,
                    env=self._env,
                    cwd=self._cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    close_fds=True,
                    start_new_session=self._new_session,
                    process_group=_group(self._new_session),
                )
            except OSError as exc:
                raise SpawnError(f"fork/exec {self.argv[0]}: {exc.strerror or exc}") from None
            _limit_files(self._popen.pid)
        loop = asyncio.get_running_loop()
        assert self._popen.stdout is not None
        self._out_fd = self._popen.stdout.fileno()
        os.set_blocking(self._out_fd, False)
        loop.add_reader(self._out_fd, self._read_output)
        self._pidfd = os.pidfd_open(self._popen.pid)
        loop.add_reader(self._pidfd, self._reap)

    def _assign(self, spare: subprocess.Popen[bytes]) -> None:
        """Hand a pre-started child its environment and working directory (one JSON line on
        its stdin, which then closes: from there on it is like any other child)."""
        assert spare.stdin is not None
        line = json.dumps({"env": self._env, "cwd": self._cwd}).encode() + b"\n"
        try:
            spare.stdin.write(line)  # a few kB into an empty pipe: does not block
            spare.stdin.close()
        except OSError:
            pass  # it died meanwhile: its exit is reported like any other

    def drain_output(self) -> None:
        """Read whatever output is already in the pipe (call before closing an invocation)."""
        if self._out_fd >= 0:
            self._read_output()

    def _read_output(self) -> None:
        while True:
            try:
                chunk = os.read(self._out_fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._close_output()
                return
            self._on_output(chunk)
            if len(chunk) < 65536:
                return

    def _close_output(self) -> None:
        if self._out_fd >= 0:
            asyncio.get_running_loop().remove_reader(self._out_fd)
            assert self._popen is not None and self._popen.stdout is not None
            self._popen.stdout.close()
            self._out_fd = -1

    def _reap(self) -> None:
        assert self._popen is not None
        code = self._popen.poll()
        if code is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        self.returncode = code
        self.drain_output()
        self._close_output()
        self._memory.close()
        self._signal(signal.SIGKILL)  # whatever the runtime left behind in its group
        self._on_exit(code)

    def _signal(self, sig: int) -> None:
        if self._popen is None:
            return
        try:
            os.killpg(self._popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def freeze(self) -> None:
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the whole group; `on_exit` follows when the kernel reports the exit."""
        self._signal(signal.SIGKILL)

    @property
    def alive(self) -> bool:
        return self._popen is not None and self.returncode is None

    def memory_kb(self) -> int:
        """Current RSS of the main process and its descendants, in kB (the memory limit)."""
        if self._popen is None or self.returncode is not None:
            return 0
        return self._memory.tree_rss_kb(self._popen.pid)

    def peak_memory_kb(self) -> int:
        """Peak RSS of the main process in kB (REPORT's Max Memory Used)."""
        if self._popen is None or self.returncode is not None:
            return 0
        return self._memory.peak_rss_kb(self._popen.pid)


def has_terminal() -> bool:
    """Whether the engine has a controlling terminal (a sandbox must then not share it)."""
    try:
        os.close(os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY))
    except OSError:
        return False
    return True


def _group(new_session: bool) -> int | None:
    """A child is a process group of its own in the engine's session or (a sandbox) in a
    session of its own, without the engine's controlling terminal."""
    return None if new_session else 0


PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


class MemoryProbe:
    """Resident memory of one process tree from /proc, its files kept open between reads.

    The watchdog reads a running environment's memory every 0.1 s; opening, reading and
    closing `/proc/N/statm` and `/proc/N/task/N/children` each time was seven system calls
    per file (open, fstat, ioctl, two lseeks, read, close). Here each is opened once and read
    again with one `pread` at offset 0 (the kernel renders a /proc file afresh for each read
    from the start). An open /proc file belongs to the process it was opened for, not to its
    number: once that process is gone its `statm` fails, so a pid the kernel hands out again
    is opened afresh, never read through the old file. Files of descendants that are gone
    are closed at the next walk; `close` closes the rest (when the child is reaped)."""

    __slots__ = ("_files", "_status", "_status_pid")

    def __init__(self) -> None:
        self._files: dict[int, tuple[int, int]] = {}  # pid → (statm, children)
        self._status = -1  # /proc/N/status of the tree's root (Max Memory Used)
        self._status_pid = 0

    def tree_rss_kb(self, pid: int) -> int:
        """RSS of `pid` and its descendants, in kB (the memory limit)."""
        total, pending, seen = 0, [pid], set()
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            read = self._read(current)
            if read is None:
                continue
            statm, children = read
            try:
                total += int(statm.split(None, 2)[1]) * PAGE_KB
                pending.extend(int(c) for c in children.split())
            except (ValueError, IndexError):
                continue
        for gone in [known for known in self._files if known not in seen]:
            self._forget(gone)
        return total

    def _read(self, pid: int) -> tuple[bytes, bytes] | None:
        cached = self._files.get(pid)
        if cached is not None:
            read = _pread(cached)
            if read is not None:
                return read
            self._forget(pid)  # gone (or an older process of that number): open anew
        files = _open_proc(pid)
        if files is None:
            return None
        self._files[pid] = files
        read = _pread(files)
        if read is None:
            self._forget(pid)
        return read

    def _forget(self, pid: int) -> None:
        for fd in self._files.pop(pid, ()):
            os.close(fd)

    def peak_rss_kb(self, pid: int) -> int:
        """Peak RSS of `pid` in kB (VmHWM: REPORT's Max Memory Used)."""
        if self._status_pid != pid:
            self._close_status()
            try:
                self._status = os.open(f"/proc/{pid}/status", os.O_RDONLY)
            except OSError:
                return 0
            self._status_pid = pid
        try:
            status = os.pread(self._status, 8192, 0)
        except OSError:
            self._close_status()
            return 0
        return _vm_hwm(status)

    def _close_status(self) -> None:
        if self._status >= 0:
            os.close(self._status)
        self._status, self._status_pid = -1, 0

    def close(self) -> None:
        for pid in list(self._files):
            self._forget(pid)
        self._close_status()


def _open_proc(pid: int) -> tuple[int, int] | None:
    try:
        statm = os.open(f"/proc/{pid}/statm", os.O_RDONLY)
    except OSError:
        return None
    try:
        return statm, os.open(f"/proc/{pid}/task/{pid}/children", os.O_RDONLY)
    except OSError:
        os.close(statm)
        return None


def _pread(files: tuple[int, int]) -> tuple[bytes, bytes] | None:
    try:
        return os.pread(files[0], 128, 0), os.pread(files[1], 65536, 0)
    except OSError:
        return None


def _vm_hwm(status: bytes) -> int:
    at = status.find(b"\nVmHWM:")
    if at < 0:
        return 0
    try:
        return int(status[at + 7 : status.index(b"\n", at + 7)].split()[0])
    except (ValueError, IndexError):
        return 0


def prestart(
    argv: list[str], env: dict[str, str], cwd: str, new_session: bool = False
) -> subprocess.Popen[bytes]:
    """Start a child that waits for its assignment on stdin (see `Child(spare=…)`)."""
    try:
        child = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            close_fds=True,
            start_new_session=new_session,
            process_group=_group(new_session),
        )
    except OSError as exc:
        raise SpawnError(f"fork/exec {argv[0]}: {exc.strerror or exc}") from None
    _limit_files(child.pid)
    return child


def _limit_files(pid: int) -> None:
    """Give a new child Lambda's open-file limit (set just after the spawn: a pre-started
    child is still waiting for its assignment, another has only just been exec'd)."""
    try:
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        wanted = FILE_LIMIT if hard == resource.RLIM_INFINITY else min(FILE_LIMIT, hard)
        if soft != wanted:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (wanted, hard))
    except (OSError, ValueError):
        pass  # it exited already, or the limit cannot be changed: its exit says the rest


def discard(child: subprocess.Popen[bytes]) -> None:
    """Kill a pre-started child that was never assigned, and reap it."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    child.wait()
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            stream.close()
