"""Shared fixtures: a real `lamina serve` process, real AWS clients, function packages."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = Path(__file__).resolve().parent / "functions"
ROLE = "arn:aws:iam::123456789012:role/lambda-test"
PY_RUNTIME = f"python3.{sys.version_info.minor}"


def _cache_bytecode() -> None:
    """The suite starts a few hundred Python processes (engines, the lamina CLI, moto). Where
    the environment asks for no bytecode files (PYTHONDONTWRITEBYTECODE), each compiled
    lamina's sources again (~0.5 s of CPU per engine start, more under load); they and this
    process (for the test modules pytest rewrites) keep their bytecode in one folder outside
    the tree instead (PYTHONPYCACHEPREFIX), so the tree stays as clean as the setting wants."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return
    prefix = os.environ.setdefault(
        "PYTHONPYCACHEPREFIX",
        str(Path(tempfile.gettempdir()) / f"lamina-test-pycache-{os.getuid()}"),
    )
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    sys.pycache_prefix = prefix
    sys.dont_write_bytecode = False


_cache_bytecode()


_GIVEN: set[int] = set()  # ports free_port handed out: a test may hold one unbound for a while


def free_port() -> int:
    """A loopback port nothing listens on, never one this process handed out before (a test
    that reserves a port for a server it starts later must not see an engine take it)."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _GIVEN:
            break
    _GIVEN.add(port)
    return port


def make_zip(files: dict[str, str | bytes], modes: dict[str, int] | None = None) -> bytes:
    """A deployment package from {path: content}; `modes` sets unix permissions."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = ((modes or {}).get(name, 0o644) | 0o100000) << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def zip_dir(folder: Path) -> bytes:
    """A package of a folder under tests/functions (executable bits kept)."""
    files, modes = {}, {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            name = str(path.relative_to(folder))
            files[name] = path.read_bytes()
            modes[name] = 0o755 if os.access(path, os.X_OK) else 0o644
    return make_zip(files, modes)


@dataclass
class Server:
    """A running `lamina serve` child process."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.endpoint + path, timeout=30) as response:
            return json.loads(response.read())


def start_server(
    data_dir: Path, *args: str, port: int | None = None, env: dict[str, str] | None = None
) -> Server:
    if port is not None:
        return _start_server(data_dir, args, port, env)
    for attempt in range(3):
        # a free port may be taken between `free_port` and the engine's bind (by a listener
        # of another worker's engine, which binds port 0): then again on another
        try:
            return _start_server(data_dir, args, free_port(), env)
        except _PortTaken:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class _PortTaken(RuntimeError):
    pass


def _start_server(
    data_dir: Path, args: tuple[str, ...], port: int, env: dict[str, str] | None
) -> Server:
    log_path = data_dir.parent / f"serve-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lamina",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                *args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    server = Server(process, port, data_dir, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = server.log()
            if f"error while attempting to bind on address ('127.0.0.1', {port})" in log:
                raise _PortTaken(f"lamina serve exited:\n{log}")
            raise RuntimeError(f"lamina serve exited:\n{log}")
        try:
            server.get("/_lamina/health")
            return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"lamina serve did not start:\n{server.log()}")


def start_unsandboxed(data_dir: Path, *args: str, **kwargs: object) -> Server:
    """An engine whose functions run with `--sandbox none`: for tests whose functions record
    their runs in a host directory ($RUNS_DIR), which a sandbox hides by design. What the
    sandbox shows and hides is tested in test_sandbox.py."""
    return start_server(data_dir, *args, "--sandbox", "none", **kwargs)  # type: ignore[arg-type]


@contextlib.contextmanager
def serving(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """`start_server` for a block: the engine is stopped after it and its log must have no
    traceback (the end of the log is shown if it has)."""
    running = start_server(data_dir, *args, env=env)
    try:
        yield running
    finally:
        running.stop()
    log = running.log()
    assert "Traceback" not in log, log[-20000:]


@contextlib.contextmanager
def engine_client(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[object]:
    """A boto3 Lambda client on an engine of its own over `data_dir` (started with `args`),
    both closed afterwards (the engine's log checked for tracebacks); start it again on the
    same directory to test a restart."""
    with serving(data_dir, *args, env=env) as engine, closing(client(engine.endpoint)) as lam:
        yield lam


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One engine for the acceptance tests (functions get unique names)."""
    with serving(tmp_path_factory.mktemp("engine") / "data", "--idle-timeout", "60") as running:
        yield running


_MADE: list[Any] = []  # the boto3 clients made on this worker and not closed yet


def closed_after_test(made: Any) -> Any:
    """`made` (a boto3 client), closed when the test that made it ends (or, made by a fixture,
    when the session does), if nothing closed it before: a test body need not close the
    clients it makes, and none is left to the garbage collector (a closed client still works:
    it opens new connections)."""
    _MADE.append(made)
    return made


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    before = len(_MADE)
    try:
        return (yield)
    finally:
        for made in _MADE[before:]:
            made.close()
        del _MADE[before:]


def pytest_sessionfinish(session: pytest.Session) -> None:
    for made in _MADE:
        made.close()
    _MADE.clear()


def client(endpoint: str, service: str = "lambda", read_timeout: int = 120, **config: object):
    import boto3
    from botocore.config import Config

    return closed_after_test(
        boto3.client(
            service,
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(
                read_timeout=read_timeout,
                **{"retries": {"total_max_attempts": 1, "mode": "standard"}, **config},
            ),
        )
    )


@pytest.fixture(scope="session")
def lam(server: Server):
    """A boto3 Lambda client pointed at the session engine."""
    lambda_client = client(server.endpoint)
    yield lambda_client
    lambda_client.close()


@pytest.fixture(scope="session")
def raw_lam(server: Server):
    """A client that skips botocore's own parameter checks, to reach the server's."""
    lambda_client = client(server.endpoint, parameter_validation=False)
    yield lambda_client
    lambda_client.close()


@pytest.fixture
def fname() -> str:
    """A fresh function name for one test."""
    return f"t-{uuid.uuid4().hex[:12]}"


def create_function(
    lam,
    name: str,
    package: bytes,
    handler: str = "index.handler",
    runtime: str = PY_RUNTIME,
    **extra,
) -> dict:
    response = lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Handler=handler,
        Code={"ZipFile": package},
        **extra,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
    )
    return response


def invoke_json(lam, name: str, event: object = None, **extra) -> tuple[dict, object]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), **extra)
    body = response["Payload"].read()
    try:
        return response, json.loads(body)
    except ValueError:
        return response, body


def sandboxed(server: Server) -> bool:
    """Whether the engine runs its environments in bubblewrap sandboxes."""
    return (server.get("/_lamina/overview").get("Sandbox") or {}).get("Mode") == "bwrap"


def ric_package(extra: dict[str, str] | None = None) -> bytes:
    """tests/functions/ric with awslambdaric and what it needs (its native client,
    simplejson, snapshot-restore-py) inside, as one ships it to Lambda."""
    import awslambdaric

    site = Path(awslambdaric.__file__).parent.parent
    files: dict[str, str | bytes] = {
        p.name: p.read_bytes() for p in sorted((FUNCTIONS / "ric").iterdir())
    }
    files.update(extra or {})
    wanted = [
        "awslambdaric",
        "simplejson",
        "snapshot_restore_py.py",
        *(p.name for p in site.glob("runtime_client*.so")),
    ]
    for name in wanted:
        root = site / name
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[str(path.relative_to(site))] = path.read_bytes()
    return make_zip(files, {"bootstrap": 0o755})


def ric_python() -> str:
    """An interpreter every environment sees (under /usr, even in a sandbox) of the version
    the installed awslambdaric was built for."""
    candidate = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    if not os.path.exists(candidate):
        pytest.skip(f"{candidate} is missing; awslambdaric here is built for this Python")
    return candidate


def have_node() -> bool:
    return shutil.which("node") is not None


@dataclass
class Moto:
    """moto's server mode: real SQS, SNS, EventBridge, Kinesis, DynamoDB endpoints."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str):
        return client(self.endpoint, service)


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)
    yield Moto(process, port)
    process.terminate()
    process.wait(10)
    log.close()


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found and shutil.which("initdb"):
        found = [Path(shutil.which("initdb"))]  # type: ignore[arg-type]
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run scripts/setup --test")
    return found[-1].parent


@dataclass
class Postgres:
    """A real PostgreSQL server on loopback, started for the test session."""

    port: int
    socket_dir: Path
    bin: Path
    as_user: list[str]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://lamina@127.0.0.1:{self.port}/{database}"

    migrated_template: str | None = None

    def new_database(self, migrated: bool = False) -> str:
        """A database of one test's own: empty (the store applies every migration when it
        opens it), or `migrated`: a copy of a database the store migrated once this session
        (CREATE DATABASE ... TEMPLATE copies its files, far quicker than migrating again)."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        template = f" TEMPLATE {self._template()}" if migrated else ""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}{template}")
        return self.url(name)

    def _template(self) -> str:
        """The migrated template, made by the store's own `open` on first use. Nothing stays
        connected to it (a template must have no sessions to be copied)."""
        if self.migrated_template is None:
            import asyncio

            from lamina.storage.postgres import PostgresStore

            url = self.new_database()
            store = PostgresStore(url)

            async def migrate() -> None:
                await store.open()
                await store.close()

            asyncio.run(migrate())
            self.migrated_template = url.rsplit("/", 1)[1]
        return self.migrated_template

    def ctl(self, *args: str) -> None:
        subprocess.run(
            [
                *self.as_user,
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.socket_dir / "data"),
                "-w",
                *args,
            ],
            check=True,
            capture_output=True,
        )


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    pg_bin = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="lamina-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *as_user,
            str(pg_bin / "initdb"),
            "-D",
            str(root / "data"),
            "-U",
            "lamina",
            "-A",
            "trust",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    server = Postgres(free_port(), root, pg_bin, as_user)
    server.ctl(
        "-o",
        f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 "
        "-c fsync=off -c max_connections=200",
        "-l",
        str(root / "log"),
        "start",
    )
    yield server
    subprocess.run(
        [*as_user, str(pg_bin / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"],
        capture_output=True,
    )
    shutil.rmtree(root, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    """`-m fuzz` runs the fuzz tests with 100 cases each (a few in the default run)."""
    if "fuzz" in (config.getoption("markexpr") or ""):
        os.environ.setdefault("LAMINA_FUZZ_EXAMPLES", "100")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """With pytest-xdist (`scripts/test -n 3` passes `--dist loadgroup`): each acceptance file
    runs on one worker, which starts its module's engine, broker and functions once (and the
    cluster tests make their network namespaces one file at a time); the other tiers' tests
    spread test by test. A scheduler of our own, because xdist 3.8's loadgroup renames
    `item._nodeid`, which pytest 9 no longer reads: its `xdist_group` marks group nothing."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class AcceptanceFileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if path.startswith("tests/acceptance/") else nodeid

        def _assign_work_unit(self, node: object) -> None:
            """The longest unit left first (xdist orders by number of tests, which started
            the one-test conformance file near the end, where it ran alone)."""
            longest = max(self.workqueue, key=lambda scope: _seconds(scope, self.workqueue))
            self.workqueue.move_to_end(longest, last=False)
            super()._assign_work_unit(node)

    return AcceptanceFileScheduling(config, log)


# Seconds the longest acceptance files took in a full run on 3 workers (load 14-24 on 2 cores;
# the conformance file, one test that cannot be split, ran into its 900 s timeout there and
# takes 100-300 s otherwise): only an order, the longest first; a file not named here counts a
# second a test.
LONG_FILES = {
    "test_durable_conformance.py": 900,
    "test_aws_cli.py": 466,
    "test_postgres.py": 275,
    "test_deploy.py": 247,
    "test_cluster.py": 211,
    "test_cluster_hosts.py": 197,
    "test_deploy_tools.py": 191,
    "test_auth.py": 166,
    "test_schedules.py": 163,
    "test_kafka.py": 161,
    "test_s3_code.py": 158,
    "test_debugger.py": 158,
    "test_durable.py": 155,
    "test_mapping_faults.py": 153,
    "test_one_call.py": 145,
}


def _seconds(scope: str, workqueue: dict[str, dict[str, bool]]) -> float:
    return LONG_FILES.get(scope.rsplit("/", 1)[-1], len(workqueue[scope]))
