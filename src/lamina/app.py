"""The composition root: build every part from the config, start them in order, stop them.

Start order: store → cluster membership → code → environments → services (load functions)
→ records → HTTP. Stop order is the reverse, so no request arrives at a part that is gone.
On SIGTERM the engine drains first (`Engine.drain`): health says so, the pollers and the
async queue go to other engines, the calls running finish, then it stops (docs/CLUSTER.md).
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
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import TypedDict

import lamina
from lamina.adapters.aws import ROLE_SESSION_S, AwsClients, AwsNetwork, AwsSender, assume_role
from lamina.adapters.s3 import S3Packages
from lamina.api import stacks as stacks_api
from lamina.api.app import body_limit, lambda_api, too_large
from lamina.api.auth import Gate
from lamina.api.context import ApiContext
from lamina.config import Config, load_credentials
from lamina.domain import arns, errors
from lamina.domain.code import CodeSource
from lamina.domain.model import FunctionConfig
from lamina.domain.settings import FunctionSettings
from lamina.domain.sigv4 import Keyring
from lamina.http import server as http
from lamina.observability import logging as engine_logging
from lamina.observability.metrics import Metrics
from lamina.pollers.supervisor import PollerSupervisor
from lamina.runtime import sandbox
from lamina.runtime.environment import EnvironmentSettings
from lamina.runtime.hot_reload import FolderWatcher
from lamina.runtime.interpreters import Interpreters
from lamina.runtime.launch import make_launcher
from lamina.runtime.log_retention import LogRetention
from lamina.runtime.logs import LogGroupReader, LogReader, LogStream
from lamina.runtime.pool import EnvironmentPool
from lamina.service import clock
from lamina.service.apis import ApiService
from lamina.service.async_invoke import AsyncInvokeService
from lamina.service.attempt import Attempts
from lamina.service.batches import BatchRunner
from lamina.service.calls import CallRegistry
from lamina.service.capacity import CapacityProviderService
from lamina.service.cluster import Cluster
from lamina.service.code_signing import CodeSigningService
from lamina.service.concurrency import ConcurrencyLimiter
from lamina.service.debug import DebugService
from lamina.service.destinations import Destinations
from lamina.service.durable import DurableService
from lamina.service.event_configs import EventConfigService
from lamina.service.faults import FaultService
from lamina.service.functions import CreateFunction, FunctionService
from lamina.service.invoke import InvokeService
from lamina.service.layers import LayerService
from lamina.service.log_groups import LogGroupService
from lamina.service.mappings import MappingService
from lamina.service.observe import ObserveService
from lamina.service.overview import OverviewService
from lamina.service.permissions import PermissionService
from lamina.service.provisioned import ProvisionedService
from lamina.service.records import Recorder
from lamina.service.retention import RecordRetention
from lamina.service.schedules import ScheduleService
from lamina.service.stacks import StackService
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


def _reachable(host: str, port: int) -> str:
    """The engine's Lambda API as a function on this machine reaches it."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Claims(TypedDict, total=False):
    """AsyncInvokeService's arguments for engines sharing a store."""

    owner: str
    release_dead: Callable[[], Awaitable[int]]
    may_claim: Callable[[], bool]


class Engine:
    """One running Lamina engine."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = open_store(config.store)
        self.code = CodeStore(config.data_dir / "code")
        self.interpreters = Interpreters(config.runtime_map)
        self.gate = _gate(config)
        settings = EnvironmentSettings(
            region=config.region,
            data_dir=config.data_dir,
            credentials={
                "AWS_ACCESS_KEY_ID": "lamina",
                "AWS_SECRET_ACCESS_KEY": "lamina",
                "AWS_SESSION_TOKEN": "lamina",
            },
            credentials_of=None if self.gate is None else self._function_credentials,
            credentials_lifetime=self._credentials_lifetime(),
            assume_role=self._role_credentials if config.assume_role else None,
            extra_env=config.function_env,
            log_max_bytes=config.log_max_bytes,
            sdk_path=_sdk_path(),
            freeze=config.freeze,
            lambda_endpoint=_reachable(config.host, config.port),
        )
        self.sandbox = sandbox.probe(config.sandbox, config.data_dir)
        self.pool = EnvironmentPool(
            settings,
            self.interpreters,
            self.code,
            self.store.get_package,
            idle_timeout=config.idle_timeout,
            max_starting=config.max_starting,
            min_free_memory_mb=config.min_free_memory,
            scaling_rate=config.scaling_rate,
            launcher=make_launcher(self.sandbox, config.data_dir, settings.sdk_path),
        )
        self.clock = clock.from_scale(config.time_scale)
        self.metrics = Metrics()
        self.recorder = Recorder(
            self.store, self.clock, observer=self.metrics, enabled=config.records
        )
        self.cluster = Cluster(
            self.store,
            f"{config.host}:{config.port}",
            config.cluster_lease,
            config.account_concurrency,
        )
        self.limiter = ConcurrencyLimiter(config.account_concurrency, self.cluster.quotas)
        if self.cluster.quotas is not None:
            self.cluster.quotas.used = self.limiter.used
        self.aws = AwsClients(config.region)
        self.functions = FunctionService(
            self.store,
            self.code,
            self.pool,
            self.limiter,
            config.region,
            config.account,
            s3=S3Packages(self.aws),
            hot_reload_bucket=config.hot_reload_bucket,
        )
        self.functions.settle_time = config.settle_time
        self.watcher = FolderWatcher(self._hot_reload)
        self.functions.on_folders = self.watcher.watch
        self.functions.folder_status = self.watcher.status
        self.debug = DebugService(self.functions, self.pool, self.store)
        self.log_groups = LogGroupService(
            LogGroupReader(config.data_dir / "logs"),
            config.region,
            config.account,
            self.pool.flush_logs,
        )
        self.calls = CallRegistry(
            self.store, self.clock, config.dedupe_window, shared=self.cluster.shared
        )
        self.faults = FaultService()
        self.attempts = Attempts(self.limiter, self.pool, self.recorder, self.clock, self.faults)
        self.invoke = InvokeService(
            self.functions,
            self.attempts,
            self.recorder,
            self.clock,
            self.calls,
            strict=config.parity == "strict",
        )
        self.event_configs = EventConfigService(self.store, self.functions, self.clock)
        self.versions = VersionService(self.functions)
        self.permissions = PermissionService(self.store, self.functions, self.versions)
        self.layers = LayerService(self.store, self.functions)
        self.urls = UrlService(self.store, self.functions, self.versions)
        self.code_signing = CodeSigningService(self.store, self.functions)
        self.capacity = CapacityProviderService(self.store, self.functions)
        self.provisioned = ProvisionedService(self.store, self.functions, self.pool)
        self.functions.provisioned_total = self.provisioned.total
        self.limiter.provisioned_total = self.provisioned.total
        self.limiter.provisioned_for = self.provisioned.covers
        self.provisioned.unreserved_limit = lambda: self.limiter.unreserved_limit
        self.sender = AwsSender(self.aws)
        self.functions.network = AwsNetwork(self.aws)
        self.destinations = Destinations(
            self.store,
            self.functions,
            self.event_configs,
            self.recorder,
            self.clock,
            self.sender,
            self.cluster.engine_id if self.cluster.shared else uuid.uuid4().hex,
        )
        self.async_invoke = AsyncInvokeService(
            self.store,
            self.functions,
            self.event_configs,
            self.attempts,
            self.limiter,
            self.recorder,
            self.clock,
            self.destinations,
            **self._claims(),
        )
        self.destinations.accept = self.async_invoke.accept
        self.mappings = MappingService(self.store, self.functions)
        self.batches = BatchRunner(
            self.attempts,
            self.functions,
            self.store,
            self.recorder,
            self.clock,
            self.mappings,
            self.destinations.owe,
        )
        self.destinations.may_invoke = self.permissions.may_invoke  # (accounts)
        self.schedules = ScheduleService(
            self.store, self.async_invoke, self.clock, config.region, config.account
        )
        self.apis = ApiService(self.store, config.region, config.account, config.port)
        self.durable = DurableService(
            self.store,
            self.functions,
            self.invoke,
            self.attempts,
            self.recorder,
            self.clock,
            config.region,
            config.account,
        )
        self.pollers = PollerSupervisor(self.batches, self.aws, config.region)
        self.mappings.sources = self.pollers
        self.observe = ObserveService(
            self.store, self.recorder, LogReader(config.data_dir / "logs"), self.pool.flush_logs
        )
        self.overview = OverviewService(
            self.functions,
            self.provisioned,
            self.event_configs,
            self.limiter,
            self.pool,
            self.store,
            self.clock,
            mappings=self.mappings,
        )
        self.record_retention = RecordRetention(
            self.store, self.clock, config.records_max_age, config.records_max_rows
        )
        self.log_retention = LogRetention(
            config.data_dir / "logs",
            config.logs_max_mb << 20,
            config.logs_max_age,
            self._log_streams,
        )
        self.stacks = StackService(
            self.store,
            self.functions,
            AwsClients(config.region),
            config.region,
            config.account,
            _iam_endpoint(),
            self._engine_features(),
            self.cluster,
        )
        self.cluster.on_engines.append(lambda engines: self.stacks.recover_soon())
        self.server: asyncio.Server | None = None
        self.connections = http.Connections(
            http.Limits(
                config.header_timeout, config.connection_idle_timeout, config.max_connections
            )
        )
        self.cluster.on_engines.append(lambda engines: self.async_invoke.release_dead_soon())
        self.provisioned.share = self.cluster.share
        self.cluster.on_engines.append(lambda engines: self.provisioned.rebalance())
        self._reload_functions = Reload(self._load_functions, "functions")
        self._reload_mappings = Reload(self.mappings.reload, "event source mappings")
        self._reload_schedules = Reload(self.schedules.load, "schedules")
        self._reload_apis = Reload(self.apis.load, "HTTP APIs")
        self._reload_provisioned = Reload(self.provisioned.reload, "provisioned concurrency")
        self._leading: asyncio.Task[None] | None = None

    def _engine_features(self) -> dict[str, object]:
        """Services a stack's schedules and HTTP APIs are made with (when this engine has
        them: see CONTRACT-events.md)."""
        return {
            name: getattr(self, name)
            for name in ("schedules", "apis")
            if getattr(self, name, None) is not None
        }

    def _hot_reload(self, folders: set[str]) -> None:
        retired = self.pool.reload(folders)
        log.info(
            "hot reload: %s changed; %d environment(s) retired", ", ".join(sorted(folders)), retired
        )

    def _claims(self) -> _Claims:
        """Engines sharing the store claim queued work under their engine id, so that the
        others can take back what a dead one claimed."""
        if not self.cluster.shared:
            return {}
        return {
            "owner": self.cluster.engine_id,
            "release_dead": self.store.release_dead_claims,
            "may_claim": self.cluster.lease_valid,
        }

    def _log_streams(self) -> list[LogStream]:
        return [env.logs for env in self.pool.environments()]

    @property
    def port(self) -> int:
        assert self.server is not None
        return http.bound_port(self.server)

    async def start(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        await self.store.open()
        await self.cluster.join()
        await self._resume_clock()
        await self.pool.start()
        await self._load_functions()
        await self.provisioned.load()
        await self.debug.load()
        self.recorder.start()
        self.record_retention.start()
        self.log_retention.start()
        await self.async_invoke.start()
        self.destinations.start()
        await self.durable.start()
        await self.mappings.load()
        await self.schedules.load()
        self.schedules.start()
        await self.apis.load()
        await self.store.listen(self._on_store_change)
        if self.config.pollers:
            await self._lead_once()
            self._leading = asyncio.get_running_loop().create_task(self._lead_loop())
        if self.config.sample:
            await self.create_sample()
        heartbeat = 0.0 if self.config.parity == "strict" else self.config.heartbeat_interval
        ctx = ApiContext(
            self.functions,
            self.invoke,
            self.observe,
            self.async_invoke,
            self.event_configs,
            self.versions,
            self.provisioned,
            self.faults,
            self.permissions,
            self.clock,
            self.config.region,
            self.config.account,
            self.config.account_concurrency,
            heartbeat,
            overview=self.overview,
            metrics=self.metrics,
            mappings=self.mappings,
            layers=self.layers,
            urls=self.urls,
            schedules=self.schedules,
            apis=self.apis,
            persist_clock=self._persist_clock,
            stacks=self.stacks,
            debug=self.debug,
            log_groups=self.log_groups,
            code_signing=self.code_signing,
            capacity=self.capacity,
            durable=self.durable,
            cluster=self.cluster,
            sandbox={
                "Mode": self.sandbox.mode,
                "Description": self.sandbox.describe(),
                "Warning": self.sandbox.warning(),
            },
            gate=self.gate,
            strict=self.config.parity == "strict",
        )
        handler = self.api = lambda_api(ctx)  # `api`: in-process callers (tests, deploys)
        self.server = await http.serve(
            handler,
            self.config.host,
            self.config.port,
            body_limit=body_limit,
            too_large=too_large,
            connections=self.connections,
        )
        self.cluster.address = f"{self.config.host}:{self.port}"
        self.cluster.ready()
        self.apis.port = self.port
        self.stacks.lambda_api.dispatch = stacks_api.in_process(handler)
        self.stacks.lambda_api.host = f"{self.config.host}:{self.port}"
        await self.stacks.recover()

    def _function_credentials(self, function: FunctionConfig) -> dict[str, str]:
        """A function's own credentials (--auth sigv4): its account, its role, 12 hours
        (--credentials-lifetime)."""
        assert self.gate is not None
        account = getattr(function, "account", None) or self.config.account
        return self.gate.keyring.function_credentials(
            account,
            arns.function_arn(self.config.region, account, function.name),
            function.role,
            lifetime=self.config.credentials_lifetime,
        )

    def _credentials_lifetime(self) -> float | None:
        """How long functions' credentials last, when they expire at all: a role's session
        (--assume-role), or Lamina's own (--auth sigv4, --credentials-lifetime)."""
        if self.config.assume_role:
            return ROLE_SESSION_S
        return None if self.gate is None else self.config.credentials_lifetime

    async def _role_credentials(self, function: FunctionConfig) -> dict[str, str]:
        """Credentials of a function's execution role for one environment (--assume-role)."""
        return await assume_role(self.aws, function.role, function.name)

    async def _resume_clock(self) -> None:
        """Go on with the engine time an earlier run kept (scaled and virtual clocks)."""
        kept = await self.store.get_engine_clock()
        if kept is not None:
            self.clock.resume(*kept)
        await self._persist_clock()

    async def _persist_clock(self) -> None:
        anchor = self.clock.anchor()
        if anchor is not None:
            await self.store.put_engine_clock(anchor[0], anchor[1], self.clock.label)

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
    _EVENTS_BACK = (
        "enqueue_event",
        "reschedule_event",
        "enqueue_scheduled_event",
        "release_expired_events",
        "release_dead_events",
        "reconnected",
    )
    _DELIVERIES_BACK = (
        "enqueue_delivery",
        "release_expired_deliveries",
        "release_dead_deliveries",
        "reconnected",
    )
    _CALL_CHANGES = ("put_call_result", "unregister_call")
    _PROVISIONED_CHANGES = ("put_provisioned", "delete_provisioned")
    _SCHEDULE_CHANGES = ("put_schedule", "delete_schedule", "advance_schedule")
    _API_CHANGES = ("put_http_api", "delete_http_api")
    _NOT_FUNCTIONS = frozenset(
        (
            *_MAPPING_CHANGES,
            *_EVENTS_BACK,
            *_DELIVERIES_BACK,
            *_CALL_CHANGES,
            *_PROVISIONED_CHANGES,
            *_SCHEDULE_CHANGES,
            *_API_CHANGES,
        )
    )

    def _on_store_change(self, change: str, own: bool) -> None:
        """Something changed in the store shared with other engines (PostgreSQL
        notifications). This engine's own function changes are in its memory already:
        reloading them too would replace entries that requests in flight still hold."""
        if self.cluster.on_notice(change, own):
            if change == "engine_left":
                self.async_invoke.wake()
            return
        if change in self._EVENTS_BACK:
            self.async_invoke.wake()
        if change in self._DELIVERIES_BACK:
            self.destinations.wake()
        if change in self._CALL_CHANGES:
            self.calls.notice()
        if change in (*self._PROVISIONED_CHANGES, "reconnected") and not own:
            self._reload_provisioned.request()
        if change in (*self._MAPPING_CHANGES, "reconnected"):
            self._reload_mappings.request()
        if change in (*self._SCHEDULE_CHANGES, "reconnected") and not own:
            self._reload_schedules.request()
        if change in (*self._API_CHANGES, "reconnected") and not own:
            self._reload_apis.request()
        if (change not in self._NOT_FUNCTIONS or change == "reconnected") and not own:
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
            await self.code_signing.load()
            await self.capacity.load()

    async def drain(self, drain_time: float) -> None:
        """SIGTERM: health answers 503 (draining) at once; the pollers go to another engine
        and queued work this engine claimed goes back; for `drain_time` seconds requests
        are still served (a load balancer takes the engine out meanwhile); then the listener
        closes and the calls running finish. `stop` follows."""
        started = asyncio.get_running_loop().time()
        await self.cluster.drain()
        if self._leading is not None:
            self._leading.cancel()
        await self.mappings.unlead()
        await self.store.resign()
        await self.destinations.close()
        try:
            await self.async_invoke.drain()
        except errors.StoreUnavailable as exc:
            log.warning("could not hand queued work back (%s): its leases bring it back", exc)
        await asyncio.sleep(max(0.0, started + drain_time - asyncio.get_running_loop().time()))
        if self.server is not None:
            self.server.close()
        self.connections.close()
        while sum(self.limiter.in_flight.values()) or self.connections.busy():
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        self.connections.close()
        if self._leading is not None:
            self._leading.cancel()
        await self.stacks.close()
        await self.stacks.aws.close()
        await self.pollers.close()
        await self.schedules.close()
        await self.watcher.close()
        await self.async_invoke.close()
        await self.destinations.close()
        await self.durable.close()
        await self.sender.close()
        await self.pool.close()
        await self.record_retention.close()
        await self.log_retention.close()
        await self.recorder.close()
        await self.cluster.leave()
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
        await self.functions.create(
            CreateFunction(
                SAMPLE_NAME,
                FunctionSettings(
                    runtime=f"python3.{minor}",
                    handler="lambda_function.lambda_handler",
                    role=f"arn:aws:iam::{self.config.account}:role/lamina-sample",
                    description="Lamina's sample function",
                ),
                CodeSource(buffer.getvalue()),
            )
        )


async def serve(config: Config) -> None:
    """Run the engine until SIGINT or SIGTERM."""
    engine = Engine(config)
    # Handled from the start: a SIGTERM that comes while the engine is still starting (its
    # health check may already answer) stops it in order once it has started, not at once.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await engine.start()
    gc.freeze()  # what start-up made lives on: full collections need not walk it again
    endpoint = f"http://{config.host}:{engine.port}"
    log.info(
        "Lamina is serving the Lambda API on %s (store %s, data %s, time scale %s, "
        "parity %s, sandbox %s, compiled %s)",
        endpoint,
        config.store,
        config.data_dir,
        config.time_scale,
        config.parity,
        engine.sandbox.describe(),
        lamina.COMPILED,
    )
    if lamina.COMPILED == "stale":
        log.warning(
            "the compiled modules are older than their sources: running them as pure Python "
            "(scripts/compile.py rebuilds them)"
        )
    if engine.sandbox.warning():
        log.warning("%s", engine.sandbox.warning())
    exposed = exposed_without_auth(config)
    if exposed:
        print(exposed, file=sys.stderr, flush=True)
    if config.cpu_by_memory and "cpu" not in sandbox.delegated_controllers():
        log.warning(
            "--cpu-by-memory: no cgroup v2 subtree with the cpu controller is "
            "delegated to the engine here; environments share every core "
            "(docs/ENVIRONMENT.md)"
        )
    print(f"Lamina ready: {endpoint}  (pid {os.getpid()})", flush=True)
    if config.sample:
        print(
            f"  try: aws lambda invoke --endpoint-url {endpoint} --function-name "
            f"{SAMPLE_NAME} --cli-binary-format raw-in-base64-out --payload "
            '\'{"name": "Lamina"}\' out.json && cat out.json',
            flush=True,
        )
    try:
        await stop.wait()
        stop.clear()
        log.info("draining: finishing the calls running (a second signal stops at once)")
        draining = loop.create_task(engine.drain(config.drain_time))
        interrupted = loop.create_task(stop.wait())
        await asyncio.wait((draining, interrupted), return_when=asyncio.FIRST_COMPLETED)
        for task in (draining, interrupted):
            task.cancel()
        await asyncio.gather(draining, interrupted, return_exceptions=True)
    finally:
        log.info("stopping")
        await engine.stop()


def _gate(config: Config) -> Gate | None:
    """The SigV4 check of every request with --auth sigv4, else None."""
    if config.auth != "sigv4" or config.credentials is None:
        return None
    return Gate(Keyring(load_credentials(config.credentials)), config.metrics_token, config.region)


def exposed_without_auth(config: Config) -> str | None:
    """The warning `serve` prints when anyone on the network can drive the engine."""
    if (
        config.auth != "none"
        or config.host in ("127.0.0.1", "::1", "localhost")
        or config.host.startswith("127.")
    ):
        return None
    return (
        f"WARNING: Lamina listens on {config.host} with --auth none: anyone who can reach "
        f"port {config.port} can create, change and run functions, read their logs and "
        "open the console. Use --auth sigv4 --credentials FILE (docs/SECURITY.md), or "
        "--host 127.0.0.1."
    )


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
            await asyncio.sleep(0.05 * 2**attempt)  # the first wait merges a burst of changes
            try:
                await self._reload()
                return
            except errors.StoreUnavailable as exc:
                log.warning(
                    "could not reload %s after a change by another engine: %s", self._what, exc
                )


def _iam_endpoint() -> bool:
    """Whether IAM calls have an endpoint to go to (else a stack's roles are simulated)."""
    return bool(os.environ.get("AWS_ENDPOINT_URL_IAM") or os.environ.get("AWS_ENDPOINT_URL"))


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
