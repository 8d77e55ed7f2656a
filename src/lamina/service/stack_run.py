"""Running a stack operation as CloudFormation does: create and update in dependency order
(resources free at the same time in parallel), then clean up what the new template dropped
or replaced; on any failure, roll back what this operation did, newest first. Delete goes in
reverse dependency order.

Every step is written to the store before it is taken (the stack's `journal`), so an engine
that dies midway finds the stack in progress when it starts again and rolls it back
(`recover`). Events go to the store with the stack, one transaction per step.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from lamina.domain import errors
from lamina.domain.cfn import intrinsics
from lamina.domain.cfn.intrinsics import Scope
from lamina.domain.stacks import Stack, StackEvent, StackResource
from lamina.service import stack_plan
from lamina.service.providers import REGISTRY
from lamina.service.providers.base import DeployContext, Provider, ProviderError

log = logging.getLogger("lamina.stacks")
STACK_TYPE = "AWS::CloudFormation::Stack"
PARALLEL = 32  # resources made at once (their store writes share commits)


class Failed(Exception):
    """A resource could not be made: the operation rolls back."""


class Fenced(Exception):
    """The stack's operation is no longer this engine's (engines sharing a store: another
    took it over when this one's lease ran out): it stops here, writing nothing more."""


class Run:
    """One operation on one stack (create, update, delete, or a recovery of either)."""

    def __init__(
        self,
        stack: Stack,
        ctx: DeployContext,
        save: Callable[[Stack, list[StackEvent]], Awaitable[None]],
    ) -> None:
        self.stack = stack
        self.ctx = ctx
        self._save = save
        self._writing = asyncio.Lock()
        self._pending: list[StackEvent] = []
        self._limit = asyncio.Semaphore(PARALLEL)
        ctx.notice = self._notice
        ctx.resources = lambda: self.stack.resources

    def _notice(self, text: str) -> None:
        if text not in self.stack.notices:
            self.stack.notices.append(text)

    async def event(
        self,
        logical_id: str,
        kind: str,
        status: str,
        physical_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Record a step: the stack as it is now, and its event, in one write. Steps of
        resources made at the same time share writes: whoever writes next takes every event
        waiting (a group commit), and the others find theirs written."""
        self.stack.event_seq += 1
        self.stack.updated_at = time.time()
        found = StackEvent(
            self.stack.name,
            self.stack.event_seq,
            self.stack.updated_at,
            logical_id,
            kind,
            status,
            physical_id,
            reason,
        )
        self._pending.append(found)
        async with self._writing:
            if not self._pending or found.seq < self._pending[0].seq:
                return  # a write that began after it was queued took it
            batch, self._pending = self._pending, []
            await self._save(self.stack, batch)

    async def status(self, status: str, reason: str | None = None) -> None:
        self.stack.status = status
        self.stack.reason = reason
        await self.event(self.ctx.stack, STACK_TYPE, status, self.stack.stack_id, reason)

    def provider(self, kind: str) -> Provider:
        return REGISTRY[kind](self.ctx)

    # deploy ----------------------------------------------------------------------------
    async def deploy(self, plan: stack_plan.Plan) -> None:
        creating = self.stack.status == "CREATE_IN_PROGRESS"
        await self._warm(plan)
        try:
            await self._waves(plan)
            self.stack.outputs = stack_plan.outputs(plan, self.live_scope(plan))
        except Failed as exc:
            await self.rollback(str(exc), creating)
            return
        except errors.LaminaError as exc:
            await self.rollback(exc.message, creating)
            return
        await self.cleanup(plan, "CREATE_COMPLETE" if creating else "UPDATE_COMPLETE")

    async def _waves(self, plan: stack_plan.Plan) -> None:
        """Create or update every resource, each as soon as the resources it depends on are
        done (not wave by wave: a function waits for its own role, not for every role). On a
        failure nothing more is started; what is running finishes, then the operation fails
        naming every resource that failed."""
        done: set[str] = set()
        waiting = list(plan.resources)
        running: dict[asyncio.Task[None], str] = {}
        failures: list[tuple[str, BaseException]] = []
        while waiting or running:
            if not failures:
                ready = [n for n in waiting if plan.graph[n] <= done]
                waiting = [n for n in waiting if n not in ready]
                for name in ready:
                    running[asyncio.ensure_future(self._one(plan, name))] = name
            if not running:
                break
            finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                name = running.pop(task)
                error = task.exception()
                if error is None:
                    done.add(name)
                elif isinstance(error, (Failed, errors.LaminaError)):
                    failures.append((name, error))
                else:
                    for other in running:
                        other.cancel()
                    await asyncio.gather(*running, return_exceptions=True)
                    raise error
        if failures:
            names = ", ".join(name for name, _ in failures)
            raise Failed(
                f"The following resource(s) failed to create or update: "
                f"[{names}]. {_reason(failures[0][1])}"
            )

    async def _warm(self, plan: stack_plan.Plan) -> None:
        """Make the AWS clients the plan needs, all at once (each costs tens of ms)."""
        services = {
            r["Type"].split("::")[1].lower()
            for r in plan.resources.values()
            if r["Type"].split("::")[1]
            in ("SQS", "SNS", "DynamoDB", "Kinesis", "S3", "Logs", "SSM")
        }
        if self.ctx.iam_endpoint and any(
            r["Type"].startswith("AWS::IAM::") for r in plan.resources.values()
        ):
            services.add("iam")
        await asyncio.gather(*(self.ctx.aws.client(s) for s in services), return_exceptions=True)

    def live_scope(self, plan: stack_plan.Plan) -> Scope:
        resources = self.stack.resources

        def ref(logical_id: str) -> Any:
            return resources[logical_id].physical_id

        def getatt(logical_id: str, attribute: str) -> Any:
            found = resources[logical_id].attributes.get(attribute)
            if found is None:
                raise errors.TemplateError(
                    f"Template error: {logical_id}.{attribute} has no "
                    "value (the resource does not give it here)"
                )
            return found

        return Scope(
            {**plan.values, **stack_plan.pseudo_parameters(self.ctx)},
            ref,
            getatt,
            plan.conditions,
            plan.processed.get("Mappings") or {},
            plan.exports,
            self.ctx.region,
            frozenset(plan.resources),
        )

    async def _one(self, plan: stack_plan.Plan, logical_id: str) -> None:
        definition = plan.resources[logical_id]
        kind = definition["Type"]
        depends = sorted(plan.graph[logical_id])
        retain = definition.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate")
        if logical_id in plan.skipped:
            self.stack.resources[logical_id] = StackResource(
                logical_id,
                kind,
                None,
                status="CREATE_SKIPPED",
                skipped=True,
                depends=depends,
                reason=f"Lamina cannot create {kind}: skipped (--skip-unsupported)",
            )
            await self.event(
                logical_id, kind, "CREATE_SKIPPED", None, self.stack.resources[logical_id].reason
            )
            return
        properties = REGISTRY[kind].coerce(
            intrinsics.resolve(
                definition.get("Properties") or {},
                self.live_scope(plan),
                f"Resources.{logical_id}.Properties",
            )
        )
        old = self.stack.resources.get(logical_id)
        async with self._limit:
            if old is None or old.skipped:
                await self._create(logical_id, kind, properties, "create", None)
            elif old.type != kind or self.provider(kind).replaces(old.properties, properties):
                await self._create(logical_id, kind, properties, "replace", old)
            elif old.properties != properties:
                await self._update(old, properties)
        self.stack.resources[logical_id].depends = depends
        self.stack.resources[logical_id].retain = retain

    async def _create(
        self,
        logical_id: str,
        kind: str,
        properties: dict[str, Any],
        action: str,
        old: StackResource | None,
    ) -> None:
        provider = self.provider(kind)
        name = provider.name(logical_id, properties)
        record = StackResource(logical_id, kind, name, properties)
        entry = {
            "action": action,
            "logical_id": logical_id,
            "new": record.to_dict(),
            "old": old.to_dict() if old is not None else None,
        }
        self.stack.journal.append(entry)
        self.stack.resources[logical_id] = record
        before = "UPDATE_IN_PROGRESS" if action == "replace" else "CREATE_IN_PROGRESS"
        why = (
            "Requested update requires the creation of a new physical resource; hence creating one."
            if action == "replace"
            else None
        )
        await self.event(logical_id, kind, before, None, why)
        try:
            made = await provider.create(logical_id, properties, name)
        except (ProviderError, errors.LaminaError) as exc:
            record.status, record.reason = "CREATE_FAILED", _reason(exc)
            entry["new"] = record.to_dict()
            await self.event(logical_id, kind, "CREATE_FAILED", name, record.reason)
            raise Failed(record.reason) from None
        record.physical_id, record.attributes = made.physical_id, made.attributes
        record.status = "UPDATE_COMPLETE" if action == "replace" else "CREATE_COMPLETE"
        entry["new"] = record.to_dict()
        await self.event(logical_id, kind, record.status, record.physical_id)

    async def _update(self, old: StackResource, properties: dict[str, Any]) -> None:
        entry = {
            "action": "update",
            "logical_id": old.logical_id,
            "old": old.to_dict(),
            "new": None,
        }
        self.stack.journal.append(entry)
        await self.event(old.logical_id, old.type, "UPDATE_IN_PROGRESS", old.physical_id)
        try:
            made = await self.provider(old.type).update(old, properties)
        except (ProviderError, errors.LaminaError) as exc:
            # what it may have become: a rollback puts the old properties back over these
            entry["new"] = StackResource(
                old.logical_id,
                old.type,
                old.physical_id,
                properties,
                old.attributes,
                "UPDATE_FAILED",
            ).to_dict()
            await self.event(
                old.logical_id, old.type, "UPDATE_FAILED", old.physical_id, _reason(exc)
            )
            raise Failed(_reason(exc)) from None
        record = StackResource(
            old.logical_id,
            old.type,
            made.physical_id,
            properties,
            made.attributes,
            "UPDATE_COMPLETE",
            depends=old.depends,
        )
        entry["new"] = record.to_dict()
        self.stack.resources[old.logical_id] = record
        await self.event(old.logical_id, old.type, "UPDATE_COMPLETE", record.physical_id)

    # after success: clean up ----------------------------------------------------------
    async def cleanup(self, plan: stack_plan.Plan | None, final: str) -> None:
        """Delete what the new template dropped, and the old resources of replacements."""
        if plan is not None:
            gone = [r for lid, r in self.stack.resources.items() if lid not in plan.resources]
            replaced = [
                StackResource.from_dict(e["old"])
                for e in self.stack.journal
                if e["action"] == "replace" and e["old"] is not None
            ]
            self.stack.options["cleanup"] = [r.to_dict() for r in (*gone, *replaced)]
            for record in gone:
                del self.stack.resources[record.logical_id]
            self.stack.journal = []
            self.stack.previous = None
            if self.stack.options["cleanup"] and final == "UPDATE_COMPLETE":
                await self.status("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
        doomed = [StackResource.from_dict(r) for r in self.stack.options.get("cleanup", [])]
        await self._delete_all(doomed, cleanup=True)
        self.stack.options.pop("cleanup", None)
        await self.status(final)

    async def _delete_all(self, records: list[StackResource], cleanup: bool = False) -> bool:
        """Delete `records` in reverse dependency order; whether all went."""
        ok = True
        names = {r.logical_id for r in records}
        remaining = list(records)
        while remaining:
            blocking = {d for r in remaining for d in r.depends if d in names}
            ready = [r for r in remaining if r.logical_id not in blocking] or remaining
            results = await asyncio.gather(*(self._delete_one(r, cleanup) for r in ready))
            ok = ok and all(results)
            names -= {r.logical_id for r in ready}
            remaining = [r for r in remaining if r.logical_id in names]
        return ok

    async def _delete_one(self, record: StackResource, cleanup: bool) -> bool:
        if cleanup and record.physical_id is None:
            return True
        if record.retain or record.skipped:
            await self.event(record.logical_id, record.type, "DELETE_SKIPPED", record.physical_id)
            return True
        await self.event(record.logical_id, record.type, "DELETE_IN_PROGRESS", record.physical_id)
        try:
            async with self._limit:
                await self.provider(record.type).delete(record)
        except (ProviderError, errors.LaminaError) as exc:
            await self.event(
                record.logical_id, record.type, "DELETE_FAILED", record.physical_id, _reason(exc)
            )
            return False
        if not cleanup:
            self.stack.resources.pop(record.logical_id, None)
        await self.event(record.logical_id, record.type, "DELETE_COMPLETE", record.physical_id)
        return True

    # after failure: roll back ----------------------------------------------------------
    async def rollback(self, reason: str, creating: bool) -> None:
        await self.status(
            "ROLLBACK_IN_PROGRESS" if creating else "UPDATE_ROLLBACK_IN_PROGRESS", reason
        )
        ok = True
        for entry in reversed(self.stack.journal):
            ok = await self._undo(entry) and ok
        self.stack.journal = []
        self.stack.options.pop("cleanup", None)
        previous = self.stack.previous
        if previous is not None:
            self.stack.template = previous["template"]
            self.stack.parameters = previous["parameters"]
            self.stack.outputs = previous["outputs"]
            self.stack.options["original"] = previous.get("original")
        self.stack.previous = None
        if creating:
            self.stack.resources = {k: r for k, r in self.stack.resources.items() if r.skipped}
        failed = "ROLLBACK_FAILED" if creating else "UPDATE_ROLLBACK_FAILED"
        done = "ROLLBACK_COMPLETE" if creating else "UPDATE_ROLLBACK_COMPLETE"
        await self.status(done if ok else failed, reason)

    async def _undo(self, entry: dict[str, Any]) -> bool:
        logical_id = entry["logical_id"]
        new = StackResource.from_dict(entry["new"]) if entry.get("new") else None
        old = StackResource.from_dict(entry["old"]) if entry.get("old") else None
        try:
            if entry["action"] in ("create", "replace") and new is not None:
                await self._undo_create(new)
            if entry["action"] in ("update", "replace") and old is not None:
                if entry["action"] == "update":
                    await self.event(logical_id, old.type, "UPDATE_IN_PROGRESS", old.physical_id)
                    current = new or self.stack.resources.get(logical_id) or old
                    await self.provider(old.type).update(current, old.properties)
                    await self.event(logical_id, old.type, "UPDATE_COMPLETE", old.physical_id)
                self.stack.resources[logical_id] = old
        except (ProviderError, errors.LaminaError) as exc:
            either = new or old
            kind = either.type if either else ""
            await self.event(logical_id, kind, "ROLLBACK_FAILED", None, _reason(exc))
            return False
        return True

    async def _undo_create(self, new: StackResource) -> None:
        """Delete what this operation created. One whose create failed may not exist: a
        failure to delete it is noted, not a failed rollback."""
        await self.event(new.logical_id, new.type, "DELETE_IN_PROGRESS", new.physical_id)
        reason = None
        try:
            await self.provider(new.type).delete(new)
        except (ProviderError, errors.LaminaError) as exc:
            if new.status != "CREATE_FAILED":
                raise
            reason = f"Nothing to delete: the create had failed ({_reason(exc)})"
        await self.event(new.logical_id, new.type, "DELETE_COMPLETE", new.physical_id, reason)
        self.stack.resources.pop(new.logical_id, None)

    # delete ----------------------------------------------------------------------------
    async def delete(self) -> None:
        await self.status("DELETE_IN_PROGRESS")
        records = list(self.stack.resources.values())
        ok = await self._delete_all(records)
        if not ok:
            await self.status("DELETE_FAILED", "The following resource(s) failed to delete.")
            return
        self.stack.resources = {}
        self.stack.outputs = []
        await self.status("DELETE_COMPLETE")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, errors.LaminaError):
        return exc.message
    return str(exc) or type(exc).__name__
