"""The in-memory store: the reference semantics of the Store operations, for unit tests."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from lamina.domain import capacity, errors
from lamina.domain.capacity import CapacityProvider
from lamina.domain.code_signing import CodeSigningConfig
from lamina.domain.debug import DebugSettings
from lamina.domain.layers import LAYER_RACE, LayerVersion
from lamina.domain.model import (
    Alias,
    AsyncEvent,
    AttemptRecord,
    Delivery,
    EventInvokeConfig,
    EventSourceMapping,
    FunctionConfig,
    InvocationOutcome,
    InvocationSummary,
    ResourcePolicy,
)
from lamina.domain.observed import InvocationFilter
from lamina.domain.stacks import IN_PROGRESS, Stack, StackEvent
from lamina.domain.urls import FunctionUrlConfig
from lamina.storage.durable import DurableMemory
from lamina.storage.events import EventsMemory


class MemoryStore(EventsMemory, DurableMemory):
    """Store kept in dictionaries; nothing survives the process."""

    all_claims_are_stale = True

    def __init__(self) -> None:
        EventsMemory.__init__(self)
        DurableMemory.__init__(self)
        self.functions: dict[str, dict[str, str]] = {}
        self.versions: dict[tuple[str, str], FunctionConfig] = {}
        self.invocations: dict[str, InvocationSummary] = {}
        self.records: list[AttemptRecord] = []
        # request id → (event, owner, lease until); owner None while queued
        self.events: dict[str, tuple[AsyncEvent, str | None, float | None]] = {}
        self.event_configs: dict[tuple[str, str], EventInvokeConfig] = {}
        self.policies: dict[tuple[str, str], ResourcePolicy] = {}
        self.urls: dict[tuple[str, str], FunctionUrlConfig] = {}
        self.deliveries: dict[str, tuple[Delivery, str | None, float | None]] = {}
        self.reserved: dict[str, int] = {}
        self.packages: dict[str, bytes] = {}
        self.layers: dict[tuple[str, int], LayerVersion] = {}
        self.mappings: dict[str, EventSourceMapping] = {}
        self.checkpoints: dict[str, dict[str, str]] = {}
        self.aliases: dict[tuple[str, str], Alias] = {}
        self.provisioned: dict[tuple[str, str], tuple[int, str]] = {}
        self.last_version: dict[str, int] = {}
        self.code_signing: dict[str, CodeSigningConfig] = {}
        self.debug_modes: dict[tuple[str, str], DebugSettings] = {}
        self.providers: dict[str, CapacityProvider] = {}
        self.call_results: dict[
            tuple[str, str, str], tuple[str, str, InvocationOutcome, float]
        ] = {}
        self.stacks: dict[str, dict[str, Any]] = {}
        self.stack_events: dict[str, list[StackEvent]] = {}

    async def open(self) -> None:
        return None

    async def listen(self, on_change: object) -> None:
        return None

    async def try_lead(self, role: str) -> bool:
        return True

    async def resign(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def create_function(
        self, config: FunctionConfig, tags: dict[str, str], created_at: float
    ) -> None:
        if config.name in self.functions:
            raise errors.ResourceConflict(f"Function already exist: {config.plain_name}")
        self.functions[config.name] = dict(tags)
        self.versions[(config.name, config.version)] = config

    async def put_version(self, config: FunctionConfig) -> None:
        self.versions[(config.name, config.version)] = config

    async def delete_function(self, name: str) -> None:
        self.functions.pop(name, None)
        for key in [k for k in self.versions if k[0] == name]:
            del self.versions[key]
        for table in (self.event_configs, self.aliases, self.provisioned, self.policies, self.urls):
            for key in [k for k in table if k[0] == name]:
                del table[key]
        self.reserved.pop(name, None)
        self.last_version.pop(name, None)

    async def set_reserved_concurrency(self, name: str, reserved: int | None) -> None:
        if reserved is None:
            self.reserved.pop(name, None)
        elif name in self.functions:
            self.reserved[name] = reserved

    async def list_reserved_concurrency(self) -> dict[str, int]:
        return dict(self.reserved)

    async def put_call_result(
        self,
        function: str,
        qualifier: str,
        invocation_id: str,
        request_id: str,
        executed_version: str,
        outcome: InvocationOutcome,
        finished_at: float,
        keep_after: float,
    ) -> None:
        for key in [k for k, v in self.call_results.items() if v[3] < keep_after]:
            del self.call_results[key]
        self.call_results.setdefault(
            (function, qualifier, invocation_id),
            (request_id, executed_version, outcome, finished_at),
        )

    async def get_call_result(
        self, function: str, qualifier: str, invocation_id: str, not_before: float
    ) -> tuple[str, str, InvocationOutcome] | None:
        found = self.call_results.get((function, qualifier, invocation_id))
        if found is None or found[3] < not_before:
            return None
        return found[0], found[1], found[2]

    async def publish_version(self, config: FunctionConfig) -> FunctionConfig:
        self.last_version[config.name] = self.last_version.get(config.name, 0) + 1
        published = config.replace(version=str(self.last_version[config.name]))
        self.versions[(config.name, published.version)] = published
        return published

    async def delete_version(self, name: str, version: str) -> None:
        self.versions.pop((name, version), None)
        self.policies.pop((name, version), None)
        self.provisioned.pop((name, version), None)

    async def create_alias(self, alias: Alias) -> None:
        if (alias.function, alias.name) in self.aliases:
            raise errors.ResourceConflict("Alias already exists")
        self.aliases[(alias.function, alias.name)] = alias

    async def put_alias(self, alias: Alias) -> None:
        self.aliases[(alias.function, alias.name)] = alias

    async def delete_alias(self, function: str, name: str) -> None:
        self.aliases.pop((function, name), None)
        self.policies.pop((function, name), None)
        self.provisioned.pop((function, name), None)
        self.urls.pop((function, name), None)

    async def list_aliases(self) -> list[Alias]:
        return [self.aliases[k] for k in sorted(self.aliases)]

    async def put_provisioned(
        self, function: str, qualifier: str, requested: int, last_modified: str
    ) -> None:
        self.provisioned[(function, qualifier)] = (requested, last_modified)

    async def delete_provisioned(self, function: str, qualifier: str) -> None:
        self.provisioned.pop((function, qualifier), None)

    async def list_provisioned(self) -> list[tuple[str, str, int, str]]:
        return [(f, q, *self.provisioned[(f, q)]) for f, q in sorted(self.provisioned)]

    async def put_mapping(self, mapping: EventSourceMapping) -> None:
        stored = self.mappings.get(mapping.uuid)
        if stored is None or stored.last_modified <= mapping.last_modified:
            self.mappings[mapping.uuid] = mapping

    async def settle_mapping(self, mapping: EventSourceMapping) -> None:
        stored = self.mappings.get(mapping.uuid)
        if stored is not None and stored.last_modified <= mapping.last_modified:
            self.mappings[mapping.uuid] = mapping

    async def delete_mapping(self, mapping_id: str) -> None:
        self.mappings.pop(mapping_id, None)
        self.checkpoints.pop(mapping_id, None)

    async def list_mappings(self) -> list[EventSourceMapping]:
        return [self.mappings[k] for k in sorted(self.mappings)]

    async def put_checkpoint(self, mapping_id: str, shard: str, position: str) -> None:
        if mapping_id in self.mappings:
            self.checkpoints.setdefault(mapping_id, {})[shard] = position

    async def get_checkpoints(self, mapping_id: str) -> dict[str, str]:
        return dict(self.checkpoints.get(mapping_id, {}))

    async def put_package(self, key: str, data: bytes) -> None:
        self.packages.setdefault(key, data)

    async def get_package(self, key: str) -> bytes | None:
        return self.packages.get(key)

    async def list_versions(self) -> list[FunctionConfig]:
        return [self.versions[k] for k in sorted(self.versions)]

    async def list_function_tags(self) -> dict[str, dict[str, str]]:
        return copy.deepcopy(self.functions)

    async def set_function_tags(
        self, name: str, tags: dict[str, str], latest: FunctionConfig
    ) -> None:
        if name in self.functions:
            self.functions[name] = dict(tags)
            self.versions[(name, latest.version)] = latest

    async def write_records(
        self, summaries: list[InvocationSummary], records: list[AttemptRecord]
    ) -> None:
        for summary in summaries:
            self.invocations[summary.request_id] = dataclasses.replace(summary)
        self.records.extend(records)

    async def list_invocations(
        self, function: str | None, limit: int, before: float
    ) -> list[InvocationSummary]:
        found = [
            s
            for s in self.invocations.values()
            if (function is None or s.function == function) and s.accepted_at < before
        ]
        found.sort(key=lambda s: s.accepted_at, reverse=True)
        return found[:limit]

    async def get_invocation(
        self, request_id: str
    ) -> tuple[InvocationSummary | None, list[AttemptRecord]]:
        summary = self.invocations.get(request_id)
        records = [r for r in self.records if r.request_id == request_id]
        if summary is not None and summary.timeline:
            records = sorted(summary.timeline + records, key=lambda r: r.at)
        return summary, records

    # the async event queue -------------------------------------------------------------
    async def enqueue_event(self, event: AsyncEvent) -> None:
        if event.request_id in self.events:
            raise errors.ResourceConflict(f"Event already queued: {event.request_id}")
        self.events[event.request_id] = (dataclasses.replace(event), None, None)

    async def due_functions(self, now: float) -> dict[str, int]:
        found: dict[str, int] = {}
        for event, owner, _ in self.events.values():
            if owner is None and event.due_at <= now:
                found[event.function] = found.get(event.function, 0) + 1
        return found

    async def claim_events(
        self, function: str, now: float, limit: int, owner: str, lease_until: float
    ) -> list[AsyncEvent]:
        due = sorted(
            (
                e
                for e, o, _ in self.events.values()
                if o is None and e.function == function and e.due_at <= now
            ),
            key=lambda e: e.due_at,
        )[:limit]
        for event in due:
            self.events[event.request_id] = (event, owner, lease_until)
        return [dataclasses.replace(e) for e in due]

    async def next_due(self, after: float) -> float | None:
        times = [e.due_at for e, o, _ in self.events.values() if o is None and e.due_at > after]
        return min(times) if times else None

    async def next_delivery_due(self) -> float | None:
        times = [d.due_at for d, o, _ in self.deliveries.values() if o is None]
        return min(times) if times else None

    async def reschedule_event(self, event: AsyncEvent) -> None:
        if event.request_id in self.events:
            self.events[event.request_id] = (dataclasses.replace(event), None, None)

    async def finish_event(self, request_id: str, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            self.deliveries[delivery.id] = (dataclasses.replace(delivery), None, None)
        self.events.pop(request_id, None)

    async def release_claims(self, now: float, owner: str) -> int:
        released = 0
        for table in (self.events, self.deliveries):
            for key, (item, holder, lease) in list(table.items()):
                if holder is not None and (holder == owner or (lease or 0) < now):
                    table[key] = (item, None, None)  # type: ignore[assignment]
                    released += 1
        return released

    async def queue_stats(self) -> dict[str, tuple[int, float]]:
        stats: dict[str, tuple[int, float]] = {}
        for event, _, _ in self.events.values():
            count, oldest = stats.get(event.function, (0, event.accepted_at))
            stats[event.function] = (count + 1, min(oldest, event.accepted_at))
        return stats

    # event invoke configs -----------------------------------------------------------
    async def put_event_config(self, config: EventInvokeConfig) -> None:
        self.event_configs[(config.function, config.qualifier)] = config

    async def delete_event_config(self, function: str, qualifier: str) -> None:
        self.event_configs.pop((function, qualifier), None)

    async def list_event_configs(self) -> list[EventInvokeConfig]:
        return [self.event_configs[k] for k in sorted(self.event_configs)]

    # resource-based policies ---------------------------------------------------------
    async def put_policy(self, policy: ResourcePolicy) -> None:
        if policy.function in self.functions:
            self.policies[(policy.function, policy.qualifier)] = policy

    async def delete_policy(self, function: str, qualifier: str) -> None:
        self.policies.pop((function, qualifier), None)

    async def list_policies(self) -> list[ResourcePolicy]:
        return [self.policies[k] for k in sorted(self.policies)]

    # code signing configurations and capacity providers -------------------------------
    async def put_code_signing_config(self, config: CodeSigningConfig) -> None:
        self.code_signing[config.arn] = config

    async def delete_code_signing_config(self, arn: str) -> None:
        self.code_signing.pop(arn, None)

    async def list_code_signing_configs(self) -> list[CodeSigningConfig]:
        return [self.code_signing[k] for k in sorted(self.code_signing)]

    async def insert_capacity_provider(self, provider: CapacityProvider) -> None:
        if provider.name in self.providers:
            raise capacity.exists(provider.arn)
        self.providers[provider.name] = provider

    async def put_capacity_provider(self, provider: CapacityProvider) -> None:
        if provider.name in self.providers:
            self.providers[provider.name] = provider

    async def delete_capacity_provider(self, name: str) -> None:
        self.providers.pop(name, None)

    async def list_capacity_providers(self) -> list[CapacityProvider]:
        return [self.providers[k] for k in sorted(self.providers)]

    # function URLs -------------------------------------------------------------------
    async def put_function_url(self, config: FunctionUrlConfig) -> None:
        if config.function in self.functions:
            self.urls[(config.function, config.qualifier)] = config

    async def delete_function_url(self, function: str, qualifier: str) -> None:
        self.urls.pop((function, qualifier), None)

    async def list_function_urls(self) -> list[FunctionUrlConfig]:
        return [self.urls[k] for k in sorted(self.urls)]

    # layer versions ------------------------------------------------------------------
    async def insert_layer_version(self, layer: LayerVersion) -> None:
        if (layer.name, layer.version) in self.layers:
            raise errors.ResourceConflict(LAYER_RACE)
        self.layers[(layer.name, layer.version)] = layer

    async def put_layer_version(self, layer: LayerVersion) -> None:
        self.layers[(layer.name, layer.version)] = layer

    async def list_layer_versions(self) -> list[LayerVersion]:
        return [self.layers[k] for k in sorted(self.layers)]

    # destination deliveries ----------------------------------------------------------
    async def enqueue_delivery(self, delivery: Delivery) -> None:
        self.deliveries[delivery.id] = (dataclasses.replace(delivery), None, None)

    async def claim_deliveries(
        self, now: float, limit: int, owner: str, lease_until: float
    ) -> list[Delivery]:
        due = sorted(
            (d for d, o, _ in self.deliveries.values() if o is None and d.due_at <= now),
            key=lambda d: d.due_at,
        )[:limit]
        for delivery in due:
            self.deliveries[delivery.id] = (delivery, owner, lease_until)
        return [dataclasses.replace(d) for d in due]

    async def reschedule_delivery(self, delivery: Delivery) -> None:
        if delivery.id in self.deliveries:
            self.deliveries[delivery.id] = (dataclasses.replace(delivery), None, None)

    async def finish_delivery(self, delivery_id: str) -> None:
        self.deliveries.pop(delivery_id, None)

    # invocation lists and retention ------------------------------------------------------
    async def find_invocations(self, wanted: InvocationFilter) -> list[InvocationSummary]:
        found = [
            s
            for s in self.invocations.values()
            if wanted.matches(s.function, s.invocation_type, s.status, s.accepted_at)
        ]
        found.sort(key=lambda s: s.accepted_at, reverse=True)
        return [dataclasses.replace(s, timeline=None) for s in found[: wanted.limit]]

    async def invocation_cutoff(self, keep: int) -> float | None:
        times = sorted((s.accepted_at for s in self.invocations.values()), reverse=True)
        return times[keep - 1] if len(times) >= keep else None

    async def purge_invocations(self, before: float, limit: int) -> int:
        oldest = sorted(
            (s for s in self.invocations.values() if s.accepted_at < before),
            key=lambda s: s.accepted_at,
        )[:limit]
        gone = {s.request_id for s in oldest}
        for request_id in gone:
            del self.invocations[request_id]
        self.records = [r for r in self.records if r.request_id not in gone]
        return len(gone)

    # stacks (lamina deploy) ------------------------------------------------------------
    async def put_stack(self, stack: Stack, events: list[StackEvent] | None = None) -> None:
        self.stacks[stack.name] = copy.deepcopy(stack.to_dict())
        self.stack_events.setdefault(stack.stack_id, []).extend(events or [])

    async def put_stack_owned(self, stack: Stack, events: list[StackEvent], engine: str) -> bool:
        stored = self.stacks.get(stack.name)
        if (
            stored is not None
            and stored["status"] in IN_PROGRESS
            and stored["options"].get("engine") != engine
        ):
            return False
        await self.put_stack(stack, events)
        return True

    async def claim_stack(self, stack: Stack, previous: str | None) -> bool:
        stored = self.stacks.get(stack.name)
        if (
            stored is None
            or stored["stack_id"] != stack.stack_id
            or stored["status"] not in IN_PROGRESS
            or stored["options"].get("engine") != previous
        ):
            return False
        self.stacks[stack.name] = {**copy.deepcopy(stack.to_dict()), "status": stored["status"]}
        return True

    async def delete_stack(self, name: str, stack_id: str) -> None:
        self.stacks.pop(name, None)
        self.stack_events.pop(stack_id, None)

    async def list_stacks(self) -> list[Stack]:
        return [Stack.from_dict(copy.deepcopy(self.stacks[k])) for k in sorted(self.stacks)]

    async def list_stack_events(self, stack_id: str, after: int) -> list[StackEvent]:
        return [e for e in self.stack_events.get(stack_id, []) if e.seq > after]

    async def put_debug_mode(self, settings: DebugSettings) -> None:
        self.debug_modes[(settings.function, settings.version)] = settings

    async def delete_debug_mode(self, function: str, version: str | None = None) -> None:
        for key in [k for k in self.debug_modes if k[0] == function and version in (None, k[1])]:
            del self.debug_modes[key]

    async def list_debug_modes(self) -> list[DebugSettings]:
        return [self.debug_modes[k] for k in sorted(self.debug_modes)]
