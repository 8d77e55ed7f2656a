"""Pure rules of S3 code, hot reload, debug mode and the CloudWatch Logs view."""

from __future__ import annotations

import base64

import pytest

from lamina.api import wire
from lamina.domain import errors
from lamina.domain.code import CodeSource, S3Object, contains, hot_reload_path
from lamina.domain.debug import debug_settings
from lamina.runtime.hot_reload import fingerprint, interesting
from lamina.runtime.logs import epoch_ms, stream_file, stream_name
from lamina.service.log_groups import message_filter


def test_code_sources_from_requests():
    assert wire.code_source({"ZipFile": base64.b64encode(b"zip").decode()}) == CodeSource(
        zip_file=b"zip"
    )
    assert wire.code_source(
        {"S3Bucket": "my-bucket", "S3Key": "a/b.zip", "S3ObjectVersion": "v1"}
    ) == CodeSource(s3=S3Object("my-bucket", "a/b.zip", "v1"))
    with pytest.raises(errors.InvalidParameterValue, match="Please provide a source"):
        wire.code_source({"S3Bucket": "my-bucket"})
    with pytest.raises(errors.ValidationError, match="at 'code.s3Bucket'"):
        wire.code_source({"S3Bucket": "ab", "S3Key": "k"})
    with pytest.raises(errors.ValidationError, match="at 's3Bucket'"):
        wire.code_source({"S3Bucket": "bad.", "S3Key": "k"}, prefix="")
    with pytest.raises(errors.InvalidParameterValue, match="container"):
        wire.code_source({"ImageUri": "repo/image:1"})


def test_hot_reload_folders(monkeypatch):
    source = CodeSource(s3=S3Object("hot-reload", "/srv/app/"))
    assert source.hot_reload_folder("hot-reload") == "/srv/app"
    assert source.hot_reload_folder("other") is None
    monkeypatch.setenv("APP_HOME", "/home/me")
    assert hot_reload_path("$APP_HOME/src") == "/home/me/src"
    with pytest.raises(errors.InvalidParameterValue, match="has to be an absolute path"):
        hot_reload_path("src")
    assert contains("/a/b", "/a/b/c.py") and contains("/a/b", "/a/b")
    assert not contains("/a/b", "/a/bc/d.py")


def test_what_the_watcher_ignores_and_what_a_fingerprint_sees(tmp_path):
    assert interesting("/src/app.py") and interesting("/src/node_modules/x/index.js")
    assert not interesting("/src/__pycache__/app.cpython-311.pyc")
    assert not interesting("/src/.app.py.swp") and not interesting("/src/.git/index")
    (tmp_path / "app.py").write_text("a = 1\n")
    first = fingerprint(str(tmp_path))
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "app.pyc").write_bytes(b"x")
    assert fingerprint(str(tmp_path)) == first
    (tmp_path / "new.py").write_text("")
    assert fingerprint(str(tmp_path)) != first
    assert fingerprint(str(tmp_path / "missing")) == "missing"


def test_debug_settings():
    assert debug_settings("f", "$LATEST", "python3.12", None, False, None).port == 5678
    assert debug_settings("f", "3", "nodejs20.x", None, True, "live").port == 9229
    with pytest.raises(errors.InvalidParameterValue, match="Python and Node.js"):
        debug_settings("f", "$LATEST", "provided.al2023", None, False, None)
    with pytest.raises(errors.ValidationError):
        debug_settings("f", "$LATEST", "python3.12", 80, False, None)


def test_log_stream_names_and_times():
    name = "2026/01/02/[$LATEST]" + "a" * 32
    assert stream_name(stream_file(name)) == name
    assert stream_name(stream_file(name) + ".1") == name
    assert epoch_ms("1970-01-01T00:00:01.250Z") == 1250
    assert epoch_ms("garbage") == 0


def test_message_filter_patterns():
    line = 'ERROR payment 42 failed for "order 7"\n'
    assert message_filter("")(line)
    assert message_filter("ERROR payment")(line)
    assert not message_filter("ERROR refund")(line)
    assert message_filter('"order 7"')(line)
    assert message_filter("?refund ?payment")(line)
    assert not message_filter("?refund ?shipping")(line)
    assert not message_filter("ERROR -failed")(line)
    assert not message_filter("error")(line)  # case-sensitive, as CloudWatch
    assert not message_filter('{ $.level = "ERROR" }')(line)  # not JSON: no match
    with pytest.raises(errors.InvalidParameterValue):
        message_filter('{ $.level = "ERROR"')
