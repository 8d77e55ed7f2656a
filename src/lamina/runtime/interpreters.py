"""Find the interpreter that runs a runtime identifier on this machine.

`python3.12` runs on a real Python 3.12 binary, `nodejs20.x` on Node 20. Where the exact
version is absent, the closest present one runs the function and the function's log says so
(a warning at every cold start). A mapping (`--runtime python3.12=/opt/py312/bin/python3`)
points a runtime at a chosen interpreter.

Only real executables count: a pyenv shim is a shell script that costs ~150 ms per start,
so candidates must be ELF binaries (symlinks are followed).
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lamina.domain import runtimes


@dataclass(frozen=True, slots=True)
class Interpreter:
    path: str
    version: tuple[int, int]
    warning: str | None = None  # set when this is not the exact version asked for
    release: tuple[int, int, int] | None = None  # node's full version (`node_release`)


def _is_binary(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"\x7fELF"
    except OSError:
        return False


def _path_dirs() -> list[str]:
    return [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and "shims" not in d]


def _python_candidates() -> dict[tuple[int, int], str]:
    found: dict[tuple[int, int], str] = {}
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    patterns = [os.path.join(d, "python3.*") for d in _path_dirs()]
    patterns += [
        f"{pyenv}/versions/*/bin/python3.*",
        "/usr/bin/python3.*",
        "/usr/local/bin/python3.*",
    ]
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            match = re.fullmatch(r"python3\.(\d+)", os.path.basename(path))
            real = os.path.realpath(path)
            if match and os.access(real, os.X_OK) and _is_binary(real):
                found.setdefault((3, int(match[1])), real)
    return found


_NODE_RELEASES: dict[str, tuple[int, int, int] | None] = {}


def node_release(path: str) -> tuple[int, int, int] | None:
    """`node --version` of the executable at `path` as (major, minor, patch), asked once per
    path; None when it does not run or does not say."""
    if path not in _NODE_RELEASES:
        try:
            out = subprocess.run(
                [path, "--version"],
                capture_output=True,
                text=True,
                timeout=10,
                env={"PATH": "/usr/bin:/bin"},
            ).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        match = re.match(r"v(\d+)\.(\d+)\.(\d+)", out)
        _NODE_RELEASES[path] = (int(match[1]), int(match[2]), int(match[3])) if match else None
    return _NODE_RELEASES[path]


def _release(family: str, path: str) -> tuple[int, int, int] | None:
    return node_release(path) if family == "nodejs" else None


def _node_candidates() -> dict[tuple[int, int], str]:
    found: dict[tuple[int, int], str] = {}
    paths = [os.path.join(d, "node") for d in _path_dirs()] + [
        "/usr/bin/node",
        "/usr/local/bin/node",
    ]
    paths += sorted(glob.glob(os.path.expanduser("~/.nvm/versions/node/*/bin/node")))
    for path in paths:
        real = os.path.realpath(path)
        if not (os.access(real, os.X_OK) and _is_binary(real)):
            continue
        release = node_release(real)
        if release is not None:
            found.setdefault((release[0], 0), real)
    return found


class Interpreters:
    """Runtime identifier → interpreter, discovered once per family and cached."""

    def __init__(self, overrides: dict[str, str] | None = None) -> None:
        self.overrides = dict(overrides or {})
        self._tables: dict[str, dict[tuple[int, int], str]] = {}
        self._cache: dict[str, Interpreter | None] = {}

    def _table(self, family: str) -> dict[tuple[int, int], str]:
        if family not in self._tables:
            self._tables[family] = (
                _python_candidates() if family == "python" else _node_candidates()
            )
        return self._tables[family]

    def resolve(self, runtime: str) -> Interpreter | None:
        """The interpreter for `runtime`, or None when no interpreter of its family exists."""
        if runtime not in self._cache:
            self._cache[runtime] = self._resolve(runtime)
        return self._cache[runtime]

    def _resolve(self, runtime: str) -> Interpreter | None:
        wanted = runtimes.version_of(runtime)
        family = runtimes.family(runtime)
        if runtime in self.overrides:
            path = self.overrides[runtime]
            return Interpreter(path, wanted or (0, 0), release=_release(family, path))
        if wanted is None or family not in ("python", "nodejs"):
            return None
        table = self._table(family)
        if not table:
            return None
        if wanted in table:
            return Interpreter(table[wanted], wanted, release=_release(family, table[wanted]))
        if family == "nodejs":
            closest = min(table, key=lambda v: (abs(v[0] - wanted[0]), -v[0]))
            shown = f"Node.js {closest[0]}"
        else:
            closest = min(table, key=lambda v: (abs(v[1] - wanted[1]), -v[1]))
            shown = f"Python {closest[0]}.{closest[1]}"
        return Interpreter(
            table[closest],
            closest,
            f"LAMINA_WARNING: {runtime} is not installed on this machine; "
            f"running on {shown} ({table[closest]}). Map a runtime to an "
            "interpreter with `lamina serve --runtime RUNTIME=PATH`.",
            _release(family, table[closest]),
        )

    def available(self) -> dict[str, list[str]]:
        """What was found, for `lamina runtimes` and the start-up log."""
        return {
            family: [f"{v[0]}.{v[1]} {p}" for v, p in sorted(self._table(family).items())]
            for family in ("python", "nodejs")
        }


def task_bootstrap(task_root: Path, opt_dir: Path | None = None) -> Path | None:
    """The executable a `provided` runtime starts: the package's `bootstrap`, else a layer's
    (Lambda's /opt/bootstrap; spec §9.1)."""
    for root in (task_root, opt_dir):
        if root is not None and (root / "bootstrap").exists():
            return root / "bootstrap"
    return None
