"""Synchronous invoke in process: InvokeService → the one attempt → the real environment
pool → a real runtime child (bash and curl against the Runtime API), over the memory store.
No engine process and no HTTP face: what api/invoke.py hands the service, and what it gets
back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lamina.domain import errors
from lamina.domain.arns import FunctionRef
from lamina.domain.code import CodeSource
from lamina.domain.settings import FunctionSettings
from lamina.runtime.environment import EnvironmentSettings
from lamina.runtime.interpreters import Interpreters
from lamina.runtime.pool import EnvironmentPool
from lamina.service.attempt import Attempts
from lamina.service.calls import CallRegistry
from lamina.service.clock import RealClock
from lamina.service.concurrency import ConcurrencyLimiter
from lamina.service.functions import CreateFunction, FunctionService
from lamina.service.invoke import InvokeCommand, InvokeService
from lamina.service.records import Recorder
from lamina.storage.code import CodeStore
from lamina.storage.memory import MemoryStore
from tests.conftest import FUNCTIONS, make_zip, zip_dir
from tests.unit.test_pool import SLEEPER, connections_closed

ROLE = "arn:aws:iam::123456789012:role/r"


@dataclass
class Engine:
    store: MemoryStore
    pool: EnvironmentPool
    functions: FunctionService
    recorder: Recorder
    service: InvokeService

    async def create(self, name: str, package: bytes, **settings: Any) -> None:
        await self.functions.create(
            CreateFunction(
                name,
                FunctionSettings(runtime="provided.al2023", handler="x.y", role=ROLE, **settings),
                CodeSource(package),
            )
        )
        await asyncio.sleep(0)  # Pending → Active

    async def call(self, name: str, payload: bytes = b'{"a": 1}', **command: Any) -> Any:
        qualifier = command.pop("qualifier", None)
        return await self.service.invoke(
            InvokeCommand(FunctionRef(name, qualifier), qualifier, payload, **command)
        )

    async def summary_and_kinds(self, request_id: str) -> tuple[Any, list[str]]:
        await self.recorder.flush()
        summary, records = await self.store.get_invocation(request_id)
        return summary, [r.kind for r in records]


def run(tmp_path: Path, body: Callable[[Engine], Awaitable[None]], strict: bool = False) -> None:
    async def main() -> None:
        clock = RealClock()
        store = MemoryStore()
        await store.open()
        code = CodeStore(tmp_path / "code")
        pool = EnvironmentPool(
            EnvironmentSettings("us-east-1", tmp_path),
            Interpreters(),
            code,
            store.get_package,
            spares=False,
        )
        limiter = ConcurrencyLimiter(1000)
        recorder = Recorder(store, clock)
        functions = FunctionService(store, code, pool, limiter, "us-east-1", "123456789012")
        await functions.load()
        service = InvokeService(
            functions,
            Attempts(limiter, pool, recorder, clock),
            recorder,
            clock,
            CallRegistry(store, clock, 900.0),
            strict=strict,
        )
        await pool.start()
        try:
            await body(Engine(store, pool, functions, recorder, service))
        finally:
            await pool.close()
            await connections_closed()
            await recorder.close()
            await store.close()

    asyncio.run(main())


SHELL = zip_dir(FUNCTIONS / "shell")
SLEEPS = make_zip({"bootstrap": SLEEPER}, {"bootstrap": 0o755})


def test_a_call_runs_and_is_recorded_with_its_timeline(tmp_path):
    async def body(engine: Engine) -> None:
        await engine.create("sh", SHELL)
        result = await engine.call("sh", log_tail=True)
        assert result.executed_version == "$LATEST"
        assert result.outcome.payload == b'{"echo":{"a": 1},"handler":"x.y"}'
        assert b"handling " + result.request_id.encode() in result.outcome.log_tail
        summary, kinds = await engine.summary_and_kinds(result.request_id)
        assert (summary.status, summary.attempts, summary.function) == ("success", 1, "sh")
        assert kinds == ["accepted", "attempt"]
        failed = await engine.call("sh", b'{"fail": true}')
        assert failed.outcome.function_error and failed.outcome.error_type == "Custom.Failure"
        summary, _ = await engine.summary_and_kinds(failed.request_id)
        assert summary.status == "error" and summary.error_type == "Custom.Failure"

    run(tmp_path, body)


def test_unknown_functions_and_qualifiers_are_404(tmp_path):
    async def body(engine: Engine) -> None:
        with pytest.raises(errors.ResourceNotFound):
            await engine.call("missing")
        await engine.create("sh", SHELL)
        with pytest.raises(errors.ResourceNotFound):
            await engine.call("sh", qualifier="nope")
        assert engine.pool.environments() == [], "nothing started for them"

    run(tmp_path, body)


def test_a_dry_run_starts_nothing(tmp_path):
    async def body(engine: Engine) -> None:
        await engine.create("sh", SHELL)
        result = await engine.call("sh", invocation_type="DryRun")
        assert result.outcome is None and result.executed_version == "$LATEST"
        assert engine.pool.environments() == []

    run(tmp_path, body)


def test_reserved_concurrency_zero_throttles_and_the_rejection_is_recorded(tmp_path):
    async def body(engine: Engine) -> None:
        await engine.create("sh", SHELL)
        await engine.functions.put_concurrency("sh", 0)
        with pytest.raises(errors.TooManyRequests) as throttled:
            await engine.call("sh", request_id="r-throttled")
        assert throttled.value.status == 429
        summary, kinds = await engine.summary_and_kinds("r-throttled")
        assert summary.status == "rejected" and kinds == ["accepted", "throttled"]
        assert engine.pool.environments() == []

    run(tmp_path, body)


def test_an_sdk_retry_attaches_to_the_call_it_repeats(tmp_path):
    async def body(engine: Engine) -> None:
        await engine.create("slow", SLEEPS)
        sdk = {"sdk_invocation_id": "inv-1"}
        first = asyncio.ensure_future(engine.call("slow", b"0.5", sdk_request="attempt=1", **sdk))
        await asyncio.sleep(0.2)
        retry = await engine.call("slow", b"0.5", sdk_request="attempt=2; max=3", **sdk)
        original = await first
        assert retry.request_id == original.request_id
        assert retry.outcome.payload == original.outcome.payload == b'"slept 0.5"'
        late = await engine.call("slow", b"0.5", sdk_request="attempt=3; max=3", **sdk)
        assert late.request_id == original.request_id, "a finished call's result is kept"
        _, kinds = await engine.summary_and_kinds(original.request_id)
        assert kinds.count("attached") == 2
        assert len(await engine.store.list_invocations("slow", 10, float("inf"))) == 1

    run(tmp_path, body)


def test_strict_parity_runs_every_retry_and_marks_it(tmp_path):
    async def body(engine: Engine) -> None:
        await engine.create("sh", SHELL)
        sdk = {"sdk_invocation_id": "inv-2"}
        first = await engine.call("sh", sdk_request="attempt=1", **sdk)
        again = await engine.call("sh", sdk_request="attempt=2; max=3", **sdk)
        assert again.request_id != first.request_id
        _, kinds = await engine.summary_and_kinds(first.request_id)
        assert "sdk_retry" in kinds

    run(tmp_path, body, strict=True)
