"""The Store operations, once, over two primitives each SQL back end provides.

A back end implements `_query(name, params)` (read rows) and `_change(*steps)` (run named
queries in one transaction, each step with one parameter set or a list of them, and return
the rows each step returned). Every Store operation below is one transaction of named
queries from `queries/<dialect>.sql`, and rows become domain objects here, at the boundary.
"""

from __future__ import annotations

import json
import math
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
from lamina.domain.stacks import Stack, StackEvent
from lamina.domain.urls import FunctionUrlConfig
from lamina.storage import rows
from lamina.storage.durable import DurableSql
from lamina.storage.events import EventsQueries

Params = dict[str, Any] | list[dict[str, Any]] | list[tuple[Any, ...]]
Step = tuple[str, Params]


class SqlStore(EventsQueries, DurableSql):
    """Store operations shared by SQLite and PostgreSQL (see the module docstring)."""

    all_claims_are_stale = True
    integrity_errors: tuple[type[BaseException], ...] = ()

    async def _query(
        self, name: str, params: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def _change(self, *steps: Step) -> list[list[tuple[Any, ...]]]:
        raise NotImplementedError

    async def listen(self, on_change: Any) -> None:
        """Call `on_change(kind, own)` when an engine sharing the store changes something
        (no-op here: only PostgreSQL is shared)."""
        return None

    async def try_lead(self, role: str) -> bool:
        """Whether this engine holds `role` (e.g. running the pollers) among the engines
        sharing the store; asked again every few seconds. One engine per store here."""
        return True

    async def resign(self) -> None:
        """Give up every role this engine holds (it is stopping), so another takes them."""
        return None

    # functions ---------------------------------------------------------------------
    async def create_function(
        self, config: FunctionConfig, tags: dict[str, str], created_at: float
    ) -> None:
        try:
            await self._change(
                (
                    "insert_function",
                    {"name": config.name, "created_at": created_at, "tags": json.dumps(tags)},
                ),
                ("put_version", rows.version_row(config)),
            )
        except self.integrity_errors:
            raise errors.ResourceConflict(f"Function already exist: {config.plain_name}") from None

    async def put_version(self, config: FunctionConfig) -> None:
        await self._change(("put_version", rows.version_row(config)))

    async def delete_function(self, name: str) -> None:
        await self._change(("delete_function", {"name": name}))

    async def list_versions(self) -> list[FunctionConfig]:
        return [rows.config_from_row(r[2]) for r in await self._query("list_versions")]

    async def list_function_tags(self) -> dict[str, dict[str, str]]:
        return {r[0]: json.loads(r[1]) for r in await self._query("list_function_tags")}

    async def set_function_tags(
        self, name: str, tags: dict[str, str], latest: FunctionConfig
    ) -> None:
        """The function's tags and its `$LATEST` (tagging renews its RevisionId)."""
        await self._change(
            ("set_function_tags", {"name": name, "tags": json.dumps(tags)}),
            ("put_version", rows.version_row(latest)),
        )

    async def set_reserved_concurrency(self, name: str, reserved: int | None) -> None:
        await self._change(("set_reserved_concurrency", {"name": name, "reserved": reserved}))

    async def list_reserved_concurrency(self) -> dict[str, int]:
        return {r[0]: r[1] for r in await self._query("list_reserved_concurrency")}

    async def publish_version(self, config: FunctionConfig) -> FunctionConfig:
        """Store `config` as the next version number of its function (never reused)."""

        def numbered(version: int) -> FunctionConfig:
            return config.replace(version=str(version))

        (counter,) = await self._change(("next_version", {"name": config.name}))
        published = numbered(counter[0][0])
        await self._change(("put_version", rows.version_row(published)))
        return published

    async def delete_version(self, name: str, version: str) -> None:
        await self._change(
            ("delete_version", {"name": name, "version": version}),
            ("delete_policy", {"function": name, "qualifier": version}),
            ("delete_provisioned", {"function": name, "qualifier": version}),
        )

    async def create_alias(self, alias: Alias) -> None:
        try:
            await self._change(("insert_alias", rows.alias_row(alias)))
        except self.integrity_errors:
            raise errors.ResourceConflict("Alias already exists") from None

    async def put_alias(self, alias: Alias) -> None:
        await self._change(("put_alias", rows.alias_row(alias)))

    async def delete_alias(self, function: str, name: str) -> None:
        await self._change(
            ("delete_alias", {"function": function, "name": name}),
            ("delete_policy", {"function": function, "qualifier": name}),
            ("delete_provisioned", {"function": function, "qualifier": name}),
            ("delete_function_url", {"function": function, "qualifier": name}),
        )

    async def list_aliases(self) -> list[Alias]:
        return [Alias(**json.loads(r[0])) for r in await self._query("list_aliases")]

    async def put_provisioned(
        self, function: str, qualifier: str, requested: int, last_modified: str
    ) -> None:
        await self._change(
            (
                "put_provisioned",
                {
                    "function": function,
                    "qualifier": qualifier,
                    "requested": requested,
                    "last_modified": last_modified,
                },
            )
        )

    async def delete_provisioned(self, function: str, qualifier: str) -> None:
        await self._change(("delete_provisioned", {"function": function, "qualifier": qualifier}))

    async def list_provisioned(self) -> list[tuple[str, str, int, str]]:
        return [tuple(r) for r in await self._query("list_provisioned")]

    async def put_mapping(self, mapping: EventSourceMapping) -> None:
        await self._change(("put_mapping", self._mapping_row(mapping)))

    async def settle_mapping(self, mapping: EventSourceMapping) -> None:
        await self._change(("settle_mapping", self._mapping_row(mapping)))

    @staticmethod
    def _mapping_row(mapping: EventSourceMapping) -> dict[str, Any]:
        return {
            "uuid": mapping.uuid,
            "function": mapping.function,
            "last_modified": mapping.last_modified,
            "config": json.dumps(mapping.to_dict(), separators=(",", ":")),
        }

    async def delete_mapping(self, mapping_id: str) -> None:
        await self._change(("delete_mapping", {"uuid": mapping_id}))

    async def list_mappings(self) -> list[EventSourceMapping]:
        return [
            EventSourceMapping.from_dict(json.loads(r[0]))
            for r in await self._query("list_mappings")
        ]

    async def put_checkpoint(self, mapping_id: str, shard: str, position: str) -> None:
        await self._change(
            ("put_checkpoint", {"mapping": mapping_id, "shard": shard, "position": position})
        )

    async def get_checkpoints(self, mapping_id: str) -> dict[str, str]:
        return {r[0]: r[1] for r in await self._query("get_checkpoints", {"mapping": mapping_id})}

    async def put_package(self, key: str, data: bytes) -> None:
        await self._change(("put_package", {"key": key, "zip": data}))

    async def get_package(self, key: str) -> bytes | None:
        found = await self._query("get_package", {"key": key})
        return bytes(found[0][0]) if found else None

    # results of synchronous calls (one call runs once) --------------------------------
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
        await self._change(
            ("purge_call_results", {"before": keep_after}),
            (
                "put_call_result",
                {
                    "function": function,
                    "qualifier": qualifier,
                    "invocation_id": invocation_id,
                    "request_id": request_id,
                    "executed_version": executed_version,
                    "content_type": outcome.content_type,
                    "function_error": int(outcome.function_error),
                    "error_type": outcome.error_type,
                    "payload": outcome.payload,
                    "log_tail": outcome.log_tail,
                    "duration_ms": outcome.duration_ms,
                    "finished_at": finished_at,
                },
            ),
        )

    async def get_call_result(
        self, function: str, qualifier: str, invocation_id: str, not_before: float
    ) -> tuple[str, str, InvocationOutcome] | None:
        found = await self._query(
            "get_call_result",
            {
                "function": function,
                "qualifier": qualifier,
                "invocation_id": invocation_id,
                "not_before": not_before,
            },
        )
        if not found:
            return None
        request_id, version, content_type, error, error_type, payload, tail, duration = found[0]
        return (
            request_id,
            version,
            InvocationOutcome(
                bytes(payload),
                content_type,
                bool(error),
                error_type,
                duration,
                log_tail=bytes(tail),
            ),
        )

    # attempt records ---------------------------------------------------------------
    async def write_records(
        self, summaries: list[InvocationSummary], records: list[AttemptRecord]
    ) -> None:
        steps: list[Step] = []
        if summaries:
            steps.append(("upsert_invocation", rows.summary_rows(summaries)))
        if records:
            steps.append(("insert_record", rows.record_rows(records)))
        if steps:
            await self._change(*steps)

    async def list_invocations(
        self, function: str | None, limit: int, before: float
    ) -> list[InvocationSummary]:
        found = await self._query(
            "list_invocations", {"function": function, "limit": limit, "before": before}
        )
        return [InvocationSummary(*r) for r in found]

    async def get_invocation(
        self, request_id: str
    ) -> tuple[InvocationSummary | None, list[AttemptRecord]]:
        found = await self._query("get_invocation", {"request_id": request_id})
        records = [
            AttemptRecord(r[0], r[1], r[2], json.loads(r[3]))
            for r in await self._query("list_records", {"request_id": request_id})
        ]
        summary = rows.summary_from_row(found[0]) if found else None
        if summary is not None and summary.timeline:
            records = sorted(summary.timeline + records, key=lambda r: r.at)
        return summary, records

    # the async event queue ---------------------------------------------------------
    async def enqueue_event(self, event: AsyncEvent) -> None:
        await self._change(("enqueue_event", rows.event_row(event)))

    async def due_functions(self, now: float) -> dict[str, int]:
        return {r[0]: r[1] for r in await self._query("due_functions", {"now": now})}

    async def claim_events(
        self, function: str, now: float, limit: int, owner: str, lease_until: float
    ) -> list[AsyncEvent]:
        (claimed,) = await self._change(
            (
                "claim_events",
                {
                    "function": function,
                    "now": now,
                    "limit": limit,
                    "owner": owner,
                    "lease_until": lease_until,
                },
            )
        )
        return sorted((rows.event_from_row(r) for r in claimed), key=lambda e: e.due_at)

    async def next_due(self, after: float) -> float | None:
        found = await self._query("next_due", {"after": after})
        return found[0][0] if found else None

    async def next_delivery_due(self) -> float | None:
        found = await self._query("next_delivery_due")
        return found[0][0] if found else None

    async def reschedule_event(self, event: AsyncEvent) -> None:
        await self._change(
            (
                "reschedule_event",
                {
                    "request_id": event.request_id,
                    "due_at": event.due_at,
                    "invocations": event.invocations,
                    "throttles": event.throttles,
                },
            )
        )

    async def finish_event(self, request_id: str, deliveries: list[Delivery]) -> None:
        steps: list[Step] = []
        if deliveries:
            steps.append(("enqueue_delivery", [rows.delivery_row(d) for d in deliveries]))
        steps.append(("finish_event", {"request_id": request_id}))
        await self._change(*steps)

    async def release_claims(self, now: float, owner: str) -> int:
        params = {"now": now, "owner": owner}
        events, deliveries = await self._change(
            ("release_expired_events", params), ("release_expired_deliveries", params)
        )
        return len(events) + len(deliveries)

    async def queue_stats(self) -> dict[str, tuple[int, float]]:
        return {r[0]: (r[1], r[2]) for r in await self._query("queue_stats")}

    # event invoke configs -----------------------------------------------------------
    async def put_event_config(self, config: EventInvokeConfig) -> None:
        await self._change(("put_event_config", rows.event_config_row(config)))

    async def delete_event_config(self, function: str, qualifier: str) -> None:
        await self._change(("delete_event_config", {"function": function, "qualifier": qualifier}))

    async def list_event_configs(self) -> list[EventInvokeConfig]:
        return [rows.event_config_from_row(r[0]) for r in await self._query("list_event_configs")]

    # resource-based policies ---------------------------------------------------------
    async def put_policy(self, policy: ResourcePolicy) -> None:
        await self._change(("put_policy", rows.policy_row(policy)))

    async def delete_policy(self, function: str, qualifier: str) -> None:
        await self._change(("delete_policy", {"function": function, "qualifier": qualifier}))

    async def list_policies(self) -> list[ResourcePolicy]:
        return [rows.policy_from_row(r[0]) for r in await self._query("list_policies")]

    # function URLs -------------------------------------------------------------------
    async def put_function_url(self, config: FunctionUrlConfig) -> None:
        await self._change(("put_function_url", rows.url_row(config)))

    async def delete_function_url(self, function: str, qualifier: str) -> None:
        await self._change(("delete_function_url", {"function": function, "qualifier": qualifier}))

    async def list_function_urls(self) -> list[FunctionUrlConfig]:
        return [rows.url_from_row(r[0]) for r in await self._query("list_function_urls")]

    # code signing configurations and capacity providers -------------------------------
    async def put_code_signing_config(self, config: CodeSigningConfig) -> None:
        await self._change(
            (
                "put_code_signing_config",
                {"arn": config.arn, "config": json.dumps(config.to_dict(), separators=(",", ":"))},
            )
        )

    async def delete_code_signing_config(self, arn: str) -> None:
        await self._change(("delete_code_signing_config", {"arn": arn}))

    async def list_code_signing_configs(self) -> list[CodeSigningConfig]:
        return [
            CodeSigningConfig.from_dict(json.loads(r[0]))
            for r in await self._query("list_code_signing_configs")
        ]

    async def insert_capacity_provider(self, provider: CapacityProvider) -> None:
        try:
            await self._change(("insert_capacity_provider", rows.provider_row(provider)))
        except self.integrity_errors:
            raise capacity.exists(provider.arn) from None

    async def put_capacity_provider(self, provider: CapacityProvider) -> None:
        await self._change(("put_capacity_provider", rows.provider_row(provider)))

    async def delete_capacity_provider(self, name: str) -> None:
        await self._change(("delete_capacity_provider", {"name": name}))

    async def list_capacity_providers(self) -> list[CapacityProvider]:
        return [
            CapacityProvider.from_dict(json.loads(r[0]))
            for r in await self._query("list_capacity_providers")
        ]

    # layer versions ------------------------------------------------------------------
    async def insert_layer_version(self, layer: LayerVersion) -> None:
        try:
            await self._change(("insert_layer_version", rows.layer_row(layer)))
        except self.integrity_errors:  # another engine published this number first
            raise errors.ResourceConflict(LAYER_RACE) from None

    async def put_layer_version(self, layer: LayerVersion) -> None:
        await self._change(("put_layer_version", rows.layer_row(layer)))

    async def list_layer_versions(self) -> list[LayerVersion]:
        return [
            LayerVersion.from_dict(json.loads(r[0]))
            for r in await self._query("list_layer_versions")
        ]

    # destination deliveries ----------------------------------------------------------
    async def enqueue_delivery(self, delivery: Delivery) -> None:
        await self._change(("enqueue_delivery", rows.delivery_row(delivery)))

    async def claim_deliveries(
        self, now: float, limit: int, owner: str, lease_until: float
    ) -> list[Delivery]:
        (claimed,) = await self._change(
            (
                "claim_deliveries",
                {"now": now, "limit": limit, "owner": owner, "lease_until": lease_until},
            )
        )
        return sorted((rows.delivery_from_row(r) for r in claimed), key=lambda d: d.due_at)

    async def reschedule_delivery(self, delivery: Delivery) -> None:
        await self._change(
            (
                "reschedule_delivery",
                {"id": delivery.id, "due_at": delivery.due_at, "attempts": delivery.attempts},
            )
        )

    async def finish_delivery(self, delivery_id: str) -> None:
        await self._change(("finish_delivery", {"id": delivery_id}))

    # invocation lists and retention ------------------------------------------------------
    async def find_invocations(self, wanted: InvocationFilter) -> list[InvocationSummary]:
        """Summaries `wanted` selects, newest first (each filter has its own index)."""
        name = (
            "find_invocations_by_function"
            if wanted.function is not None
            else "find_invocations_by_status"
            if wanted.status not in (None, "success")
            else "find_invocations_by_type"
            if wanted.invocation_type not in (None, "RequestResponse")
            else "find_invocations"
        )
        found = await self._query(
            name,
            {
                "function": wanted.function,
                "status": wanted.status,
                "invocation_type": wanted.invocation_type,
                "limit": wanted.limit,
                "since": -math.inf if wanted.since is None else wanted.since,
                "before": math.inf if wanted.before is None else wanted.before,
            },
        )
        return [InvocationSummary(*r) for r in found]

    async def invocation_cutoff(self, keep: int) -> float | None:
        """When the `keep`-th newest invocation was accepted (None: fewer are stored)."""
        found = await self._query("invocation_cutoff", {"offset": keep - 1})
        return found[0][0] if found else None

    async def purge_invocations(self, before: float, limit: int) -> int:
        """Delete up to `limit` of the oldest invocations accepted before `before`, with
        their records; return how many went."""
        found = await self._query("oldest_invocations", {"before": before, "limit": limit})
        if not found:
            return 0
        ids = [{"request_id": row[0]} for row in found]
        await self._change(("delete_invocation_records", ids), ("delete_invocation", ids))
        return len(ids)

    # stacks (lamina deploy) ------------------------------------------------------------
    async def put_stack(self, stack: Stack, events: list[StackEvent] | None = None) -> None:
        """The stack as it is now, with the events that brought it there (one transaction)."""
        steps: list[Step] = [("put_stack", rows.stack_row(stack))]
        if events:
            steps.append(
                ("insert_stack_event", [rows.stack_event_row(stack.stack_id, e) for e in events])
            )
        await self._change(*steps)

    async def put_stack_owned(self, stack: Stack, events: list[StackEvent], engine: str) -> bool:
        """`put_stack` by the engine running the stack's operation: written (with its events)
        only while the stored stack is not in progress, or in progress under `engine`;
        whether it was (False: another engine took the operation over)."""
        row = rows.stack_row(stack)
        steps: list[Step] = [("put_stack_owned", {**row, "engine": engine})]
        if events:
            steps.append(
                (
                    "insert_stack_event_owned",
                    [
                        {
                            **rows.stack_event_row(stack.stack_id, e),
                            "name": stack.name,
                            "engine": engine,
                        }
                        for e in events
                    ],
                )
            )
        written, *_ = await self._change(*steps)
        return bool(written)

    async def claim_stack(self, stack: Stack, previous: str | None) -> bool:
        """Take over a stack in progress whose engine `previous` is dead: `stack` carries
        the new owner; written only if `previous` still had it."""
        row = rows.stack_row(stack)
        (claimed,) = await self._change(
            (
                "claim_stack",
                {
                    "name": stack.name,
                    "stack_id": stack.stack_id,
                    "stack": row["stack"],
                    "updated_at": row["updated_at"],
                    "previous": previous,
                },
            )
        )
        return bool(claimed)

    async def delete_stack(self, name: str, stack_id: str) -> None:
        await self._change(
            ("delete_stack", {"name": name}), ("delete_stack_events", {"stack_id": stack_id})
        )

    async def list_stacks(self) -> list[Stack]:
        return [Stack.from_dict(json.loads(r[0])) for r in await self._query("list_stacks")]

    async def list_stack_events(self, stack_id: str, after: int) -> list[StackEvent]:
        return [
            StackEvent(**json.loads(r[0]))
            for r in await self._query("list_stack_events", {"stack_id": stack_id, "after": after})
        ]

    # debug mode (lamina debug) --------------------------------------------------------
    async def put_debug_mode(self, settings: DebugSettings) -> None:
        await self._change(
            (
                "put_debug_mode",
                {
                    "function": settings.function,
                    "version": settings.version,
                    "settings": json.dumps(settings.to_dict(), separators=(",", ":")),
                },
            )
        )

    async def delete_debug_mode(self, function: str, version: str | None = None) -> None:
        """One version's debug mode off (None: every version of the function)."""
        await self._change(("delete_debug_mode", {"function": function, "version": version or ""}))

    async def list_debug_modes(self) -> list[DebugSettings]:
        return [
            DebugSettings.from_dict(json.loads(r[0])) for r in await self._query("list_debug_modes")
        ]
