"""Event source mappings: their control plane and lifecycle (spec §12).

Create / Update / Delete answer at once with the transitional state (`Creating`,
`Updating`, `Enabling`, `Disabling`, `Deleting`) and complete just after, as on AWS: the
mapping becomes `Enabled` (its poller starts) or `Disabled` (its poller stops; a running
batch completes first), or goes away. `Enabled=false` really
stops polling; a stream mapping resumes from its checkpoint when enabled again.

The batches the pollers run go through `service.batches.BatchRunner`; this service keeps
what the API and the console see of each mapping (its state, LastProcessingResult, what its
poller last saw).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from collections.abc import Coroutine
from typing import Any, Protocol

from lamina.domain import arns, errors
from lamina.domain.mappings import MappingSettings, new_mapping, updated_mapping, user_action
from lamina.domain.model import EventSourceMapping
from lamina.domain.observed import MappingStatus
from lamina.domain.settings import check_tags
from lamina.service.functions import FunctionService
from lamina.service.ports import Store

log = logging.getLogger("lamina.mappings")


class PollerRunner(Protocol):
    """Starts and stops the poller of a mapping (pollers.supervisor)."""

    def start(self, mapping: EventSourceMapping) -> None: ...
    async def check(self, mapping: EventSourceMapping, function_timeout: int) -> None: ...
    async def stop(self, mapping_id: str) -> None: ...


class MappingService:
    """The `*EventSourceMapping` operations and the mappings' state."""

    def __init__(self, store: Store, functions: FunctionService) -> None:
        self.store = store
        self.functions = functions
        self.runner: PollerRunner | None = None  # runs the pollers (not with --no-pollers)
        self.sources: PollerRunner | None = None  # checks a new mapping against its source
        self._mappings: dict[str, EventSourceMapping] = {}
        self._seen: dict[str, dict[str, Any]] = {}  # what pollers last saw, per mapping
        self._completing: set[asyncio.Task[None]] = set()  # updates, deletes finishing

    # lifecycle -------------------------------------------------------------------------
    async def load(self) -> None:
        for mapping in await self.store.list_mappings():
            if mapping.state == "Deleting":
                await self.store.delete_mapping(mapping.uuid)
                continue
            settled = mapping.replace(state="Enabled" if mapping.enabled else "Disabled")
            self._mappings[mapping.uuid] = settled
            if settled.enabled and self.runner is not None:
                self.runner.start(settled)

    async def lead(self, runner: PollerRunner) -> None:
        """This engine runs the pollers now (it holds the role among engines)."""
        self.runner = runner
        await self.reload()
        for mapping in self._mappings.values():
            if mapping.enabled and mapping.state != "Deleting":
                runner.start(mapping)

    async def unlead(self) -> None:
        """Another engine runs the pollers now: stop ours (running batches complete)."""
        runner, self.runner = self.runner, None
        if runner is not None:
            await asyncio.gather(*(runner.stop(m) for m in list(self._mappings)))

    async def reload(self) -> None:
        """Take in what another engine sharing the store changed: new, changed (a newer
        LastModified) and deleted mappings; their pollers restart, start or stop here."""
        stored = {m.uuid: m for m in await self.store.list_mappings()}
        for mapping_id in [k for k in self._mappings if k not in stored]:
            if self.runner is not None:
                self._complete(self.runner.stop(mapping_id))
            self._forget(mapping_id)
        for mapping_id, mapping in stored.items():
            current = self._mappings.get(mapping_id)
            if current is not None and mapping.last_modified <= current.last_modified:
                if self.runner is None:  # the leader's last results, for this engine's API
                    current = current.replace(last_processing_result=mapping.last_processing_result)
                self._mappings[mapping_id] = current.replace(tags=mapping.tags)
                continue
            if mapping.state == "Deleting":
                self._mappings[mapping_id] = mapping
                if self.runner is not None:
                    self._complete(self.runner.stop(mapping_id))
                continue
            self._mappings[mapping_id] = mapping.replace(
                state="Enabled" if mapping.enabled else "Disabled"
            )
            if self.runner is not None:
                self._complete(self._restart(mapping_id))

    def arn(self, mapping_id: str) -> str:
        """The mapping's ARN, in the account of its function."""
        mapping = self._mappings.get(mapping_id)
        owner = "" if mapping is None else arns.key_owner(mapping.function)
        account = owner or self.functions.account
        return f"arn:aws:lambda:{self.functions.region}:{account}:event-source-mapping:{mapping_id}"

    def get(self, mapping_id: str) -> EventSourceMapping:
        mapping = self._mappings.get(mapping_id)
        if mapping is None:
            raise errors.ResourceNotFound("The resource you requested does not exist.")
        return mapping

    def list(self, event_source_arn: str | None, function: str | None) -> list[EventSourceMapping]:
        """The mappings of a source ARN and of a function (its key), when given."""
        wanted = function or None
        return [
            m
            for m in sorted(self._mappings.values(), key=lambda m: m.last_modified)
            if (event_source_arn is None or m.event_source_arn == event_source_arn)
            and (wanted is None or m.function == wanted)
        ]

    async def create(
        self,
        ref: arns.FunctionRef,
        event_source_arn: str | None,
        settings: MappingSettings,
        tags: dict[str, str] | None = None,
    ) -> EventSourceMapping:
        """A new mapping to function `ref` (named by its key: domain.arns)."""
        mapping = new_mapping(
            ref.name, ref.qualifier, event_source_arn, settings, time.time()
        ).replace(tags=dict(tags or {}))
        check_tags(mapping.tags, len(mapping.tags))
        try:  # AWS checks the settings first, and words a missing function its own way
            config = self.functions.resolve(ref.name, ref.qualifier)
        except errors.ResourceNotFound:
            raise errors.InvalidParameterValue("Function does not exist") from None
        self._refuse_duplicate(mapping)
        if self.sources is not None:
            await self.sources.check(mapping, config.timeout)
        await self.store.put_mapping(mapping)
        self._mappings[mapping.uuid] = mapping
        asyncio.get_running_loop().call_soon(self._settle, mapping.uuid)
        return mapping

    async def update(
        self, mapping_id: str, settings: MappingSettings, function: arns.FunctionRef | None
    ) -> EventSourceMapping:
        mapping = self.get(mapping_id)
        name = qualifier = None
        if function is not None:
            ref = function
            self.functions.resolve(ref.name, ref.qualifier)
            name, qualifier = ref.name, ref.qualifier
        changed = updated_mapping(mapping, settings, name, qualifier, time.time())
        await self.store.put_mapping(changed)
        self._mappings[mapping_id] = changed
        self._complete(self._restart(mapping_id))
        return changed

    async def _restart(self, mapping_id: str) -> None:
        """Stop the poller (a running batch completes first), then settle the mapping."""
        if self.runner is not None:
            await self.runner.stop(mapping_id)
        self._settle(mapping_id)

    async def delete(self, mapping_id: str) -> EventSourceMapping:
        mapping = self.get(mapping_id)
        if mapping.state not in ("Enabled", "Disabled"):
            raise errors.ResourceInUse(
                f"Cannot delete the event source mapping because it is in use. {mapping.state}"
            )
        deleting = mapping.replace(state="Deleting", state_reason=user_action(mapping.source))
        self._mappings[mapping_id] = deleting
        await self.store.put_mapping(deleting)
        # A restart meanwhile finishes the deletion (load).
        self._complete(self._finish_delete(mapping_id))
        return deleting

    def _complete(self, work: Coroutine[Any, Any, None]) -> None:
        """Finish an update or delete after answering: the poller lets a running batch
        complete (up to the function's timeout) before it stops."""
        task = asyncio.get_running_loop().create_task(work)
        self._completing.add(task)
        task.add_done_callback(self._completing.discard)

    async def _finish_delete(self, mapping_id: str) -> None:
        if self.runner is not None:
            await self.runner.stop(mapping_id)
        try:
            await self.store.delete_mapping(mapping_id)
        except Exception as exc:  # noqa: BLE001 - the store is closing: load() finishes it
            log.warning("could not delete event source mapping %s yet: %s", mapping_id, exc)
        self._forget(mapping_id)

    def _forget(self, mapping_id: str) -> None:
        self._mappings.pop(mapping_id, None)
        self._seen.pop(mapping_id, None)

    def _refuse_duplicate(self, mapping: EventSourceMapping) -> None:
        for other in self._mappings.values():
            if (
                other.event_source_arn == mapping.event_source_arn
                and other.function == mapping.function
                and other.source != "kafka"
            ):
                if mapping.source == "sqs":
                    raise errors.ResourceConflict(
                        f'An event source mapping with SQS arn (" {mapping.event_source_arn} ") '
                        f'and function (" {mapping.function} ") already exists. Please update '
                        f"or delete the existing mapping with UUID {other.uuid}"
                    )
                raise errors.ResourceConflict(
                    f'The event source arn (" {mapping.event_source_arn} ") and function '
                    f'(" {mapping.function} ") provided mapping already exists. Please update '
                    f"or delete the existing mapping with UUID {other.uuid}"
                )

    def _settle(self, mapping_id: str) -> None:
        mapping = self._mappings.get(mapping_id)
        if mapping is None or mapping.state == "Deleting":
            return
        settled = mapping.replace(state="Enabled" if mapping.enabled else "Disabled")
        self._mappings[mapping_id] = settled
        self._complete(self._store_quietly(settled))
        if settled.enabled and self.runner is not None:
            self.runner.start(settled)

    async def set_tags(self, mapping_id: str, tags: dict[str, str]) -> None:
        """TagResource / UntagResource on a mapping: its tags, not a change of its settings
        (LastModified stays; other engines see the tags on their next reload)."""
        changed = self.get(mapping_id).replace(tags=tags)
        await self.store.settle_mapping(changed)
        self._mappings[mapping_id] = self.get(mapping_id).replace(tags=tags)

    def current(self, mapping_id: str) -> EventSourceMapping | None:
        """The mapping as it is now (a poller checks it has not been changed or deleted)."""
        return self._mappings.get(mapping_id)

    def processed(self, mapping_id: str, result: str) -> None:
        """LastProcessingResult: "OK" or "PROBLEM: …" (stored when it changes, so every
        engine sharing the store answers it)."""
        mapping = self._mappings.get(mapping_id)
        if mapping is not None and mapping.last_processing_result != result:
            changed = mapping.replace(last_processing_result=result)
            self._mappings[mapping_id] = changed
            self._complete(self._store_quietly(changed))

    async def _store_quietly(self, mapping: EventSourceMapping) -> None:
        """Store a mapping's state or last result, unless a user changed or deleted it since
        (on this engine or another): the store keeps the newer change."""
        try:
            await self.store.settle_mapping(mapping)
        except Exception as exc:  # noqa: BLE001 - kept in memory; stored with the next change
            log.warning("could not store mapping %s: %s", mapping.uuid, exc)

    def observe(self, mapping_id: str, **seen: Any) -> None:
        """What a poller saw of its source (lag_s, backlog, checkpoint, last_batch_size)."""
        self._seen.setdefault(mapping_id, {}).update(seen)

    async def mapping_status(self) -> builtins.list[MappingStatus]:
        return [
            MappingStatus(
                m.uuid,
                m.function,
                m.event_source_arn,
                m.state,
                m.state_reason,
                m.batch_size,
                m.last_processing_result,
                m.last_modified,
                **self._seen.get(m.uuid, {}),
            )
            for m in self.list(None, None)
        ]
