"""Deployment packages for durable functions: the code with the durable execution SDK bundled,
as `sam build` bundles it (the SDK is not part of Lambda's Python runtime)."""

from __future__ import annotations

import os
import pathlib

from tests.conftest import make_zip


def sdk_root() -> pathlib.Path:
    """The SDK's package directory: the release installed in .venv, or the one under
    $LAMINA_DURABLE_SDK_DIR (a `pip install --target` directory, to compare releases)."""
    override = os.environ.get("LAMINA_DURABLE_SDK_DIR")
    if override:
        return pathlib.Path(override) / "aws_durable_execution_sdk_python"
    import aws_durable_execution_sdk_python as sdk
    return pathlib.Path(sdk.__file__).parent


def sdk_package(extra: dict[str, str | bytes]) -> bytes:
    """A zip of `extra` (path → content) with the SDK beside it."""
    root = sdk_root()
    files: dict[str, str | bytes] = dict(extra)
    for path in root.rglob("*.py"):
        files[f"aws_durable_execution_sdk_python/{path.relative_to(root)}"] = path.read_bytes()
    return make_zip(files)
