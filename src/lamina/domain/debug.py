"""Debug mode: a function's next environment runs under a debugger (`lamina debug`).

Rules
-----
* Python runs its handler with debugpy listening on 127.0.0.1:PORT (default 5678, the port
  VS Code's Python debugger attaches to); Node.js runs with its inspector on 127.0.0.1:PORT
  (default 9229). Other runtimes cannot be debugged this way.
* One debug environment per function version at a time (the port is single): while it is
  busy, further invocations of that version wait for it instead of starting environments
  of their own, so every invocation stops at the breakpoints.
* While debug mode is on, the version's timeout does not fire: the debug environment's
  invocations and its Init may last `DEBUG_LIMIT_S`, and the runtime is told that deadline.
  The rule holds for the whole of debug mode, not only while a client is attached, so that
  the time spent waiting for the IDE to attach (`wait`) or paused before the next step is
  never counted against the function.
* `wait`: the environment's Init waits for a client to attach before it loads the handler
  (debugpy's wait_for_client; Node's --inspect-wait), so the first invocation is held until
  then and breakpoints in module-level code are hit too.
* The debug environment is never frozen between invocations (a frozen debuggee would stall
  the IDE's connection).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lamina.domain import errors, runtimes

DEBUG_LIMIT_S = 3600
DEFAULT_PORTS = {"python": 5678, "nodejs": 9229}


@dataclass(frozen=True, slots=True)
class DebugSettings:
    """Debug mode of one function version."""

    function: str
    version: str
    port: int
    wait: bool = False
    qualifier: str | None = None  # as given (an alias resolves to its version at the time)

    def to_dict(self) -> dict[str, object]:
        return {
            "FunctionName": self.function,
            "Version": self.version,
            "Port": self.port,
            "Wait": self.wait,
            "Qualifier": self.qualifier,
            "Host": "127.0.0.1",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DebugSettings:
        """As `to_dict` wrote it (the store keeps debug mode across restarts)."""
        return cls(
            data["FunctionName"],
            data["Version"],
            int(data["Port"]),
            bool(data.get("Wait")),
            data.get("Qualifier"),
        )


def debug_settings(
    function: str,
    version: str,
    runtime: str | None,
    port: object,
    wait: object,
    qualifier: str | None,
) -> DebugSettings:
    """Debug mode for a version of a function on `runtime`; a clear 400 if it cannot be."""
    family = runtimes.family(runtime or "")
    if family not in DEFAULT_PORTS:
        raise errors.InvalidParameterValue(
            f"Lamina can debug Python and Node.js functions; {function} runs "
            f"{runtime or 'a container image'}."
        )
    if port is None:
        port = DEFAULT_PORTS[family]
    if not isinstance(port, int) or isinstance(port, bool) or not 1024 <= port <= 65535:
        raise errors.ValidationError.field(port, "port", "Member must be between 1024 and 65535")
    if not isinstance(wait, bool):
        raise errors.ValidationError.field(wait, "wait", "Member must be a boolean")
    return DebugSettings(function, version, port, wait, qualifier)
