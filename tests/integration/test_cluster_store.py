"""The store side of engines sharing PostgreSQL: grants stay within a pool's capacity, a dead
engine's grants stop counting, a lease that ran out voids what its engine held."""

from __future__ import annotations

import asyncio
import time

from lamina.domain.model import FunctionConfig
from lamina.storage.postgres import PostgresStore

CONFIG = FunctionConfig(
    name="f",
    runtime="python3.12",
    handler="a.b",
    role="arn:aws:iam::123456789012:role/r",
    code_sha256="c2hh",
    code_size=10,
    revision_id="rev1",
    last_modified="2026-01-01T00:00:00.000+0000",
)


def test_grants_within_capacity_and_dead_engines_release_theirs(postgres):
    url = postgres.new_database(migrated=True)

    async def main() -> None:
        a, b = PostgresStore(url), PostgresStore(url)
        await a.open()
        await b.open()
        try:
            await a.create_function(CONFIG, {}, time.time())
            await a.set_reserved_concurrency("f", 3)
            await a.cluster_heartbeat("a", "ready", 0.6, {}, 300)  # joins (a new row)
            await b.cluster_heartbeat("b", "ready", 30, {}, 300)
            first = await a.cluster_grant("a", "ready", 0.6, "f", 2, 1000)
            assert (first.given, first.held_by_others, first.others) == (2, 0, 1)
            second = await b.cluster_grant("b", "ready", 30, "f", 5, 1000)
            assert (second.given, second.held_by_others) == (1, 2), "only what is left"
            assert (await b.cluster_grant("b", "ready", 30, "f", 1, 1000)).given == 0
            # the unreserved pool is the account limit minus every reservation
            assert (await b.cluster_grant("b", "ready", 30, "*", 5000, 1000)).given == 997
            await a.cluster_return({"f": 1})
            assert (await b.cluster_grant("b", "ready", 30, "f", 5, 1000)).given == 1
            time.sleep(0.7)  # a's lease (0.6 s) runs out: its grant no longer counts
            assert (await b.cluster_grant("b", "ready", 30, "f", 5, 1000)).given == 1
            renewal = await a.cluster_heartbeat("a", "ready", 0.6, {}, 300)
            assert renewal.lost, "a learns that what it held is void"
            assert (await a.cluster_grant("a", "ready", 0.6, "f", 1, 1000)).given == 0
            alive = {e.engine: e.alive for e in await b.cluster_engines()}
            assert alive == {a.origin: True, b.origin: True}
            await a.cluster_leave()
            assert [e.engine for e in await b.cluster_engines()] == [b.origin]
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())
