"""Lambda's scaling rate (spec §8.3): each function adds at most N execution environments
every 10 s, refilled continuously, not banked beyond N. Off unless asked for
(`lamina serve --scaling-rate N`; Lambda's N is 1,000). Pure: the caller gives the time."""

from __future__ import annotations

WINDOW_S = 10.0


class ScalingRate:
    """A token bucket per function: one token per new environment."""

    def __init__(self, per_window: int) -> None:
        self.per_window = per_window
        self._buckets: dict[str, tuple[float, float]] = {}  # function → (tokens, at)

    def take(self, function: str, now: float) -> bool:
        """Whether `function` may start one more environment now (and count it)."""
        tokens, at = self._buckets.get(function, (float(self.per_window), now))
        tokens = min(float(self.per_window), tokens + (now - at) * self.per_window / WINDOW_S)
        if tokens < 1.0:
            self._buckets[function] = (tokens, now)
            return False
        self._buckets[function] = (tokens - 1.0, now)
        return True
