"""Tumbling windows of Kinesis and DynamoDB Streams mappings (spec §14.4).

Theory of operation
-------------------
* `TumblingWindowInSeconds` W (1–900) cuts a shard's records into windows aligned on
  record arrival time: a record that arrived at t belongs to [⌊t/W⌋·W, ⌊t/W⌋·W + W).
* Each batch of a window is an invocation whose event carries, beside `Records`, the
  window's bounds, the `state` the previous invocation of the window returned (`{}` at
  first), `shardId`, `eventSourceARN`, `isFinalInvokeForWindow` and
  `isWindowTerminatedEarly`. The function answers `{"state": {...}}` (and, with
  ReportBatchItemFailures, `batchItemFailures`); the state is handed to the next invocation.
* A state over 1 MB ends the window early: the final invocation says
  `isWindowTerminatedEarly: true`, and the window's later records start from `{}`.
* Once the window's end has passed, a final invocation with no records and
  `isFinalInvokeForWindow: true` gets the state to act on. The shard's checkpoint moves
  past the window only after that final invocation succeeds; until then the shard waits.
  The state lives in the engine's memory: after a restart the window's records are read
  again from the checkpoint, so the state is rebuilt from the same records.

Pure functions, no I/O. Source:
https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-windows.html
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

MAX_STATE_BYTES = 1024 * 1024


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass(slots=True)
class Window:
    """One open window of a shard: its bounds, the state so far, the last record seen."""

    start: float
    end: float
    state: Any = field(default_factory=dict)
    last: dict[str, Any] | None = None

    @classmethod
    def containing(cls, arrival: float, seconds: int) -> Window:
        start = (int(arrival) // seconds) * seconds
        return cls(float(start), float(start + seconds))

    def holds(self, arrival: float) -> bool:
        return self.start <= arrival < self.end

    def event(
        self,
        records: list[dict[str, Any]],
        shard: str,
        source_arn: str,
        final: bool = False,
        terminated_early: bool = False,
    ) -> dict[str, Any]:
        return {
            "Records": records,
            "window": {"start": _iso(self.start), "end": _iso(self.end)},
            "state": self.state,
            "shardId": shard,
            "eventSourceARN": source_arn,
            "isFinalInvokeForWindow": final,
            "isWindowTerminatedEarly": terminated_early,
        }


def state_of(payload: bytes) -> dict[str, Any] | None:
    """The state a windowed invocation returned; None when the response is not a JSON
    object with a `state` object (the invocation failed)."""
    try:
        response = json.loads(payload) if payload else None
    except (ValueError, RecursionError):
        return None
    state = response.get("state") if isinstance(response, dict) else None
    return state if isinstance(state, dict) else None


def too_large(state: Any) -> bool:
    """Over 1 MB: Lambda ends the window early (`isWindowTerminatedEarly`)."""
    return len(json.dumps(state, separators=(",", ":"))) > MAX_STATE_BYTES
