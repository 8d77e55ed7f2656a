"""Deployment packages for durable functions: the code with the durable execution SDK bundled,
as `sam build` bundles it (the SDK is not part of Lambda's Python runtime), and compiled.

The package carries each module's bytecode (`__pycache__/*.pyc`, unchecked-hash: valid
whatever the files' times after unzipping), as `pip install --compile` leaves it: /var/task is
read-only in the sandbox, so without it every cold start compiles the SDK's ~60 modules again
(most of a durable function's Init on a busy machine)."""

from __future__ import annotations

import functools
import os
import pathlib
import subprocess
import tempfile

from tests.conftest import make_zip

RUNTIME = "python3.13"


def sdk_root() -> pathlib.Path:
    """The SDK's package directory: the release installed in .venv, or the one under
    $LAMINA_DURABLE_SDK_DIR (a `pip install --target` directory, to compare releases)."""
    override = os.environ.get("LAMINA_DURABLE_SDK_DIR")
    if override:
        return pathlib.Path(override) / "aws_durable_execution_sdk_python"
    import aws_durable_execution_sdk_python as sdk

    return pathlib.Path(sdk.__file__).parent


def sdk_sources() -> dict[str, bytes]:
    root = sdk_root()
    return {
        f"aws_durable_execution_sdk_python/{path.relative_to(root)}": path.read_bytes()
        for path in root.rglob("*.py")
    }


def compiled(files: dict[str, bytes], runtime: str = RUNTIME) -> dict[str, bytes]:
    """The `__pycache__` entries of `files`' modules, compiled by the interpreter the engine
    runs `runtime` on (none when there is no such interpreter: the package works without)."""
    from lamina.runtime.interpreters import Interpreters

    interpreter = Interpreters().resolve(runtime)
    if interpreter is None:
        return {}
    with tempfile.TemporaryDirectory() as folder:
        root = pathlib.Path(folder)
        for name, content in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(content)
        done = subprocess.run(
            [
                interpreter.path,
                "-m",
                "compileall",
                "-q",
                "-j",
                "0",
                "--invalidation-mode",
                "unchecked-hash",
                folder,
            ],
            capture_output=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            return {}
        return {
            str(path.relative_to(root)): path.read_bytes()
            for path in root.rglob("__pycache__/*.pyc")
        }


@functools.lru_cache(maxsize=2)
def _compiled_sdk(runtime: str) -> tuple[tuple[str, bytes], ...]:
    return tuple(compiled(sdk_sources(), runtime).items())


def sdk_package(extra: dict[str, str | bytes], runtime: str = RUNTIME) -> bytes:
    """A zip of `extra` (path → content) with the SDK beside it, both compiled."""
    files: dict[str, str | bytes] = dict(extra)
    files.update(sdk_sources())
    files.update(dict(_compiled_sdk(runtime)))
    files.update(
        compiled(
            {
                name: content.encode() if isinstance(content, str) else content
                for name, content in extra.items()
                if name.endswith(".py")
            },
            runtime,
        )
    )
    return make_zip(files)
