"""What every loader returns, and packaging local code the way `sam package` does: each
local folder or zip a template names becomes a zip (deterministic: sorted entries, fixed
times, so the same files give the same package and the engine sees no change) and the
property is rewritten to point at the package, which `lamina deploy` uploads first."""

from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamina.domain.stacks import HOT_RELOAD_BUCKET, PACKAGE_BUCKET

_SKIPPED = ("__pycache__", ".aws-sam", ".git")


class LoadError(Exception):
    """PATH is not something Lamina can deploy: the message says why, in one line."""


@dataclass
class Application:
    template: dict[str, Any]
    source: Path  # the template file read
    stack_name: str  # the default stack name (the application's folder)
    packages: dict[str, bytes] = field(default_factory=dict)  # sha256 → zip
    watched: list[Path] = field(default_factory=list)  # what --watch redeploys on
    # the application names its stacks (CDK): --stack-name picks one of them by one of its
    # `aliases` instead of naming the stack
    fixed_name: bool = False
    aliases: set[str] = field(default_factory=set)


def default_stack_name(folder: Path) -> str:
    """The folder's name as a valid stack name (letters, digits, hyphens; a letter first)."""
    name = re.sub(r"[^A-Za-z0-9-]+", "-", folder.resolve().name).strip("-") or "stack"
    return (name if name[0].isalpha() else f"stack-{name}")[:128]


def zip_folder(folder: Path) -> bytes:
    """A folder as a deployment package (unix modes kept, entries sorted, times fixed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(folder, followlinks=True):
            dirs[:] = sorted(d for d in dirs if d not in _SKIPPED)
            for name in sorted(files):
                if name.endswith(".pyc"):
                    continue
                path = Path(root) / name
                info = zipfile.ZipInfo(str(path.relative_to(folder)), (1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (0o100755 if os.access(path, os.X_OK) else 0o100644) << 16
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


class Packager:
    """Turns local code paths into package references (or hot-reload folders)."""

    def __init__(self, base: Path, hot_reload: bool) -> None:
        self.base = base
        self.hot_reload = hot_reload
        self.packages: dict[str, bytes] = {}
        self.folders: list[Path] = []

    def local(self, value: Any) -> Path | None:
        """The local path a property names, or None when it names S3 or inline code."""
        if not isinstance(value, str) or value.startswith(("s3://", "https://", "http://")):
            return None
        return (self.base / value).resolve()

    def package(self, where: str, path: Path, folders_hot: bool = True) -> tuple[str, str]:
        """(bucket, key) for `path`; a LoadError naming `where` when it is missing."""
        if not path.exists():
            raise LoadError(f"{where}: {path} does not exist")
        if path.is_dir() and self.hot_reload and folders_hot:
            self.folders.append(path)
            return HOT_RELOAD_BUCKET, str(path)
        if path.is_dir():
            data = zip_folder(path)
        elif zipfile.is_zipfile(path):
            data = path.read_bytes()
        else:
            raise LoadError(f"{where}: {path} is neither a folder nor a zip file")
        key = hashlib.sha256(data).hexdigest()
        self.packages[key] = data
        return PACKAGE_BUCKET, key
