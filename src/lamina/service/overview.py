"""What the engine holds now: functions with their versions, aliases, concurrency and
environments; the async queue per function; event source mappings.

Read-only, for the console, `lamina status` and the gauges of `/metrics`. Mappings come
from an optional `MappingSource` (the event source pollers); without one there are none.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from lamina.domain.model import EventInvokeConfig
from lamina.domain.observed import EnvironmentView, MappingStatus
from lamina.service.concurrency import ConcurrencyLimiter
from lamina.service.event_configs import EventConfigService
from lamina.service.functions import FunctionEntry, FunctionService
from lamina.service.ports import Clock, Store
from lamina.service.provisioned import ProvisionedConfig, ProvisionedService


class MappingSource(Protocol):
    async def mapping_status(self) -> list[MappingStatus]: ...


class EnvironmentSnapshots(Protocol):
    def snapshot(self, name: str | None = None) -> list[EnvironmentView]: ...


@dataclass
class FunctionOverview:
    """One function and everything running for it."""

    entry: FunctionEntry
    reserved: int | None
    in_flight: int
    provisioned: list[ProvisionedConfig] = field(default_factory=list)
    environments: list[EnvironmentView] = field(default_factory=list)
    event_configs: list[EventInvokeConfig] = field(default_factory=list)
    queue: tuple[int, float] | None = None  # (events, oldest age in engine seconds)


class OverviewService:
    """Reads the engine's state for display (see the module docstring)."""

    def __init__(
        self,
        functions: FunctionService,
        provisioned: ProvisionedService,
        event_configs: EventConfigService,
        limiter: ConcurrencyLimiter,
        pool: EnvironmentSnapshots,
        store: Store,
        clock: Clock,
        mappings: MappingSource | None = None,
    ) -> None:
        self.functions = functions
        self.provisioned = provisioned
        self.event_configs = event_configs
        self.limiter = limiter
        self.pool = pool
        self.store = store
        self.clock = clock
        self.mappings = mappings

    async def all(self) -> list[FunctionOverview]:
        queues = await self.queues()
        environments = self.pool.snapshot()
        return [
            self._overview(config.name, queues, environments) for config in self.functions.list()
        ]

    async def one(self, name: str) -> FunctionOverview:
        self.functions.entry(name)
        return self._overview(name, await self.queues(), self.pool.snapshot(name))

    def _overview(
        self, name: str, queues: dict[str, tuple[int, float]], environments: list[EnvironmentView]
    ) -> FunctionOverview:
        return FunctionOverview(
            self.functions.entry(name),
            self.limiter.reserved.get(name),
            self.limiter.in_flight[name],
            self.provisioned.list(name),
            [env for env in environments if env.function == name],
            self.event_configs.list(name),
            queues.get(name),
        )

    async def queues(self) -> dict[str, tuple[int, float]]:
        """function → (async events queued or running, age of the oldest in engine seconds)."""
        now = self.clock.now()
        return {
            function: (count, max(0.0, now - oldest))
            for function, (count, oldest) in (await self.store.queue_stats()).items()
        }

    async def mapping_status(self, function: str | None = None) -> list[MappingStatus]:
        if self.mappings is None:
            return []
        found = await self.mappings.mapping_status()
        return [m for m in found if function is None or m.function == function]

    def concurrency(self) -> dict[str, int]:
        """function → invocations running now (0 for every idle function)."""
        names = {config.name for config in self.functions.list()} | set(self.limiter.in_flight)
        return {name: self.limiter.in_flight[name] for name in names}

    async def queue_gauges(self) -> dict[str, tuple[int, float]]:
        """`queues()`, with (0, 0.0) for every function that has nothing queued."""
        found = await self.queues()
        return {**{config.name: (0, 0.0) for config in self.functions.list()}, **found}

    def environment_counts(self) -> dict[tuple[str, str, str], int]:
        return dict(Counter((env.function, env.version, env.state) for env in self.pool.snapshot()))
