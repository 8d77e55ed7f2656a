"""An environment reset (spec §9.2): the /tmp a crashed or timed-out runtime leaves behind.

Theory of operation (docs/ENVIRONMENT.md, "After a crash or a timeout")
-----------------------------------------------------------------------
* When a runtime crashes, runs out of memory or times out, Lambda resets its execution
  environment: the runtime is started again and runs Init again, and "the Lambda reset does
  not clear the /tmp directory content prior to the next init phase". Lamina ends that
  environment and starts a new one for the next invocation; what it keeps of the old one is
  its /tmp, here.
* The environment asks its launcher to keep its runtime's /tmp at the moment it decides the
  runtime is done for (the timeout or out-of-memory kill, the runtime's own exit), so the
  next invocation finds it even if it comes before the old runtime is reaped. The launcher
  says how: a sandbox's /tmp is a tmpfs mounted on a slot (sandbox.Slots), which the slot
  keeps mounted; without the sandbox, the runtime's TMPDIR directory is moved aside.
* A kept /tmp is filed under its environment's key: the function's name (which holds its
  account), version and deployment, and the tenant of a PER_TENANT function. Only the next
  runtime started for that same key takes it (`take`), and adopts it as its own /tmp: it
  ends with that runtime, or is kept again if that one is reset in turn. Another function,
  version, configuration, tenant or account never sees it.
* The environment's log stream goes with it: on Lambda the reset happens inside the same
  environment, whose log stream goes on, so the runtime that takes the reset's place writes
  on in that stream (and is told its name). Where no /tmp can be kept (a sandbox without
  root), the stream is still handed on (`path` None).
* One nobody takes is dropped when its function version is retired (updated, deleted,
  hot-reloaded), when it has waited the pool's idle timeout (as Lambda ends an unused
  environment), and when the engine stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lamina.domain.model import FunctionConfig

Key = tuple[str, str, str, str | None]  # a configuration's env_key, and the tenant


@dataclass(frozen=True)
class Kept:
    config: FunctionConfig
    path: str | None  # the launcher's handle: a slot, or a directory; None: no /tmp kept
    since: float
    stream: str | None = None  # the reset environment's log stream, which goes on


class KeptTmps:
    """Kept /tmp directories by environment key; `discard` frees one nobody will take."""

    def __init__(self, discard: Callable[[str], None]) -> None:
        self._discard = discard
        self._kept: dict[Key, list[Kept]] = {}

    def __len__(self) -> int:
        return sum(len(stack) for stack in self._kept.values())

    def put(
        self, key: Key, config: FunctionConfig, path: str | None, stream: str | None = None
    ) -> None:
        self._kept.setdefault(key, []).append(Kept(config, path, time.monotonic(), stream))

    def take(self, key: Key) -> Kept | None:
        """The most recently kept /tmp (and stream) of `key`, now the caller's (None: there
        is none)."""
        stack = self._kept.get(key)
        if not stack:
            return None
        kept = stack.pop()
        if not stack:
            del self._kept[key]
        return kept

    def drop(self, match: Callable[[Kept], bool]) -> int:
        """Free every kept /tmp `match` selects; how many."""
        dropped = 0
        for key, stack in list(self._kept.items()):
            for kept in [k for k in stack if match(k)]:
                stack.remove(kept)
                if kept.path is not None:
                    self._discard(kept.path)
                dropped += 1
            if not stack:
                del self._kept[key]
        return dropped

    def expire(self, cutoff: float) -> int:
        """Free those kept since before `cutoff` (time.monotonic)."""
        return self.drop(lambda kept: kept.since < cutoff)

    def close(self) -> None:
        self.drop(lambda _kept: True)
