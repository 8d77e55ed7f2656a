"""Heartbeats of running calls share one timer per loop and interval (api/invoke.py)."""

from __future__ import annotations

import asyncio

from lamina.api.invoke import Heartbeat


class FakeRequest:
    """A request whose connection takes interim responses until `gone`."""

    def __init__(self) -> None:
        self.beats: list[float] = []
        self.gone = False
        self.loop = asyncio.get_running_loop()  # as `http.Request.loop`: the serving loop

    def send_interim(self, status: int = 100) -> bool:
        assert status == 100
        if self.gone:
            return False
        self.beats.append(asyncio.get_running_loop().time())
        return True


def test_each_running_call_beats_every_interval_until_stopped() -> None:
    async def main() -> tuple[list[FakeRequest], float, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        requests = [FakeRequest() for _ in range(3)]
        first = Heartbeat(requests[0], 0.08)  # type: ignore[arg-type]
        await asyncio.sleep(0.03)
        second = Heartbeat(requests[1], 0.08)  # type: ignore[arg-type]
        third = Heartbeat(requests[2], 0.08)  # type: ignore[arg-type]
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
    async def main() -> FakeRequest:
        request = FakeRequest()
        heartbeat = Heartbeat(request, 0)  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        heartbeat.stop()
        return request

    assert asyncio.run(main()).beats == []


def test_a_finished_loop_leaves_no_heartbeat_state_behind() -> None:
    import gc
    import weakref

    async def main() -> weakref.ref[asyncio.AbstractEventLoop]:
        heartbeat = Heartbeat(FakeRequest(), 30)  # type: ignore[arg-type]
        heartbeat.stop()
        return weakref.ref(asyncio.get_running_loop())

    loop = asyncio.run(main())
    gc.collect()
    assert loop() is None  # the per-loop heartbeat queue does not keep its loop alive
