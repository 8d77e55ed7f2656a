"""Error handling and destinations of async invocations, per function qualifier (spec §7.5).

`Put…` replaces the whole configuration (omitted settings are removed); `Update…` merges.
Configurations are kept in memory (loaded at start), so the dispatcher reads them without I/O.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lamina.domain import arns, destinations, errors
from lamina.domain.model import LATEST, EventInvokeConfig
from lamina.service.functions import FunctionService
from lamina.service.ports import Clock, Store

UNSET: Any = object()


class EventConfigService:
    """The `*FunctionEventInvokeConfig` operations and the dispatcher's lookups."""

    def __init__(self, store: Store, functions: FunctionService, clock: Clock) -> None:
        self.store = store
        self.functions = functions
        self.clock = clock
        self._configs: dict[tuple[str, str], EventInvokeConfig] = {}
        functions.on_delete.append(self.forget)

    async def load(self) -> None:
        """Read every configuration from the store (at start, and after another engine's change)."""
        self._configs = {
            (c.function, c.qualifier): c for c in await self.store.list_event_configs()
        }

    def effective(self, function: str, qualifier: str | None) -> EventInvokeConfig:
        """The configuration that governs an event invoked with this qualifier."""
        key = (function, qualifier or LATEST)
        return self._configs.get(key) or EventInvokeConfig(function, key[1], 0.0)

    def get(self, function: str, qualifier: str | None) -> EventInvokeConfig:
        """A qualifier's configuration; AWS answers a missing function, version or alias as it
        answers a missing configuration."""
        config = self._configs.get((function, qualifier or LATEST))
        if config is None:
            raise errors.ResourceNotFound(
                f"The function {self.functions.arn(function, qualifier or LATEST)} doesn't have "
                "an EventInvokeConfig"
            )
        return config

    def _exists(self, function: str, qualifier: str | None) -> None:
        """Put, Update and List word a missing function, version or alias their own way."""
        try:
            self.functions.resolve(function, qualifier)
        except errors.ResourceNotFound:
            raise errors.ResourceNotFound("The function doesn't exist.") from None

    def list(self, function: str) -> list[EventInvokeConfig]:
        self._exists(function, None)
        return [c for (name, _), c in sorted(self._configs.items()) if name == function]

    async def put(
        self,
        function: str,
        qualifier: str | None,
        *,
        merge: bool,
        retries: Any = UNSET,
        max_age: Any = UNSET,
        on_success: Any = UNSET,
        on_failure: Any = UNSET,
        destination_config: bool = False,
    ) -> EventInvokeConfig:
        """Put (merge=False) or Update (merge=True) the configuration of a qualifier.
        `destination_config`: a DestinationConfig was given (even one naming no destination, which
        AWS accepts as a setting)."""
        key = (function, qualifier or LATEST)
        given = {
            "maximum_retry_attempts": retries,
            "maximum_event_age": max_age,
            "on_success": on_success,
            "on_failure": on_failure,
        }
        given = {k: v for k, v in given.items() if v is not UNSET}
        if not any(v is not None for v in given.values()) and not merge and not destination_config:
            raise errors.InvalidParameterValue(
                "You must specify at least one of error handling or destination setting."
            )
        self._exists(function, qualifier)
        self._check(function, given)
        base = self._configs.get(key) if merge else None
        if merge and base is None:
            raise errors.ResourceNotFound(
                f"The function {self.functions.arn(function, key[1])} doesn't have an "
                "EventInvokeConfig"
            )
        config = replace(
            base or EventInvokeConfig(function, key[1], 0.0),
            **given,
            last_modified=self.clock.now(),
        )
        await self.store.put_event_config(config)
        self._configs[key] = config
        return config

    async def delete(self, function: str, qualifier: str | None) -> None:
        self.get(function, qualifier)
        await self.store.delete_event_config(function, qualifier or LATEST)
        self._configs.pop((function, qualifier or LATEST), None)

    def forget(self, function: str) -> None:
        """Drop the configurations of a deleted function."""
        for key in [k for k in self._configs if k[0] == function]:
            del self._configs[key]

    def _check(self, function: str, given: dict[str, Any]) -> None:
        retries = given.get("maximum_retry_attempts")
        if retries is not None and not 0 <= retries <= 2:
            raise errors.ValidationError.field(
                retries,
                "maximumRetryAttempts",
                "Member must have value less than or equal to 2"
                if retries > 2
                else "Member must have value greater than or equal to 0",
            )
        age = given.get("maximum_event_age")
        if age is not None and not 60 <= age <= 21_600:
            raise errors.ValidationError.field(
                age,
                "maximumEventAgeInSeconds",
                "Member must have value less than or equal to 21600"
                if age > 21_600
                else "Member must have value greater than or equal to 60",
            )
        kinds = destinations.check_event_destinations(
            given.get("on_success"), given.get("on_failure")
        )
        for key, kind in kinds.items():
            if kind == "lambda":
                self._check_lambda_destination(function, given[key])

    def _check_lambda_destination(self, function: str, arn: str) -> None:
        try:
            target = arns.parse_function_name(arn, self.functions.region, None)
            owner = target.account or self.functions.owner(function) or self.functions.account
            key = self.functions.key(owner, target.name)
            self.functions.resolve(key, target.qualifier)
        except errors.LaminaError:
            raise errors.InvalidParameterValue(f"The destination ARN {arn} is invalid.") from None
        if key == function:
            raise errors.InvalidParameterValue(
                "You can't specify the function as a destination for itself."
            )
