"""Heartbeats of running calls share one timer per loop and interval (api/invoke.py)."""

from __future__ import annotations

import asyncio

from lamina.api.invoke import Heartbeat
from lamina.http.server import Request


class FakeConnection:
    """A request's connection (`http.server.Channel`) that takes interim responses until
    `gone`, and notes when each came."""

    closed = False

    def __init__(self) -> None:
        self.beats: list[float] = []
        self.gone = False
        self._loop = asyncio.get_running_loop()  # the serving loop

    def write_interim(self, status: int) -> bool:
        assert status == 100
        if self.gone:
            return False
        self.beats.append(asyncio.get_running_loop().time())
        return True


def request_on(connection: FakeConnection) -> Request:
    return Request("POST", "/2015-03-31/functions/f/invocations", "", {}, b"{}", connection)


def test_each_running_call_beats_every_interval_until_stopped() -> None:
    async def main() -> tuple[list[FakeConnection], float, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        requests = [FakeConnection() for _ in range(3)]
        first = Heartbeat(request_on(requests[0]), 0.08)
        await asyncio.sleep(0.03)
        second = Heartbeat(request_on(requests[1]), 0.08)
        third = Heartbeat(request_on(requests[2]), 0.08)
        third.stop()  # a short call: never beats
        await asyncio.sleep(0.3)
        requests[1].gone = True  # its client went away: no more beats, no error
        await asyncio.sleep(0.1)
        first.stop()
        second.stop()
        stopped = loop.time()
        await asyncio.sleep(0.2)
        return requests, start, stopped

    requests, start, stopped = asyncio.run(main())
    ran = stopped - start
    first, second, third = requests
    assert third.beats == []
    assert 3 <= len(first.beats) <= int(ran / 0.08) + 1, first.beats
    gaps = [b - a for a, b in zip(first.beats, first.beats[1:], strict=False)]
    assert all(0.075 <= gap <= 0.08 * 1.125 + 0.05 for gap in gaps), gaps
    assert 2 <= len(second.beats) <= 5, second.beats
    assert all(beat <= stopped for beat in first.beats + second.beats)  # none after stop


def test_zero_interval_means_no_heartbeats() -> None:
    async def main() -> FakeConnection:
        request = FakeConnection()
        heartbeat = Heartbeat(request_on(request), 0)
        await asyncio.sleep(0.05)
        heartbeat.stop()
        return request

    assert asyncio.run(main()).beats == []


def test_a_finished_loop_leaves_no_heartbeat_state_behind() -> None:
    import gc
    import weakref

    async def main() -> weakref.ref[asyncio.AbstractEventLoop]:
        heartbeat = Heartbeat(request_on(FakeConnection()), 30)
        heartbeat.stop()
        return weakref.ref(asyncio.get_running_loop())

    loop = asyncio.run(main())
    gc.collect()
    assert loop() is None  # the per-loop heartbeat queue does not keep its loop alive
