"""Capacity providers and the functions on them (see `domain.capacity`).

Providers are kept in memory (loaded at start and after another engine's change) and in the
store. A new provider answers `State: Pending` and becomes `Active` as soon as the answer is
sent (Lamina has no instances to launch); a deleted one answers `Deleting` and is gone. A
provider that function versions use cannot be deleted. Functions join one through
`FunctionService.resolve_capacity_provider`; their per-version scaling configuration
(Get/PutFunctionScalingConfig) is kept on the version.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from typing import Any

from lamina.domain import capacity, errors
from lamina.domain.capacity import CapacityProvider
from lamina.domain.model import LATEST, FunctionConfig
from lamina.service.functions import FunctionService, timestamp
from lamina.service.ports import Store

LATEST_PUBLISHED = "$LATEST.PUBLISHED"


class CapacityProviderService:
    """The capacity provider operations (see the module docstring)."""

    def __init__(self, store: Store, functions: FunctionService) -> None:
        self.store = store
        self.functions = functions
        self._providers: dict[str, CapacityProvider] = {}
        functions.resolve_capacity_provider = self.settle

    async def load(self) -> None:
        self._providers = {p.name: p for p in await self.store.list_capacity_providers()}

    def arn(self, name: str) -> str:
        return capacity.arn(self.functions.region, self.functions.account, name)

    # providers ---------------------------------------------------------------------------
    def get(self, name_or_arn: str) -> CapacityProvider:
        name = capacity.name_of(name_or_arn)
        provider = self._providers.get(name)
        if provider is None:
            raise capacity.not_found(self.arn(name))
        return provider

    def list(self, state: str | None = None) -> list[CapacityProvider]:
        if state is not None and state not in capacity.STATES:
            raise errors.ValidationError.field(
                state,
                "state",
                "Member must satisfy enum value set: [" + ", ".join(capacity.STATES) + "]",
            )
        return [p for _, p in sorted(self._providers.items()) if state is None or p.state == state]

    async def create(self, document: dict[str, Any], tags: dict[str, str]) -> CapacityProvider:
        name = capacity.name_of(document.get("CapacityProviderName"))
        provider = CapacityProvider(
            name,
            self.arn(name),
            capacity.vpc_config(document.get("VpcConfig")),
            capacity.operator_role(document.get("PermissionsConfig")),
            instance_requirements=capacity.instance_requirements(
                document.get("InstanceRequirements")
            ),
            scaling=capacity.scaling_config(document.get("CapacityProviderScalingConfig")),
            kms_key_arn=capacity.kms_key_arn(document.get("KmsKeyArn")),
            propagate_tags=capacity.propagate_tags(document.get("PropagateTags")),
            telemetry=capacity.telemetry(document.get("TelemetryConfig")),
            last_modified=timestamp(time.time()),
            tags=dict(tags),
        )
        if name in self._providers:
            raise capacity.exists(provider.arn)
        await self.store.insert_capacity_provider(provider.replace(state="Active"))
        self._providers[name] = provider
        asyncio.get_running_loop().call_soon(self._settle, name)
        return provider

    async def update(self, name_or_arn: str, document: dict[str, Any]) -> CapacityProvider:
        current = self.get(name_or_arn)
        changes: dict[str, Any] = {}
        if document.get("CapacityProviderScalingConfig") is not None:
            changes["scaling"] = capacity.scaling_config(
                document["CapacityProviderScalingConfig"], current.scaling
            )
        if document.get("PropagateTags") is not None:
            changes["propagate_tags"] = capacity.propagate_tags(document["PropagateTags"])
        if document.get("TelemetryConfig") is not None:
            changes["telemetry"] = capacity.telemetry(document["TelemetryConfig"])
        provider = current.replace(**changes, last_modified=timestamp(time.time()))
        await self._save(provider)
        return provider

    async def delete(self, name_or_arn: str) -> CapacityProvider:
        provider = self.get(name_or_arn)
        if self._users(provider.arn):
            raise capacity.in_use(provider.arn)
        await self.store.delete_capacity_provider(provider.name)
        self._providers.pop(provider.name, None)
        return provider.replace(state="Deleting")

    async def set_tags(self, name: str, tags: dict[str, str]) -> None:
        await self._save(self.get(name).replace(tags=tags))

    async def _save(self, provider: CapacityProvider) -> None:
        await self.store.put_capacity_provider(
            provider.replace(state="Active" if provider.state == "Pending" else provider.state)
        )
        self._providers[provider.name] = provider

    def _settle(self, name: str) -> None:
        provider = self._providers.get(name)
        if provider is not None and provider.state == "Pending":
            self._providers[name] = provider.replace(state="Active")

    # functions on providers --------------------------------------------------------------
    def _users(self, provider_arn: str) -> builtins.list[FunctionConfig]:
        """Every function version ($LATEST included) configured with the provider."""
        found = []
        for latest in self.functions.list():
            entry = self.functions.entry(latest.name)
            for config in (latest, *entry.versions.values()):
                if (config.capacity_provider or {}).get("CapacityProviderArn") == provider_arn:
                    found.append(config)
        return found

    def function_versions(self, name_or_arn: str) -> builtins.list[FunctionConfig]:
        """ListFunctionVersionsByCapacityProvider: the published versions on the provider
        (on AWS, `$LATEST` of such a function runs nowhere until it is published)."""
        provider = self.get(name_or_arn)
        return [c for c in self._users(provider.arn) if c.version != LATEST]

    def settle(self, given: dict[str, Any], runtime: str | None, memory: int) -> dict[str, Any]:
        """A function's CapacityProviderConfig: the provider must exist."""
        name = given["CapacityProviderArn"].rsplit(":", 1)[-1]
        if name not in self._providers or given["CapacityProviderArn"] != self.arn(name):
            raise capacity.not_found(given["CapacityProviderArn"])
        return capacity.settle(given, runtime, memory)

    def _scaled_version(self, function: str, qualifier: str | None) -> FunctionConfig:
        if qualifier is None:
            raise errors.ValidationError.field(None, "qualifier", "Member must not be null")
        if qualifier != LATEST_PUBLISHED and not qualifier.isdigit():
            raise errors.ValidationError.field(
                qualifier,
                "qualifier",
                "Member must satisfy regular expression pattern: (\\$LATEST\\.PUBLISHED|[0-9]+)",
            )
        entry = self.functions.entry(function)
        if entry.latest.capacity_provider is None:  # message unconfirmed
            raise errors.InvalidParameterValue(
                "FunctionScalingConfig is only supported for Lambda Managed Instances functions."
            )
        return self.functions.resolve(function, qualifier)

    def scaling(self, function: str, qualifier: str | None) -> FunctionConfig:
        return self._scaled_version(function, qualifier)

    async def put_scaling(self, function: str, qualifier: str | None, given: Any) -> FunctionConfig:
        config = self._scaled_version(function, qualifier)
        requested = capacity.scaling_request(given)
        return await self.functions.configure(function, config.version, scaling=requested)
