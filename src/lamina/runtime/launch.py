"""Launchers: how an environment's runtime is started, plain or in a sandbox.

An environment asks its launcher two things: `view` (where its runtime will find the code,
the runtime, the layers and a temporary directory, as the runtime sees them) and `spawn` (a
started `Process` for a `Launch`). The plain launcher runs the runtime in the engine's own
filesystem (`--sandbox none`); the sandbox launcher runs it under bubblewrap with Lambda's
layout (sandbox.py). Both take spare runtimes started ahead of need where they can, and keep
a reset runtime's /tmp for the next runtime of its function version (`keep_tmp`, reset.py).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lamina.domain import ids
from lamina.runtime import sandbox, supervisor
from lamina.runtime.process import Process, SandboxedProcess, discard_sandboxed
from lamina.runtime.reset import KeptTmps
from lamina.runtime.sandbox import Layout, Slots, Support
from lamina.runtime.spares import STANDBY_ENV, Spare, Spares, plain_spare

BOOTSTRAPS = Path(__file__).parent / "bootstraps"


@dataclass(frozen=True, slots=True)
class View:
    """Where a runtime finds things, as it sees them (host paths, or the sandbox's)."""

    task_root: str
    runtime_dir: str
    opt_dir: str | None  # the merged layers (Lambda's /opt), when there are any
    tmp_dir: str | None  # a private TMPDIR (plain only: a sandbox has its own /tmp)
    sdk_path: str | None  # where boto3 is, if not in runtime_dir
    opt_variable: bool  # name opt_dir in LAMINA_OPT_DIR (plain only)
    private_dir: str = ""  # a folder of the environment's own (Lamina's runtimes' caches)


@dataclass
class Launch:
    """One runtime to start: its command line and environment as it sees them, and where its
    code and layers are on the host."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    on_output: Callable[[bytes], None]
    on_exit: Callable[[int], None]
    family: str
    task_root: Path
    opt_dir: Path | None
    interpreter: str | None
    tmp_mb: int = 512
    spare: bool = False  # the function may start from a spare (spares.eligible)
    kept_tmp: str | None = None  # a reset's /tmp (`keep_tmp`) for this runtime to adopt


class Launcher(Protocol):
    support: Support
    kept: KeptTmps  # reset runtimes' /tmp, waiting for the next runtime of their key

    def view(self, family: str, task_root: Path, opt_dir: Path | None, env_id: str) -> View: ...

    def spawn(self, launch: Launch) -> Process: ...

    def keep_tmp(self, process: Process, view: View) -> str | None:
        """Keep `process`'s /tmp from being cleared when it ends; None if it cannot be."""

    def close(self) -> None: ...


def runtime_dir(family: str) -> Path | None:
    return BOOTSTRAPS / family if family in ("python", "nodejs") else None


class PlainLauncher:
    """The runtime in the engine's filesystem, as the engine's user (`--sandbox none`)."""

    def __init__(
        self,
        data_dir: Path,
        sdk_path: str | None,
        spares: bool = True,
        support: Support | None = None,
    ) -> None:
        self.support = support or Support("none")
        self.data_dir = data_dir
        self.sdk_path = sdk_path
        self.spares = Spares(plain_spare) if spares else None
        self._kept_dir = data_dir / "kept-tmp"  # what a killed engine left goes now
        shutil.rmtree(self._kept_dir, ignore_errors=True)
        self.kept = KeptTmps(lambda path: shutil.rmtree(path, ignore_errors=True))

    def view(self, family: str, task_root: Path, opt_dir: Path | None, env_id: str) -> View:
        directory = runtime_dir(family)
        private = self.data_dir / "envs" / env_id
        return View(
            str(task_root),
            str(directory or task_root),
            str(opt_dir) if opt_dir else None,
            str(private / "tmp"),
            self.sdk_path if family == "python" else None,
            opt_variable=True,
            private_dir=str(private),
        )

    def keep_tmp(self, process: Process, view: View) -> str | None:
        """Move the runtime's TMPDIR aside (its environment's directory goes with it)."""
        if view.tmp_dir is None or not os.path.isdir(view.tmp_dir):
            return None
        self._kept_dir.mkdir(parents=True, exist_ok=True)
        kept = str(self._kept_dir / ids.hex_id())
        try:
            os.rename(view.tmp_dir, kept)
        except OSError:
            return None
        return kept

    def spawn(self, launch: Launch) -> Process:
        tmp_dir = launch.env.get("TMPDIR")
        if launch.kept_tmp is not None and tmp_dir is not None:
            try:  # over the new runtime's own, still empty
                os.replace(launch.kept_tmp, tmp_dir)
            except OSError:
                shutil.rmtree(launch.kept_tmp, ignore_errors=True)
        spare = self.spares.take(launch.argv) if self.spares and launch.spare else None
        child = supervisor.Child(
            launch.argv,
            launch.env,
            launch.cwd,
            launch.on_output,
            launch.on_exit,
            spare=spare.popen if spare else None,
        )
        child.start()
        return child

    def close(self) -> None:
        self.kept.close()
        if self.spares is not None:
            self.spares.close()


class SandboxLauncher:
    """The runtime under bubblewrap with Lambda's layout (sandbox.py)."""

    def __init__(self, support: Support, data_dir: Path, spares: bool = True) -> None:
        self.support = support
        self.etc = sandbox.write_etc(data_dir / "sandbox" / "etc")
        self.sdk = sandbox.sdk_entries()
        self.slots = Slots(data_dir) if support.late_mounts else None
        if self.slots is not None:
            self.slots.open()
        self.spares = Spares(self._start_spare) if spares and self.slots else None
        self.kept = KeptTmps(lambda path: Slots.clear(Path(path)))
        self._layouts: dict[
            tuple[str, ...], tuple[tuple[tuple[str, str], ...], tuple[str, ...]]
        ] = {}
        self._compiled: dict[str, subprocess.Popen[bytes]] = {}

    def view(self, family: str, task_root: Path, opt_dir: Path | None, env_id: str) -> View:
        return View(
            sandbox.TASK,
            sandbox.RUNTIME,
            sandbox.OPT,
            None,
            None,
            opt_variable=False,
            private_dir=f"{sandbox.TMP}/.lamina",
        )

    def _mounts(self, launch: Launch) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
        directory = runtime_dir(launch.family)
        entries = (
            sandbox.runtime_entries(directory, self.sdk if launch.family == "python" else ())
            if directory
            else ()
        )
        return entries, sandbox.interpreter_roots(launch.interpreter)

    def spawn(self, launch: Launch) -> Process:
        entries, roots = self._mounts(launch)
        if launch.family == "python" and launch.interpreter:
            self._precompile(launch.interpreter)
        if self.spares is not None and launch.spare:
            self._layouts[tuple(launch.argv)] = (entries, roots)
            taken = self.spares.take(launch.argv)
            if taken is not None:
                process = self._assign(taken, launch)
                if process is not None:
                    return process
        slot = self._tmp_slot(launch)
        layout = Layout(
            str(launch.task_root),
            str(launch.opt_dir) if launch.opt_dir else None,
            entries,
            roots,
            launch.tmp_mb,
            tmp=str(slot / "tmp") if slot is not None else None,
        )
        process = SandboxedProcess(
            self._command(layout, launch.argv, launch.cwd),
            launch.env,
            "/",
            launch.on_output,
            launch.on_exit,
            slot=slot,
        )
        try:
            process.start()
        except supervisor.SpawnError:
            if slot is not None:
                Slots.clear(slot)
            raise
        return process

    def _tmp_slot(self, launch: Launch) -> Path | None:
        """As root, a sandbox's /tmp is a tmpfs on a slot of its own, which a reset can keep
        (`keep_tmp`); else it is bwrap's, ended with the sandbox."""
        if self.slots is None:
            return None
        slot = self.slots.make(ids.hex_id())
        kept = Path(launch.kept_tmp) if launch.kept_tmp is not None else None
        try:
            Slots.fill_tmp(slot, launch.tmp_mb, kept)
        except OSError:
            Slots.clear(slot)
            if kept is not None:
                Slots.clear(kept)
            return None
        return slot

    def keep_tmp(self, process: Process, view: View) -> str | None:
        """Keep the runtime's slot, its /tmp still mounted (sandboxes as root only)."""
        slot = process.keep_slot() if isinstance(process, SandboxedProcess) else None
        return str(slot) if slot is not None else None

    def _assign(self, spare: Spare, launch: Launch) -> Process | None:
        slot = spare.slot
        assert slot is not None
        try:
            Slots.fill(
                slot,
                str(launch.task_root),
                str(launch.opt_dir) if launch.opt_dir else None,
                launch.tmp_mb,
                Path(launch.kept_tmp) if launch.kept_tmp is not None else None,
            )
        except OSError:
            spare.discard()  # a kept /tmp is still whole: only fill's last step takes it
            return None
        # bwrap sets PWD in a sandbox it starts; a spare is told it with the rest
        process = SandboxedProcess(
            launch.argv,
            {**launch.env, "PWD": launch.cwd},
            launch.cwd,
            launch.on_output,
            launch.on_exit,
            spare=spare.popen,
            slot=slot,
        )
        process.start()
        return process

    def _start_spare(self, argv: list[str]) -> Spare:
        assert self.slots is not None
        entries, roots = self._layouts[tuple(argv)]
        slot = self.slots.make(ids.hex_id())
        layout = Layout(
            str(slot / "task"), str(slot / "opt"), entries, roots, 0, tmp=str(slot / "tmp")
        )
        try:
            popen = supervisor.prestart(
                self._command(layout, [*argv, "--standby"], "/"),
                STANDBY_ENV,
                "/",
                new_session=supervisor.has_terminal(),
            )
        except supervisor.SpawnError:
            Slots.clear(slot)
            raise
        return Spare(popen, lambda: discard_sandboxed(popen, slot), slot)

    def _precompile(self, interpreter: str) -> None:
        """Compile boto3 for this interpreter once, in the background: /var/runtime is
        read-only in a sandbox, so an interpreter would otherwise compile it at every import
        (~1.5 s) where it used to write its own cache the first time."""
        if interpreter in self._compiled:
            return
        paths = [host for host, _name in self.sdk]
        try:
            self._compiled[interpreter] = subprocess.Popen(
                ["nice", "-n", "10", interpreter, "-m", "compileall", "-q", *paths],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=dict(STANDBY_ENV),
                start_new_session=True,
            )
        except OSError:
            pass

    def _command(self, layout: Layout, argv: list[str], cwd: str) -> list[str]:
        return sandbox.command(
            layout, [*_file_limit(), *argv], self.etc, self.support.privileged, cwd
        )

    def close(self) -> None:
        self.kept.close()
        if self.spares is not None:
            self.spares.close()
        if self.slots is not None:
            self.slots.close()
        for compiling in self._compiled.values():
            if compiling.poll() is None:
                compiling.kill()
            compiling.wait()


def _file_limit() -> list[str]:
    """`prlimit` before the runtime: Lambda's 1,024 open files, set before bwrap's children
    exist (a limit set on bwrap after its start could miss them)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = (
        supervisor.FILE_LIMIT
        if hard == resource.RLIM_INFINITY
        else min(supervisor.FILE_LIMIT, hard)
    )
    return ["prlimit", f"--nofile={wanted}:", "--"]


def make_launcher(
    support: Support, data_dir: Path, sdk_path: str | None, spares: bool = True
) -> Launcher:
    if support.active:
        return SandboxLauncher(support, data_dir, spares)
    return PlainLauncher(data_dir, sdk_path, spares, support)
