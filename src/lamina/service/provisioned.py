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

from lamina.domain import arns, errors, limits
from lamina.domain.model import LATEST, FunctionConfig
from lamina.service.functions import FunctionService, timestamp
from lamina.service.ports import EnvironmentPool, Store

log = logging.getLogger("lamina.provisioned")
_NOT_PUBLISHED = "The function resource provided must be an alias or a published version."


@dataclass
class ProvisionedConfig:
    function: str
    qualifier: str
    requested: int
    last_modified: str
    status: str = "IN_PROGRESS"
    reason: str | None = None
    target: FunctionConfig | None = None  # the version provisioned (an alias's, resolved)


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
        functions.on_delete_qualifier.append(self._forget_qualifier)
        # the account's unreserved concurrency (set by the app: the limiter's)
        self.unreserved_limit: Callable[[], int] = lambda: 1000

    async def load(self) -> None:
        for function, qualifier, requested, modified in await self.store.list_provisioned():
            config = ProvisionedConfig(function, qualifier, requested, modified)
            self._configs[(function, qualifier)] = config
            self._start(config)

    async def reload(self) -> None:
        """Take in configurations another engine put or deleted."""
        stored = {(f, q): (n, m) for f, q, n, m in await self.store.list_provisioned()}
        for key in list(self._configs):
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
        if requested < 1:
            raise errors.ValidationError.field(
                requested,
                "provisionedConcurrentExecutions",
                "Member must have value greater than or equal to 1",
            )
        qualifier = self._target(
            function,
            qualifier,
            "Provisioned Concurrency Configs cannot be applied to unpublished function versions.",
        )
        self._check_conflicts(function, qualifier)
        self._check_limits(function, qualifier, requested)
        config = ProvisionedConfig(function, qualifier, requested, timestamp(time.time()))
        await self.store.put_provisioned(function, qualifier, requested, config.last_modified)
        self._configs[(function, qualifier)] = config
        self._start(config)
        return config

    def get(self, function: str, qualifier: str | None) -> ProvisionedConfig:
        qualifier = self._target(function, qualifier, _NOT_PUBLISHED)
        config = self._configs.get((function, qualifier))
        if config is None:
            raise errors.ProvisionedConfigNotFound(
                "No Provisioned Concurrency Config found for this function"
            )
        return config

    def _target(self, function: str, qualifier: str | None, unpublished: str) -> str:
        """The alias or version a configuration is for; AWS's errors for `$LATEST` and for a
        function, alias or version that does not exist."""
        if qualifier in (None, LATEST):
            raise errors.InvalidParameterValue(unpublished)
        assert qualifier is not None
        entry = self.functions.find(function)
        if arns.ALIAS_RE.fullmatch(qualifier):
            if entry is None or qualifier not in entry.aliases:
                raise errors.ResourceNotFound(
                    f"Cannot find alias arn: {self.functions.arn(function, qualifier)}"
                )
        elif entry is None or qualifier not in entry.versions:
            raise errors.ResourceNotFound(
                f"Function not found: {self.functions.arn(function, qualifier)}"
            )
        return qualifier

    def _check_conflicts(self, function: str, qualifier: str) -> None:
        """A version takes provisioned concurrency directly or through one alias, not both."""
        entry = self.functions.entry(function)
        alias = entry.aliases.get(qualifier)
        if alias is not None:
            if (function, alias.function_version) in self._configs:
                raise errors.ResourceConflict(
                    "Alias can't be used for Provisioned Concurrency "
                    "configuration on an already Provisioned version"
                )
        elif any(
            (function, a.name) in self._configs
            for a in entry.aliases.values()
            if a.function_version == qualifier
        ):
            raise errors.ResourceConflict("Version is pointed by a Provisioned Concurrency alias")

    def _check_limits(self, function: str, qualifier: str, requested: int) -> None:
        reserved = self.functions.get_concurrency(function)
        total = requested + sum(
            c.requested for (f, q), c in self._configs.items() if f == function and q != qualifier
        )
        if reserved is not None:
            if total > reserved:
                raise errors.InvalidParameterValue(
                    "Requested Provisioned Concurrency should not be greater than the "
                    "reservedConcurrentExecution for function"
                )
            return
        unreserved = self.unreserved_limit()
        if total > unreserved:
            raise errors.InvalidParameterValue(
                "Specified ConcurrentExecutions for function is greater than account's "
                f"unreserved concurrency [{unreserved}].",
                typed=False,
            )
        if unreserved - total < limits.MIN_UNRESERVED:
            raise errors.InvalidParameterValue(
                "Specified ConcurrentExecutions for function decreases account's "
                "UnreservedConcurrentExecution below its minimum value of "
                f"[{limits.MIN_UNRESERVED}].",
                typed=False,
            )

    def list(self, function: str) -> list[ProvisionedConfig]:
        self.functions.entry(function)
        return [c for (f, _), c in sorted(self._configs.items()) if f == function]

    def covers(self, function: str, version: str) -> bool:
        """Whether provisioned concurrency is configured for this version of `function`
        (on the version itself or on an alias that points to it)."""
        return any(
            f == function
            and (q == version or (c.target is not None and c.target.version == version))
            for (f, q), c in self._configs.items()
        )

    def total(self, function: str) -> int:
        """The function's provisioned concurrency over all its qualifiers."""
        return sum(c.requested for (f, _), c in self._configs.items() if f == function)

    def available(self, config: ProvisionedConfig) -> int:
        if config.status == "FAILED":  # AWS shows nothing allocated for a failed config
            return 0
        try:
            return self.pool.provisioned_ready(
                self.functions.resolve(config.function, config.qualifier)
            )
        except errors.LaminaError:
            return 0

    async def delete(self, function: str, qualifier: str | None) -> None:
        """Delete a configuration; deleting one that does not exist succeeds, as on AWS."""
        qualifier = self._target(function, qualifier, _NOT_PUBLISHED)
        if (function, qualifier) not in self._configs:
            return
        await self.store.delete_provisioned(function, qualifier)
        del self._configs[(function, qualifier)]
        self.pool.unprovision(self.functions.resolve(function, qualifier))

    def _forget(self, function: str) -> None:
        for key in [k for k in self._configs if k[0] == function]:
            del self._configs[key]

    def _forget_qualifier(self, function: str, qualifier: str) -> None:
        """A deleted alias or version takes its configuration with it (the store deleted it);
        its environments are retired with the version."""
        config = self._configs.pop((function, qualifier), None)
        if config is not None and config.target is not None:
            self.pool.unprovision(config.target)

    def _start(self, config: ProvisionedConfig) -> None:
        task = asyncio.get_running_loop().create_task(self._provision(config))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _provision(self, config: ProvisionedConfig) -> None:
        if self.functions.settle_time > 0:  # `--settle-time`: AWS takes its time to allocate
            await asyncio.sleep(self.functions.settle_time)
        try:
            version = config.target = self.functions.resolve(config.function, config.qualifier)
            share = self.share(config.requested)
            ready = await self.pool.provision(version, share)
        except Exception as exc:
            log.exception("provisioning %s:%s failed", config.function, config.qualifier)
            config.status, config.reason = "FAILED", str(exc)
            return
        if ready < share:  # an Init failed (the function's logs say why): AWS's reason
            config.status, config.reason = "FAILED", "FUNCTION_ERROR_INIT_FAILURE"
        else:
            config.status, config.reason = "READY", None
