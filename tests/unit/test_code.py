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
    data = package(
        [
            ("bootstrap", b"#!/bin/sh\n", 0o100755),
            ("lib/a.py", b"x=1", 0o100644),
            ("lib/link.py", b"a.py", 0o120777),
        ]
    )
    first = store.put(data)
    assert os.access(first.root / "bootstrap", os.X_OK)
    assert not os.access(first.root / "lib" / "a.py", os.X_OK)
    assert (first.root / "lib" / "link.py").read_text() == "x=1"
    assert store.put(data) == first
    assert store.has(first.key) and not store.has("0" * 64)
    assert len([p for p in tmp_path.iterdir() if p.name.startswith(".build")]) == 0


@pytest.mark.parametrize(
    "entries",
    [
        [("../x", b"", 0o100644)],
        [("/etc/x", b"", 0o100644)],
        [("a/../../x", b"", 0o100644)],
        [("link", b"/etc/passwd", 0o120777)],
        [("link", b"../outside", 0o120777)],
        # a chain: each link alone looks inside, together they leave the tree
        [("d", b".", 0o120777), ("e", b"d/..", 0o120777), ("f", b"e/..", 0o120777)],
    ],
)
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


def test_layers_merge_in_order_once_and_count_unzipped_bytes(tmp_path):
    store = CodeStore(tmp_path)
    first = store.put(
        package([("python/a.py", b"first", 0o100644), ("bin/tool", b"#!/bin/sh\n", 0o100755)])
    )
    second = store.put(
        package([("python/a.py", b"second!", 0o100644), ("python/b.py", b"b", 0o100644)])
    )
    assert store.unzipped_size(first.key) == len(b"first") + len(b"#!/bin/sh\n")
    merged = store.merged([first.key, second.key])
    assert (merged / "python" / "a.py").read_bytes() == b"second!"
    assert (merged / "python" / "b.py").read_bytes() == b"b"
    assert os.access(merged / "bin" / "tool", os.X_OK)
    assert (first.root / "python" / "a.py").read_bytes() == b"first", "layers stay as they were"
    assert store.merged([first.key, second.key]) == merged
    reverse = store.merged([second.key, first.key])
    assert reverse != merged and (reverse / "python" / "a.py").read_bytes() == b"first"


def test_a_later_layer_replaces_whatever_kind_of_entry_an_earlier_one_had(tmp_path):
    store = CodeStore(tmp_path)
    first = store.put(
        package(
            [
                ("python/pkg/__init__.py", b"dir", 0o100644),
                ("python/mod.py", b"file", 0o100644),
                ("python/real.py", b"r", 0o100644),
            ]
        )
    )
    second = store.put(
        package(
            [
                ("python/pkg", b"real.py", 0o120777),
                ("python/mod.py/inner.py", b"now a dir", 0o100644),
            ]
        )
    )
    merged = store.merged([first.key, second.key])
    assert (merged / "python" / "pkg").is_symlink()
    assert os.readlink(merged / "python" / "pkg") == "real.py"
    assert (merged / "python" / "mod.py" / "inner.py").read_bytes() == b"now a dir"
    back = store.merged([second.key, first.key])
    assert (back / "python" / "pkg" / "__init__.py").read_bytes() == b"dir"
    assert (back / "python" / "mod.py").read_bytes() == b"file"
