"""The engine's clock: every engine wait goes through it (ARCHITECTURE.md decision 3).

Retry delays, event age, destination back-off and the dispatcher's timers read `now()` and
wait with `wait()`. Three clocks:

* `RealClock` — wall time.
* `ScaledClock(n)` — engine time runs n times faster than wall time from the moment the
  engine starts (`lamina serve --time-scale 60`: one real second is one engine minute), so
  Lambda's 60 s and 120 s retry delays and its six-hour event age can be tested in seconds.
* `VirtualClock` — stands still until a test advances it.

A function's own run time and timeout stay real whatever the clock: they are the function's,
not the engine's.

A scaled or virtual clock continues across restarts: the engine keeps its *anchor* (an engine
time, the wall time it was read at, and the scale) in the store, and `resume` starts from it,
so due times written before a restart (retries, schedules) are still ahead by as much engine
time as they were, not hours away because engine time went back to wall time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Any


class RealClock:
    """Wall-clock time."""

    scale = 1.0
    # the clock itself, no Python frame around it: read three times a call
    now: staticmethod[[], float] = staticmethod(time.time)

    async def wait(self, event: asyncio.Event, until: float | None) -> None:
        """Return when `event` is set or engine time reaches `until` (None: no deadline)."""
        if event.is_set():
            return
        timeout = None if until is None else max(0.0, (until - self.now()) / self.scale)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    async def sleep(self, seconds: float) -> None:
        await self.wait(asyncio.Event(), self.now() + seconds)

    @property
    def label(self) -> str:
        """The scale as `--time-scale` names it."""
        return "1"

    def anchor(self) -> tuple[float, float] | None:
        """(engine time, wall time) to keep for a restart; None: wall time needs none."""
        return None

    def resume(self, engine_time: float, wall_time: float, label: str) -> None:
        """Continue from an anchor kept by an earlier run (wall time needs nothing)."""


class ScaledClock(RealClock):
    """Engine time that runs `scale` times faster than wall time."""

    def __init__(self, scale: float) -> None:
        if scale <= 0:
            raise ValueError("time scale must be positive")
        self.scale = scale
        self._wall0 = self._engine0 = time.time()

    def now(self) -> float:
        return self._engine0 + (time.time() - self._wall0) * self.scale

    @property
    def label(self) -> str:
        return f"{self.scale:g}"

    def anchor(self) -> tuple[float, float] | None:
        return self._engine0, self._wall0

    def resume(self, engine_time: float, wall_time: float, label: str) -> None:
        """Same scale: engine time goes on as if the engine had never stopped. Another
        scale: it goes on from the later of wall time and the engine time kept."""
        if label == self.label:
            self._engine0, self._wall0 = engine_time, wall_time
        else:
            self._wall0 = time.time()
            self._engine0 = max(self._wall0, continued(engine_time, wall_time, label))


class VirtualClock:
    """Time that moves only when `advance` is called (tests)."""

    scale = 0.0

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    def now(self) -> float:
        return self._now

    label = "virtual"

    def anchor(self) -> tuple[float, float] | None:
        return self._now, time.time()

    def resume(self, engine_time: float, wall_time: float, label: str) -> None:
        """Virtual time stood still while the engine was down: go on from where it was."""
        self._now = (
            engine_time
            if label == "virtual"
            else max(self._now, continued(engine_time, wall_time, label))
        )

    async def wait(self, event: asyncio.Event, until: float | None) -> None:
        if event.is_set() or (until is not None and until <= self._now):
            return
        waiter = asyncio.ensure_future(event.wait())
        timer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if until is not None:
            heapq.heappush(self._sleepers, (until, next(self._counter), timer))
        try:
            either: set[asyncio.Future[Any]] = {waiter, timer}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if not timer.done():
                timer.cancel()

    async def sleep(self, seconds: float) -> None:
        await self.wait(asyncio.Event(), self._now + seconds)

    def advance(self, seconds: float) -> None:
        """Move time forward and wake everything due by then."""
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, timer = heapq.heappop(self._sleepers)
            if not timer.done():
                timer.set_result(None)


def continued(engine_time: float, wall_time: float, label: str) -> float:
    """The engine time now of a clock anchored at (engine_time, wall_time) with `label`."""
    if label == "virtual":
        return engine_time
    return engine_time + (time.time() - wall_time) * float(label)


def from_scale(value: str | float) -> RealClock | ScaledClock | VirtualClock:
    """The clock for `--time-scale`: 1 (real), a factor, or 'virtual'."""
    if value == "virtual":
        return VirtualClock(time.time())
    scale = float(value)
    return RealClock() if scale == 1 else ScaledClock(scale)
