import io
import os
import zipfile

import pytest

from lamina.domain import errors
from lamina.storage.code import CodeStore


def package(entries, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def test_unpacks_keeps_execute_bits_and_dedupes(tmp_path):
    store = CodeStore(tmp_path)
    data = package([("bootstrap", b"#!/bin/sh\n", 0o100755), ("lib/a.py", b"x=1", 0o100644),
                    ("lib/link.py", b"a.py", 0o120777)])
    first = store.put(data)
    assert os.access(first.root / "bootstrap", os.X_OK)
    assert not os.access(first.root / "lib" / "a.py", os.X_OK)
    assert (first.root / "lib" / "link.py").read_text() == "x=1"
    assert store.put(data) == first
    assert store.has(first.key) and not store.has("0" * 64)
    assert len([p for p in tmp_path.iterdir() if p.name.startswith(".unpack")]) == 0


@pytest.mark.parametrize("entries", [
    [("../x", b"", 0o100644)],
    [("/etc/x", b"", 0o100644)],
    [("a/../../x", b"", 0o100644)],
    [("link", b"/etc/passwd", 0o120777)],
    [("link", b"../outside", 0o120777)],
    # a chain: each link alone looks inside, together they leave the tree
    [("d", b".", 0o120777), ("e", b"d/..", 0o120777), ("f", b"e/..", 0o120777)],
])
def test_escapes_are_refused_and_nothing_is_left(tmp_path, entries):
    store = CodeStore(tmp_path / "code")
    with pytest.raises(errors.InvalidParameterValue):
        store.put(package(entries))
    assert not any((tmp_path / "code").iterdir())


def test_not_a_zip_and_bombs(tmp_path):
    store = CodeStore(tmp_path)
    with pytest.raises(errors.InvalidParameterValue, match="Could not unzip"):
        store.put(b"PK\x03\x04 garbage")
    with pytest.raises(errors.InvalidParameterValue, match="zip bomb"):
        store.put(package([("z", bytes(30 << 20), 0o100644)], zipfile.ZIP_BZIP2))


def test_zipped_size_limit_is_413(tmp_path):
    with pytest.raises(errors.RequestTooLarge):
        CodeStore(tmp_path).put(b"x" * (50 * 1024 * 1024 + 1))
