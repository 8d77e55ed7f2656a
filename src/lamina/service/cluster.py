"""This engine among the engines sharing a PostgreSQL store (docs/CLUSTER.md).

Theory of operation
-------------------
* **Membership.** Each engine has a row in `cluster_engines` with a lease on PostgreSQL's
  clock, renewed by a heartbeat every `lease / 3` seconds. An engine whose lease ran out is
  dead to the others: its concurrency grants no longer count, its queued work is taken back,
  and the calls it was running are answered as failed to the SDK retries that wait on them.
* **Self-fencing.** An engine trusts its own lease only until `sent + 0.75 * lease`, `sent`
  being when it sent the renewal that PostgreSQL answered (PostgreSQL starts the lease later
  than that, so the engine stops trusting it before the others stop counting it). Past that,
  it admits no call on its grants until a renewal comes back; a renewal that finds the lease
  had run out voids every grant the engine held.
* **Quotas.** `SharedQuotas` holds this engine's grant of each concurrency pool (the unreserved
  account pool `*` and each reserved function). A call inside the grant takes a slot with no
  round trip; past it, one round trip (`lamina_grant`) asks the store for more, given only
  within the pool's capacity minus what live engines hold. Grants not needed over the last
  heartbeat go back with the next one. When the store has nothing left to give but other
  engines hold some, this engine announces `quota_wanted=<pool>`; the others give back what
  they are not using at once and answer `quota_freed=<pool>`, and the grant is asked once
  more. Only then is the call throttled: a 429 means every slot of the pool is held by an
  engine that is running calls with it, or that did not answer within `RECLAIM_WAIT_S`.
* **Health.** `/_lamina/health` answers 200 while the engine is ready and its store answered
  within two heartbeats, 503 while it starts, drains (SIGTERM) or has lost its store.

Alone on SQLite (or memory) there is one engine: no lease, no quotas, health is `ready`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from lamina.domain import errors
from lamina.domain.cluster import EngineInfo, Renewal
from lamina.service.ports import ClusterStore

log = logging.getLogger("lamina.cluster")

TRUST = 0.75  # an engine trusts its lease for this share of it after sending
FORGET_AFTER_S = 300.0  # rows of engines dead this long are deleted
RECLAIM_WAIT_S = 0.05  # how long a shortage waits for other engines to give back
RECLAIM_PAUSE_S = 0.1  # after a reclaim that freed nothing, throttle without asking


class Cluster:
    """Membership, lease and health of this engine (see the module docstring)."""

    def __init__(self, store: Any, address: str, lease_s: float, account_limit: int) -> None:
        self.shared = bool(getattr(store, "shared", False))
        self.store: ClusterStore = store
        self.engine_id: str = store.origin if self.shared else "local"
        self.address = address
        self.lease_s = lease_s
        self.account_limit = account_limit
        self.state = "starting"
        self.valid_until = float("inf") if not self.shared else 0.0
        self.store_ok_at = time.monotonic()
        self.engines: list[EngineInfo] = []
        self.quotas: SharedQuotas | None = (
            SharedQuotas(self, lambda pool: 0) if self.shared else None
        )
        self.on_engines: list[Callable[[list[EngineInfo]], None]] = []
        self._joined = False
        self._task: asyncio.Task[None] | None = None

    @property
    def heartbeat_s(self) -> float:
        return self.lease_s / 3

    # lifecycle -----------------------------------------------------------------------
    async def join(self) -> None:
        """Register (the first renewal) and start the heartbeat."""
        if not self.shared:
            return
        await self.beat()
        self._joined = True
        self._task = asyncio.get_running_loop().create_task(
            self._loop(), name="lamina-cluster-heartbeat"
        )

    def ready(self) -> None:
        if self.state == "starting":
            self.state = "ready"

    async def drain(self) -> None:
        """SIGTERM: say so (health 503, the row in the store) and keep serving."""
        self.state = "draining"
        if self.shared:
            try:
                await self.beat()
            except errors.StoreUnavailable:
                pass

    async def leave(self) -> None:
        """The engine stops: its grants go back at once, without waiting for the lease."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.shared and self._joined:
            self.valid_until = 0.0
            try:
                await self.store.cluster_leave()
            except errors.StoreUnavailable as exc:
                log.warning("could not leave the cluster (%s); the lease will run out", exc)

    # heartbeat -------------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self.beat()
            except errors.StoreUnavailable as exc:
                log.warning("cannot renew this engine's lease: %s", exc)
            except Exception:
                log.exception("cluster heartbeat failed")

    async def beat(self) -> None:
        """Renew the lease, give back unneeded grants, and read who else is alive."""
        assert self.quotas is not None
        returns = self.quotas.surplus()
        sent = time.monotonic()
        renewal = await self.store.cluster_heartbeat(
            self.address, self._store_state(), self.lease_s, returns, FORGET_AFTER_S
        )
        self.renewed(sent, renewal)
        engines = await self.store.cluster_engines()
        changed = [e.engine for e in engines if e.alive] != [
            e.engine for e in self.engines if e.alive
        ]
        self.engines = engines
        if changed:
            log.info(
                "engines sharing the store: %s",
                ", ".join(
                    f"{e.engine}@{e.address}{' (this one)' if e.engine == self.engine_id else ''}"
                    for e in engines
                    if e.alive
                ),
            )
            for callback in self.on_engines:
                callback(engines)

    def _store_state(self) -> str:
        return "draining" if self.state == "draining" else "ready"

    def renewed(self, sent: float, renewal: Renewal) -> None:
        """A renewal PostgreSQL answered (heartbeat or grant)."""
        self.store_ok_at = time.monotonic()
        if renewal.lost and self._joined:
            log.warning(
                "this engine's lease had run out (the others counted it dead): "
                "its concurrency grants are void"
            )
            assert self.quotas is not None
            self.quotas.void()
        self.valid_until = sent + self.lease_s * TRUST

    def lease_valid(self) -> bool:
        return time.monotonic() < self.valid_until

    def alive(self) -> list[EngineInfo]:
        return [e for e in self.engines if e.alive]

    def share(self, count: int) -> int:
        """This engine's part of `count` things split among the live engines (in the order
        they joined; the first ones take one more when it does not divide)."""
        alive = [e.engine for e in self.alive()]
        if not self.shared or self.engine_id not in alive:
            return count
        rank = alive.index(self.engine_id)
        return count // len(alive) + (1 if rank < count % len(alive) else 0)

    # health ----------------------------------------------------------------------------
    def health(self) -> tuple[int, dict[str, object]]:
        """(status, body) for `/_lamina/health`: 200 only when this engine should get work."""
        store_ok = not self.shared or time.monotonic() - self.store_ok_at < 2 * self.heartbeat_s + 1
        status = self.state if store_ok or self.state == "draining" else "store-unreachable"
        body: dict[str, object] = {
            "status": "ok" if status == "ready" else status,
            "engine": self.engine_id,
            "store": "ok" if store_ok else "unreachable",
        }
        if self.shared:
            body["engines"] = len(self.alive())
        return (200 if status == "ready" else 503), body

    # notices from other engines (PostgreSQL LISTEN) --------------------------------------
    def on_notice(self, kind: str, own: bool) -> bool:
        """Handle a cluster notice; False when `kind` is not one."""
        if self.quotas is None:
            return kind.startswith(("quota_", "engine_left"))
        if kind.startswith("quota_wanted="):
            if not own:
                self.quotas.give_back(kind.partition("=")[2], answer=True)
            return True
        if kind.startswith("quota_freed="):
            if not own:
                self.quotas.answered(kind.partition("=")[2])
            return True
        return kind == "engine_left"


class SharedQuotas:
    """This engine's grants of the concurrency pools (see the module docstring). `used(pool)`
    is how many calls this engine runs in a pool (the limiter's count)."""

    def __init__(self, cluster: Cluster, used: Callable[[str], int]) -> None:
        self.cluster = cluster
        self.used = used
        self.granted: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self._growing: dict[str, asyncio.Task[int]] = {}
        self._waiting: Counter[str] = Counter()
        self._answers: dict[str, _Answers] = {}
        self._pause_until: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # the hot path ------------------------------------------------------------------------
    def allows(self, pool: str, in_flight: int) -> bool:
        return in_flight < self.granted[pool] and time.monotonic() < self.cluster.valid_until

    def note(self, pool: str, in_flight: int) -> None:
        self.peak[pool] = max(self.peak[pool], in_flight)

    # asking for more -------------------------------------------------------------------
    async def grow(self, pool: str, in_flight: int, reason: str) -> None:
        """Return once the grant of `pool` may admit one more call (the caller checks again:
        others may take it first), or raise the throttle."""
        task = self._growing.get(pool)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._grow(pool))
            self._growing[pool] = task
        self._waiting[pool] += 1
        try:
            given = await asyncio.shield(task)
        finally:
            self._waiting[pool] -= 1
        if given == 0 and not self.allows(pool, self.used(pool)):
            raise errors.TooManyRequests(reason)

    async def room(self, pool: str, in_flight: int, wanted: int) -> int:
        """Grow the grant toward `wanted` more calls (one round trip, no asking the other
        engines) and say how many it admits now."""
        spare = self.granted[pool] - in_flight if self.cluster.lease_valid() else 0
        if spare < wanted and time.monotonic() >= self._pause_until.get(pool, 0.0):
            given, _, _ = await self._ask(pool, wanted - max(spare, 0))
            if given == 0:
                self._pause_until[pool] = time.monotonic() + RECLAIM_PAUSE_S
        if not self.cluster.lease_valid():
            return 0
        return max(0, min(wanted, self.granted[pool] - self.used(pool)))

    async def _grow(self, pool: str) -> int:
        try:
            await asyncio.sleep(0)  # let the callers that arrive together count as waiting
            used = self.used(pool)
            need = max(1, used + self._waiting[pool] - self.granted[pool])
            given, held, others = await self._ask(pool, need + min(used // 4, 16))
            if given >= need or held == 0 or others == 0:
                return given
            if time.monotonic() < self._pause_until.get(pool, 0.0):
                return given
            # the store has nothing left, other engines hold some: ask them for what they
            # are not using, wait for their answers (or a moment), and ask the store again
            answers = self._answers[pool] = _Answers(others)
            await self.cluster.store.cluster_notify(f"quota_wanted={pool}")
            try:
                await asyncio.wait_for(answers.all.wait(), RECLAIM_WAIT_S)
            except TimeoutError:
                pass
            finally:
                self._answers.pop(pool, None)
            more, _, _ = await self._ask(pool, need - given)
            if more == 0:
                self._pause_until[pool] = time.monotonic() + RECLAIM_PAUSE_S
            return given + more
        finally:
            self._growing.pop(pool, None)

    async def _ask(self, pool: str, want: int) -> tuple[int, int, int]:
        cluster = self.cluster
        sent = time.monotonic()
        grant = await cluster.store.cluster_grant(
            cluster.address,
            cluster._store_state(),
            cluster.lease_s,
            pool,
            want,
            cluster.account_limit,
        )
        cluster.renewed(sent, grant.renewal)
        self.granted[pool] += grant.given
        return grant.given, grant.held_by_others, grant.others

    # giving back -----------------------------------------------------------------------
    def surplus(self) -> dict[str, int]:
        """For the heartbeat: what was not needed since the last one, taken off the grants
        now (before the store hears of it: a grant is never larger here than there)."""
        returns = {}
        for pool, granted in list(self.granted.items()):
            keep = max(self.used(pool), self.peak[pool])
            self.peak[pool] = self.used(pool)
            if granted > keep:
                returns[pool] = granted - keep
                self.granted[pool] = keep
            if self.granted[pool] == 0:
                del self.granted[pool]
        return returns

    def give_back(self, pool: str, answer: bool = False) -> None:
        """Give back at once what `pool` holds beyond the calls running in it (another
        engine is short, or the pool's limit changed); answer the asker if `answer`."""
        spare = self.granted[pool] - self.used(pool)
        if spare > 0:
            self.granted[pool] -= spare
            self.peak[pool] = self.used(pool)
        if spare <= 0 and not answer:
            return
        task = asyncio.get_running_loop().create_task(
            self._give_back(pool, max(spare, 0), f"quota_freed={pool}" if answer else None)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def shrink(self, pool: str) -> None:
        """A pool's capacity changed (a reservation was put or deleted)."""
        if pool in self.granted:
            self.give_back(pool)

    async def _give_back(self, pool: str, count: int, notify: str | None) -> None:
        try:
            await self.cluster.store.cluster_return({pool: count} if count else {}, notify)
        except errors.StoreUnavailable as exc:
            log.warning("could not give back concurrency of %s: %s", pool, exc)

    def answered(self, pool: str) -> None:
        answers = self._answers.get(pool)
        if answers is not None:
            answers.count += 1
            if answers.count >= answers.expected:
                answers.all.set()

    def void(self) -> None:
        """The lease ran out: nothing is held any more."""
        self.granted.clear()
        self.peak.clear()


class _Answers:
    __slots__ = ("all", "count", "expected")

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.all = asyncio.Event()
