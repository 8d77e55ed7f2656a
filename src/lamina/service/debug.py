"""Debug mode of function versions (`lamina debug`, `PUT /_lamina/debug/FUNCTION`): the
rules are in domain.debug; the pool starts the debug environment. Kept in memory: debug mode
ends with the engine, and when its function or version is deleted."""

from __future__ import annotations

from lamina.domain import errors
from lamina.domain.debug import DebugSettings, debug_settings
from lamina.domain.model import LATEST
from lamina.service.functions import FunctionService
from lamina.service.ports import EnvironmentPool


class DebugService:
    """Turns debug mode on and off (see the module docstring)."""

    def __init__(self, functions: FunctionService, pool: EnvironmentPool) -> None:
        self.functions = functions
        self.pool = pool
        functions.on_delete.append(self._deleted)
        functions.on_delete_qualifier.append(self._deleted_version)

    def list(self) -> list[DebugSettings]:
        return sorted(self.pool.debug.values(), key=lambda s: (s.function, s.version))

    def get(self, name: str, qualifier: str | None) -> DebugSettings | None:
        config = self.functions.resolve(name, qualifier)
        return self.pool.debug.get((name, config.version))

    def start(self, name: str, qualifier: str | None, port: object,
              wait: object) -> DebugSettings:
        """Debug mode on (or changed) for the version `qualifier` selects ($LATEST when
        none; an alias: the version it points to now)."""
        config = self.functions.resolve(name, qualifier)
        settings = debug_settings(name, config.version, config.runtime, port,
                                  wait, qualifier)
        for other in self.pool.debug.values():
            if other.port == settings.port and \
                    (other.function, other.version) != (name, config.version):
                raise errors.ResourceConflict(
                    f"Port {settings.port} is taken by the debug mode of {other.function} "
                    f"(version {other.version}); choose another with --port.")
        self.pool.set_debug(settings)
        return settings

    def stop(self, name: str, qualifier: str | None) -> None:
        config = self.functions.resolve(name, qualifier)
        self.pool.clear_debug(name, config.version)

    def _deleted(self, name: str) -> None:
        for function, version in list(self.pool.debug):
            if function == name:
                self.pool.clear_debug(function, version)

    def _deleted_version(self, name: str, qualifier: str) -> None:
        if qualifier != LATEST:
            self.pool.clear_debug(name, qualifier)
