"""Lambda's execution environment with bubblewrap: its filesystem layout and its isolation.

Theory of operation (docs/ENVIRONMENT.md has the user's view)
-------------------------------------------------------------
* Each environment's runtime runs under `bwrap` with its own mount, PID and IPC namespaces and
  Lambda's layout: the code read-only at /var/task, the function's layers (merged) read-only
  at /opt, Lamina's runtime (and, for Python, boto3) at /var/runtime, a private /tmp of
  `EphemeralStorage` MB (a tmpfs: ENOSPC past it), the host's /usr, /etc and the interpreter's
  own prefix read-only, and nothing else: no home directories, no data directory, no other
  function. The runtime runs as Lambda's `sbx_user1051` (uid 993, gid 990).
* As root, bwrap runs privileged (no user namespace needed) and `setpriv` drops to uid 993
  with no capabilities, no groups and no_new_privs. As another user, bwrap makes a user
  namespace in which the runtime is uid 993 (outside it stays the engine's user).
* The network is the host's: the runtime reaches its Runtime API and the engine's Lambda API
  on loopback, and AWS endpoints, as on Lambda.
* Spare runtimes (spares.py) are started in a sandbox before their function is known. Their
  /var/task, /opt and /tmp are bound from an empty "slot" directory under a shared mount
  (mount propagation, `mount_namespaces(7)`): when a spare is taken, the engine mounts the
  code, the layers and a sized tmpfs onto its slot on the host, and the mounts appear inside
  the sandbox. That needs the engine to be root (CAP_SYS_ADMIN); otherwise every cold start
  starts a new sandbox, about 5 ms slower. The engine makes those mounts in a mount namespace
  of its own (`private_mounts`, at start, before it has threads), so they end with it even
  when it is killed: nothing is left mounted on the host.
* `probe` decides at start whether bwrap runs here (`--sandbox auto`: bubblewrap where it
  works, else none with one warning).
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("lamina.runtime")

MODES = ("auto", "bwrap", "none")
UID, GID = 993, 990  # Lambda's sbx_user1051
USER = "sbx_user1051"
TASK, OPT, RUNTIME, TMP = "/var/task", "/opt", "/var/runtime", "/tmp"
# What boto3 needs, bound at /var/runtime for Python functions (where Lambda has it).
SDK_MODULES = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "urllib3",
    "six",
    "debugpy",
)  # debugpy: `lamina debug` (the bootstrap imports it only then)
# Top-level entries of the host bound read-only (or re-made as the same symbolic link).
HOST_ENTRIES = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")


@dataclass(frozen=True)
class Support:
    """What `--sandbox` came to on this machine."""

    mode: str  # "bwrap" or "none"
    reason: str | None = None  # why not bwrap, when `auto` fell back
    privileged: bool = False  # bwrap runs as root (setpriv drops to uid 993)
    late_mounts: bool = False  # spares can be given their code after they started

    @property
    def active(self) -> bool:
        return self.mode == "bwrap"

    def warning(self) -> str | None:
        if self.active:
            return None
        if self.reason:
            return (
                f"functions run without a sandbox: {self.reason}. They see the host's "
                "files and processes and run as the engine's user; install bubblewrap "
                "(apt-get install bubblewrap) or see docs/ENVIRONMENT.md"
            )
        return None

    def describe(self) -> str:
        if not self.active:
            return "none" + (f" ({self.reason})" if self.reason else " (--sandbox none)")
        user = "root" if self.privileged else "user namespace"
        spares = "spares in sandboxes" if self.late_mounts else "no spares (not root)"
        return f"bwrap ({user}; {spares})"


def probe(requested: str, data_dir: Path | None) -> Support:
    """Whether bubblewrap can run environments here; `requested` is the `--sandbox` value.
    With `data_dir`, also whether spares can be sandboxed (their slots are set up there)."""
    if requested == "none":
        return Support("none")
    problem = _bwrap_problem()
    if problem is not None:
        if requested == "bwrap":
            raise SystemExit(f"lamina: --sandbox bwrap: {problem}")
        return Support("none", problem)
    privileged = os.geteuid() == 0
    late = privileged and (data_dir is None or Slots.usable(data_dir))
    return Support("bwrap", privileged=privileged, late_mounts=late)


def _bwrap_problem() -> str | None:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    argv = [
        bwrap,
        *_namespaces(os.geteuid() == 0),
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "true",
    ]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=20, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap could not start: {exc}"
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        return "bwrap cannot make namespaces here" + (f" ({detail[-1]})" if detail else "")
    return None


def _namespaces(privileged: bool) -> list[str]:
    ids = [] if privileged else ["--unshare-user", "--uid", str(UID), "--gid", str(GID)]
    return ["--unshare-pid", "--unshare-ipc", "--die-with-parent", *ids]


# the command line ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """One sandbox's mounts: host paths and what the runtime sees where."""

    task: str  # host directory bound at /var/task
    opt: str | None  # host directory bound at /opt (merged layers)
    runtime: tuple[tuple[str, str], ...]  # (host path, name under /var/runtime)
    roots: tuple[str, ...]  # interpreter prefixes bound read-only where they are
    tmp_mb: int  # /tmp size
    tmp: str | None = None  # a host directory bound at /tmp (a spare's slot) instead


def command(
    layout: Layout, argv: list[str], etc: Path, privileged: bool, cwd: str = TASK
) -> list[str]:
    """The full command line: bwrap, its mounts, the uid switch, then `argv` (pure)."""
    args = ["bwrap", *_namespaces(privileged)]
    for name in HOST_ENTRIES:
        host = "/" + name
        if os.path.islink(host):
            args += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            args += ["--ro-bind", host, host]
    args += [
        "--ro-bind",
        str(etc / "passwd"),
        "/etc/passwd",
        "--ro-bind",
        str(etc / "group"),
        "/etc/group",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--perms",
        "0755",
        "--dir",
        "/var",
        "--ro-bind",
        layout.task,
        TASK,
    ]
    if layout.opt is not None:
        args += ["--ro-bind", layout.opt, OPT]
    else:
        args += ["--perms", "0755", "--dir", OPT]
    if layout.tmp is not None:
        args += ["--bind", layout.tmp, TMP]
    else:
        args += ["--perms", "1777", "--size", str(layout.tmp_mb * 1024 * 1024), "--tmpfs", TMP]
    args += ["--perms", "0755", "--tmpfs", RUNTIME]
    for host, name in layout.runtime:
        args += ["--ro-bind", host, f"{RUNTIME}/{name}"]
    args += ["--remount-ro", RUNTIME]
    made: set[str] = set()
    for root in layout.roots:
        for parent in reversed(Path(root).parents[:-1]):  # bwrap would make them 0700
            if str(parent) not in made:
                made.add(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", root, root]
    args += ["--chdir", cwd]
    if privileged:
        args += [
            "setpriv",
            f"--reuid={UID}",
            f"--regid={GID}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]
    return args + argv


def interpreter_roots(interpreter: str | None) -> tuple[str, ...]:
    """The prefix an interpreter needs besides /usr (e.g. /root/.pyenv/versions/3.12.1)."""
    if not interpreter:
        return ()
    real = os.path.realpath(interpreter)
    prefix = os.path.dirname(os.path.dirname(real))
    if prefix in ("/", "") or any(
        prefix == f"/{name}" or prefix.startswith(f"/{name}/") for name in HOST_ENTRIES
    ):
        return ()
    return (prefix,)


def sdk_entries() -> tuple[tuple[str, str], ...]:
    """boto3 and what it imports, from the engine's own installation: (host path, name)."""
    found = []
    for module in SDK_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        path = origin.parent if origin.name == "__init__.py" else origin
        found.append((str(path), path.name))
    return tuple(found)


def runtime_entries(
    directory: Path, sdk: Iterable[tuple[str, str]] = ()
) -> tuple[tuple[str, str], ...]:
    """A bootstrap directory's files, then the SDK, as (host path, name under /var/runtime)."""
    files = sorted(
        (str(entry), entry.name)
        for entry in directory.iterdir()
        if entry.is_file() and not entry.name.startswith(".")
    )
    return (*files, *sdk)


def write_etc(directory: Path) -> Path:
    """The sandbox's /etc/passwd and /etc/group (Lambda's user, root, nobody)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "passwd").write_text(
        "root:x:0:0:root:/root:/sbin/nologin\n"
        f"{USER}:x:{UID}:{GID}::/home/{USER}:/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/:/sbin/nologin\n"
    )
    (directory / "group").write_text(f"root:x:0:\n{USER}:x:{GID}:\nnobody:x:65534:\n")
    return directory


# host mounts for spares ---------------------------------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)
_MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC = 2, 4, 4096, 16384
_MS_PRIVATE, _MS_SLAVE, _MS_SHARED = 1 << 18, 1 << 19, 1 << 20
_CLONE_NEWNS = 0x00020000
_MNT_DETACH = 2
_AT_FDCWD, _AT_EMPTY_PATH, _AT_RECURSIVE = -100, 0x1000, 0x8000
_OPEN_TREE_CLONE, _OPEN_TREE_CLOEXEC = 1, os.O_CLOEXEC
_MOVE_MOUNT_F_EMPTY_PATH = 4
_MOUNT_ATTR_RDONLY, _MOUNT_ATTR_NOSUID, _MOUNT_ATTR_NODEV = 1, 2, 4
# the same on every architecture since Linux 5.x (the syscall table was unified at 424)
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _SYS_MOUNT_SETATTR = 428, 429, 442


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _check(result: int, what: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")
    return result


def _mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    _check(
        _libc.mount(
            source and source.encode(),
            target.encode(),
            fstype and fstype.encode(),
            ctypes.c_ulong(flags),
            data and data.encode(),
        ),
        f"mount {target}",
    )


def _bind(source: str, target: str, read_only: bool = True) -> None:
    """Mount `source` read-only (or only nosuid and nodev) at `target`, with those flags set
    before it is attached, so the copy that propagates into a sandbox has them too (a bind
    then a remount would not)."""
    fd = _check(
        _libc.syscall(
            _SYS_OPEN_TREE,
            _AT_FDCWD,
            source.encode(),
            _OPEN_TREE_CLONE | _OPEN_TREE_CLOEXEC | _AT_RECURSIVE,
        ),
        f"open_tree {source}",
    )
    try:
        flags = _MOUNT_ATTR_NOSUID | _MOUNT_ATTR_NODEV | (_MOUNT_ATTR_RDONLY if read_only else 0)
        attr = _MountAttr(flags, 0, 0, 0)
        _check(
            _libc.syscall(
                _SYS_MOUNT_SETATTR,
                fd,
                b"",
                _AT_EMPTY_PATH | _AT_RECURSIVE,
                ctypes.byref(attr),
                ctypes.sizeof(attr),
            ),
            "mount_setattr",
        )
        _check(
            _libc.syscall(
                _SYS_MOVE_MOUNT, fd, b"", _AT_FDCWD, target.encode(), _MOVE_MOUNT_F_EMPTY_PATH
            ),
            f"move_mount {target}",
        )
    finally:
        os.close(fd)


def _detach(target: str) -> None:
    _libc.umount2(target.encode(), _MNT_DETACH)


def _mounts_under(root: str) -> list[str]:
    """Mount points at or below `root`, deepest first (from /proc/self/mountinfo)."""
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                point = line.split()[4].replace("\\040", " ")
                if point == root or point.startswith(root + "/"):
                    found.append(point)
    except OSError:
        return []
    return sorted(found, key=len, reverse=True)


_private = False


def private_mounts() -> bool:
    """Move this process into a mount namespace of its own, a slave of the host's (host
    mounts still appear in it, its own never leave it). Root only, and only while the
    process has one thread: call it first thing (`lamina serve` does)."""
    global _private
    if _private:
        return True
    if os.geteuid() != 0 or _libc.unshare(_CLONE_NEWNS) != 0:
        return False
    try:
        _mount(None, "/", None, _MS_REC | _MS_SLAVE)
    except OSError:
        return False
    _private = True
    return True


class Slots:
    """Per-spare mount points under `<data dir>/sandbox/slots`, a shared mount of its own.

    A spare's sandbox binds `slot/task`, `slot/opt` and `slot/tmp`; `fill` mounts the
    function's code, layers and a sized tmpfs there when the spare is taken, and `clear`
    takes them down when the environment ends. A sandbox started for its function binds only
    `slot/tmp`. A reset keeps a slot, its tmpfs mounted, for the next runtime (reset.py)."""

    def __init__(self, data_dir: Path) -> None:
        self.root = (data_dir / "sandbox" / "slots").resolve()

    @staticmethod
    def usable(data_dir: Path) -> bool:
        if not private_mounts():
            log.info(
                "spares cannot be sandboxed ahead of need: the engine could not make a "
                "mount namespace of its own"
            )
            return False
        slots = Slots(data_dir)
        try:
            slots.open()
        except OSError as exc:
            log.info("spares cannot be sandboxed ahead of need: %s", exc)
            return False
        return True

    def open(self) -> None:
        """Clear what a previous engine left, then make the root a shared mount of its own."""
        for point in _mounts_under(str(self.root)):
            _detach(point)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        _mount(str(self.root), str(self.root), None, _MS_BIND)
        _mount(None, str(self.root), None, _MS_PRIVATE)
        _mount(None, str(self.root), None, _MS_SHARED)

    def close(self) -> None:
        for point in _mounts_under(str(self.root)):
            _detach(point)
        shutil.rmtree(self.root, ignore_errors=True)

    def make(self, name: str) -> Path:
        slot = self.root / name
        for part in ("task", "opt", "tmp"):
            (slot / part).mkdir(parents=True, exist_ok=True)
        return slot

    @staticmethod
    def fill(slot: Path, task: str, opt: str | None, tmp_mb: int, kept: Path | None = None) -> None:
        _bind(task, str(slot / "task"))
        if opt is not None:
            _bind(opt, str(slot / "opt"))
        Slots.fill_tmp(slot, tmp_mb, kept)

    @staticmethod
    def fill_tmp(slot: Path, tmp_mb: int, kept: Path | None = None) -> None:
        """A new tmpfs of `tmp_mb` MB at `slot/tmp`, or the one a reset kept on the slot
        `kept` (reset.py), which is then cleared: the tmpfs lives on in its new place."""
        if kept is None:
            _mount(
                "tmpfs",
                str(slot / "tmp"),
                "tmpfs",
                _MS_NOSUID | _MS_NODEV,
                f"size={tmp_mb}m,mode=1777",
            )
            return
        _bind(str(kept / "tmp"), str(slot / "tmp"), read_only=False)
        Slots.clear(kept)

    @staticmethod
    def clear(slot: Path) -> None:
        for part in ("tmp", "opt", "task"):
            _detach(str(slot / part))
        shutil.rmtree(slot, ignore_errors=True)


def delegated_controllers() -> set[str]:
    """The cgroup v2 controllers the engine could hand its environments: those of its own
    cgroup when that cgroup (on a cgroup2 mount) is writable by the engine. Empty on hybrid
    or v1 hosts, and where nothing is delegated."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as own:
            path = next((line.strip()[3:] for line in own if line.startswith("0::")), None)
        with open("/proc/self/mountinfo", encoding="utf-8") as info:
            mounts = [line.split() for line in info]
    except OSError:
        return set()
    if path is None:
        return set()
    for fields in mounts:
        dash = fields.index("-")
        if fields[dash + 1] == "cgroup2":
            directory = Path(fields[4]) / path.lstrip("/")
            try:
                controllers = set((directory / "cgroup.controllers").read_text().split())
            except OSError:
                continue
            if os.access(directory, os.W_OK):
                return controllers
    return set()
