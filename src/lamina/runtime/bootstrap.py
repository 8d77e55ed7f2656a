"""What a runtime process is started with: its command line and environment (spec §9.5).

Pure: given a function version and where things are, return argv and env. The child gets
Lambda's clean environment, never the engine's own (no engine secrets, and no host variables
such as NODE_EXTRA_CA_CERTS that slow a runtime's start several-fold).
"""

from __future__ import annotations

import os
import time

from lamina.domain import ids, runtimes
from lamina.domain.debug import DebugSettings
from lamina.domain.model import FunctionConfig
from lamina.runtime.launch import View

LAMBDA_PATH = "/usr/local/bin:/usr/bin/:/bin:/opt/bin"
# One V8 worker thread, not four: every thread of a runtime is woken twice by each freeze and
# thaw (SIGSTOP, SIGCONT), and a Lambda function of up to 1,769 MB gets at most one vCPU-second
# per second to share among them anyway (nodejs/bootstrap.cjs says more). The rest are the
# flags Lambda's own Node.js bootstrap (/var/runtime/bootstrap) starts node with: `global.gc`
# exists, headers up to 80 KiB, and the heap sized from the function's memory (`node_flags`).
NODE_FLAGS = ("--v8-pool-size=1", "--expose-gc", "--max-http-header-size=81920")
# One thread fewer where node has the flag (22.14 and 23.7 on): no thread waiting for SIGUSR1
# to start the inspector (docs/ENVIRONMENT.md says why that is safe).
NO_SIGUSR1 = "--disable-sigusr1"


def takes_no_sigusr1(release: tuple[int, int, int] | None) -> bool:
    """Whether node `release` (major, minor, patch) knows `--disable-sigusr1`."""
    if release is None:
        return False
    return release >= (23, 7, 0) or (22, 14, 0) <= release < (23, 0, 0)


def node_flags(memory_mb: int, release: tuple[int, int, int] | None = None) -> list[str]:
    """node's flags for a function of `memory_mb`, as Lambda's bootstrap computes them: a
    tenth of the memory for V8's young generation (two semi-spaces), the rest for the old;
    and Lamina's own (`NODE_FLAGS`, `NO_SIGUSR1` for a node `release` that has it)."""
    new_space = memory_mb // 10
    return [
        *NODE_FLAGS,
        *([NO_SIGUSR1] if takes_no_sigusr1(release) else []),
        f"--max-semi-space-size={new_space // 2}",
        f"--max-old-space-size={memory_mb - new_space}",
    ]


EXEC_WRAPPER = "AWS_LAMBDA_EXEC_WRAPPER"
# What a managed runtime's own bootstrap does with AWS_LAMBDA_EXEC_WRAPPER (Lambda's
# /var/runtime/bootstrap is a shell script doing the same): a missing wrapper ends the runtime
# with status 127, one that cannot run with 126 (Runtime.ExitError at Init), else the wrapper
# runs with the runtime's command line and execs it. $1 is the name the function set, $2 where
# it is as the runtime sees it.
_WRAPPER_SCRIPT = (
    'name=$1 wrapper=$2; shift 2; if [ ! -f "$wrapper" ]; then echo "$name: does not exist"; '
    'exit 127; fi; if [ ! -x "$wrapper" ]; then echo "$name: is not an executable"; exit 126; '
    'fi; exec "$wrapper" "$@"'
)


def log_stream_name(version: str, now: float | None = None, ident: str | None = None) -> str:
    """Lambda's stream name; `ident` (the environment's id) ends it, so a stream can be found
    from the environment an attempt ran in."""
    day = time.strftime("%Y/%m/%d", time.gmtime(now if now is not None else time.time()))
    return f"{day}/[{version}]{ident or ids.hex_id()}"


def runtime_command(
    config: FunctionConfig,
    interpreter: str | None,
    view: View,
    bootstrap: str | None = None,
    debug: DebugSettings | None = None,
    release: tuple[int, int, int] | None = None,
) -> list[str]:
    """The runtime's argv as it sees paths (`provided`: `bootstrap`, the package's or a
    layer's executable, as Lambda falls back to /opt/bootstrap). In debug mode Node's
    inspector listens (`--inspect-wait` holds Init until a client attaches); Python's
    bootstrap starts debugpy itself (`lamina_variables`), with frozen modules off so that
    breakpoints in the standard library bind. A managed runtime whose function sets
    AWS_LAMBDA_EXEC_WRAPPER starts through that wrapper (`with_wrapper`). `release` is the
    node interpreter's version, where known (`node_flags`)."""
    family = runtimes.family(config.runtime or "")
    if family == "python":
        flags = ["-S", "-Xfrozen_modules=off"] if debug is not None else ["-S"]
        argv = [str(interpreter), *flags, f"{view.runtime_dir}/bootstrap.py"]
        if view.sdk_path:
            argv += ["--sdk-path", view.sdk_path]
        return with_wrapper(argv, config.environment.get(EXEC_WRAPPER), view)
    if family == "nodejs":
        flags = node_flags(config.memory_size, release)
        if debug is not None:
            flag = "--inspect-wait" if debug.wait else "--inspect"
            flags.append(f"{flag}=127.0.0.1:{debug.port}")
        argv = [str(interpreter), *flags, f"{view.runtime_dir}/bootstrap.cjs"]
        return with_wrapper(argv, config.environment.get(EXEC_WRAPPER), view)
    # OS-only runtimes (`provided`) ignore AWS_LAMBDA_EXEC_WRAPPER, as Lambda's do
    return [bootstrap or f"{view.task_root}/bootstrap"]


def with_wrapper(argv: list[str], wrapper: str | None, view: View) -> list[str]:
    """`argv` started as Lambda starts a managed runtime with a wrapper script: the wrapper
    runs with the runtime's command line as its arguments and execs it (adding options or
    variables). Without a sandbox, a wrapper under /opt or /var/task is looked for where the
    environment's layers and code are on the host."""
    if not wrapper:
        return argv
    return ["/bin/sh", "-c", _WRAPPER_SCRIPT, "sh", wrapper, _as_seen(wrapper, view), *argv]


def _as_seen(path: str, view: View) -> str:
    for lambda_root, root in (("/opt", view.opt_dir), ("/var/task", view.task_root)):
        if root is not None and root != lambda_root and path.startswith(lambda_root + "/"):
            return root + path[len(lambda_root) :]
    return path


def lamina_variables(
    config: FunctionConfig, env_dir: str, debug: DebugSettings | None
) -> dict[str, str]:
    """What Lamina's own runtimes are told besides Lambda's variables (they remove these
    before the handler loads): a hot-reloaded Python function keeps its bytecode cache in
    the environment's own folder (`sys.pycache_prefix`; in a sandbox, under its /tmp), never
    in the watched folder and never stale; a debugged one starts debugpy on its port ("PORT"
    or "PORT:wait")."""
    extra = {}
    if runtimes.family(config.runtime or "") == "python":
        if config.code_path is not None or any(r.path for r in config.layers):
            extra["LAMINA_PYCACHE_PREFIX"] = f"{env_dir}/pycache"
        if debug is not None:
            extra["LAMINA_DEBUG"] = f"{debug.port}:wait" if debug.wait else str(debug.port)
    return extra


def environment(
    config: FunctionConfig,
    *,
    region: str,
    api_address: str,
    view: View,
    stream: str,
    credentials: dict[str, str],
    interpreter: str | None,
    extra: dict[str, str],
    initialization_type: str = "on-demand",
    lambda_endpoint: str | None = None,
) -> dict[str, str]:
    """The child's environment: Lambda's variables, then the function's own (spec §9.5).
    Layers are found where Lambda's are: PATH, LD_LIBRARY_PATH, NODE_PATH and (in the Python
    bootstrap) sys.path; without a sandbox the merged layers' directory is LAMINA_OPT_DIR."""
    task_root, runtime_dir, opt = view.task_root, view.runtime_dir, view.opt_dir
    path = LAMBDA_PATH
    if interpreter:
        path = os.path.dirname(interpreter) + ":" + path
    opt_lib = "/opt/lib"
    if opt is not None and opt != "/opt":
        path += f":{opt}/bin"
        opt_lib += f":{opt}/lib"
    env = {
        "PATH": path,
        "LANG": "en_US.UTF-8",
        "LD_LIBRARY_PATH": f"/lib64:/usr/lib64:{runtime_dir}:{runtime_dir}/lib:{task_root}:"
        f"{task_root}/lib:{opt_lib}",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }
    if view.tmp_dir:
        env["TMPDIR"] = view.tmp_dir
    if runtimes.family(config.runtime or "") == "nodejs":
        major = (config.runtime or "").removeprefix("nodejs").split(".")[0]
        layers = (
            ""
            if opt is None
            else (f"{opt}/nodejs/node{major}/node_modules:{opt}/nodejs/node_modules:")
        )
        base = "" if opt == "/opt" else "/opt/nodejs/node_modules:"
        env["NODE_PATH"] = f"{layers}{base}{runtime_dir}/node_modules:{runtime_dir}:{task_root}"
    env.update(extra)
    env.update(config.environment)
    env.update(
        {
            "_HANDLER": config.handler or "",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": config.plain_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": config.version,
            "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type,
            "AWS_LAMBDA_LOG_GROUP_NAME": config.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_LAMBDA_RUNTIME_API": api_address,
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": runtime_dir,
            "TZ": ":UTC",
            **credentials,
        }
    )
    if view.opt_variable and opt is not None:
        env["LAMINA_OPT_DIR"] = opt
    execution_env = runtimes.execution_env(config.runtime or "")
    if execution_env:
        env["AWS_EXECUTION_ENV"] = execution_env
    if config.log_format == "JSON":
        env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        env["AWS_LAMBDA_LOG_LEVEL"] = config.application_log_level or "INFO"
    if config.durable_config and lambda_endpoint:
        # A durable function's SDK checkpoints through the Lambda API: botocore and the AWS
        # SDK for JavaScript v3 both take a service's endpoint from this variable, so the
        # unmodified SDK reaches this engine (on loopback: the sandbox shares the network).
        # Other functions never see the engine's address.
        env["AWS_ENDPOINT_URL_LAMBDA"] = lambda_endpoint
    return env
