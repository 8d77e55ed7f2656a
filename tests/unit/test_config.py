"""`lamina serve`'s settings: a flag wins over its LAMINA_* variable, which wins over the
default; bad values stop the engine with one line naming the flag."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lamina import config
from lamina.__main__ import parser


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LAMINA_") or name == "AWS_REGION":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", "/home/someone")


def serve(*argv: str) -> config.Config:
    """The Config of `lamina serve ARGV`, with the parser built now (it reads the
    environment when built, as `lamina` does at start)."""
    return config.from_args(parser().parse_args(["serve", *argv]))


def test_defaults() -> None:
    got = serve()
    assert got == config.Config(data_dir=Path("/home/someone/.lamina"))
    assert (got.port, got.account_concurrency, got.time_scale) == (9001, 1000, "1")
    assert got.records_max_age == 7 * 86400.0 and got.freeze and got.pollers
    assert got.store == "sqlite:///home/someone/.lamina/lamina.db"


def test_a_variable_wins_over_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_PORT", "9100")
    monkeypatch.setenv("LAMINA_ACCOUNT_CONCURRENCY", "50")
    monkeypatch.setenv("LAMINA_RECORDS_MAX_AGE", "12h")
    monkeypatch.setenv("LAMINA_TIME_SCALE", "virtual")
    monkeypatch.setenv("LAMINA_DATA_DIR", "/srv/lamina")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("LAMINA_CLUSTER_LEASE", "10")
    got = serve()
    assert (got.port, got.account_concurrency, got.records_max_age) == (9100, 50, 43200.0)
    assert (got.time_scale, got.data_dir, got.region) == (
        "virtual",
        Path("/srv/lamina"),
        "eu-west-1",
    )
    assert got.cluster_lease == 10.0
    monkeypatch.setenv("LAMINA_REGION", "ap-south-1")
    assert serve().region == "ap-south-1", "LAMINA_REGION wins over AWS_REGION"


def test_a_flag_wins_over_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_PORT", "9100")
    monkeypatch.setenv("LAMINA_ACCOUNT_CONCURRENCY", "50")
    monkeypatch.setenv("LAMINA_RECORDS_MAX_AGE", "12h")
    monkeypatch.setenv("LAMINA_LOG_FORMAT", "json")
    got = serve(
        "--port",
        "0",
        "--account-concurrency",
        "7",
        "--records-max-age",
        "30m",
        "--log-format",
        "text",
        "--no-freeze",
        "--no-pollers",
        "--settle-time",
        "-3",
    )
    assert (got.port, got.account_concurrency, got.records_max_age) == (0, 7, 1800.0)
    assert got.log_format == "text" and not got.freeze and not got.pollers
    assert got.settle_time == 0.0, "a negative settle time is none"


def test_assume_role_from_its_flag_or_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not serve().assume_role
    assert serve("--assume-role").assume_role
    monkeypatch.setenv("LAMINA_ASSUME_ROLE", "1")
    assert serve().assume_role
    monkeypatch.setenv("LAMINA_ASSUME_ROLE", "0")
    assert not serve().assume_role


def test_repeated_pairs() -> None:
    got = serve("--runtime", "python3.12=/usr/bin/python3", "--function-env", "A=1=2")
    assert got.runtime_map == {"python3.12": "/usr/bin/python3"}
    assert got.function_env == {"A": "1=2"}
    with pytest.raises(SystemExit, match="--function-env takes KEY=VALUE, got 'A'"):
        serve("--function-env", "A")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "70000"], "--port must be 0-65535, got 70000"),
        (["--account-concurrency", "0"], "--account-concurrency must be at least 1"),
        (["--account", "12345"], "--account must be 12 digits"),
        (["--account", "12345678901x"], "--account must be 12 digits"),
        (["--scaling-rate", "-1"], "--scaling-rate must be >= 0"),
        (["--max-starting", "0"], "--max-starting must be >= 1"),
        (["--min-free-memory", "-1"], "--min-free-memory >= 0"),
        (["--records-max-rows", "-1"], "--records-max-rows and --logs-max-mb"),
        (["--logs-max-mb", "-1"], "--records-max-rows and --logs-max-mb"),
        (["--heartbeat-interval", "-1"], "--heartbeat-interval and --dedupe-window"),
        (["--cluster-lease", "0.1"], "--cluster-lease must be 0.5-300"),
        (["--drain-time", "4000"], "--drain-time 0-3600"),
        (["--auth", "sigv4"], "--auth sigv4 needs --credentials"),
        (
            ["--auth", "sigv4", "--credentials", "/x", "--assume-role"],
            "--assume-role and --auth sigv4 both give functions their credentials",
        ),
        (["--time-scale", "0"], "--time-scale takes a positive number or 'virtual'"),
        (["--time-scale", "fast"], "--time-scale takes a positive number or 'virtual'"),
        # two bad flags: the first rule in order names its flag
        (["--port", "-1", "--account", "x"], "--port must be"),
        (["--account", "x", "--time-scale", "0"], "--account must be"),
    ],
)
def test_bad_values_stop_with_one_line(argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        serve(*argv)
    assert str(stopped.value).startswith("lamina: ")
    assert message in str(stopped.value)


@pytest.mark.parametrize("scale", ["virtual", "60", "0.5"])
def test_time_scales_taken(scale: str) -> None:
    assert serve("--time-scale", scale).time_scale == scale


def test_durations() -> None:
    assert [config.duration(v) for v in ("7d", "12h", "30m", "45s", "3600", " 2D ")] == [
        604800.0,
        43200.0,
        1800.0,
        45.0,
        3600.0,
        172800.0,
    ]
    for bad in ("soon", "-1h", "h"):
        with pytest.raises(Exception, match="duration"):
            config.duration(bad)
