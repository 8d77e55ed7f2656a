"""What the engine shows about itself: invocation filters, environments, mapping status.

Values only. The console, `lamina status` and `/metrics` read them; nothing here decides how
the engine behaves.
"""

from __future__ import annotations

from dataclasses import dataclass

# The console's invocation types → the InvocationType stored on a summary.
INVOCATION_KINDS = {
    "sync": "RequestResponse",
    "async": "Event",
    "mapping": "EventSourceMapping",
    "durable": "Durable",
}

# Environment states as the console shows them.
STARTING, BUSY, WARM, FROZEN = "starting", "busy", "warm", "frozen"


@dataclass(frozen=True, slots=True)
class InvocationFilter:
    """Which invocations a list shows: newest first, `limit` of them, before `before`."""

    function: str | None = None
    invocation_type: str | None = None
    status: str | None = None
    since: float | None = None
    before: float | None = None
    limit: int = 50

    def matches(self, function: str, invocation_type: str, status: str, accepted_at: float) -> bool:
        return (
            (self.function is None or function == self.function)
            and (self.invocation_type is None or invocation_type == self.invocation_type)
            and (self.status is None or status == self.status)
            and (self.since is None or accepted_at >= self.since)
            and (self.before is None or accepted_at < self.before)
        )


@dataclass(frozen=True, slots=True)
class EnvironmentView:
    """One execution environment as it is now."""

    id: str
    function: str
    version: str
    state: str  # starting | busy | warm | frozen
    provisioned: bool
    idle_s: float | None  # seconds since it was last given back (None while busy)
    log_stream: str
    pid: int = 0  # the runtime's process id on the host (0: none yet)
    # request ids of the invocations in it now; Managed Instances environments take up to
    # `max_concurrency` at once (PerExecutionEnvironmentMaxConcurrency), others one
    in_flight: tuple[str, ...] = ()
    max_concurrency: int = 1


@dataclass(frozen=True, slots=True)
class MappingStatus:
    """An event source mapping as its poller sees it (the console's mapping view)."""

    uuid: str
    function: str
    event_source_arn: str | None
    state: str
    state_reason: str = ""
    batch_size: int = 0
    last_processing_result: str = ""
    last_modified: float | None = None
    backlog: int | None = None  # records waiting in the source, if the source says
    lag_s: float | None = None  # age of the oldest record not yet processed
    checkpoint: str | None = None  # sequence number, offset or receipt position
    last_batch_size: int | None = None
