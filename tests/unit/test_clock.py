import asyncio
import time

from lamina.service.clock import ScaledClock, VirtualClock, from_scale


def test_virtual_clock_wakes_waiters_when_advanced():
    async def main() -> None:
        clock = VirtualClock(100.0)
        woke: list[float] = []

        async def sleeper(until: float) -> None:
            await clock.wait(asyncio.Event(), until)
            woke.append(clock.now())

        tasks = [asyncio.create_task(sleeper(u)) for u in (160.0, 220.0)]
        await asyncio.sleep(0)
        clock.advance(30)
        await asyncio.sleep(0)
        assert woke == []
        clock.advance(30)
        await asyncio.sleep(0.01)
        assert woke == [160.0]
        event = asyncio.Event()
        waiter = asyncio.create_task(clock.wait(event, None))
        event.set()
        await asyncio.wait_for(waiter, 1)
        clock.advance(100)
        await asyncio.gather(*tasks)
        assert woke == [160.0, 260.0]

    asyncio.run(main())


def test_scaled_clock_runs_faster_and_waits_shorter():
    async def main() -> None:
        clock = ScaledClock(100)
        start_real, start = time.monotonic(), clock.now()
        await clock.wait(asyncio.Event(), start + 10)  # ten engine seconds
        assert 0.08 <= time.monotonic() - start_real < 0.5
        assert clock.now() - start >= 10

    asyncio.run(main())


def test_from_scale():
    assert type(from_scale("1")).__name__ == "RealClock"
    assert from_scale("60").scale == 60
    assert isinstance(from_scale("virtual"), VirtualClock)


def test_a_scaled_clock_resumes_from_its_anchor_across_a_restart() -> None:
    import time as _time

    from lamina.service import clock as clocks

    # an engine anchored its clock a minute (of wall time) ago, at scale 3600: a new engine
    # with the same scale goes on from there, 60 engine hours later, not at wall time
    first = clocks.ScaledClock(3600)
    _, wall_time = first.anchor()
    restarted = clocks.ScaledClock(3600)
    restarted.resume(wall_time - 60, wall_time - 60, first.label)
    assert restarted.now() > _time.time() + 59 * 3600
    assert restarted.anchor() == (wall_time - 60, wall_time - 60)


def test_a_virtual_clock_resumes_where_it_stood_and_a_new_scale_never_goes_back() -> None:
    import time as _time

    from lamina.service import clock as clocks

    virtual = clocks.VirtualClock(1_000.0)
    virtual.resume(5_000.0, _time.time() - 100, "virtual")
    assert virtual.now() == 5_000.0
    ahead = _time.time() + 86_400
    scaled = clocks.ScaledClock(2)
    scaled.resume(ahead, _time.time(), "virtual")  # was virtual, a day ahead
    assert scaled.now() >= ahead
    real = clocks.RealClock()
    real.resume(ahead, _time.time(), "60")  # wall time needs no anchor
    assert real.now() < ahead and real.anchor() is None
