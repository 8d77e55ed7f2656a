"""What a poller needs from the engine: run a batch, record it, checkpoint, owe a failure
(spec §12–§16). The mappings' control plane is `service.mappings`.

A batch is one invocation with its own request id and timeline: the records it carries,
each attempt, retries, bisect splits, checkpoint moves and discards. Invoking a batch takes
the one attempt path (`service.attempt`: concurrency slot, environment, timeout); a throttle
comes back as None so the poller can back off without counting a retry. The poller applies
its source's failure rules (`domain.batching`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from lamina.domain.model import (
    Delivery,
    EventSourceMapping,
    Invocation,
    InvocationOutcome,
    InvocationSummary,
)
from lamina.service.attempt import Attempts, Throttled
from lamina.service.catalog import FunctionCatalog
from lamina.service.invoke import new_trace_id
from lamina.service.ports import Clock, Store
from lamina.service.records import Recorder


class MappingState(Protocol):
    """The mappings as the control plane holds them (service.mappings.MappingService)."""

    def current(self, mapping_id: str) -> EventSourceMapping | None: ...
    def processed(self, mapping_id: str, result: str) -> None: ...
    def observe(self, mapping_id: str, **seen: Any) -> None: ...


Owe = Callable[[Delivery], Awaitable[None]]


class BatchRunner:
    """Runs and records the batches of every poller (the pollers' one door to the engine)."""

    def __init__(
        self,
        attempts: Attempts,
        functions: FunctionCatalog,
        store: Store,
        recorder: Recorder,
        clock: Clock,
        state: MappingState,
        owe: Owe,
    ) -> None:
        self.attempts = attempts
        self.functions = functions
        self.store = store
        self.recorder = recorder
        self.clock = clock
        self.state = state
        self.owe = owe  # queues a Delivery for an on-failure destination

    # the mapping -----------------------------------------------------------------------
    def current(self, mapping_id: str) -> EventSourceMapping | None:
        """The mapping as it is now (a poller checks it has not been changed or deleted)."""
        return self.state.current(mapping_id)

    def processed(self, mapping_id: str, result: str) -> None:
        """LastProcessingResult: "OK" or "PROBLEM: …"."""
        self.state.processed(mapping_id, result)

    def observe(self, mapping_id: str, **seen: Any) -> None:
        """What a poller saw of its source (lag_s, backlog, checkpoint, last_batch_size)."""
        self.state.observe(mapping_id, **seen)

    def function_arn(self, mapping: EventSourceMapping) -> str:
        return self.functions.arn(mapping.function, mapping.qualifier)

    def function_timeout(self, mapping: EventSourceMapping) -> int:
        return self.functions.resolve(mapping.function, mapping.qualifier).timeout

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of engine time (`--time-scale` compresses retry back-off)."""
        await self.clock.sleep(seconds)

    # checkpoints -----------------------------------------------------------------------
    async def checkpoints(self, mapping_id: str) -> dict[str, str]:
        return await self.store.get_checkpoints(mapping_id)

    async def checkpoint(self, mapping_id: str, shard: str, position: str) -> None:
        await self.store.put_checkpoint(mapping_id, shard, position)
        self.observe(mapping_id, checkpoint=f"{shard}:{position}")

    # batches ---------------------------------------------------------------------------
    def begin_batch(self, mapping: EventSourceMapping, detail: dict[str, Any]) -> str:
        request_id = str(uuid.uuid4())
        now = self.clock.now()
        self.recorder.summary(
            InvocationSummary(
                request_id, mapping.function, mapping.qualifier, "EventSourceMapping", now
            )
        )
        self.recorder.record(
            request_id,
            "accepted",
            {
                "type": "EventSourceMapping",
                "mapping": mapping.uuid,
                "source": mapping.source,
                **detail,
            },
            now,
        )
        self.observe(mapping.uuid, last_batch_size=detail.get("records"))
        return request_id

    def note(self, request_id: str, kind: str, detail: dict[str, Any]) -> None:
        self.recorder.record(request_id, kind, detail)

    def end_batch(
        self,
        mapping: EventSourceMapping,
        request_id: str,
        status: str,
        attempts: int,
        error_type: str | None = None,
    ) -> None:
        self.recorder.summary(
            InvocationSummary(
                request_id,
                mapping.function,
                mapping.qualifier,
                "EventSourceMapping",
                self.clock.now(),
                status=status,
                finished_at=self.clock.now(),
                attempts=attempts,
                error_type=error_type,
            )
        )

    async def invoke_batch(
        self, mapping: EventSourceMapping, request_id: str, payload: bytes, attempt: int
    ) -> InvocationOutcome | None:
        """Run a batch once; None when it was throttled (the function did not run)."""
        config = self.functions.route(mapping.function, mapping.qualifier)
        invocation = Invocation(
            request_id,
            config,
            self.functions.arn(mapping.function, mapping.qualifier),
            payload,
            "RequestResponse",
            trace_id=new_trace_id(),
        )
        outcome = await self.attempts.run(invocation, attempt=attempt)
        if isinstance(outcome, Throttled):  # no slot, or no environment could start
            self.note(request_id, "throttled", {"reason": outcome.reason, "attempt": attempt})
            return None
        return outcome

    async def send_on_failure(
        self, mapping: EventSourceMapping, request_id: str, record: bytes
    ) -> None:
        if mapping.on_failure:
            await self.owe(
                Delivery(
                    str(uuid.uuid4()),
                    request_id,
                    "on_failure",
                    mapping.on_failure,
                    record,
                    {},
                    0,
                    self.clock.now(),
                )
            )
