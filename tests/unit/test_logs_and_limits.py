import asyncio

import pytest

from lamina.domain import errors
from lamina.runtime.logs import LogReader, LogStream
from lamina.service.concurrency import ConcurrencyLimiter


def test_stream_lines_capture_and_rotation(tmp_path):
    stream = LogStream(tmp_path / "f" / "s.log", max_bytes=2000)
    stream.begin_capture()
    stream.platform("START RequestId: r")
    stream.write_output(b"par")
    stream.write_output(b"tial\nwhole\n")
    stream.platform("END RequestId: r")
    captured = stream.end_capture()
    assert captured == b"START RequestId: r\npartial\nwhole\nEND RequestId: r\n"
    for _ in range(100):
        stream.write_output(b"z" * 50 + b"\n")
    stream.close()
    assert (tmp_path / "f" / "s.log").stat().st_size <= 2000
    assert (tmp_path / "f" / "s.log.1").exists()
    reader = LogReader(tmp_path)
    lines, cursor = reader.read("f")
    assert lines and all(stamp.endswith("Z") for stamp, _, _ in lines)
    assert lines == sorted(lines, key=lambda line: line[0])
    assert reader.read("missing") == ([], {})


def test_reading_on_from_a_cursor_skips_and_repeats_nothing(tmp_path):
    reader = LogReader(tmp_path)
    first = LogStream(tmp_path / "f" / "a.log", 1 << 20)
    second = LogStream(tmp_path / "f" / "b.log", 1 << 20)
    first.platform("one")
    first.flush()
    lines, cursor = reader.read("f")
    assert [text for _, _, text in lines] == ["one"]
    second.platform("two (stamped before three, visible after it)")
    first.platform("three")
    first.write_output(b"partial line without a newline yet")
    first.flush()
    lines, cursor = reader.read("f", cursor=cursor)
    assert [text for _, _, text in lines] == ["three"]
    second.flush()
    first.write_output(b" ... now ended\n")
    first.flush()
    lines, cursor = reader.read("f", cursor=cursor)
    assert sorted(text for _, _, text in lines) == [
        "partial line without a newline yet ... now ended",
        "two (stamped before three, visible after it)",
    ]
    assert reader.read("f", cursor=cursor)[0] == []
    first.close()
    second.close()


def test_capture_keeps_only_the_tail_and_cuts_long_lines(tmp_path):
    stream = LogStream(tmp_path / "s.log", 1 << 30)
    stream.begin_capture()
    stream.write_output(b"a" * 100_000 + b"\n" + b"b" * 1_000_000)
    stream.write_output(b"end\n")
    captured = stream.end_capture()
    assert len(captured) <= 16 * 1024 and captured.endswith(b"bend\n")
    stream.close()
    lines = (tmp_path / "s.log").read_bytes().split(b"\n")
    assert max(len(line) for line in lines) <= 256 * 1024 + 40


def test_concurrency_limits():
    async def main() -> None:
        limiter = ConcurrencyLimiter(account_limit=2)
        async with limiter.lease("a"), limiter.lease("b"):
            with pytest.raises(errors.TooManyRequests) as raised:
                async with limiter.lease("c"):
                    pass
            assert raised.value.reason == "ConcurrentInvocationLimitExceeded"
        assert limiter.unreserved_in_flight == 0
        limiter.reserved["r"] = 1
        async with limiter.lease("r"):
            with pytest.raises(errors.TooManyRequests) as raised:
                async with limiter.lease("r"):
                    pass
            assert raised.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
        assert limiter.in_flight["r"] == 0
        limiter.reserved["zero"] = 0
        with pytest.raises(errors.TooManyRequests):
            async with limiter.lease("zero"):
                pass
        assert await limiter.room("r", 5) == 1 and await limiter.room("zero", 5) == 0

    asyncio.run(main())


def test_which_functions_may_start_from_a_spare_runtime(tmp_path):
    from lamina.runtime.spares import eligible

    (tmp_path / "app.py").write_text("")
    for family in ("python", "nodejs"):
        assert eligible(family, {"STAGE": "x", "AWS_ENDPOINT_URL": "y"}, tmp_path)
    assert not eligible("provided", {}, tmp_path), "a custom bootstrap has no standby mode"
    for name in ("PYTHONPATH", "PYTHONHASHSEED", "LANG", "LC_ALL"):
        assert not eligible("python", {name: "x"}, tmp_path), name
    for name in ("NODE_OPTIONS", "NODE_EXTRA_CA_CERTS", "UV_THREADPOOL_SIZE", "LANG"):
        assert not eligible("nodejs", {name: "x"}, tmp_path), name
    assert eligible("nodejs", {"PYTHONPATH": "x"}, tmp_path)
    for family in ("python", "nodejs"):
        assert not eligible(family, {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/w"}, tmp_path), family
    (tmp_path / "libfoo.so.1").write_text("")
    assert not eligible("python", {}, tmp_path), "a shared object found through LD_LIBRARY_PATH"
    (tmp_path / "libfoo.so.1").unlink()
    (tmp_path / "lib").mkdir()
    assert not eligible("nodejs", {}, tmp_path)
    assert not eligible("python", {}, tmp_path / "missing")


def test_a_wrapper_script_is_looked_for_where_the_runtime_sees_layers_and_code():
    from lamina.runtime.bootstrap import with_wrapper
    from lamina.runtime.launch import View

    argv = ["/usr/bin/python3", "-S", "/rt/bootstrap.py"]
    plain = View("/data/code", "/rt", "/data/layers", "/data/tmp", None, opt_variable=True)
    sandboxed = View("/var/task", "/var/runtime", "/opt", None, None, opt_variable=False)
    assert with_wrapper(argv, None, plain) == argv
    assert with_wrapper(argv, "", plain) == argv
    for view, path, seen in (
        (plain, "/opt/wrapper", "/data/layers/wrapper"),
        (plain, "/var/task/bin/w", "/data/code/bin/w"),
        (plain, "/optional/w", "/optional/w"),
        (sandboxed, "/opt/wrapper", "/opt/wrapper"),
        (sandboxed, "/var/task/w", "/var/task/w"),
    ):
        wrapped = with_wrapper(argv, path, view)
        assert wrapped[:2] == ["/bin/sh", "-c"]
        assert wrapped[4:] == [path, seen, *argv], path


def test_the_scaling_rate_refills_continuously_and_does_not_bank():
    from lamina.domain.scaling import ScalingRate

    rate = ScalingRate(4)
    assert [rate.take("f", 0.0) for _ in range(5)] == [True] * 4 + [False]
    assert rate.take("g", 0.0), "each function has its own budget"
    assert not rate.take("f", 2.4) and rate.take("f", 2.6), "one environment per 2.5 s"
    assert [rate.take("f", 1000.0) for _ in range(5)] == [True] * 4 + [False], "not banked"


def test_a_line_after_close_is_appended_and_leaves_no_file_open(tmp_path):
    """The REPORT of an invocation whose environment died under it comes after the stream
    was closed: it lands in the file, and no file object is left for the collector."""
    stream = LogStream(tmp_path / "s.log", 1 << 20)
    stream.platform("START")
    stream.close()
    stream.platform("REPORT late")
    assert stream._file is None and stream.closed
    assert [line.split("\t", 1)[1] for line in (tmp_path / "s.log").read_text().splitlines()] == [
        "START",
        "REPORT late",
    ]
