"""The runtime process of an environment, as the environment sees it: a `Process`.

Two implementations: the plain child (`supervisor.Child`: the runtime in the engine's
filesystem, `--sandbox none`) and the sandboxed one (`SandboxedProcess`: the runtime under
bubblewrap, see `sandbox`). A `Launcher` (launch.py) makes them; tests use a fake.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from lamina.runtime import supervisor
from lamina.runtime.sandbox import Slots


class Process(Protocol):
    """What an environment does with its runtime process."""

    @property
    def alive(self) -> bool: ...

    def start(self) -> None:
        """Start it (or hand a spare its assignment); raise `SpawnError` if it cannot."""

    def freeze(self) -> None: ...

    def thaw(self) -> None: ...

    def kill(self) -> None:
        """SIGKILL it and everything it started; its exit is reported as any other."""

    def drain_output(self) -> None:
        """Pass on what it wrote so far (before an invocation's log is closed)."""

    @property
    def runtime_pid(self) -> int:
        """The runtime's process id on the host (0 before it exists)."""

    def memory_kb(self) -> int:
        """Resident memory of the runtime and its descendants (the memory limit)."""

    def peak_memory_kb(self) -> int:
        """The runtime's peak resident memory (REPORT's Max Memory Used)."""


class SandboxedProcess(supervisor.Child):
    """The runtime under bwrap: `bwrap` (the child) → bwrap's init (pid 1 inside) → runtime.

    It runs in a process group of its own (SIGKILL reaches all three; freezing stops only
    the runtime's own group when it has one, `freeze`) and, when the engine has a
    controlling terminal, in a session of its own, so that it cannot reach that
    terminal. Without one (a service, `nohup`, CI) it stays in the engine's session: each
    session is a scheduling group of its own (Linux autogroups), and sixteen environments in
    sixteen groups were woken 2-3x more slowly under load than in the engine's. Memory is
    the runtime's own, not bwrap's. An exit by a signal, which bwrap reports as 128 + the
    signal, is reported as the signal. Its slot (a spare's, or its /tmp's) is cleared when
    it ends."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        on_output: Callable[[bytes], None],
        on_exit: Callable[[int], None],
        spare: subprocess.Popen[bytes] | None = None,
        slot: Path | None = None,
    ) -> None:
        super().__init__(
            argv,
            env,
            cwd,
            on_output,
            self._exited,
            spare=spare,
            new_session=supervisor.has_terminal(),
        )
        self._report_exit = on_exit
        self._slot = slot
        self._runtime_pid = 0
        self._frozen_group = 0

    def _exited(self, code: int) -> None:
        if 128 < code < 128 + 65:
            code = -(code - 128)
        try:
            self._report_exit(code)  # a reset may keep the slot meanwhile (`keep_slot`)
        finally:
            if self._slot is not None:
                Slots.clear(self._slot)
                self._slot = None

    def keep_slot(self) -> Path | None:
        """Its slot, which from now on outlives it (a reset keeps its /tmp: reset.py)."""
        slot, self._slot = self._slot, None
        return slot

    def _runtime(self) -> int:
        """The runtime's pid (bwrap's grandchild), once it exists."""
        if not self._runtime_pid and self.alive:
            pid = self.pid
            for _ in range(2):
                children = _children(pid)
                if not children:
                    return 0
                pid = children[0]
            self._runtime_pid = pid
        return self._runtime_pid

    @property
    def runtime_pid(self) -> int:
        return self._runtime() if self.alive else 0

    def freeze(self) -> None:
        self._signal_frozen_group(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_frozen_group(signal.SIGCONT)

    def _signal_frozen_group(self, sig: int) -> None:
        """Stop (or continue) what runs the function: the runtime's own process group when
        it leads one (Lamina's Python runtime makes it, `own_process_group`), which holds
        everything the function started; else the whole sandbox (bwrap's group). Signalling
        the runtime's group leaves bwrap and its init asleep: per freeze/thaw pair that is
        one process stopped and woken instead of three (and no SIGCHLD round among them)."""
        group = self._frozen_group or self._freezing_group()
        if group <= 0:
            return
        try:
            os.killpg(group, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _freezing_group(self) -> int:
        if not self.alive:
            return 0
        runtime = self._runtime()
        if not runtime:  # not started yet: the whole sandbox, decided again next time
            return self.pid
        self._frozen_group = runtime if _process_group(runtime) == runtime else self.pid
        return self._frozen_group

    def memory_kb(self) -> int:
        pid = self._runtime() if self.alive else 0
        return self._memory.tree_rss_kb(pid) if pid else 0

    def peak_memory_kb(self) -> int:
        pid = self._runtime() if self.alive else 0
        return self._memory.peak_rss_kb(pid) if pid else 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as children:
            return [int(child) for child in children.read().split()]
    except (OSError, ValueError):
        return []


def _process_group(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return 0


def discard_sandboxed(popen: subprocess.Popen[bytes], slot: Path | None) -> None:
    """Kill a spare sandbox that was never assigned, and clear its slot."""
    supervisor.discard(popen)
    if slot is not None:
        Slots.clear(slot)
