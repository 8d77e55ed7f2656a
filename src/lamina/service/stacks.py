"""Stacks (`lamina deploy`), kept by the engine: deploy a template, destroy a stack, list
them, read their events. A deploy is checked whole before anything is made
(`stack_plan.prepare`), stored as in progress before it is acknowledged, and then run by the
engine itself (`stack_run.Run`), so a client that goes away changes nothing: the deploy
completes or rolls back. A stack found in progress at start (the engine died) is rolled back.

Engines sharing a PostgreSQL store: an operation is leased to the engine that runs it (the
stack records its `engine`; each write is taken only while the stored stack is not in
progress or is this engine's). A stack in progress under another live engine is left to it;
one whose engine is dead (its cluster lease ran out) is taken over by one live engine (an
atomic claim) and rolled back or finished, at start or as soon as the death is seen. An
engine whose operation was taken over stops it at its next write (`Fenced`).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import re
import time
import uuid
from collections.abc import Awaitable
from typing import Any

from lamina.domain import arns, errors
from lamina.domain.cfn import parameters
from lamina.domain.stacks import Stack, StackEvent, stack_account, stack_arn
from lamina.service import stack_plan
from lamina.service.providers.aws import call
from lamina.service.providers.base import DeployContext, LambdaApi, ProviderError
from lamina.service.stack_run import Fenced, Run

log = logging.getLogger("lamina.stacks")
NAME_RE = re.compile(r"[a-zA-Z][-a-zA-Z0-9]{0,127}")
GONE = ("DELETE_COMPLETE",)
REPLACEABLE = ("ROLLBACK_COMPLETE", "DELETE_COMPLETE")


class StackService:
    """See the module docstring."""

    def __init__(
        self,
        store: Any,
        functions: Any,
        aws: Any,
        region: str,
        account: str,
        iam_endpoint: bool,
        services: dict[str, Any] | None = None,
        cluster: Any = None,
    ) -> None:
        self.store = store
        self.functions = functions
        self.aws = aws
        self.region = region
        self.account = account
        self.iam_endpoint = iam_endpoint
        self.services = services if services is not None else {}
        self.lambda_api = LambdaApi()
        self._preparing = asyncio.Lock()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._live: dict[str, Stack] = {}  # the stacks this engine is running, by name
        # this engine among engines sharing the store (None: it is alone)
        self.cluster = (
            cluster if cluster is not None and getattr(cluster, "shared", False) else None
        )
        self.engine_id: str | None = self.cluster.engine_id if self.cluster else None
        self._recovering = asyncio.Lock()
        self._sweeps: set[asyncio.Task[None]] = set()
        self._serving = False  # set by the start's recover(): the Lambda API is wired by then

    # reading ---------------------------------------------------------------------------
    async def list(self, include_deleted: bool = False) -> list[Stack]:
        return [
            s for s in await self.store.list_stacks() if include_deleted or s.status not in GONE
        ]

    async def find(self, name: str) -> Stack | None:
        live = self._live.get(name)
        if live is not None:  # being run here: what the store has, or newer
            return live
        return next((s for s in await self.store.list_stacks() if s.name == name), None)

    async def get(self, name: str) -> Stack:
        stack = await self.find(name)
        if stack is None:
            raise errors.TemplateError(f"Stack with id {arns.plain_name(name)} does not exist")
        return stack

    async def events(self, name: str, after: int) -> tuple[Stack, builtins.list[StackEvent]]:
        stack = await self.get(name)
        return stack, await self.store.list_stack_events(stack.stack_id, after)

    # packages --------------------------------------------------------------------------
    async def put_package(self, data: bytes) -> str:
        """Check and keep a deployment package a template names; its key (sha256)."""
        return (await self.functions.store_package(data)).key  # type: ignore[no-any-return]

    async def missing_packages(self, keys: builtins.list[str]) -> builtins.list[str]:
        return [k for k in keys if await self.store.get_package(k) is None]

    # operations ------------------------------------------------------------------------
    async def deploy(
        self,
        name: str,
        document: dict[str, Any],
        given: dict[str, str],
        skip_unsupported: bool = False,
        account: str | None = None,
    ) -> tuple[Stack, bool]:
        """Check and start a deploy of stack `name` (its key, domain.arns; the account is
        the caller's); (the stack, whether anything is to change)."""
        check_name(arns.plain_name(name))
        async with self._preparing:
            existing = await self.find(name)
            if existing is not None and existing.in_progress:
                raise errors.TemplateError(
                    f"Stack:{existing.stack_id} is in "
                    f"{existing.status} state and can not be updated."
                )
            updating = existing is not None and existing.status not in REPLACEABLE
            stack_id = (
                existing.stack_id
                if updating and existing
                else stack_arn(self.region, account or self.account, name, str(uuid.uuid4()))
            )
            ctx = self.context(name, stack_id)
            plan = await stack_plan.prepare(
                document,
                given,
                ctx,
                await self._exports(name),
                skip_unsupported,
                await self._ssm(document.get("Parameters"), given),
            )
            if updating and existing is not None and _unchanged(existing, plan):
                return existing, False
            if existing is not None and not updating:
                await self.store.delete_stack(existing.name, existing.stack_id)
            stack = self._begin(
                existing if updating else None, name, stack_id, plan, skip_unsupported
            )
            run = Run(stack, ctx, self._save)
            await self._first(run, stack.status)  # durable before it is acknowledged
            self._start(run, run.deploy(plan))
        return stack, True

    def _begin(
        self,
        existing: Stack | None,
        name: str,
        stack_id: str,
        plan: stack_plan.Plan,
        skip_unsupported: bool,
    ) -> Stack:
        now = time.time()
        if existing is None:
            stack = Stack(name, stack_id, "CREATE_IN_PROGRESS", plan.processed, created_at=now)
        else:
            stack = existing
            stack.previous = {
                "template": existing.template,
                "parameters": existing.parameters,
                "outputs": existing.outputs,
                "original": existing.options.get("original"),
                "given": existing.options.get("given"),
            }
            stack.status = "UPDATE_IN_PROGRESS"
        stack.template = plan.processed
        stack.parameters = parameters.shown(plan.processed.get("Parameters") or {}, plan.values)
        stack.options.update(
            original=plan.original, given=plan.given, skip_unsupported=skip_unsupported
        )
        stack.notices = []
        stack.journal = []
        stack.updated_at = now
        stack.options["engine"] = self.engine_id
        return stack

    async def _first(self, run: Run, status: str) -> None:
        """An operation's first write: it fails if another engine began one meanwhile."""
        try:
            await run.status(status)
        except Fenced:
            raise errors.TemplateError(
                f"Stack:{run.stack.stack_id} is in progress on another "
                "engine and can not be changed now."
            ) from None

    async def _save(self, stack: Stack, events: builtins.list[StackEvent]) -> None:
        if self.engine_id is None:
            await self.store.put_stack(stack, events)
        elif not await self.store.put_stack_owned(stack, events, self.engine_id):
            raise Fenced(f"stack {stack.name}: another engine took its operation over")

    async def destroy(self, name: str) -> Stack:
        async with self._preparing:
            stack = await self.get(name)
            if stack.status in GONE:
                raise errors.TemplateError(f"Stack with id {arns.plain_name(name)} does not exist")
            if stack.in_progress:
                raise errors.TemplateError(
                    f"Stack:{stack.stack_id} is in {stack.status} state and can not be deleted now."
                )
            stack.options["engine"] = self.engine_id
            run = Run(stack, self.context(name, stack.stack_id), self._save)
            await self._first(run, "DELETE_IN_PROGRESS")
            self._start(run, run.delete())
        return stack

    async def wait(self, name: str) -> None:
        """Until the operation running on a stack ends (tests, benchmarks)."""
        task = self._running.get(name)
        if task is not None:
            await asyncio.shield(task)

    # start and stop --------------------------------------------------------------------
    async def recover(self) -> None:
        """Finish what a stopped engine left in progress: roll back a deploy, go on with a
        clean-up or a delete. With engines sharing the store, only stacks whose engine is
        not alive, each claimed first (one engine takes each)."""
        self._serving = True
        async with self._recovering:
            alive = {e.engine for e in self.cluster.alive()} if self.cluster else set()
            for stack in await self.store.list_stacks():
                if not stack.in_progress or stack.name in self._running:
                    continue
                owner = stack.options.get("engine")
                if self.engine_id is not None:
                    if owner in alive and owner != self.engine_id:
                        continue  # another live engine runs it
                    stack.options["engine"] = self.engine_id
                    if not await self.store.claim_stack(stack, owner):
                        continue  # another engine claimed it first
                log.warning(
                    "stack %s was %s when its engine stopped: finishing it",
                    stack.name,
                    stack.status,
                )
                run = Run(stack, self.context(stack.name, stack.stack_id), self._save)
                self._start(run, _recovery(run))

    def recover_soon(self) -> None:
        """An engine sharing the store died: take over its stacks (cluster callback)."""
        if self.engine_id is not None and self._serving:
            task = asyncio.get_running_loop().create_task(
                self._recover_logged(), name="stack recovery"
            )
            self._sweeps.add(task)
            task.add_done_callback(self._sweeps.discard)

    async def _recover_logged(self) -> None:
        try:
            await self.recover()
        except errors.StoreUnavailable as exc:
            log.warning("could not look for stacks to take over: %s", exc)
        except Exception:
            log.exception("looking for stacks to take over failed")

    async def close(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)

    def _start(self, run: Run, work: Awaitable[None]) -> None:
        name = run.stack.name

        async def guarded() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Fenced as exc:
                log.warning("%s: this engine stops it", exc)
            except Exception:
                log.exception("stack %s: the operation stopped on an unexpected error", name)
            finally:
                self._running.pop(name, None)
                self._live.pop(name, None)

        self._live[name] = run.stack

        self._running[name] = asyncio.get_running_loop().create_task(
            guarded(), name=f"stack {name}"
        )

    # helpers ---------------------------------------------------------------------------
    def context(self, name: str, stack_id: str) -> DeployContext:
        """What a stack's providers use: they act as the account its StackId carries."""
        account = stack_account(stack_id) or self.account
        lambda_api = (
            self.lambda_api if account == self.account else self.lambda_api.as_account(account)
        )

        async def system_tags(function: str, tags: dict[str, str] | None) -> None:
            """Tags the account's function about to be created carries (None: the create
            failed)."""
            self.functions.expect_system_tags(self.functions.key(account, function), tags)

        return DeployContext(
            arns.plain_name(name),
            stack_id,
            self.region,
            account,
            lambda_api,
            self.aws,
            self.store.get_package,
            system_tags,
            lambda text: None,
            self.iam_endpoint,
            self.services,
        )

    async def _exports(self, name: str) -> dict[str, str]:
        """The exports of the account's other stacks (exports are per account)."""
        exports: dict[str, str] = {}
        for stack in await self.list():
            if stack.name != name and arns.key_owner(stack.name) == arns.key_owner(name):
                exports.update(stack.exports())
        return exports

    async def _ssm(self, definitions: Any, given: dict[str, str]) -> dict[str, str]:
        names = parameters.ssm_parameters(
            definitions if isinstance(definitions, dict) else {}, given
        )
        found = {}
        for name in sorted(set(names.values())):
            try:
                answer = await call(self.aws, "ssm", "get_parameter", missing_ok=True, Name=name)
            except ProviderError as exc:
                raise errors.TemplateError(f"Cannot read SSM parameter {name}: {exc}") from None
            if answer:
                found[name] = str(answer["Parameter"]["Value"])
        return found


async def _recovery(run: Run) -> None:
    status = run.stack.status
    if status == "DELETE_IN_PROGRESS":
        await run.delete()
    elif status == "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS":
        await run.cleanup(None, "UPDATE_COMPLETE")
    else:
        creating = status in ("CREATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS")
        await run.rollback("The engine stopped during the operation: rolled back", creating)


def _unchanged(stack: Stack, plan: stack_plan.Plan) -> bool:
    return (
        stack.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")
        and stack.template == plan.processed
        and stack.options.get("given") == plan.given
        and all(not r.skipped or r.logical_id in plan.skipped for r in stack.resources.values())
    )


def check_name(name: str) -> None:
    """A stack name as CloudFormation accepts it; its 400 otherwise."""
    if not NAME_RE.fullmatch(name):
        raise errors.TemplateError(
            f"1 validation error detected: Value '{name}' at 'stackName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
            "[a-zA-Z][-a-zA-Z0-9]*"
        )
