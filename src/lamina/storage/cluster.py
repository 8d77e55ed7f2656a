"""Store operations of engines sharing PostgreSQL (mixed into PostgresStore; docs/CLUSTER.md).

Leases, concurrency grants and the registry of running calls live in the tables of
migration 0020; `lamina_renew` and `lamina_grant` (PL/pgSQL, same migration) make a renewal
or a grant one round trip. Times compared here are PostgreSQL's clock.
"""

from __future__ import annotations

from typing import Any

from lamina.domain.cluster import EngineInfo, Grant, Renewal, RunningCall

Rows = list[tuple[Any, ...]]


class ClusterQueries:
    """Needs `_query`, `_change` (storage.base.SqlStore) and `origin` (the engine's id)."""

    shared = True  # several engines may share this store
    origin: str

    async def _query(self, name: str, params: dict[str, Any] | None = None) -> Rows:
        raise NotImplementedError

    async def _change(self, *steps: Any) -> list[Rows]:
        raise NotImplementedError

    async def cluster_heartbeat(
        self, address: str, state: str, ttl: float, returns: dict[str, int], forget_after: float
    ) -> Renewal:
        """Renew this engine's lease, give back `returns` ({pool: count}) and forget engines
        dead for `forget_after` seconds, in one transaction."""
        steps: list[Any] = [
            (
                "cluster_renew",
                {"engine": self.origin, "address": address, "state": state, "ttl": ttl},
            )
        ]
        if returns:
            steps.append(
                (
                    "cluster_return",
                    [
                        {"engine": self.origin, "pool": pool, "count": count}
                        for pool, count in returns.items()
                    ],
                )
            )
        steps.append(("cluster_purge_dead", {"keep": forget_after}))
        renewed = (await self._change(*steps))[0][0]
        return Renewal(renewed[0], renewed[1])

    async def cluster_grant(
        self, address: str, state: str, ttl: float, pool: str, want: int, account_limit: int
    ) -> Grant:
        (row,) = await self._query(
            "cluster_grant",
            {
                "engine": self.origin,
                "address": address,
                "state": state,
                "ttl": ttl,
                "pool": pool,
                "want": want,
                "account": account_limit,
            },
        )
        return Grant(row[0], row[1], row[2], Renewal(row[3], row[4]))

    async def cluster_return(self, returns: dict[str, int], notify: str | None = None) -> None:
        """Give back grants; `notify` is announced in the same transaction."""
        steps: list[Any] = [("soft_commit", {})]
        if returns:
            steps.append(
                (
                    "cluster_return",
                    [
                        {"engine": self.origin, "pool": pool, "count": count}
                        for pool, count in returns.items()
                    ],
                )
            )
        if notify:
            steps.append(("cluster_notify", {"payload": f"{notify}:{self.origin}"}))
        if len(steps) > 1:
            await self._change(*steps)

    async def cluster_notify(self, kind: str) -> None:
        await self._query("cluster_notify", {"payload": f"{kind}:{self.origin}"})

    async def cluster_leave(self) -> None:
        """This engine stops: its row and grants go at once (no waiting for the lease)."""
        await self._change(
            ("cluster_leave", {"engine": self.origin}),
            ("cluster_notify", {"payload": f"engine_left:{self.origin}"}),
        )

    async def cluster_engines(self) -> list[EngineInfo]:
        return [EngineInfo(*row) for row in await self._query("cluster_engines")]

    async def cluster_grants(self) -> list[tuple[str, str, int]]:
        return [tuple(row) for row in await self._query("cluster_grants")]

    # synchronous calls running on some engine ----------------------------------------------
    async def register_calls(
        self, started: list[tuple[str, str, str, str, float]], ended: list[tuple[str, str, str]]
    ) -> None:
        """Record calls running here ((function, qualifier, invocation id, request id,
        started at)) and forget ended ones, in one transaction (soft state: it commits
        without waiting for the disk)."""
        steps: list[Any] = [("soft_commit", {})]
        if started:
            steps.append(
                (
                    "register_call",
                    [
                        {
                            "function": f,
                            "qualifier": q,
                            "invocation_id": i,
                            "request_id": r,
                            "engine": self.origin,
                            "started_at": at,
                        }
                        for f, q, i, r, at in started
                    ],
                )
            )
        if ended:
            steps.append(
                (
                    "unregister_call",
                    [
                        {"function": f, "qualifier": q, "invocation_id": i, "engine": self.origin}
                        for f, q, i in ended
                    ],
                )
            )
        if len(steps) > 1:
            await self._change(*steps)

    async def running_call(
        self, function: str, qualifier: str, invocation_id: str
    ) -> RunningCall | None:
        found = await self._query(
            "running_call",
            {"function": function, "qualifier": qualifier, "invocation_id": invocation_id},
        )
        return RunningCall(*found[0]) if found else None

    async def release_dead_claims(self) -> int:
        """Queued work claimed by engines that are dead (their lease ran out) goes back."""
        events, deliveries = await self._change(
            ("release_dead_events", {}), ("release_dead_deliveries", {})
        )
        return len(events) + len(deliveries)

    async def finish_shared_call(
        self,
        function: str,
        qualifier: str,
        invocation_id: str,
        request_id: str,
        executed_version: str,
        outcome: Any,
        finished_at: float,
        keep_after: float,
    ) -> None:
        """Store the result of a call other engines may wait for and forget it as running,
        in one transaction (announced: their waiters look again). A result stored first
        (by an engine that gave up on this one) wins."""
        key = {"function": function, "qualifier": qualifier, "invocation_id": invocation_id}
        await self._change(
            ("purge_call_results", {"before": keep_after}),
            (
                "put_call_result",
                {
                    **key,
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
            ("forget_call", key),
        )
