"""hypothesis on the event-stream encoder (read back by botocore's own decoder) and on package
unpacking (random, mutated and hostile zips: refused as Lambda refuses them, or unpacked
inside the package's folder, never anything else)."""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lamina.api import event_stream
from lamina.domain import errors
from lamina.storage.code import CodeStore

EXAMPLES = int(os.environ.get("LAMINA_FUZZ_EXAMPLES") or 30)
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


def decode(data: bytes) -> list:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


@pytest.mark.fuzz
@FUZZ
@given(st.lists(st.binary(max_size=70_000), max_size=5))
def test_payload_chunks_read_back_with_botocore(chunks: list[bytes]):
    messages = decode(b"".join(event_stream.payload_chunk(chunk) for chunk in chunks))
    assert [m.payload for m in messages] == chunks
    assert all(m.headers[":event-type"] == "PayloadChunk" for m in messages)


@pytest.mark.fuzz
@FUZZ
@given(
    st.dictionaries(
        st.text(max_size=20),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(),
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3)
            ),
            max_leaves=10,
        ),
    )
)
def test_invoke_complete_reads_back_with_botocore(details: dict):
    [message] = decode(event_stream.invoke_complete(details))
    assert message.headers[":event-type"] == "InvokeComplete"
    assert json.loads(message.payload) == details


@pytest.mark.fuzz
@FUZZ
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=40).filter(lambda n: len(n.encode()) < 256),
        st.text(max_size=300),
        max_size=4,
    ),
    st.binary(max_size=2000),
)
def test_any_headers_read_back_with_botocore(headers: dict[str, str], payload: bytes):
    [message] = decode(event_stream.message(headers, payload))
    assert message.headers == headers and message.payload == payload


# zips ---------------------------------------------------------------------------------------
NAMES = st.sampled_from(
    [
        "a.py",
        "dir/b.py",
        "../up.py",
        "/abs.py",
        "dir/../../x",
        "a\\..\\..\\w",
        "",
        "dir/",
        ".",
        "link",
        "dir/link",
        "..",
        "a/./b",
        "\x00n",
        "é/ü.py",
    ]
)
TARGETS = st.sampled_from(
    [
        b"a.py",
        b"../..",
        b"/etc/passwd",
        b"dir",
        b".",
        b"dir/../..",
        b"link",
        b"dir/link",
        b"\xff",
        b"",
    ]
)


@st.composite
def archives(draw: st.DrawFn) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for _ in range(draw(st.integers(0, 6))):
            name = draw(NAMES | st.text(max_size=12))
            info = zipfile.ZipInfo(name or "x")
            info.compress_type = draw(
                st.sampled_from(
                    [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
                )
            )
            if draw(st.booleans()):
                info.external_attr = 0o120777 << 16
                data = draw(TARGETS)
            else:
                info.external_attr = draw(st.sampled_from([0o100644, 0o100755, 0o40755, 0])) << 16
                data = draw(st.binary(max_size=64))
            with warnings.catch_warnings():  # duplicate names: hostile zips have them
                warnings.simplefilter("ignore")
                archive.writestr(info, data)
    raw = bytearray(buffer.getvalue())
    for _ in range(draw(st.integers(0, 3))):  # flip bytes: corrupt headers and data
        if raw:
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    return bytes(raw)


@pytest.mark.fuzz
@FUZZ
@given(archives())
def test_any_zip_is_refused_or_unpacked_inside_the_package(tmp_path_factory, data: bytes):
    root = tmp_path_factory.mktemp("code")
    store = CodeStore(root / "code")
    try:
        package = store.put(data)
    except errors.InvalidParameterValue as error:
        assert error.status == 400
        assert not (root / "code").exists() or not any(p for p in (root / "code").iterdir()), (
            "nothing is left of a refused package"
        )
        return
    inside = package.root.resolve()
    for path in package.root.rglob("*"):
        assert path.resolve().is_relative_to(inside), path
    assert [p.name for p in root.iterdir()] == ["code"], "nothing written beside the store"
