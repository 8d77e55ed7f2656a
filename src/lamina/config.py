"""Engine settings: from flags, then LAMINA_* environment variables, then defaults.

Validated once, at start; frozen afterwards.
"""

from __future__ import annotations

import argparse
import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path

from lamina.domain.sigv4 import Key

DEFAULT_PORT = 9001


def default_data_dir() -> Path:
    return Path(os.environ.get("LAMINA_DATA_DIR") or Path.home() / ".lamina")


@dataclass(frozen=True)
class Config:
    """Everything `lamina serve` is started with."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = field(default_factory=default_data_dir)
    store_url: str = ""
    region: str = "us-east-1"
    account: str = "123456789012"
    account_concurrency: int = 1000
    idle_timeout: float = 600.0
    runtime_map: dict[str, str] = field(default_factory=dict)
    function_env: dict[str, str] = field(default_factory=dict)
    freeze: bool = True
    sample: bool = False
    log_level: str = "INFO"
    log_max_bytes: int = 16 * 1024 * 1024
    time_scale: str = "1"
    parity: str = "default"
    settle_time: float = 0.0
    heartbeat_interval: float = 15.0
    dedupe_window: float = 900.0
    max_starting: int = 16
    min_free_memory: int = 512
    scaling_rate: int = 0
    records: bool = True
    records_max_age: float = 7 * 86400.0
    records_max_rows: int = 1_000_000
    logs_max_mb: int = 100
    logs_max_age: float = 7 * 86400.0
    log_format: str = "text"
    pollers: bool = True
    sandbox: str = "auto"
    cpu_by_memory: bool = False
    hot_reload_bucket: str = "hot-reload"
    cluster_lease: float = 3.0
    drain_time: float = 0.0
    auth: str = "none"  # none | sigv4 (see docs/SECURITY.md)
    credentials: Path | None = None  # the AWS shared-credentials file `--auth sigv4` reads
    metrics_token: str = ""  # bearer token that opens /metrics
    credentials_lifetime: float = 12 * 3600.0  # functions' own credentials (--auth sigv4)
    assume_role: bool = False  # functions get their role's credentials from STS AssumeRole
    header_timeout: float = 10.0
    connection_idle_timeout: float = 300.0
    max_connections: int = 10_000

    @property
    def store(self) -> str:
        return self.store_url or f"sqlite://{self.data_dir.resolve() / 'lamina.db'}"


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key:
            raise SystemExit(f"lamina: {flag} takes KEY=VALUE, got {value!r}")
        out[key] = item
    return out


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(value: str) -> float:
    """'7d', '12h', '30m', '45s' or plain seconds → seconds (0: no limit)."""
    text = value.strip().lower()
    factor = _UNITS.get(text[-1:], 0)
    try:
        seconds = float(text[:-1] if factor else text) * (factor or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 7d, 12h, 30m or 3600, got {value!r}"
        ) from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"a duration cannot be negative: {value!r}")
    return seconds


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--host",
        default=env("LAMINA_HOST", "127.0.0.1"),
        help="address to listen on (env LAMINA_HOST; default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(env("LAMINA_PORT", DEFAULT_PORT)),
        help=f"port of the Lambda API (env LAMINA_PORT; default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="where functions, code, logs and the SQLite store live "
        "(env LAMINA_DATA_DIR; default ~/.lamina)",
    )
    parser.add_argument(
        "--store",
        default=env("LAMINA_STORE", ""),
        help="store URL: sqlite:///ABS/PATH.db (default: lamina.db in the "
        "data dir), postgresql://USER@HOST:PORT/DB (several engines "
        "can share one) or memory:// (env LAMINA_STORE)",
    )
    parser.add_argument(
        "--region",
        default=env("LAMINA_REGION", env("AWS_REGION", "us-east-1")),
        help="region in ARNs and AWS_REGION of functions, and the one signatures must be "
        "scoped to with --auth sigv4 (default us-east-1)",
    )
    parser.add_argument(
        "--account",
        default=env("LAMINA_ACCOUNT", "123456789012"),
        help="account id in ARNs (default 123456789012)",
    )
    parser.add_argument(
        "--account-concurrency",
        type=int,
        default=int(env("LAMINA_ACCOUNT_CONCURRENCY", 1000)),
        help="account concurrency limit (default 1000)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=float(env("LAMINA_IDLE_TIMEOUT", 600)),
        help="seconds an idle environment stays warm (default 600)",
    )
    parser.add_argument(
        "--max-starting",
        type=int,
        default=int(env("LAMINA_MAX_STARTING", 16)),
        help="environments of one function starting at once; more callers "
        "wait for one (default 16)",
    )
    parser.add_argument(
        "--min-free-memory",
        type=int,
        default=int(env("LAMINA_MIN_FREE_MEMORY", 512)),
        help="MB of memory the machine keeps free: below it no new environment "
        "starts and callers get 429 (default 512)",
    )
    parser.add_argument(
        "--scaling-rate",
        type=int,
        default=int(env("LAMINA_SCALING_RATE", 0)),
        help="Lambda's scaling limit: at most N new environments per function "
        "every 10 s, else 429 (Lambda's N is 1000; default 0: no limit)",
    )
    parser.add_argument(
        "--runtime",
        action="append",
        default=[],
        metavar="RUNTIME=PATH",
        help="run a runtime on a chosen interpreter, e.g. "
        "python3.12=/usr/bin/python3.12 (repeatable)",
    )
    parser.add_argument(
        "--function-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable given to every function, e.g. "
        "AWS_ENDPOINT_URL=http://127.0.0.1:5000 (repeatable)",
    )
    parser.add_argument(
        "--sandbox",
        choices=["auto", "bwrap", "none"],
        default=env("LAMINA_SANDBOX", "auto"),
        help="run each execution environment in a bubblewrap sandbox with "
        "Lambda's layout (/var/task, /opt, a private /tmp, uid 993, own "
        "PID and IPC namespaces): bwrap, none, or auto (bwrap where it "
        "works, else none with a warning; env LAMINA_SANDBOX; default "
        "auto). See docs/ENVIRONMENT.md",
    )
    parser.add_argument(
        "--cpu-by-memory",
        action="store_true",
        help="give each environment CPU in proportion to its memory, as "
        "Lambda does (1 vCPU at 1,769 MB); needs a delegated cgroup v2 "
        "subtree with the cpu controller",
    )
    parser.add_argument(
        "--no-freeze",
        action="store_true",
        help="do not SIGSTOP idle environments (Lambda freezes them)",
    )
    parser.add_argument(
        "--sample",
        action="store_true",
        help="create the sample function `hello` if it does not exist",
    )
    parser.add_argument(
        "--time-scale",
        default=env("LAMINA_TIME_SCALE", "1"),
        help="run engine time N times faster (retry delays, event age, "
        "back-off): 60 makes Lambda's 1-minute retry take 1 s; 'virtual' "
        "stops engine time until POST /_lamina/clock/advance "
        "(env LAMINA_TIME_SCALE; default 1)",
    )
    parser.add_argument(
        "--parity",
        choices=["default", "strict"],
        default=env("LAMINA_PARITY", "default"),
        help="default: a long synchronous call survives client timeouts "
        "(heartbeats) and SDK retries of one call run it once; strict: no "
        "heartbeats, every retry runs the function again, and a NONE function "
        "URL answers only when the function's policy grants anyone "
        "lambda:InvokeFunctionUrl and lambda:InvokeFunction, as on AWS",
    )
    parser.add_argument(
        "--settle-time",
        type=float,
        default=float(env("LAMINA_SETTLE_TIME", 0)),
        help="seconds a created function stays Pending and an updated one "
        "InProgress (a second update meanwhile gets 409), as AWS takes "
        "them: to test code that must wait (env LAMINA_SETTLE_TIME; "
        "default 0: settled once answered)",
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=float,
        default=float(env("LAMINA_HEARTBEAT_INTERVAL", 15)),
        help="seconds between interim 100 Continue responses on a running "
        "synchronous call (0 disables; default 15)",
    )
    parser.add_argument(
        "--dedupe-window",
        type=float,
        default=float(env("LAMINA_DEDUPE_WINDOW", 900)),
        help="seconds an SDK retry of a finished call gets its stored result "
        "instead of running it again (default 900)",
    )
    parser.add_argument(
        "--hot-reload-bucket",
        default=env("LAMINA_HOT_RELOAD_BUCKET", "hot-reload"),
        help="code whose S3Bucket is this name runs straight from the folder "
        "its S3Key names, reloaded as it changes (env "
        "LAMINA_HOT_RELOAD_BUCKET; default hot-reload, LocalStack's)",
    )
    _add_cluster_arguments(parser)
    _add_auth_arguments(parser)
    parser.add_argument(
        "--log-level",
        default=env("LAMINA_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="engine log level",
    )
    _add_observability_arguments(parser)


def _add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--cluster-lease",
        type=float,
        default=float(env("LAMINA_CLUSTER_LEASE", 3)),
        help="engines sharing PostgreSQL: seconds an engine's lease lasts; a "
        "dead engine's concurrency, queued work and calls come back within "
        "about this long (env LAMINA_CLUSTER_LEASE; default 3)",
    )
    parser.add_argument(
        "--drain-time",
        type=float,
        default=float(env("LAMINA_DRAIN_TIME", 0)),
        help="on SIGTERM, seconds to keep serving new requests while "
        "/_lamina/health answers 503 (draining), so a load balancer can "
        "take the engine out; running calls are finished in any case "
        "(env LAMINA_DRAIN_TIME; default 0)",
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=float(env("LAMINA_HEADER_TIMEOUT", 10)),
        help="Lambda API: seconds a client may take to send a request's "
        "headers before its connection is closed (slow clients; env "
        "LAMINA_HEADER_TIMEOUT; default 10)",
    )
    parser.add_argument(
        "--connection-idle-timeout",
        type=float,
        default=float(env("LAMINA_CONNECTION_IDLE_TIMEOUT", 300)),
        help="Lambda API: seconds a keep-alive connection may stay idle "
        "(env LAMINA_CONNECTION_IDLE_TIMEOUT; default 300)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=int(env("LAMINA_MAX_CONNECTIONS", 10_000)),
        help="Lambda API: connections kept open at most; past it the longest "
        "idle one is closed (env LAMINA_MAX_CONNECTIONS; default 10000)",
    )


def _add_auth_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--auth",
        choices=["none", "sigv4"],
        default=env("LAMINA_AUTH", "none"),
        help="sigv4: every Lambda API, CloudWatch Logs, console, /_lamina and "
        "AWS_IAM function URL request must carry a SigV4 signature by a "
        "key of --credentials, as AWS checks them; none: accept anyone "
        "who reaches the port (env LAMINA_AUTH; default none). See "
        "docs/SECURITY.md",
    )
    parser.add_argument(
        "--credentials",
        type=Path,
        default=env("LAMINA_CREDENTIALS") or None,
        help="with --auth sigv4: an AWS shared-credentials file whose profiles "
        "give aws_access_key_id, aws_secret_access_key and aws_account_id "
        "(env LAMINA_CREDENTIALS)",
    )
    parser.add_argument(
        "--metrics-token",
        default=env("LAMINA_METRICS_TOKEN", ""),
        help="bearer token that opens GET /metrics to Prometheus when auth is "
        "on (env LAMINA_METRICS_TOKEN); without it /metrics needs SigV4",
    )
    parser.add_argument(
        "--assume-role",
        action="store_true",
        default=env("LAMINA_ASSUME_ROLE", "") not in ("", "0", "false"),
        help="each execution environment gets credentials of its function's role, "
        "as on Lambda: STS AssumeRole (session named after the function, 1 h) at the "
        "endpoint AWS_ENDPOINT_URL_STS or AWS_ENDPOINT_URL names (else AWS), signed "
        "with the engine's own AWS credentials; not with --auth sigv4 "
        "(env LAMINA_ASSUME_ROLE=1). See docs/SECURITY.md",
    )
    parser.add_argument(
        "--credentials-lifetime",
        type=_lifetime,
        default=env("LAMINA_CREDENTIALS_LIFETIME", "43200"),
        help="with --auth sigv4: seconds a function's own credentials last (5 to "
        "43200, default 43200: 12 h); an environment is retired at an idle point "
        "before they expire (env LAMINA_CREDENTIALS_LIFETIME)",
    )


def _lifetime(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 5 <= seconds <= 43200:
        raise argparse.ArgumentTypeError(f"must be 5 to 43200 seconds, got {value!r}")
    return seconds


def load_credentials(path: Path) -> list[Key]:
    """The keys of an AWS shared-credentials file: each profile's aws_access_key_id,
    aws_secret_access_key and aws_account_id (12 digits)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise SystemExit(f"lamina: cannot read --credentials {path}: {exc}") from None
    keys = []
    for profile in parser.sections():
        section = parser[profile]
        values = [
            section.get(name, "").strip()
            for name in ("aws_access_key_id", "aws_secret_access_key", "aws_account_id")
        ]
        if not all(values):
            raise SystemExit(
                f"lamina: profile [{profile}] of {path} needs aws_access_key_id, "
                "aws_secret_access_key and aws_account_id"
            )
        if not (len(values[2]) == 12 and values[2].isdigit()):
            raise SystemExit(
                f"lamina: aws_account_id of profile [{profile}] in {path} must be 12 digits"
            )
        keys.append(Key(values[0], values[1], values[2], profile))
    if not keys:
        raise SystemExit(f"lamina: {path} has no profile with credentials")
    return keys


def _add_observability_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=env("LAMINA_LOG_FORMAT", "text"),
        help="the engine's own log on stderr: text lines, or one JSON object "
        "per line (env LAMINA_LOG_FORMAT; default text)",
    )
    parser.add_argument(
        "--records-max-age",
        type=duration,
        default=duration(env("LAMINA_RECORDS_MAX_AGE", "7d")),
        help="delete invocation records older than this, in engine time: 7d, "
        "12h, 30m or seconds; 0 keeps them (default 7d)",
    )
    parser.add_argument(
        "--records-max-rows",
        type=int,
        default=int(env("LAMINA_RECORDS_MAX_ROWS", 1_000_000)),
        help="keep at most this many invocations, the newest; 0: no limit (default 1000000)",
    )
    parser.add_argument(
        "--logs-max-mb",
        type=int,
        default=int(env("LAMINA_LOGS_MAX_MB", 100)),
        help="MB of log files kept per function; older files are deleted and "
        "running streams rotated past it; 0: no limit (default 100)",
    )
    parser.add_argument(
        "--logs-max-age",
        type=duration,
        default=duration(env("LAMINA_LOGS_MAX_AGE", "7d")),
        help="delete function log files not written for this long (wall "
        "time): 7d, 12h, 30m or seconds; 0 keeps them (default 7d)",
    )
    parser.add_argument(
        "--no-pollers",
        action="store_true",
        help="never run the event source mapping pollers on this engine (with "
        "a shared PostgreSQL store one engine runs them anyway, and another "
        "takes over if it dies)",
    )
    parser.add_argument(
        "--no-records",
        action="store_true",
        help="record nothing: no invocation list, timelines or metrics "
        "(for benchmarks that measure what recording costs)",
    )


def from_args(args: argparse.Namespace) -> Config:
    """The Config `lamina serve`'s parsed flags give; SystemExit naming the first bad one."""
    _refuse(_first_problem(args))
    _refuse(_time_scale_problem(args.time_scale))
    return _config(args)


def _refuse(problem: str | None) -> None:
    if problem is not None:
        raise SystemExit(f"lamina: {problem}")


def _first_problem(args: argparse.Namespace) -> str | None:
    """The first of the flags' rules they break, in the order the rules are listed."""
    rules = (
        (0 <= args.port <= 65535, f"--port must be 0-65535, got {args.port}"),
        (args.account_concurrency >= 1, "--account-concurrency must be at least 1"),
        (len(args.account) == 12 and args.account.isdigit(), "--account must be 12 digits"),
        (args.scaling_rate >= 0, "--scaling-rate must be >= 0"),
        (
            args.max_starting >= 1 and args.min_free_memory >= 0,
            "--max-starting must be >= 1 and --min-free-memory >= 0",
        ),
        (
            args.records_max_rows >= 0 and args.logs_max_mb >= 0,
            "--records-max-rows and --logs-max-mb must be >= 0",
        ),
        (
            args.heartbeat_interval >= 0 and args.dedupe_window >= 0,
            "--heartbeat-interval and --dedupe-window must be >= 0",
        ),
        (
            0.5 <= args.cluster_lease <= 300 and 0 <= args.drain_time <= 3600,
            "--cluster-lease must be 0.5-300 seconds and --drain-time 0-3600",
        ),
        (
            args.auth != "sigv4" or args.credentials is not None,
            "--auth sigv4 needs --credentials FILE (or LAMINA_CREDENTIALS)",
        ),
        (
            not (args.assume_role and args.auth == "sigv4"),
            "--assume-role and --auth sigv4 both give functions their credentials: choose one",
        ),
    )
    return next((problem for ok, problem in rules if not ok), None)


def _time_scale_problem(scale: str) -> str | None:
    if scale == "virtual":
        return None
    problem = "--time-scale takes a positive number or 'virtual'"
    try:
        return problem if float(scale) <= 0 else None
    except ValueError:
        return problem


def _config(args: argparse.Namespace) -> Config:
    return Config(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        store_url=args.store,
        region=args.region,
        account=args.account,
        account_concurrency=args.account_concurrency,
        idle_timeout=args.idle_timeout,
        runtime_map=_pairs(args.runtime, "--runtime"),
        function_env=_pairs(args.function_env, "--function-env"),
        freeze=not args.no_freeze,
        sample=args.sample,
        log_level=args.log_level,
        time_scale=args.time_scale,
        parity=args.parity,
        settle_time=max(0.0, args.settle_time),
        heartbeat_interval=args.heartbeat_interval,
        dedupe_window=args.dedupe_window,
        max_starting=args.max_starting,
        min_free_memory=args.min_free_memory,
        records=not args.no_records,
        scaling_rate=args.scaling_rate,
        records_max_age=args.records_max_age,
        records_max_rows=args.records_max_rows,
        logs_max_mb=args.logs_max_mb,
        logs_max_age=args.logs_max_age,
        log_format=args.log_format,
        pollers=not args.no_pollers,
        sandbox=args.sandbox,
        cpu_by_memory=args.cpu_by_memory,
        hot_reload_bucket=args.hot_reload_bucket,
        cluster_lease=args.cluster_lease,
        drain_time=args.drain_time,
        auth=args.auth,
        credentials=args.credentials,
        metrics_token=args.metrics_token,
        credentials_lifetime=args.credentials_lifetime,
        assume_role=args.assume_role,
        header_timeout=args.header_timeout,
        connection_idle_timeout=args.connection_idle_timeout,
        max_connections=args.max_connections,
    )
