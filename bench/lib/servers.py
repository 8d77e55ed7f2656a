"""The servers the benchmark starts, each as a child of this process, stopped by its PID.

* `LaminaServer`   `lamina serve` on a free port with a scratch data dir; `lamina_command`
  gives the command for the working tree or for a snapshot of one commit (`git archive`
  into the scratch dir, run by the repo's .venv Python with PYTHONPATH pointing at it).
* `MiniStackServer` `ministack` from a scratch venv (installed there on first use), started the
  way shared/bench/ministack-RESULTS.md describes (loopback only, IoT mTLS and SFTP off,
  no persistence, its TMPDIR and STATE_DIR in the scratch dir).
* `FloorRelay`     tools/floor.py --serve relay: the Runtime-API-shaped two-hop relay.
* `MotoServer`     moto's server mode (SQS, Kinesis …) through lib/moto_server.py, which takes
  moto's per-message O(queue depth) SQS work out unless `plain` (see that file).
serverless-offline is started by tools/peer_sls.py's `Server`.

Every server gets its own session, so a terminal's Ctrl-C reaches only this process, which
then stops its servers.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .lambda_api import NOOP, LambdaApi, cold_start

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((HOST, port)) == 0


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
    """Signal one child by PID, wait, then SIGKILL it if it is still there."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class _Server:
    """A child process serving HTTP on 127.0.0.1:port; logs to a file."""

    proc: subprocess.Popen
    port: int

    def _spawn(
        self, argv: list[str], env: dict[str, str], log_path: Path, cwd: str | None = None
    ) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - open for the server's life
        self.t_spawn = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_port(self, timeout: float = 60.0) -> None:
        end = time.time() + timeout
        while time.time() < end:
            if port_open(self.port):
                self.startup_s = round(time.perf_counter() - self.t_spawn, 3)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{type(self).__name__} did not start; see {self.log_path}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class LaminaCommand:
    """How to run `lamina`: argv prefix, extra environment, and what code it is."""

    argv: list[str]
    env: dict[str, str]
    source: str

    def environ(self) -> dict[str, str]:
        return {**os.environ, **self.env}


def lamina_command(repo: Path, rev: str | None, scratch: Path) -> LaminaCommand:
    """The working tree's .venv/bin/lamina, or (rev given) a snapshot of that commit."""
    venv_python = repo / ".venv" / "bin" / "python"
    if not rev:
        return LaminaCommand([str(repo / ".venv" / "bin" / "lamina")], {}, "working tree")
    sha = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    target = scratch / f"lamina-src-{sha[:12]}"
    if not (target / "src" / "lamina").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", sha, "src", "scripts", "pyproject.toml"],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    source = f"commit {sha}"
    # compiled as scripts/setup compiles a checkout (a commit from before scripts/compile.py
    # runs as it was: pure Python); the build is kept in the scratch dir for the next run
    compiler = target / "scripts" / "compile.py"
    if compiler.exists() and os.environ.get("LAMINA_COMPILE", "1") != "0":
        done = subprocess.run([str(venv_python), str(compiler)], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"scripts/compile.py failed on {source}: {done.stderr[-2000:]}")
        source += " (mypyc)"
    return LaminaCommand(
        [str(venv_python), "-m", "lamina"], {"PYTHONPATH": str(target / "src")}, source
    )


class LaminaServer(_Server):
    """`lamina serve --port P --data-dir DIR` (environment of this process, plus cmd.env)."""

    def __init__(self, cmd: LaminaCommand, data_dir: Path, extra: list[str] = ()) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._spawn(
            cmd.argv
            + [
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
                "--log-level",
                "WARNING",
                *extra,
            ],
            cmd.environ(),
            data_dir / "serve.log",
        )
        self._wait_port()


def lamina_with_noop(
    cmd: LaminaCommand, data_dir: Path, extra: list[str], name: str, runtime: str
) -> LaminaServer:
    """A fresh engine with the no-op function `name` of `runtime` created and called once;
    SystemExit (the engine stopped) if that fails."""
    engine = LaminaServer(cmd, data_dir, extra)
    api = LambdaApi(engine.endpoint)
    started = cold_start(api, name, NOOP[runtime], b"{}")
    api.close()
    if "error" in started:
        engine.stop()
        raise SystemExit(started["error"])
    return engine


def overview(endpoint: str) -> dict:
    """The engine's /_lamina/overview (its sandbox mode among others); {} if it has none."""
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(endpoint + "/_lamina/overview", timeout=10) as response:
            return json.load(response)
    except (OSError, ValueError):
        return {}


def lamina_interpreters(cmd: LaminaCommand) -> dict[str, str]:
    """{'python3.11': path, 'node': path} as `lamina runtimes` resolves them."""
    out = subprocess.run(
        cmd.argv + ["runtimes"],
        capture_output=True,
        text=True,
        timeout=60,
        env=cmd.environ(),
        check=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        family, _, rest = line.partition(":")
        if family.strip() not in ("python", "nodejs"):
            continue
        for item in rest.split(","):
            parts = item.split()
            if len(parts) == 2 and family.strip() == "python":
                found["python" + parts[0]] = parts[1]
            elif len(parts) == 2 and family.strip() == "nodejs":
                found.setdefault("node", parts[1])
    return found


def ensure_ministack(venv: Path, version: str, python: str) -> str:
    """The `ministack` executable in `venv`, installed there (pip) if missing."""
    exe = venv / "bin" / "ministack"
    if not exe.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", f"ministack=={version}"],
            check=True,
            timeout=900,
        )
    return str(exe)


class MiniStackServer(_Server):
    """MiniStack's gateway on a free port (see the module docstring)."""

    def __init__(self, exe: str, scratch: Path) -> None:
        for sub in ("tmp", "state"):
            (scratch / sub).mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        env = dict(os.environ)
        env.pop("NODE_EXTRA_CA_CERTS", None)
        env.update(
            {
                "BIND_HOST": HOST,
                "GATEWAY_PORT": str(self.port),
                "IOT_MTLS_ENABLED": "0",
                "SFTP_ENABLED": "0",
                "TMPDIR": str(scratch / "tmp"),
                "STATE_DIR": str(scratch / "state"),
                "PERSIST_STATE": "0",
            }
        )
        self._spawn([exe], env, scratch / "ministack.log")
        self._wait_port()


class MotoServer(_Server):
    """`python lib/moto_server.py -H 127.0.0.1 -p PORT` (this interpreter: it needs moto)."""

    def __init__(self, log_path: Path, plain: bool = False) -> None:
        self.port = free_port()
        launcher = Path(__file__).resolve().parent / "moto_server.py"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        self._spawn(
            [
                sys.executable,
                str(launcher),
                *(["--plain"] if plain else []),
                "-H",
                HOST,
                "-p",
                str(self.port),
            ],
            env,
            log_path,
        )
        self._wait_port()


class FloorRelay:
    """tools/floor.py --serve relay (impl raw-rawworker = lean worker, raw = http.client)."""

    def __init__(self, floor_py: str, impl: str, workers: int) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                floor_py,
                "--serve",
                "relay",
                "--impl",
                impl,
                "--workers",
                str(workers),
            ],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.port = self._read_port()

    def _read_port(self, timeout: float = 30.0) -> int:
        end = time.time() + timeout
        while time.time() < end:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline().decode()
                if "http://" in line:
                    return int(line.split("http://", 1)[1].split()[0].rsplit(":", 1)[1])
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError("floor relay did not start")

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        # floor.py stops its server and workers on Ctrl-C, but SIGINT is ignored when this
        # bench runs in the background (nohup … &): signal the relay's process group instead
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        stop_process(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
