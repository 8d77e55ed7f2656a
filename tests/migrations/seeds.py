"""What each migration's schema held: rows written as that schema's code wrote them, and
how the current store must read them back.

`STEPS[N]` belongs to migration N: its rows (`Insert`, `Update`: a table of rows per
migration, written above its check) go into the tables and columns migration N made (plain SQL
on the schema as it stood right after N, never through today's store), and its `check` reads
them back through today's Store API once every later migration has run on them. The documents inside the rows (a function's configuration, an alias, a stack, ...) are
frozen in documents.json, so that a change of a document's shape that cannot read what is
already stored fails here too.

A new migration needs a step here: test_migrations.py fails while one is missing, and while
a table or a column of the schema holds no value written by some step.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from lamina.domain.capacity import CapacityProvider
from lamina.domain.code_signing import CodeSigningConfig
from lamina.domain.debug import DebugSettings
from lamina.domain.layers import LayerVersion
from lamina.domain.mappings import EventSourceMapping
from lamina.domain.model import Alias, EventInvokeConfig, FunctionConfig
from lamina.domain.observed import InvocationFilter
from lamina.domain.stacks import Stack
from lamina.storage import rows

DOCS: dict[str, Any] = json.loads((Path(__file__).parent / "documents.json").read_text())
ACCOUNT = "123456789012"
ORDERS = "orders"
BILLING = "billing"
FAR = 4_000_000_000.0  # a time no test reaches: leases that have not run out
NOW = 1_000_000.0


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class Db:
    """A plain connection to the database under test: rows go in as SQL, in either dialect."""

    def __init__(self, dialect: str, conn: Any) -> None:
        self.dialect = dialect
        self.conn = conn

    def _mark(self, name: str) -> str:
        return f":{name}" if self.dialect == "sqlite" else f"%({name})s"

    def insert(self, table: str, **row: Any) -> None:
        columns = ", ".join(row)
        values = ", ".join(self._mark(c) for c in row)
        self.conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({values})", row)

    def update(self, table: str, where: dict[str, Any], **values: Any) -> None:
        sets = ", ".join(f"{c} = {self._mark(c)}" for c in values)
        cond = " AND ".join(f"{c} = {self._mark('w_' + c)}" for c in where)
        params = {**values, **{"w_" + c: v for c, v in where.items()}}
        self.conn.execute(f"UPDATE {table} SET {sets} WHERE {cond}", params)

    def write(self, changes: tuple[Insert | Update, ...]) -> None:
        for change in changes:
            if isinstance(change, Insert):
                self.insert(change.table, **change.row)
            else:
                self.update(change.table, change.where, **change.values)

    def tables(self) -> list[str]:
        if self.dialect == "sqlite":
            found = self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        else:
            found = self.conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
            )
        bookkeeping = {"lamina_migrations", "lamina_schema"}
        return [r[0] for r in found.fetchall() if r[0] not in bookkeeping]

    def columns(self, table: str) -> list[str]:
        if self.dialect == "sqlite":
            return [r[1] for r in self.conn.execute(f"PRAGMA table_info({table})").fetchall()]
        found = self.conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %(t)s ORDER BY ordinal_position",
            {"t": table},
        )
        return [r[0] for r in found.fetchall()]

    def empty_columns(self) -> list[str]:
        """`table.column` of every column no row holds a value in (every column of an
        empty table): what no step has seeded."""
        empty = []
        for table in self.tables():
            for column in self.columns(table):
                found = self.conn.execute(
                    f"SELECT 1 FROM {table} WHERE {column} IS NOT NULL LIMIT 1"
                ).fetchone()
                if found is None:
                    empty.append(f"{table}.{column}")
        return empty


Check = Callable[[Any], Awaitable[None]]


class Insert:
    """A row of `table`, as the schema of its migration wrote it."""

    def __init__(self, table: str, **row: Any) -> None:
        self.table, self.row = table, row


class Update:
    """`values` set on the rows of `table` that match `where` (a column a later migration
    added, filled on rows already there)."""

    def __init__(self, table: str, where: dict[str, Any], **values: Any) -> None:
        self.table, self.where, self.values = table, where, values


@dataclass(frozen=True)
class Step:
    seed: Callable[[Db], None]
    check: Check
    dialects: tuple[str, ...] = ("sqlite", "postgres")


STEPS: dict[int, Step] = {}


def step(
    number: int, *changes: Insert | Update, dialects: tuple[str, ...] = ("sqlite", "postgres")
):
    """Registers the check it decorates as migration `number`'s, with the rows `changes`
    written after that migration."""

    def register(check: Check) -> Check:
        assert number not in STEPS, f"two seed steps for migration {number:04d}"
        STEPS[number] = Step(partial(Db.write, changes=changes), check, dialects)
        return check

    return register


def config(name: str = ORDERS, version: str = "$LATEST") -> dict[str, Any]:
    return {**DOCS["config"], "name": name, "version": version}


# 0001: functions, versions, invocations and their records -----------------------------
@step(
    1,
    Insert("functions", name=ORDERS, created_at=1.0, tags=dumps({"team": "a"})),
    Insert("function_versions", name=ORDERS, version="$LATEST", config=dumps(config(ORDERS))),
    Insert("functions", name=BILLING, created_at=1.0, tags=dumps({})),
    Insert("function_versions", name=BILLING, version="$LATEST", config=dumps(config(BILLING))),
    Insert(
        "invocations",
        request_id="r-sync",
        function=ORDERS,
        qualifier="$LATEST",
        invocation_type="RequestResponse",
        accepted_at=100.0,
        status="success",
        finished_at=100.5,
        attempts=1,
        duration_ms=12.5,
    ),
    Insert(
        "invocations",
        request_id="r-event",
        function=BILLING,
        invocation_type="Event",
        accepted_at=150.0,
        status="error",
        attempts=3,
        error_type="Unhandled",
    ),
    Insert(
        "invocation_records",
        request_id="r-sync",
        at=100.1,
        kind="start",
        detail=dumps({"version": "$LATEST"}),
    ),
)
async def check_0001(store: Any) -> None:
    versions = {(c.name, c.version): c for c in await store.list_versions()}
    assert versions[(ORDERS, "$LATEST")] == FunctionConfig.from_dict(config())
    assert versions[(ORDERS, "$LATEST")].environment == {"STAGE": "old"}
    assert (BILLING, "$LATEST") in versions
    tags = await store.list_function_tags()
    assert tags[ORDERS] == {"team": "a"} and tags[BILLING] == {}
    summary, records = await store.get_invocation("r-sync")
    assert summary is not None and summary.status == "success" and summary.attempts == 1
    assert summary.duration_ms == 12.5 and summary.timeline is None
    assert [(r.kind, r.detail) for r in records] == [("start", {"version": "$LATEST"})]
    listed = await store.list_invocations(ORDERS, 10, FAR)
    assert "r-sync" in [s.request_id for s in listed]


# 0002: the async event queue, event invoke configs, deliveries, reserved concurrency -----
EVENT = {
    "function": ORDERS,
    "qualifier": "$LATEST",
    "payload": b'{"n":1}',
    "accepted_at": 50.0,
    "invocations": 1,
    "throttles": 0,
    "trace_id": "Root=1-00000000-000000000000000000000001",
}


@step(
    2,
    Insert("async_events", **EVENT, request_id="e-1", due_at=60.0, owner=None, lease_until=None),
    Insert("async_events", **EVENT, request_id="e-2", due_at=61.0, owner="dead", lease_until=5.0),
    Insert(
        "event_invoke_configs",
        function=ORDERS,
        qualifier="$LATEST",
        config=dumps(DOCS["event_config"]),
    ),
    Insert(
        "deliveries",
        id="d-1",
        request_id="e-0",
        kind="on_failure",
        target=f"arn:aws:sqs:us-east-1:{ACCOUNT}:dlq",
        body=b"record",
        attributes=dumps({"success": False}),
        attempts=0,
        due_at=70.0,
        owner="dead",
        lease_until=5.0,
    ),
    Update("functions", {"name": ORDERS}, reserved_concurrency=5),
)
async def check_0002(store: Any) -> None:
    (event,) = await store.claim_events(ORDERS, NOW, 10, "me", NOW + 60)
    assert (event.request_id, event.payload, event.invocations) == ("e-1", b'{"n":1}', 1)
    assert event.trace_id == "Root=1-00000000-000000000000000000000001"
    assert event.tenant_id is None  # the column came with 0017
    assert await store.list_event_configs() == [EventInvokeConfig(**DOCS["event_config"])]
    # e-2 was claimed by an engine whose lease ran out: it goes back to the queue
    assert await store.release_claims(NOW, "me") >= 2
    (delivery,) = await store.claim_deliveries(NOW, 10, "me", NOW + 60)
    assert (delivery.id, delivery.body, delivery.attributes) == (
        "d-1",
        b"record",
        {"success": False},
    )
    assert await store.list_reserved_concurrency() == {ORDERS: 5}


# 0003: deployment packages --------------------------------------------------------------
@step(
    3,
    Insert("packages", key="pkg-1", zip=b"PK\x05\x06" + bytes(18)),
)
async def check_0003(store: Any) -> None:
    assert await store.get_package("pkg-1") == b"PK\x05\x06" + bytes(18)


# 0004: results of synchronous calls ------------------------------------------------------
@step(
    4,
    Insert(
        "call_results",
        function=ORDERS,
        qualifier="$LATEST",
        invocation_id="inv-1",
        request_id="r-sync",
        executed_version="$LATEST",
        content_type="application/json",
        function_error=1,
        error_type="Unhandled",
        payload=b'{"ok":false}',
        log_tail=b"tail",
        duration_ms=12.5,
        finished_at=FAR,
    ),
)
async def check_0004(store: Any) -> None:
    found = await store.get_call_result(ORDERS, "$LATEST", "inv-1", 0.0)
    assert found is not None
    request_id, version, outcome = found
    assert (request_id, version) == ("r-sync", "$LATEST")
    assert (outcome.payload, outcome.function_error, outcome.error_type) == (
        b'{"ok":false}',
        True,
        "Unhandled",
    )
    assert outcome.log_tail == b"tail" and outcome.duration_ms == 12.5


# 0005: aliases, version numbers never reused -------------------------------------------
@step(
    5,
    Insert("function_versions", name=ORDERS, version="1", config=dumps(config(ORDERS, "1"))),
    Update("functions", {"name": ORDERS}, last_version=1),
    Insert("aliases", function=ORDERS, name="live", config=dumps(DOCS["alias"])),
)
async def check_0005(store: Any) -> None:
    assert await store.list_aliases() == [Alias(**DOCS["alias"])]
    versions = {(c.name, c.version) for c in await store.list_versions()}
    assert (ORDERS, "1") in versions
    # orders published 1 (last_version 1); billing was made before the column (default 0)
    assert (await store.publish_version(FunctionConfig.from_dict(config()))).version == "2"
    billing = FunctionConfig.from_dict(config(BILLING))
    assert (await store.publish_version(billing)).version == "1"


# 0006: provisioned concurrency -----------------------------------------------------------
@step(
    6,
    Insert(
        "provisioned_configs",
        function=ORDERS,
        qualifier="live",
        requested=2,
        last_modified="2026-01-01T00:00:00.000+0000",
    ),
)
async def check_0006(store: Any) -> None:
    assert await store.list_provisioned() == [(ORDERS, "live", 2, "2026-01-01T00:00:00.000+0000")]


# 0007: a synchronous call's timeline on its summary row ------------------------------------
@step(
    7,
    Insert(
        "invocations",
        request_id="r-timeline",
        function=ORDERS,
        invocation_type="RequestResponse",
        accepted_at=200.0,
        status="success",
        finished_at=200.2,
        attempts=1,
        duration_ms=2.0,
        timeline=dumps([[200.0, "start", {"a": 1}], [200.2, "end", {}]]),
    ),
)
async def check_0007(store: Any) -> None:
    summary, records = await store.get_invocation("r-timeline")
    assert summary is not None and summary.timeline is not None
    assert [(r.at, r.kind, r.detail) for r in records] == [
        (200.0, "start", {"a": 1}),
        (200.2, "end", {}),
    ]


# 0008: indexes for lists by outcome and type (rows from before the index are found) ---------
@step(
    8,
    Insert(
        "invocations",
        request_id="r-failed",
        function=ORDERS,
        invocation_type="Event",
        accepted_at=300.0,
        status="error",
        attempts=3,
        error_type="Unhandled",
    ),
)
async def check_0008(store: Any) -> None:
    # r-event was stored before the indexes were made: they hold it too
    failed = await store.find_invocations(InvocationFilter(status="error"))
    assert [s.request_id for s in failed] == ["r-failed", "r-event"]
    events = await store.find_invocations(InvocationFilter(invocation_type="Event"))
    assert [s.request_id for s in events] == ["r-failed", "r-event"]
    mine = await store.find_invocations(InvocationFilter(function=ORDERS))
    assert [s.request_id for s in mine] == ["r-failed", "r-timeline", "r-sync"]


# 0009: event source mappings and their checkpoints -------------------------------------------
MAPPING = DOCS["mapping"]


@step(
    9,
    Insert(
        "event_source_mappings",
        uuid=MAPPING["uuid"],
        function=ORDERS,
        last_modified=MAPPING["last_modified"],
        config=dumps(MAPPING),
    ),
    Insert("checkpoints", mapping=MAPPING["uuid"], shard="shardId-1", position="42"),
)
async def check_0009(store: Any) -> None:
    mapping = EventSourceMapping.from_dict(MAPPING)
    assert await store.list_mappings() == [mapping]
    assert await store.get_checkpoints(mapping.uuid) == {"shardId-1": "42"}


# 0010: resource-based policies ------------------------------------------------------------
@step(
    10,
    Insert("function_policies", function=ORDERS, qualifier="$LATEST", policy=dumps(DOCS["policy"])),
)
async def check_0010(store: Any) -> None:
    assert await store.list_policies() == [rows.policy_from_row(dumps(DOCS["policy"]))]


# 0011: layer versions -----------------------------------------------------------------------
@step(
    11,
    Insert("layer_versions", name="lib", version=1, layer=dumps(DOCS["layer"])),
)
async def check_0011(store: Any) -> None:
    assert await store.list_layer_versions() == [LayerVersion.from_dict(DOCS["layer"])]


# 0012: function URLs ------------------------------------------------------------------------
@step(
    12,
    Insert(
        "function_urls",
        function=ORDERS,
        qualifier="$LATEST",
        url_id=DOCS["url"]["url_id"],
        config=dumps(DOCS["url"]),
    ),
)
async def check_0012(store: Any) -> None:
    assert await store.list_function_urls() == [rows.url_from_row(dumps(DOCS["url"]))]


# 0013: stacks (lamina deploy) and their events ------------------------------------------------
STACK = DOCS["stack"]


@step(
    13,
    Insert(
        "stacks",
        name=STACK["name"],
        stack_id=STACK["stack_id"],
        status=STACK["status"],
        updated_at=1.0,
        stack=dumps(STACK),
    ),
    Insert("stack_events", stack_id=STACK["stack_id"], seq=1, event=dumps(DOCS["stack_event"])),
)
async def check_0013(store: Any) -> None:
    (stack,) = await store.list_stacks()
    assert stack == Stack.from_dict(STACK)
    assert stack.resources["Q"].attributes == {"Arn": "arn:q"}
    (event,) = await store.list_stack_events(stack.stack_id, 0)
    assert (event.seq, event.physical_id) == (1, "http://q")


# 0014: schedules, HTTP APIs, the engine clock's anchor ------------------------------------------
@step(
    14,
    Insert(
        "schedules",
        name="nightly",
        config=dumps(DOCS["schedule"]),
        state=dumps(DOCS["schedule_state"]),
        next_due=86400.0,
        token="t-0",
    ),
    Insert("http_apis", api_id="abcdef1234", config=dumps(DOCS["http_api"])),
    Insert("engine_clock", name="engine", engine_time=500.0, wall_time=1000.0, scale="60"),
)
async def check_0014(store: Any) -> None:
    ((schedule, state),) = await store.list_schedules()
    assert schedule.name == "nightly" and schedule.expression == "rate(1 day)"
    assert (state.next_due, state.fired) == (86400.0, 3)
    (api,) = await store.list_http_apis()
    assert (api.api_id, api.name, [r.key for r in api.routes]) == (
        "abcdef1234",
        "shop",
        ["GET /items/{id}"],
    )
    assert await store.get_engine_clock() == (500.0, 1000.0, "60")


# 0015: durable executions, first form (operations and history inside the document) -------------
OLD_RUN = DOCS["execution"]["arn"]
NEW_RUN = OLD_RUN.replace("run-1", "run-2")


@step(
    15,
    Insert(
        "durable_executions",
        arn=OLD_RUN,
        function=ORDERS,
        version="$LATEST",
        name="run-1",
        status="RUNNING",
        started_at=10.0,
        ended_at=20.0,
        due_at=310.0,
        expires_at=FAR,
        seq=1,
        doc=dumps(
            {
                **DOCS["execution"],
                "operations": DOCS["execution_ops"],
                "events": DOCS["execution_events"],
            }
        ),
    ),
)
async def check_0015(store: Any) -> None:
    seq, ex = await store.get_execution(OLD_RUN, all)
    assert (seq, ex.status, ex.name, ex.function) == (1, "RUNNING", "run-1", ORDERS)
    assert list(ex.operations) == []  # the first form's operations are not read back
    found = await store.find_execution(ORDERS, "run-1")
    assert found is not None and found[1].arn == OLD_RUN
    listed = await store.list_executions(ORDERS)
    assert "run-1" in [r[3] for r in listed]
    assert OLD_RUN in await store.due_executions(FAR, 10)


# 0017: the tenant an async event was sent for ---------------------------------------------------
@step(
    17,
    Insert(
        "async_events",
        request_id="e-tenant",
        function=BILLING,
        payload=b"{}",
        accepted_at=80.0,
        due_at=80.0,
        tenant_id="tenant-1",
    ),
)
async def check_0017(store: Any) -> None:
    (event,) = await store.claim_events(BILLING, NOW, 10, "me", NOW + 60)
    assert (event.request_id, event.tenant_id) == ("e-tenant", "tenant-1")


# 0019: code signing configurations, capacity providers ------------------------------------------
@step(
    19,
    Insert("code_signing_configs", arn=DOCS["signing"]["arn"], config=dumps(DOCS["signing"])),
    Insert("capacity_providers", name="cp", config=dumps(DOCS["provider"])),
)
async def check_0019(store: Any) -> None:
    assert await store.list_code_signing_configs() == [CodeSigningConfig.from_dict(DOCS["signing"])]
    assert await store.list_capacity_providers() == [CapacityProvider.from_dict(DOCS["provider"])]


# 0020 (PostgreSQL): engines sharing the database -----------------------------------------------
@step(
    20,
    Insert(
        "cluster_engines",
        engine="engine-a",
        address="10.0.0.1:9000",
        state="ready",
        started_at=1.0,
        lease_until=FAR,
    ),
    Insert("concurrency_grants", pool="*", engine="engine-a", granted=3),
    Insert(
        "running_calls",
        function=ORDERS,
        qualifier="$LATEST",
        invocation_id="inv-2",
        request_id="r-2",
        engine="engine-a",
        started_at=2.0,
    ),
    dialects=("postgres",),
)
async def check_0020(store: Any) -> None:
    engines = await store.cluster_engines()
    assert [(e.engine, e.address, e.state, e.alive) for e in engines] == [
        ("engine-a", "10.0.0.1:9000", "ready", True)
    ]
    assert await store.cluster_grants() == [("*", "engine-a", 3)]
    running = await store.running_call(ORDERS, "$LATEST", "inv-2")
    assert running is not None
    assert (running.request_id, running.engine, running.engine_alive) == ("r-2", "engine-a", True)


# 0021: durable executions, second form (operations and history in rows of their own) ------------
@step(
    21,
    Insert(
        "durable_executions",
        arn=NEW_RUN,
        function=ORDERS,
        version="$LATEST",
        name="run-2",
        status="RUNNING",
        started_at=11.0,
        seq=4,
        doc=dumps({**DOCS["execution"], "arn": NEW_RUN, "name": "run-2"}),
        writer="w-1",
    ),
    *(
        Insert("durable_operations", arn=NEW_RUN, id=op_id, position=op["_Position"], doc=dumps(op))
        for op_id, op in DOCS["execution_ops"].items()
    ),
    *(
        Insert("durable_events", arn=NEW_RUN, event_id=event["EventId"], doc=dumps(event))
        for event in DOCS["execution_events"]
    ),
)
async def check_0021(store: Any) -> None:
    seq, ex = await store.get_execution(NEW_RUN, all)
    assert seq == 4 and list(ex.operations) == ["x"]
    assert ex.operations["x"]["ExecutionDetails"] == {"InputPayload": "{}"}
    events = await store.execution_events(NEW_RUN, 0, 10, False)
    assert [e["EventType"] for e in events] == ["ExecutionStarted"]


# 0023: debug mode of function versions ---------------------------------------------------------
@step(
    23,
    Insert("debug_modes", function=ORDERS, version="$LATEST", settings=dumps(DOCS["debug"])),
)
async def check_0023(store: Any) -> None:
    assert await store.list_debug_modes() == [DebugSettings.from_dict(DOCS["debug"])]
