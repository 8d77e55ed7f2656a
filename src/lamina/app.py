"""The composition root: build every part from the config, start them in order, stop them.

Start order: store → code → environments → services (load functions) → records → HTTP.
Stop order is the reverse, so no request arrives at a part that is gone.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import io
import logging
import os
import resource
import signal
import sys
import zipfile
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path

from lamina.adapters.aws import AwsClients, AwsSender
from lamina.api.app import body_limit, lambda_api, too_large
from lamina.api.context import ApiContext
from lamina.config import Config
from lamina.domain import errors
from lamina.domain.settings import FunctionSettings
from lamina.http import server as http
from lamina.observability import logging as engine_logging
from lamina.observability.metrics import Metrics
from lamina.pollers.supervisor import PollerSupervisor
from lamina.runtime.environment import EnvironmentSettings
from lamina.runtime.interpreters import Interpreters
from lamina.runtime.log_retention import LogRetention
from lamina.runtime.logs import LogReader, LogStream
from lamina.runtime import sandbox
from lamina.runtime.launch import make_launcher
from lamina.runtime.pool import EnvironmentPool
from lamina.service import clock
from lamina.service.async_invoke import AsyncInvokeService
from lamina.service.calls import CallRegistry
from lamina.service.concurrency import ConcurrencyLimiter
from lamina.service.event_configs import EventConfigService
from lamina.service.faults import FaultService
from lamina.service.functions import CreateFunction, FunctionService
from lamina.service.invoke import InvokeService
from lamina.service.layers import LayerService
from lamina.service.mappings import MappingService
from lamina.service.observe import ObserveService
from lamina.service.overview import OverviewService
from lamina.service.permissions import PermissionService
from lamina.service.provisioned import ProvisionedService
from lamina.service.records import Recorder
from lamina.service.retention import RecordRetention
from lamina.service.urls import UrlService
from lamina.service.versions import VersionService
from lamina.storage.code import CodeStore
from lamina.storage.url import open_store

log = logging.getLogger("lamina")

SAMPLE_NAME = "hello"
LEAD_CHECK_S = 2.0  # how often an engine checks it (still) runs the pollers


def _sdk_path() -> str | None:
    """Where boto3 lives, so Python functions can import it as on Lambda."""
    spec = importlib.util.find_spec("boto3")
    if spec is None or spec.origin is None:
        return None
    return str(Path(spec.origin).parent.parent)


class Engine:
    """One running Lamina engine."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = open_store(config.store)
        self.code = CodeStore(config.data_dir / "code")
        self.interpreters = Interpreters(config.runtime_map)
        settings = EnvironmentSettings(
            region=config.region, data_dir=config.data_dir,
            credentials={"AWS_ACCESS_KEY_ID": "lamina", "AWS_SECRET_ACCESS_KEY": "lamina",
                         "AWS_SESSION_TOKEN": "lamina"},
            extra_env=config.function_env, log_max_bytes=config.log_max_bytes,
            sdk_path=_sdk_path(), freeze=config.freeze)
        self.sandbox = sandbox.probe(config.sandbox, config.data_dir)
        self.pool = EnvironmentPool(settings, self.interpreters, self.code,
                                    self.store.get_package, idle_timeout=config.idle_timeout,
                                    max_starting=config.max_starting,
                                    min_free_memory_mb=config.min_free_memory,
                                    scaling_rate=config.scaling_rate,
                                    launcher=make_launcher(self.sandbox, config.data_dir,
                                                           settings.sdk_path))
        self.clock = clock.from_scale(config.time_scale)
        self.metrics = Metrics()
        self.recorder = Recorder(self.store, self.clock, observer=self.metrics,
                                 enabled=config.records)
        self.limiter = ConcurrencyLimiter(config.account_concurrency)
        self.functions = FunctionService(self.store, self.code, self.pool, self.limiter,
                                         config.region, config.account)
        self.calls = CallRegistry(self.store, self.clock, config.dedupe_window)
        self.faults = FaultService()
        self.invoke = InvokeService(self.functions, self.pool, self.limiter, self.recorder,
                                    self.clock, self.calls, strict=config.parity == "strict",
                                    faults=self.faults)
        self.event_configs = EventConfigService(self.store, self.functions, self.clock)
        self.versions = VersionService(self.functions)
        self.permissions = PermissionService(self.store, self.functions, self.versions)
        self.layers = LayerService(self.store, self.functions)
        self.urls = UrlService(self.store, self.functions, self.versions)
        self.provisioned = ProvisionedService(self.store, self.functions, self.pool)
        self.functions.provisioned_total = self.provisioned.total
        self.aws = AwsClients(config.region)
        self.sender = AwsSender(self.aws)
        self.async_invoke = AsyncInvokeService(self.store, self.functions, self.event_configs,
                                               self.invoke, self.limiter, self.recorder,
                                               self.clock, self.sender)
        self.mappings = MappingService(self.store, self.functions, self.invoke, self.recorder,
                                       self.clock, self.async_invoke.owe)
        self.pollers = PollerSupervisor(self.mappings, self.aws, config.region)
        self.mappings.sources = self.pollers
        self.observe = ObserveService(self.store, self.recorder,
                                      LogReader(config.data_dir / "logs"), self.pool.flush_logs)
        self.overview = OverviewService(self.functions, self.provisioned, self.event_configs,
                                        self.limiter, self.pool, self.store, self.clock,
                                        mappings=self.mappings)
        self.record_retention = RecordRetention(self.store, self.clock, config.records_max_age,
                                                config.records_max_rows)
        self.log_retention = LogRetention(config.data_dir / "logs", config.logs_max_mb << 20,
                                          config.logs_max_age, self._log_streams)
        self.server: asyncio.Server | None = None
        self._reload_functions = Reload(self._load_functions, "functions")
        self._reload_mappings = Reload(self.mappings.reload, "event source mappings")
        self._leading: asyncio.Task[None] | None = None

    def _log_streams(self) -> list[LogStream]:
        return [env.logs for env in self.pool.environments()]

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        await self.store.open()
        await self.pool.start()
        await self._load_functions()
        await self.provisioned.load()
        self.recorder.start()
        self.record_retention.start()
        self.log_retention.start()
        await self.async_invoke.start()
        await self.mappings.load()
        await self.store.listen(self._on_store_change)
        if self.config.pollers:
            await self._lead_once()
            self._leading = asyncio.get_running_loop().create_task(self._lead_loop())
        if self.config.sample:
            await self.create_sample()
        heartbeat = 0.0 if self.config.parity == "strict" else self.config.heartbeat_interval
        ctx = ApiContext(self.functions, self.invoke, self.observe, self.async_invoke,
                         self.event_configs, self.versions, self.provisioned, self.faults,
                         self.permissions, self.clock, self.config.region,
                         self.config.account, self.config.account_concurrency, heartbeat,
                         overview=self.overview, metrics=self.metrics, mappings=self.mappings,
                         layers=self.layers, urls=self.urls,
                         sandbox={"Mode": self.sandbox.mode,
                                  "Description": self.sandbox.describe(),
                                  "Warning": self.sandbox.warning()})
        self.server = await http.serve(lambda_api(ctx), self.config.host, self.config.port,
                                       body_limit=body_limit, too_large=too_large)

    async def _lead_once(self) -> None:
        """Run the event source pollers while this engine holds that role (always, alone
        on a store; one engine at a time among several sharing PostgreSQL)."""
        leading = await self.store.try_lead("pollers")
        if leading and self.mappings.runner is None:
            log.info("this engine runs the event source mapping pollers")
            await self.mappings.lead(self.pollers)
        elif not leading and self.mappings.runner is not None:
            log.warning("another engine runs the event source mapping pollers now")
            await self.mappings.unlead()

    async def _lead_loop(self) -> None:
        while True:
            await asyncio.sleep(LEAD_CHECK_S)
            try:
                await self._lead_once()
            except Exception:
                log.exception("could not check which engine runs the pollers")

    _MAPPING_CHANGES = ("put_mapping", "delete_mapping", "settle_mapping")
    _QUEUE_CHANGES = ("enqueue_event", "reschedule_event", "enqueue_delivery")

    def _on_store_change(self, change: str, own: bool) -> None:
        """Something changed in the store shared with other engines (PostgreSQL
        notifications). This engine's own function changes are in its memory already:
        reloading them too would replace entries that requests in flight still hold."""
        if change in ("enqueue_event", "reschedule_event", "reconnected"):
            self.async_invoke.wake()
        if change in ("enqueue_delivery", "reconnected"):
            self.async_invoke.wake(deliveries=True)
        if change in (*self._MAPPING_CHANGES, "reconnected"):
            self._reload_mappings.request()
        if change not in (*self._QUEUE_CHANGES, *self._MAPPING_CHANGES) and not own:
            self._reload_functions.request()

    async def _load_functions(self) -> None:
        """Functions and what hangs on them, from the store: at start, and when another
        engine changed them."""
        async with self.functions.changes:
            await self.functions.load()
            await self.event_configs.load()
            await self.permissions.load()
            await self.layers.load()
            await self.urls.load()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        if self._leading is not None:
            self._leading.cancel()
        await self.pollers.close()
        await self.async_invoke.close()
        await self.sender.close()
        await self.pool.close()
        await self.record_retention.close()
        await self.log_retention.close()
        await self.recorder.close()
        await self.store.close()

    async def create_sample(self) -> None:
        """The function `hello` a newcomer can invoke at once (kept if it exists)."""
        try:
            self.functions.entry(SAMPLE_NAME)
            return
        except errors.ResourceNotFound:
            pass
        buffer = io.BytesIO()
        source = resources.files("lamina").joinpath("samples/hello/lambda_function.py")
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("lambda_function.py", source.read_text())
        minor = sys.version_info.minor
        await self.functions.create(CreateFunction(SAMPLE_NAME, FunctionSettings(
            runtime=f"python3.{minor}", handler="lambda_function.lambda_handler",
            role=f"arn:aws:iam::{self.config.account}:role/lamina-sample",
            description="Lamina's sample function"), buffer.getvalue()))


async def serve(config: Config) -> None:
    """Run the engine until SIGINT or SIGTERM."""
    engine = Engine(config)
    await engine.start()
    gc.freeze()  # what start-up made lives on: full collections need not walk it again
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    endpoint = f"http://{config.host}:{engine.port}"
    log.info("Lamina is serving the Lambda API on %s (store %s, data %s, time scale %s, "
             "parity %s, sandbox %s)", endpoint, config.store, config.data_dir,
             config.time_scale, config.parity, engine.sandbox.describe())
    if engine.sandbox.warning():
        log.warning("%s", engine.sandbox.warning())
    if config.cpu_by_memory and "cpu" not in sandbox.delegated_controllers():
        log.warning("--cpu-by-memory: no cgroup v2 subtree with the cpu controller is "
                    "delegated to the engine here; environments share every core "
                    "(docs/ENVIRONMENT.md)")
    print(f"Lamina ready: {endpoint}  (pid {os.getpid()})", flush=True)
    if config.sample:
        print(f"  try: aws lambda invoke --endpoint-url {endpoint} --function-name "
              f"{SAMPLE_NAME} --cli-binary-format raw-in-base64-out --payload "
              "'{\"name\": \"Lamina\"}' out.json && cat out.json", flush=True)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await engine.stop()


class Reload:
    """Reloads what another engine changed, once per burst of change notices. A notice that
    comes while a reload runs makes it run once more: that reload may have read the store
    before the change."""

    def __init__(self, reload: Callable[[], Awaitable[None]], what: str) -> None:
        self._reload = reload
        self._what = what
        self._again = False
        self._task: asyncio.Task[None] | None = None

    def request(self) -> None:
        self._again = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._again:
            self._again = False
            await self._retrying()

    async def _retrying(self) -> None:
        for attempt in range(10):
            await asyncio.sleep(0.05 * 2 ** attempt)  # the first wait merges a burst of changes
            try:
                await self._reload()
                return
            except errors.StoreUnavailable as exc:
                log.warning("could not reload %s after a change by another engine: %s",
                            self._what, exc)


def raise_file_limit() -> None:
    """Lift the engine's open-file soft limit to the hard limit: each environment holds about
    five descriptors (pipes, pidfd, Runtime API sockets), so a common soft limit of 1,024 would
    stop the engine near 200 environments. Runtimes get Lambda's 1,024 back (supervisor)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open-file limit from %d: %s", soft, exc)


def run(config: Config) -> None:
    if config.sandbox != "none":
        sandbox.private_mounts()  # while the process has one thread (see runtime/sandbox.py)
    engine_logging.configure(config.log_level, config.log_format)
    raise_file_limit()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
