"""Debug mode of function versions (`lamina debug`, `PUT /_lamina/debug/FUNCTION`): the
rules are in domain.debug; the pool starts the debug environment. Kept in the store, so it
survives an engine restart (`load` gives the pool what was on); it ends when turned off, and
when its function or version is deleted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from lamina.domain import errors
from lamina.domain.debug import DebugSettings, debug_settings
from lamina.domain.model import LATEST
from lamina.service.functions import FunctionService
from lamina.service.ports import EnvironmentPool, Store

log = logging.getLogger("lamina.debug")


class DebugService:
    """Turns debug mode on and off (see the module docstring)."""

    def __init__(self, functions: FunctionService, pool: EnvironmentPool, store: Store) -> None:
        self.functions = functions
        self.pool = pool
        self.store = store
        self._writes: set[asyncio.Task[None]] = set()
        functions.on_delete.append(self._deleted)
        functions.on_delete_qualifier.append(self._deleted_version)

    async def load(self) -> None:
        """Debug mode as the store has it (after the functions are loaded); a row whose
        function or version is gone is dropped."""
        for settings in await self.store.list_debug_modes():
            try:
                config = self.functions.resolve(settings.function, settings.version)
            except errors.ResourceNotFound:
                await self.store.delete_debug_mode(settings.function, settings.version)
                continue
            if config.version == settings.version:
                self.pool.set_debug(settings)

    def list(self) -> list[DebugSettings]:
        return sorted(self.pool.debug.values(), key=lambda s: (s.function, s.version))

    def get(self, name: str, qualifier: str | None) -> DebugSettings | None:
        config = self.functions.resolve(name, qualifier)
        return self.pool.debug.get((name, config.version))

    async def start(
        self, name: str, qualifier: str | None, port: object, wait: object
    ) -> DebugSettings:
        """Debug mode on (or changed) for the version `qualifier` selects ($LATEST when
        none; an alias: the version it points to now)."""
        config = self.functions.resolve(name, qualifier)
        settings = debug_settings(name, config.version, config.runtime, port, wait, qualifier)
        for other in self.pool.debug.values():
            if other.port == settings.port and (other.function, other.version) != (
                name,
                config.version,
            ):
                raise errors.ResourceConflict(
                    f"Port {settings.port} is taken by the debug mode of {other.function} "
                    f"(version {other.version}); choose another with --port."
                )
        await self.store.put_debug_mode(settings)
        self.pool.set_debug(settings)
        return settings

    async def stop(self, name: str, qualifier: str | None) -> None:
        config = self.functions.resolve(name, qualifier)
        await self.store.delete_debug_mode(name, config.version)
        self.pool.clear_debug(name, config.version)

    async def drain(self) -> None:
        """Wait for the deletions that function deletes started (engine stop, tests)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    def _deleted(self, name: str) -> None:
        for function, version in list(self.pool.debug):
            if function == name:
                self.pool.clear_debug(function, version)
        self._write(self.store.delete_debug_mode(name))

    def _deleted_version(self, name: str, qualifier: str) -> None:
        if qualifier != LATEST:
            self.pool.clear_debug(name, qualifier)
            self._write(self.store.delete_debug_mode(name, qualifier))

    def _write(self, write: Awaitable[None]) -> None:
        """A store write started from a (synchronous) delete callback, awaited by `drain`."""

        async def run() -> None:
            try:
                await write
            except Exception:  # the next load drops the row anyway
                log.warning("could not remove a debug mode row", exc_info=True)

        task = asyncio.get_running_loop().create_task(run())
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
