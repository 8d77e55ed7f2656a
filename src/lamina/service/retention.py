"""Retention of invocation records: by age and by count (`lamina serve --records-max-age`,
`--records-max-rows`).

Every `interval` seconds, the invocations accepted more than `max_age` engine seconds ago,
and those beyond the newest `max_rows`, are deleted with their timelines, oldest first and
`chunk` at a time, so the store's writer is never held for long and invocations keep being
recorded meanwhile. Ages are engine time: `--time-scale` shortens them like every other wait.
"""

from __future__ import annotations

import asyncio
import logging

from lamina.service.ports import Clock, Store

log = logging.getLogger("lamina.retention")


class RecordRetention:
    """Keeps the stored invocations within their age and count (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        max_age: float | None,
        max_rows: int | None,
        interval: float = 30.0,
        chunk: int = 2000,
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_age = max_age
        self.max_rows = max_rows
        self.interval = interval
        self.chunk = chunk
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.max_age or self.max_rows:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="lamina-record-retention"
            )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                deleted = await self.enforce()
                if deleted:
                    log.info("retention deleted %d invocation records", deleted)
            except Exception as exc:
                log.warning(
                    "record retention could not run (%s: %s); trying again in %s s",
                    type(exc).__name__,
                    exc,
                    self.interval,
                )
            await asyncio.sleep(self.interval)

    async def enforce(self) -> int:
        """One pass: delete what is over the limits; return how many invocations went."""
        before = await self._cutoff()
        if before is None:
            return 0
        deleted = 0
        while True:
            count = await self.store.purge_invocations(before, self.chunk)
            deleted += count
            if count < self.chunk:
                return deleted
            await asyncio.sleep(0)

    async def _cutoff(self) -> float | None:
        """Invocations accepted before this time go."""
        cutoffs = []
        if self.max_age:
            cutoffs.append(self.clock.now() - self.max_age)
        if self.max_rows:
            oldest_kept = await self.store.invocation_cutoff(self.max_rows)
            if oldest_kept is not None:
                cutoffs.append(oldest_kept)
        return max(cutoffs) if cutoffs else None
