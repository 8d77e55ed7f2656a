"""Deployment packages: check a zip, store it, and unpack it safely (spec §2.4 "Bad zip").

A package is unpacked once per content hash into `code/<sha>/`; the zip itself is kept by
the store, so every engine sharing the store can unpack it too.
Unpacking refuses what could escape or exhaust the machine: entries with absolute paths or
`..`, symbolic links that point outside the tree, more than `MAX_ZIP_ENTRIES` entries, and
more than `UNZIPPED_CODE` bytes once expanded (counted as bytes are written, not as the zip
claims) or an entry that expands past `MAX_COMPRESSION_RATIO`.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from lamina.domain import errors, limits
from lamina.domain.model import Package

BAD_ZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."


class CodeStore:
    """Packages under `<data dir>/code`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def tree(self, key: str) -> Path:
        return self.root / key

    def put(self, data: bytes, direct: bool = True) -> Package:
        """Check and unpack `data`; return the stored package. Blocking: run it in a thread.
        `direct`: uploaded in the request, where Lambda takes 50 MB zipped at most (a package
        from S3 may be larger: only its unzipped size is limited)."""
        if direct and len(data) > limits.ZIPPED_CODE:
            raise errors.RequestTooLarge(
                f"Zipped size must be smaller than {limits.ZIPPED_CODE} bytes"
            )
        digest = hashlib.sha256(data)
        key = digest.hexdigest()
        package = Package(
            base64.b64encode(digest.digest()).decode(), len(data), key, self.tree(key)
        )
        _build(package.root, lambda staging: _unpack(data, staging))
        return package

    def has(self, key: str) -> bool:
        return self.tree(key).is_dir()

    @staticmethod
    def open_to_all(tree: Path) -> None:
        """Let a sandbox's user read a tree built before trees were made 0755."""
        try:
            if tree.stat().st_mode & 0o005 != 0o005:
                os.chmod(tree, 0o755)
        except OSError:
            pass

    def unzipped_size(self, key: str) -> int:
        """Bytes of the unpacked files of a package (Lambda's 250 MB counts these)."""
        return sum(
            path.lstat().st_size
            for path in self.tree(key).rglob("*")
            if path.is_file() and not path.is_symlink()
        )

    def merged(self, keys: list[str]) -> Path:
        """The packages `keys` (unpacked already) laid over one another in order, as Lambda
        extracts layers into /opt: a later one's files replace an earlier one's. Built once
        per ordered list, under `layers/<sha256 of the keys>/`. Blocking: run it in a thread."""

        def lay(staging: Path) -> None:
            for key in keys:
                _lay_over(self.tree(key), staging)

        target = self.root / "layers" / hashlib.sha256(" ".join(keys).encode()).hexdigest()
        _build(target, lay)
        return target

    @staticmethod
    def lay(sources: list[Path], target: Path) -> Path:
        """The folders `sources` laid over one another in order into `target` (a function's
        layers when one of them is a hot-reload folder: laid out for each environment).
        A source that is missing is left out (the environment then says which).
        Blocking: run it in a thread."""
        target.mkdir(parents=True, exist_ok=True)
        for source in sources:
            if source.is_dir():
                _lay_over(source, target)
        return target


def _build(target: Path, fill: Callable[[Path], None]) -> None:
    """Make the directory `target` once: `fill` a staging directory, then rename it into
    place (if another request built the same one first, theirs stays)."""
    if target.is_dir():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        fill(staging)
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide it from a sandbox's user
        try:
            os.rename(staging, target)
        except OSError:  # built by another request meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _lay_over(source: Path, target: Path) -> None:
    """Copy the tree `source` over `target` as a later layer's extraction would: each file,
    link or directory replaces whatever an earlier layer put at its path, whatever its kind."""
    for entry in os.scandir(source):
        dest = target / entry.name
        if entry.is_dir(follow_symlinks=False):
            if os.path.lexists(dest) and (dest.is_symlink() or not dest.is_dir()):
                dest.unlink()
            dest.mkdir(exist_ok=True)
            _lay_over(Path(entry.path), dest)
            continue
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        elif os.path.lexists(dest):
            dest.unlink()
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), dest)
        else:
            shutil.copy2(entry.path, dest)


def _unpack(data: bytes, target: Path) -> None:
    """Unpack `data` into `target`, or refuse it as Lambda does. zipfile and the file system
    raise a zoo of errors on a corrupt or hostile archive (EOFError, ValueError, IndexError,
    RuntimeError for encryption, zlib/lzma errors, OSError for a file where a folder goes):
    each is the client's bad zip, except a full disk, which is the engine's."""
    try:
        _unpack_entries(data, target)
    except errors.LaminaError:
        raise
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EMFILE, errno.ENFILE):
            raise
        raise errors.InvalidParameterValue(BAD_ZIP) from None
    except Exception:  # noqa: BLE001 (the zoo above: any of them is a bad archive)
        raise errors.InvalidParameterValue(BAD_ZIP) from None


def _unpack_entries(data: bytes, target: Path) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        raise errors.InvalidParameterValue(BAD_ZIP) from None
    if len(entries) > limits.MAX_ZIP_ENTRIES:
        raise errors.InvalidParameterValue(
            f"Lamina refuses packages of more than {limits.MAX_ZIP_ENTRIES} files."
        )
    budget = [limits.UNZIPPED_CODE]
    links: list[tuple[Path, str]] = []
    for entry in entries:
        path = _safe_path(entry.filename, target)
        mode = entry.external_attr >> 16
        if stat.S_ISLNK(mode):
            links.append((path, archive.read(entry).decode("utf-8", "replace")))
        elif entry.is_dir():
            path.mkdir(parents=True, exist_ok=True)
        else:
            _extract_file(archive, entry, path, budget)
            # Keep the owner's execute bit (a custom runtime's bootstrap needs it).
            os.chmod(path, 0o755 if mode & 0o111 else 0o644)
    for path, link_target in links:
        _make_link(path, link_target, target)
    root = target.resolve()
    for path, _ in links:  # again with every link in place, so chains cannot leave the tree
        if not _resolved(path, path.relative_to(target)).is_relative_to(root):
            raise errors.InvalidParameterValue(
                f"{BAD_ZIP} Symbolic link '{path.relative_to(target)}' points outside the package."
            )


def _resolved(path: Path, name: Path) -> Path:
    """`path` with its links followed; a loop of links (the link `name`) is refused."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):  # "Symlink loop" (RuntimeError on Python 3.11/3.12)
        raise errors.InvalidParameterValue(f"{BAD_ZIP} Symbolic link '{name}' is a loop.") from None


def _safe_path(name: str, target: Path) -> Path:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or name.startswith("/"):
        raise errors.InvalidParameterValue(f"{BAD_ZIP} Entry '{name}' has an unsafe path.")
    path = target.joinpath(*pure.parts) if pure.parts else target
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _extract_file(
    archive: zipfile.ZipFile, entry: zipfile.ZipInfo, path: Path, budget: list[int]
) -> None:
    written = 0
    limit = max(entry.compress_size, 1) * limits.MAX_COMPRESSION_RATIO + 1_048_576
    try:
        with archive.open(entry) as source, open(path, "wb") as sink:
            while chunk := source.read(1 << 20):
                written += len(chunk)
                budget[0] -= len(chunk)
                if budget[0] < 0:
                    raise errors.InvalidParameterValue(
                        f"Unzipped size must be smaller than {limits.UNZIPPED_CODE} bytes"
                    )
                if written > limit:
                    raise errors.InvalidParameterValue(
                        f"{BAD_ZIP} Entry '{entry.filename}' expands more than "
                        f"{limits.MAX_COMPRESSION_RATIO} times (a zip bomb)."
                    )
                sink.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError):
        raise errors.InvalidParameterValue(BAD_ZIP) from None


def _make_link(path: Path, link_target: str, root: Path) -> None:
    resolved = (
        _resolved(path.parent / link_target, path.relative_to(root))
        if not link_target.startswith("/")
        else None
    )
    if resolved is None or not resolved.is_relative_to(root.resolve()):
        raise errors.InvalidParameterValue(
            f"{BAD_ZIP} Symbolic link '{path.relative_to(root)}' points outside the package."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    os.symlink(link_target, path)
