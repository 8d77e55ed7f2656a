"""Provisioned concurrency: environments initialised before any invoke (spec §8.5).

`Put…` records the wish and starts the environments in the background (`IN_PROGRESS`,
then `READY`); they run Init with `AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency`,
serve before on-demand environments, are never expired for idleness, and are replaced when
one ends. Configurations survive a restart. Reserved concurrency, when set, must cover the
function's total provisioned concurrency.

Engines sharing PostgreSQL split each configuration: of N environments, each live engine keeps
its `share` (N divided among them, in the order they joined), so the cluster keeps N in all;
when an engine joins or dies the shares are recomputed and the others start what is missing.
A change made on one engine reaches the others through the store (`reload`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from lamina.domain import errors
from lamina.domain.model import LATEST
from lamina.service.functions import FunctionService, timestamp
from lamina.service.ports import EnvironmentPool, Store

log = logging.getLogger("lamina.provisioned")


@dataclass
class ProvisionedConfig:
    function: str
    qualifier: str
    requested: int
    last_modified: str
    status: str = "IN_PROGRESS"
    reason: str | None = None


class ProvisionedService:
    """Put / Get / Delete / ListProvisionedConcurrencyConfigs."""

    def __init__(self, store: Store, functions: FunctionService, pool: EnvironmentPool) -> None:
        self.store = store
        self.functions = functions
        self.pool = pool
        self._configs: dict[tuple[str, str], ProvisionedConfig] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # how many of N environments this engine keeps (all of them, alone on its store)
        self.share: Callable[[int], int] = lambda requested: requested
        functions.on_delete.append(self._forget)

    async def load(self) -> None:
        for function, qualifier, requested, modified in await self.store.list_provisioned():
            config = ProvisionedConfig(function, qualifier, requested, modified)
            self._configs[(function, qualifier)] = config
            self._start(config)

    async def reload(self) -> None:
        """Take in configurations another engine put or deleted."""
        stored = {(f, q): (n, m) for f, q, n, m in await self.store.list_provisioned()}
        for key, config in list(self._configs.items()):
            if key not in stored:
                del self._configs[key]
                try:
                    self.pool.unprovision(self.functions.resolve(*key))
                except errors.LaminaError:
                    pass
        for key, (requested, modified) in stored.items():
            known = self._configs.get(key)
            if known is None or (known.requested, known.last_modified) != (requested, modified):
                config = ProvisionedConfig(key[0], key[1], requested, modified)
                self._configs[key] = config
                self._start(config)

    def rebalance(self) -> None:
        """The engines sharing the store changed: keep this engine's new share of each."""
        for config in self._configs.values():
            self._start(config)

    async def put(self, function: str, qualifier: str | None, requested: int) -> ProvisionedConfig:
        if qualifier in (None, LATEST):
            raise errors.InvalidParameterValue(
                "Provisioned Concurrency Configs cannot be applied to unpublished function "
                "versions.")
        assert qualifier is not None
        self.functions.resolve(function, qualifier)
        if requested < 1:
            raise errors.ValidationError.field(
                requested, "provisionedConcurrentExecutions",
                "Member must have value greater than or equal to 1")
        reserved = self.functions.get_concurrency(function)
        total = requested + sum(c.requested for (f, q), c in self._configs.items()
                                if f == function and q != qualifier)
        if reserved is not None and total > reserved:
            raise errors.InvalidParameterValue(
                "Requested Provisioned Concurrency should not be greater than the "
                "reservedConcurrentExecution for function")
        config = ProvisionedConfig(function, qualifier, requested, timestamp(time.time()))
        await self.store.put_provisioned(function, qualifier, requested, config.last_modified)
        self._configs[(function, qualifier)] = config
        self._start(config)
        return config

    def get(self, function: str, qualifier: str | None) -> ProvisionedConfig:
        self.functions.entry(function)
        config = self._configs.get((function, qualifier or ""))
        if config is None:
            raise errors.ProvisionedConfigNotFound(
                "No Provisioned Concurrency Config found for this function")
        return config

    def list(self, function: str) -> list[ProvisionedConfig]:
        self.functions.entry(function)
        return [c for (f, _), c in sorted(self._configs.items()) if f == function]

    def total(self, function: str) -> int:
        """The function's provisioned concurrency over all its qualifiers."""
        return sum(c.requested for (f, _), c in self._configs.items() if f == function)

    def available(self, config: ProvisionedConfig) -> int:
        try:
            return self.pool.provisioned_ready(
                self.functions.resolve(config.function, config.qualifier))
        except errors.LaminaError:
            return 0

    async def delete(self, function: str, qualifier: str | None) -> None:
        config = self.get(function, qualifier)
        await self.store.delete_provisioned(function, config.qualifier)
        del self._configs[(function, config.qualifier)]
        self.pool.unprovision(self.functions.resolve(function, config.qualifier))

    def _forget(self, function: str) -> None:
        for key in [k for k in self._configs if k[0] == function]:
            del self._configs[key]

    def _start(self, config: ProvisionedConfig) -> None:
        task = asyncio.get_running_loop().create_task(self._provision(config))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _provision(self, config: ProvisionedConfig) -> None:
        try:
            version = self.functions.resolve(config.function, config.qualifier)
            share = self.share(config.requested)
            ready = await self.pool.provision(version, share)
        except Exception as exc:
            log.exception("provisioning %s:%s failed", config.function, config.qualifier)
            config.status, config.reason = "FAILED", str(exc)
            return
        if ready < share:
            config.status = "FAILED"
            config.reason = (f"{share - ready} of {share} environments "
                             "failed to initialise; see the function's logs")
        else:
            config.status, config.reason = "READY", None
