"""One Store suite, run against every back end: they must behave alike."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable

import pytest

from lamina.domain import errors
from lamina.domain.capacity import CapacityProvider
from lamina.domain.code_signing import CodeSigningConfig
from lamina.domain.layers import LayerVersion
from lamina.domain.model import (
    Alias,
    AsyncEvent,
    AttemptRecord,
    Delivery,
    EventInvokeConfig,
    FunctionConfig,
    InvocationSummary,
    ResourcePolicy,
)
from lamina.domain.observed import InvocationFilter
from lamina.domain.urls import FunctionUrlConfig
from lamina.storage.memory import MemoryStore
from lamina.storage.sqlite import SqliteStore

CONFIG = FunctionConfig(
    name="f",
    runtime="python3.12",
    handler="a.b",
    role="arn:aws:iam::123456789012:role/r",
    code_sha256="c2hh",
    code_size=10,
    revision_id="rev1",
    last_modified="2026-01-01T00:00:00.000+0000",
    environment={"AB": "1"},
    architectures=("arm64",),
)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def make_store(request, tmp_path) -> Callable[[], object]:
    if request.param == "postgres":
        from lamina.storage.postgres import PostgresStore

        url = request.getfixturevalue("postgres").new_database(migrated=True)
        return lambda: PostgresStore(url)
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "s.db")
    return MemoryStore


def run(make_store, body: Callable[[object], Awaitable[None]]) -> None:
    async def main() -> None:
        store = make_store()
        await store.open()
        try:
            await body(store)
        finally:
            await store.close()

    asyncio.run(main())


def test_functions_round_trip(make_store):
    async def body(store):
        await store.create_function(CONFIG, {"team": "x"}, time.time())
        with pytest.raises(errors.ResourceConflict):
            await store.create_function(CONFIG, {}, time.time())
        assert await store.list_versions() == [CONFIG]
        assert await store.list_function_tags() == {"f": {"team": "x"}}
        updated = CONFIG.replace(revision_id="rev2", timeout=9)
        await store.put_version(updated)
        await store.put_version(CONFIG.replace(version="1"))
        assert await store.list_versions() == [updated, CONFIG.replace(version="1")]
        await store.delete_function("f")
        assert await store.list_versions() == []
        assert await store.list_function_tags() == {}

    run(make_store, body)


def test_invocation_records(make_store):
    async def body(store):
        first = InvocationSummary("r1", "f", None, "RequestResponse", 100.0)
        second = InvocationSummary("r2", "g", "$LATEST", "RequestResponse", 200.0)
        await store.write_records(
            [first, second],
            [
                AttemptRecord("r1", 100.0, "accepted", {"type": "RequestResponse"}),
                AttemptRecord("r1", 100.5, "attempt", {"outcome": "success", "start": "cold"}),
            ],
        )
        first.status, first.finished_at, first.attempts = "success", 100.5, 1
        await store.write_records([first], [])
        listed = await store.list_invocations(None, 10, float("inf"))
        assert [s.request_id for s in listed] == ["r2", "r1"]
        assert listed[1].status == "success" and listed[1].attempts == 1
        assert [s.request_id for s in await store.list_invocations("f", 10, 1e18)] == ["r1"]
        assert await store.list_invocations(None, 10, 150.0) == [listed[1]]
        assert len(await store.list_invocations(None, 1, 1e18)) == 1
        summary, records = await store.get_invocation("r1")
        assert summary == listed[1]
        assert [(r.kind, r.detail) for r in records] == [
            ("accepted", {"type": "RequestResponse"}),
            ("attempt", {"outcome": "success", "start": "cold"}),
        ]
        assert await store.get_invocation("nope") == (None, [])

    run(make_store, body)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_durable_back_ends_survive_reopening(request, tmp_path, backend):
    if backend == "postgres":
        from lamina.storage.postgres import PostgresStore

        url = request.getfixturevalue("postgres").new_database()

        def make():
            return PostgresStore(url)
    else:

        def make():
            return SqliteStore(tmp_path / "s.db")

    async def main() -> None:
        store = make()
        await store.open()
        await store.create_function(CONFIG, {}, time.time())
        await store.close()
        again = make()
        await again.open()  # migrations already applied: nothing to do, nothing lost
        assert await again.list_versions() == [CONFIG]
        await again.close()

    asyncio.run(main())


def _event(request_id: str, function: str = "f", due: float = 10.0) -> AsyncEvent:
    return AsyncEvent(request_id, function, None, b'{"a":1}', 1.0, due, trace_id="Root=1-x")


def test_event_queue(make_store):
    async def body(store):
        await store.create_function(CONFIG, {}, 0.0)
        await store.create_function(CONFIG.replace(name="g"), {}, 0.0)
        for event in (
            _event("a", due=10),
            _event("b", due=5),
            _event("c", due=50),
            _event("d", "g", due=1),
        ):
            await store.enqueue_event(event)
        assert await store.due_functions(10.0) == {"f": 2, "g": 1}
        assert await store.next_due(after=0.0) == 1.0
        assert await store.next_due(after=5.0) == 10.0
        claimed = await store.claim_events("f", 10.0, 5, "me", 99.0)
        assert [e.request_id for e in claimed] == ["b", "a"]
        assert claimed[0].payload == b'{"a":1}' and claimed[0].trace_id == "Root=1-x"
        assert await store.claim_events("f", 10.0, 5, "other", 99.0) == []
        assert await store.due_functions(10.0) == {"g": 1}
        first = claimed[0]
        first.due_at, first.invocations, first.throttles = 70.0, 1, 2
        await store.reschedule_event(first)
        assert await store.due_functions(69.0) == {"f": 1, "g": 1}  # c, due at 50
        again = await store.claim_events("f", 70.0, 5, "me", 200.0)
        assert [(e.request_id, e.invocations, e.throttles) for e in again] == [
            ("c", 0, 0),
            ("b", 1, 2),
        ]
        delivery = Delivery(
            "d1",
            "b",
            "on_failure",
            "arn:aws:sqs:us-east-1:123456789012:q",
            b"record",
            {"success": False},
            0,
            70.0,
        )
        await store.finish_event("b", [delivery])
        assert (await store.queue_stats()) == {"f": (2, 1.0), "g": (1, 1.0)}
        assert await store.next_due(after=0.0) == 1.0
        assert await store.next_delivery_due() == 70.0
        owed = await store.claim_deliveries(80.0, 10, "me", 500.0)
        assert owed == [delivery]
        owed[0].attempts, owed[0].due_at = 1, 90.0
        await store.reschedule_delivery(owed[0])
        assert await store.claim_deliveries(85.0, 10, "me", 500.0) == []
        await store.finish_delivery("d1")
        assert await store.claim_deliveries(1e9, 10, "me", 1e9) == []
        # a's and c's claims belong to "me": releasing them puts them back in the queue
        assert await store.release_claims(0.0, "me") == 2
        assert await store.due_functions(100.0) == {"f": 2, "g": 1}

    run(make_store, body)


def test_event_configs_and_reserved_concurrency(make_store):
    async def body(store):
        await store.create_function(CONFIG, {}, 0.0)
        config = EventInvokeConfig(
            "f", "$LATEST", 5.0, 1, None, None, "arn:aws:sqs:us-east-1:123456789012:q"
        )
        await store.put_event_config(config)
        await store.put_event_config(EventInvokeConfig("f", "1", 6.0, maximum_event_age=60))
        assert await store.list_event_configs() == [
            EventInvokeConfig(
                "f", "$LATEST", 5.0, 1, None, None, "arn:aws:sqs:us-east-1:123456789012:q"
            ),
            EventInvokeConfig("f", "1", 6.0, maximum_event_age=60),
        ]
        await store.delete_event_config("f", "1")
        assert len(await store.list_event_configs()) == 1
        await store.set_reserved_concurrency("f", 5)
        assert await store.list_reserved_concurrency() == {"f": 5}
        await store.set_reserved_concurrency("f", None)
        assert await store.list_reserved_concurrency() == {}
        await store.set_reserved_concurrency("f", 0)
        await store.delete_function("f")
        assert await store.list_event_configs() == []
        assert await store.list_reserved_concurrency() == {}

    run(make_store, body)


def test_versions_and_aliases(make_store):
    async def body(store):
        await store.create_function(CONFIG, {}, 0.0)
        one = await store.publish_version(CONFIG.replace(revision_id="r1"))
        two = await store.publish_version(CONFIG.replace(revision_id="r2"))
        assert (one.version, two.version) == ("1", "2")
        await store.delete_version("f", "2")
        three = await store.publish_version(CONFIG.replace(revision_id="r3"))
        assert three.version == "3", "version numbers are never reused"
        assert [c.version for c in await store.list_versions()] == ["$LATEST", "1", "3"]
        alias = Alias("f", "live", "1", "rev", "d", "3", 0.25)
        await store.create_alias(alias)
        with pytest.raises(errors.ResourceConflict):
            await store.create_alias(alias)
        await store.put_alias(Alias("f", "live", "3", "rev2"))
        assert await store.list_aliases() == [Alias("f", "live", "3", "rev2")]
        await store.delete_alias("f", "live")
        assert await store.list_aliases() == []
        await store.create_alias(alias)
        await store.delete_function("f")
        assert await store.list_aliases() == []

    run(make_store, body)


def test_tags_and_policies(make_store):
    def qualifiers(found):
        return sorted((p.qualifier, p.revision_id, p.statements) for p in found)

    async def body(store):
        await store.create_function(CONFIG, {"team": "x"}, 0.0)
        retagged = CONFIG.replace(revision_id="after-tags")
        await store.set_function_tags("f", {"stage": "dev", "team": "y"}, retagged)
        assert await store.list_function_tags() == {"f": {"stage": "dev", "team": "y"}}
        assert [c.revision_id for c in await store.list_versions()] == ["after-tags"]
        await store.publish_version(CONFIG)
        await store.create_alias(Alias("f", "live", "1", "rev"))
        statement = {"Sid": "s3", "Principal": {"Service": "s3.amazonaws.com"}}
        for qualifier in ("$LATEST", "1", "live"):
            await store.put_policy(ResourcePolicy("f", qualifier, "r1", (statement,)))
        changed = ResourcePolicy("f", "$LATEST", "r2", (statement, {"Sid": "sns"}))
        await store.put_policy(changed)
        assert qualifiers(await store.list_policies()) == [
            ("$LATEST", "r2", (statement, {"Sid": "sns"})),
            ("1", "r1", (statement,)),
            ("live", "r1", (statement,)),
        ]
        await store.delete_alias("f", "live")
        await store.delete_version("f", "1")
        assert await store.list_policies() == [changed], "they go with the version or alias"
        await store.delete_policy("f", "$LATEST")
        assert await store.list_policies() == []
        await store.put_policy(changed)
        await store.delete_function("f")
        assert await store.list_policies() == []
        assert await store.list_function_tags() == {}

    run(make_store, body)


def test_function_urls(make_store):
    async def body(store):
        await store.create_function(CONFIG, {}, 0.0)
        await store.publish_version(CONFIG)
        await store.create_alias(Alias("f", "live", "1", "rev"))
        plain = FunctionUrlConfig("f", "$LATEST", "a" * 32, "NONE", "BUFFERED", None, 1.0, 1.0)
        live = FunctionUrlConfig(
            "f",
            "live",
            "b" * 32,
            "AWS_IAM",
            "RESPONSE_STREAM",
            {"AllowOrigins": ["*"], "MaxAge": 5},
            2.0,
            2.0,
        )
        await store.put_function_url(plain)
        await store.put_function_url(live)
        changed = dataclasses.replace(plain, auth_type="AWS_IAM", modified=3.0)
        await store.put_function_url(changed)
        assert await store.list_function_urls() == [changed, live]
        await store.delete_alias("f", "live")
        assert await store.list_function_urls() == [changed], "it goes with its alias"
        await store.delete_function_url("f", "$LATEST")
        assert await store.list_function_urls() == []
        await store.put_function_url(plain)
        await store.delete_function("f")
        assert await store.list_function_urls() == [], "and with its function"

    run(make_store, body)


def test_layer_versions(make_store):
    layer = LayerVersion(
        "lib",
        1,
        "arn:aws:lambda:us-east-1:123456789012:layer:lib",
        "c2hh",
        10,
        "ab" * 32,
        "2026-01-01T00:00:00.000+0000",
        "d",
        ("python3.12",),
        ("arm64",),
        "MIT",
    )

    async def body(store):
        await store.insert_layer_version(layer)
        second = dataclasses.replace(layer, version=2, license_info=None)
        await store.insert_layer_version(second)
        with pytest.raises(errors.ResourceConflict):
            await store.insert_layer_version(layer)
        gone = dataclasses.replace(layer, deleted=True)
        await store.put_layer_version(gone)
        other = dataclasses.replace(layer, name="a", compatible_runtimes=())
        await store.insert_layer_version(other)
        assert await store.list_layer_versions() == [other, gone, second]
        user = CONFIG.replace(layers=(layer.ref(), other.ref()))
        await store.create_function(user, {}, 0.0)
        assert await store.list_versions() == [user], "a function keeps its layers' copies"

    run(make_store, body)


def _summaries() -> list[InvocationSummary]:
    kinds = [
        ("f", "RequestResponse", "success"),
        ("g", "Event", "failed"),
        ("f", "Event", "success"),
        ("g", "RequestResponse", "error"),
        ("f", "RequestResponse", "error"),
        ("h", "EventSourceMapping", "success"),
    ]
    return [
        InvocationSummary(f"r{n}", fn, None, kind, 100.0 + n, status=status)
        for n, (fn, kind, status) in enumerate(kinds)
    ]


def test_invocations_are_found_by_function_type_outcome_and_time(make_store):
    def ids(found):
        return [s.request_id for s in found]

    async def body(store):
        await store.write_records(_summaries(), [])
        assert ids(await store.find_invocations(InvocationFilter())) == [
            "r5",
            "r4",
            "r3",
            "r2",
            "r1",
            "r0",
        ]
        assert ids(await store.find_invocations(InvocationFilter(function="f"))) == [
            "r4",
            "r2",
            "r0",
        ]
        assert ids(await store.find_invocations(InvocationFilter(status="error"))) == ["r4", "r3"]
        assert ids(await store.find_invocations(InvocationFilter(invocation_type="Event"))) == [
            "r2",
            "r1",
        ]
        assert ids(
            await store.find_invocations(
                InvocationFilter(function="f", status="success", invocation_type="Event")
            )
        ) == ["r2"]
        assert ids(
            await store.find_invocations(
                InvocationFilter(status="success", invocation_type="RequestResponse")
            )
        ) == ["r0"]
        assert ids(
            await store.find_invocations(
                InvocationFilter(status="success", invocation_type="Event")
            )
        ) == ["r2"]
        assert ids(
            await store.find_invocations(InvocationFilter(status="failed", invocation_type="Event"))
        ) == ["r1"]
        assert ids(await store.find_invocations(InvocationFilter(since=102.0, before=104.0))) == [
            "r3",
            "r2",
        ]
        assert ids(await store.find_invocations(InvocationFilter(limit=2, before=105.0))) == [
            "r4",
            "r3",
        ]
        found = await store.find_invocations(InvocationFilter(function="h"))
        assert found[0].invocation_type == "EventSourceMapping" and found[0].status == "success"

    run(make_store, body)


def test_oldest_invocations_are_purged_with_their_records(make_store):
    async def body(store):
        summaries = _summaries()
        await store.write_records(
            summaries,
            [AttemptRecord(s.request_id, s.accepted_at, "accepted", {}) for s in summaries],
        )
        assert await store.invocation_cutoff(2) == 104.0
        assert await store.invocation_cutoff(7) is None
        assert await store.purge_invocations(103.0, 2) == 2
        assert await store.purge_invocations(103.0, 2) == 1
        assert await store.purge_invocations(103.0, 2) == 0
        left = await store.find_invocations(InvocationFilter())
        assert [s.request_id for s in left] == ["r5", "r4", "r3"]
        assert await store.get_invocation("r0") == (None, [])
        summary, records = await store.get_invocation("r3")
        assert summary is not None and [r.kind for r in records] == ["accepted"]

    run(make_store, body)


def test_mappings_and_checkpoints(make_store):
    from lamina.domain.mappings import MappingSettings, new_mapping

    kinesis = new_mapping(
        "f",
        None,
        "arn:aws:kinesis:us-east-1:123456789012:stream/s",
        MappingSettings(
            starting_position="TRIM_HORIZON", bisect=True, filters=('{"data": {"n": [1]}}',)
        ),
        100.0,
    )
    kafka = new_mapping(
        "f",
        "live",
        None,
        MappingSettings(
            starting_position="LATEST", topics=("t",), bootstrap_servers=("127.0.0.1:9092",)
        ),
        50.0,
    )

    async def body(store):
        await store.put_mapping(kinesis)
        await store.put_mapping(kafka)
        assert sorted(await store.list_mappings(), key=lambda m: m.uuid) == sorted(
            [kinesis, kafka], key=lambda m: m.uuid
        )
        enabled = kinesis.replace(state="Enabled", last_processing_result="OK")
        await store.put_mapping(enabled)
        assert enabled in await store.list_mappings()
        await store.put_checkpoint(kinesis.uuid, "shardId-1", "100")
        await store.put_checkpoint(kinesis.uuid, "shardId-1", "200")
        await store.put_checkpoint(kinesis.uuid, "shardId-2", "7")
        assert await store.get_checkpoints(kinesis.uuid) == {"shardId-1": "200", "shardId-2": "7"}
        assert await store.get_checkpoints(kafka.uuid) == {}
        newer = enabled.replace(batch_size=7, state="Updating", last_modified=200.0)
        await store.put_mapping(newer)
        await store.settle_mapping(enabled.replace(last_processing_result="PROBLEM: late"))
        await store.put_mapping(enabled.replace(batch_size=1))
        assert newer in await store.list_mappings(), "writes older than the last change lose"
        await store.settle_mapping(newer.replace(state="Enabled"))
        assert newer.replace(state="Enabled") in await store.list_mappings()
        await store.delete_mapping(kinesis.uuid)
        assert await store.list_mappings() == [kafka]
        assert await store.get_checkpoints(kinesis.uuid) == {}, "checkpoints go with the mapping"
        await store.settle_mapping(newer)
        assert await store.list_mappings() == [kafka], "settling does not bring a mapping back"

    run(make_store, body)


def test_stacks_and_their_events(make_store):
    from lamina.domain.stacks import Stack, StackEvent, StackResource

    stack = Stack(
        "app",
        "arn:aws:cloudformation:us-east-1:123456789012:stack/app/1",
        "CREATE_IN_PROGRESS",
        {"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}},
        {"Stage": "dev"},
        updated_at=1.0,
    )
    stack.resources["Q"] = StackResource(
        "Q", "AWS::SQS::Queue", "http://q", {"A": 1}, {"Arn": "arn:q"}, "CREATE_COMPLETE"
    )

    async def body(store):
        await store.put_stack(
            stack,
            [StackEvent("app", 1, 1.0, "app", "AWS::CloudFormation::Stack", "CREATE_IN_PROGRESS")],
        )
        stack.status = "CREATE_COMPLETE"
        await store.put_stack(
            stack,
            [StackEvent("app", 2, 2.0, "Q", "AWS::SQS::Queue", "CREATE_COMPLETE", "http://q")],
        )
        (found,) = await store.list_stacks()
        assert found.status == "CREATE_COMPLETE"
        assert found.resources["Q"].attributes == {"Arn": "arn:q"}
        assert found.parameters == {"Stage": "dev"}
        events = await store.list_stack_events(stack.stack_id, 0)
        assert [e.seq for e in events] == [1, 2] and events[1].physical_id == "http://q"
        assert [e.seq for e in await store.list_stack_events(stack.stack_id, 1)] == [2]
        await store.delete_stack("app", stack.stack_id)
        assert await store.list_stacks() == []
        assert await store.list_stack_events(stack.stack_id, 0) == []

    run(make_store, body)


def test_code_signing_configs_and_capacity_providers(make_store):
    signing = CodeSigningConfig(
        "arn:aws:lambda:us-east-1:123456789012:code-signing-config:csc-0123456789abcdef0",
        ("arn:aws:signer:us-east-1:123456789012:/signing-profiles/p/x",),
        "Enforce",
        "d",
        "2026-01-01T00:00:00.000+0000",
        {"team": "a"},
    )
    provider = CapacityProvider(
        "cp",
        "arn:aws:lambda:us-east-1:123456789012:capacity-provider:cp",
        {"SubnetIds": ["subnet-1"], "SecurityGroupIds": []},
        "arn:aws:iam::123456789012:role/operator",
        "Active",
        scaling={"ScalingMode": "Auto", "MaxVCpuCount": 4},
        tags={"k": "v"},
    )

    async def body(store):
        await store.put_code_signing_config(signing)
        changed = signing.replace(policy="Warn")
        await store.put_code_signing_config(changed)
        assert await store.list_code_signing_configs() == [changed]
        await store.delete_code_signing_config(signing.arn)
        assert await store.list_code_signing_configs() == []

        await store.insert_capacity_provider(provider)
        with pytest.raises(errors.ResourceConflict):
            await store.insert_capacity_provider(provider)
        scaled = provider.replace(scaling={"ScalingMode": "Manual"})
        await store.put_capacity_provider(scaled)
        await store.insert_capacity_provider(
            provider.replace(name="a", arn=provider.arn[:-2] + "a")
        )
        assert [p.name for p in await store.list_capacity_providers()] == ["a", "cp"]
        assert (await store.list_capacity_providers())[1] == scaled
        await store.delete_capacity_provider("cp")
        assert [p.name for p in await store.list_capacity_providers()] == ["a"]

        on_provider = CONFIG.replace(
            code_signing_config_arn=signing.arn,
            scaling={"MinExecutionEnvironments": 1},
            capacity_provider={
                "CapacityProviderArn": provider.arn,
                "PerExecutionEnvironmentMaxConcurrency": 4,
                "ExecutionEnvironmentMemoryGiBPerVCpu": 2.0,
            },
        )
        await store.create_function(on_provider, {}, 0.0)
        assert await store.list_versions() == [on_provider]

    run(make_store, body)


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_a_migration_numbered_below_one_applied_still_runs(dialect, tmp_path, monkeypatch, request):
    """Branches land out of order: a store that applied 0019 before 0015 existed must still
    get 0015 when it arrives (each number applied once, whatever the order)."""
    from lamina.storage import queries

    every = queries.migrations(dialect)
    late = [number for number, _ in every if 12 < number][:1]
    assert late, "needs a migration numbered above 0012"
    first = [(n, sql) for n, sql in every if n not in late]

    if dialect == "postgres":
        from lamina.storage.postgres import PostgresStore

        url = request.getfixturevalue("postgres").new_database()
        make = lambda: PostgresStore(url)  # noqa: E731
    else:
        make = lambda: SqliteStore(tmp_path / "m.db")  # noqa: E731

    async def open_close(found) -> None:
        monkeypatch.setattr(queries, "migrations", lambda _dialect: found)
        store = make()
        await store.open()
        await store.close()

    asyncio.run(open_close(first))
    asyncio.run(open_close(every))  # the late one runs now; the others are not run twice
    asyncio.run(open_close(every))  # and nothing runs again

    async def applied() -> set[int]:
        if dialect == "postgres":
            import psycopg

            async with await psycopg.AsyncConnection.connect(url) as conn:
                cursor = await conn.execute("SELECT version FROM lamina_schema")
                return {row[0] for row in await cursor.fetchall()}
        import sqlite3

        with sqlite3.connect(tmp_path / "m.db") as db:
            return {row[0] for row in db.execute("SELECT version FROM lamina_migrations")}

    assert asyncio.run(applied()) == {number for number, _ in every}
