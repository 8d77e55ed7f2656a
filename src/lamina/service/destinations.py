"""Destinations and dead-letter queues: what an invocation owes them, and their delivery
(spec §7.3).

Theory of operation
-------------------
* `owed` builds the deliveries an async event owes when it is finished: the on-success or
  on-failure destination's invocation record (`domain.destinations`), and on failure the
  function's dead-letter queue. The async dispatcher writes them in the same transaction
  that removes the event from the queue; an event source mapping's on-failure record comes
  through `owe`.
* One loop claims due deliveries from the store and sends them: a Lambda destination is a
  new async event (`accept`), the others go out through the `DestinationSender`
  (adapters.aws). A failed try is retried with the throttle back-off and recorded; after
  `DELIVERY_ATTEMPTS` tries it is given up, and the engine log says so: nothing is
  dropped silently.

All times are engine time (`service.clock`), so `--time-scale` compresses the back-off.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from lamina.domain import arns, destinations, errors, retry
from lamina.domain.model import LATEST, AsyncEvent, Delivery, InvocationOutcome
from lamina.service.catalog import FunctionCatalog
from lamina.service.event_configs import EventConfigService
from lamina.service.ports import Clock, DestinationSender, Store
from lamina.service.records import Recorder

log = logging.getLogger("lamina.async")

CLAIM_BATCH = 100
DELIVERY_ATTEMPTS = 12  # about 40 engine minutes of back-off before giving up

Accept = Callable[[str, str | None, bytes], Awaitable[str]]


async def store_trouble(who: str, exc: Exception, failures: int) -> None:
    """The store failed (disk full, PostgreSQL down): say so, back off, try again."""
    delay = min(0.1 * 2 ** (failures - 1), 5.0)
    if failures == 1 or failures % 20 == 0:
        log.warning(
            "%s cannot reach the store (%s: %s); retrying every %.1f s",
            who,
            type(exc).__name__,
            exc,
            delay,
        )
    await asyncio.sleep(delay)


class Destinations:
    """What invocations owe destinations and dead-letter queues, and the delivery loop."""

    def __init__(
        self,
        store: Store,
        functions: FunctionCatalog,
        configs: EventConfigService,
        recorder: Recorder,
        clock: Clock,
        sender: DestinationSender | None,
        owner: str,
    ) -> None:
        self.store = store
        self.functions = functions
        self.configs = configs
        self.recorder = recorder
        self.clock = clock
        self.sender = sender
        self.owner = owner
        self.accept: Accept | None = None  # a Lambda destination: queue a new async event
        # whether a function of an account may invoke a destination function (the app sets
        # it to service.permissions.PermissionService.may_invoke)
        self.may_invoke: Callable[[arns.FunctionRef, str], bool] = lambda target, account: True
        self._owed = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    # lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop().create_task(
            self._delivery_loop(), name="lamina-async-deliver"
        )

    async def close(self) -> None:
        """Stop delivering (a delivery being sent is cut short: its claim brings it back)."""
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)

    def wake(self) -> None:
        """Look for due deliveries now (another engine queued one, or claims came back)."""
        self._owed.set()

    # what is owed ----------------------------------------------------------------------
    async def owe(self, delivery: Delivery) -> None:
        """Queue a destination delivery for something other than an async event
        (an event source mapping's on-failure record); the delivery loop sends it."""
        await self.store.enqueue_delivery(delivery)
        self._owed.set()

    def queued(self, request_id: str, deliveries: list[Delivery]) -> None:
        """`deliveries` are in the store now (with the event's end): record them, send them."""
        if deliveries:
            self._owed.set()
        for delivery in deliveries:
            self.recorder.record(
                request_id, "destination_queued", {"kind": delivery.kind, "target": delivery.target}
            )

    def owed(
        self,
        event: AsyncEvent,
        condition: str,
        outcome: InvocationOutcome | None,
        version: str,
        success: bool,
    ) -> list[Delivery]:
        """The deliveries an async event owes as it ends with `condition`."""
        settings = self.configs.effective(event.function, event.qualifier)
        target = settings.on_success if success else settings.on_failure
        now = self.clock.now()
        owed: list[Delivery] = []
        if target:
            function_arn = self.functions.arn(event.function, event.qualifier or LATEST)
            record = destinations.async_record(
                condition=condition,
                request_id=event.request_id,
                function_arn=function_arn,
                invoke_count=event.invocations,
                request_payload=event.payload,
                timestamp=now,
                executed_version=version if outcome else None,
                function_error=bool(outcome and outcome.function_error),
                response_payload=outcome.payload if outcome else None,
            )
            owed.append(
                Delivery(
                    str(uuid.uuid4()),
                    event.request_id,
                    "on_success" if success else "on_failure",
                    target,
                    record,
                    {"success": success, "function_arn": function_arn, "trace_id": event.trace_id},
                    0,
                    now,
                )
            )
        dlq = None if success else self._dead_letter_target(event)
        if dlq:
            message = destinations.error_message_of(outcome.payload if outcome else None)
            owed.append(
                Delivery(
                    str(uuid.uuid4()),
                    event.request_id,
                    "dlq",
                    dlq,
                    event.payload,
                    destinations.dlq_attributes(
                        event.request_id, 200 if outcome else 429, message or condition
                    ),
                    0,
                    now,
                )
            )
        return owed

    def _dead_letter_target(self, event: AsyncEvent) -> str | None:
        try:
            return self.functions.resolve(event.function, event.qualifier).dead_letter_target
        except errors.LaminaError:
            return None

    # delivering ------------------------------------------------------------------------
    async def _delivery_loop(self) -> None:
        failures = 0
        while True:
            try:
                now = self.clock.now()
                due = await self.store.claim_deliveries(
                    now, CLAIM_BATCH, self.owner, now + 300 * max(self.clock.scale, 1.0)
                )
                failures = 0
            except Exception as exc:
                failures += 1
                await store_trouble("destination delivery", exc, failures)
                continue
            if due:
                await asyncio.gather(*(self._deliver(d) for d in due))
                continue
            self._owed.clear()
            await self.clock.wait(self._owed, await self._next_delivery_or_none())

    async def _next_delivery_or_none(self) -> float | None:
        try:
            return await self.store.next_delivery_due()
        except Exception:
            return self.clock.now() + 1

    async def _deliver(self, delivery: Delivery) -> None:
        delivery.attempts += 1
        try:
            await self._send(delivery)
        except Exception as exc:  # unreachable, refused, malformed: retry, record each try
            failed = delivery.attempts >= DELIVERY_ATTEMPTS
            self.recorder.record(
                delivery.request_id,
                "destination_failed" if failed else "destination_retry",
                {
                    "kind": delivery.kind,
                    "target": delivery.target,
                    "attempt": delivery.attempts,
                    "error": str(exc)[:500],
                },
            )
            if failed:
                log.error("giving up delivering %s to %s: %s", delivery.kind, delivery.target, exc)
                await self.store.finish_delivery(delivery.id)
            else:
                delivery.due_at = self.clock.now() + retry.throttle_delay(delivery.attempts)
                await self.store.reschedule_delivery(delivery)
            return
        self.recorder.record(
            delivery.request_id,
            "destination_delivered",
            {"kind": delivery.kind, "target": delivery.target, "attempt": delivery.attempts},
        )
        await self.store.finish_delivery(delivery.id)

    async def _send(self, delivery: Delivery) -> None:
        if destinations.kind_of(delivery.target) == "lambda":
            if self.accept is None:
                raise RuntimeError("no async invocation service takes Lambda destinations")
            target = arns.parse_function_name(delivery.target, self.functions.region, None)
            account = destinations.source_account(delivery.body) or self.functions.account
            if not self.may_invoke(target, account):
                raise errors.AccessDenied(f"{account} may not invoke {delivery.target}")
            key = self.functions.key(target.account or account, target.name)
            await self.accept(key, target.qualifier, delivery.body)
            return
        if self.sender is None:
            raise RuntimeError("no AWS client is configured for destinations")
        await self.sender.send(delivery)
