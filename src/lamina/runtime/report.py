"""Platform records of one environment: INIT_START, START, END, REPORT, INIT_REPORT, timeouts.

`LoggingConfig.LogFormat` Text gives Lambda's text lines (`REPORT RequestId: …\tDuration: …`);
JSON gives Lambda's system log records, one JSON object per line (`{"time", "type":
"platform.report", "record": {...}}`), filtered by `SystemLogLevel` (DEBUG, INFO, WARN;
default INFO: platform.initStart, platform.initReport, platform.start and platform.report are
INFO, platform.runtimeDone DEBUG, Lamina's own warnings WARN).

REPORT's Max Memory Used is the runtime's peak resident memory (VmHWM), read from /proc at most
every 0.5 s (it only grows; the kernel renders all of /proc/N/status for it, ~8 us even as one
`pread` of the file the environment's `MemoryProbe` keeps open). The record of an
invocation is written after the caller has its answer (`pending`, then `flush`), unless the
caller wants the log tail.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from lamina.domain.model import FunctionConfig, InvocationOutcome
from lamina.runtime.logs import LogStream, iso_now

_LEVELS = {"DEBUG": 1, "INFO": 2, "WARN": 3}


@dataclass(slots=True)
class _Pending:
    request_id: str
    duration_ms: float
    init_ms: float | None
    status: str
    error_type: str | None

    # written out: compiled, where @dataclass's would run interpreted (ARCHITECTURE.md, 13)
    def __init__(
        self,
        request_id: str,
        duration_ms: float,
        init_ms: float | None,
        status: str,
        error_type: str | None,
    ) -> None:
        self.request_id = request_id
        self.duration_ms = duration_ms
        self.init_ms = init_ms
        self.status = status
        self.error_type = error_type


class PlatformLog:
    """The platform's side of one environment's log stream."""

    def __init__(
        self, stream: LogStream, config: FunctionConfig, peak_kb: Callable[[], int]
    ) -> None:
        self.stream = stream
        self.config = config
        self.json = config.log_format == "JSON"
        self._threshold = _LEVELS.get((config.system_log_level or "INFO").upper(), 2)
        self._peak_kb = peak_kb
        self._peak = 0
        self._peak_read_at = 0.0
        self._pending: _Pending | None = None
        # the parts of START and REPORT that are the same for every invocation
        self._version = f" Version: {config.version}"
        self._memory = f" ms\tMemory Size: {config.memory_size} MB\tMax Memory Used: "

    def _record(self, level: str, kind: str, record: dict[str, object]) -> None:
        if _LEVELS[level] >= self._threshold:
            self.stream.platform(
                json.dumps(
                    {"time": iso_now(), "type": kind, "record": record}, separators=(",", ":")
                )
            )

    # Init -------------------------------------------------------------------------------
    def init_start(self, initialization_type: str, runtime_path: str) -> None:
        if self.json:
            self._record(
                "INFO",
                "platform.initStart",
                {
                    "initializationType": initialization_type,
                    "phase": "init",
                    "runtimeVersion": self.config.runtime,
                    "functionName": self.config.plain_name,
                    "functionVersion": self.config.version,
                },
            )
        else:
            self.stream.platform(
                f"INIT_START Runtime Version: {self.config.runtime}\tRuntime: {runtime_path}",
                tail=False,
            )

    def init_report(
        self,
        duration_ms: float,
        status: str,
        error_type: str | None = None,
        initialization_type: str = "on-demand",
        phase: str = "init",
    ) -> None:
        """`phase` is "invoke" for an Init retried inside an invocation (suppressed init)."""
        if self.json:
            record: dict[str, object] = {
                "initializationType": initialization_type,
                "phase": phase,
                "status": status,
                "metrics": {"durationMs": round(duration_ms, 3)},
            }
            if error_type:
                record["errorType"] = error_type
            self._record("INFO", "platform.initReport", record)
            return
        line = f"INIT_REPORT Init Duration: {duration_ms:.2f} ms\tPhase: {phase}\tStatus: {status}"
        self.stream.platform(line + (f"\tError Type: {error_type}" if error_type else ""))

    def warning(self, text: str) -> None:
        if self.json:
            self._record("WARN", "lamina.warning", {"message": text})
        else:
            self.stream.platform(text)

    # Invoke -----------------------------------------------------------------------------
    def start(self, request_id: str) -> None:
        if self.json:
            self._record(
                "INFO", "platform.start", {"requestId": request_id, "version": self.config.version}
            )
        else:
            self.stream.platform(f"START RequestId: {request_id}{self._version}")

    def timeout(self, request_id: str, seconds: float | None = None) -> None:
        """Lambda's "Task timed out" line (in JSON, the report's status says it)."""
        if not self.json:
            seconds = self.config.timeout if seconds is None else seconds
            self.stream.platform(
                f"{iso_now()} {request_id} Task timed out after {seconds:.2f} seconds"
            )

    def pending(self, request_id: str, outcome: InvocationOutcome) -> None:
        """END and REPORT of an invocation, written at the next `flush`."""
        status = "success"
        if outcome.error_type == "Sandbox.Timedout":
            status = "timeout"
        elif outcome.function_error:
            status = "error"
        self._pending = _Pending(
            request_id, outcome.duration_ms, outcome.init_ms, status, outcome.error_type
        )

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        used_mb = max(1, self.peak_kb() // 1024)
        duration = pending.duration_ms
        billed = max(1, math.ceil(duration))
        if self.json:
            self._runtime_done(pending)
            metrics: dict[str, object] = {
                "durationMs": round(duration, 3),
                "billedDurationMs": billed,
                "memorySizeMB": self.config.memory_size,
                "maxMemoryUsedMB": used_mb,
            }
            if pending.init_ms is not None:
                metrics["initDurationMs"] = round(pending.init_ms, 3)
            record: dict[str, object] = {
                "requestId": pending.request_id,
                "metrics": metrics,
                "status": pending.status,
            }
            if pending.status != "success" and pending.error_type:
                record["errorType"] = pending.error_type
            self._record("INFO", "platform.report", record)
            return
        init = "" if pending.init_ms is None else f"\tInit Duration: {pending.init_ms:.2f} ms"
        # AWS ends every field of the line with a tab, the last one too
        self.stream.platform_pair(
            f"END RequestId: {pending.request_id}",
            "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d%s%d MB%s\t"
            % (pending.request_id, duration, billed, self._memory, used_mb, init),
        )  # (`%` formats the numbers without a `__format__` call each)

    def _runtime_done(self, pending: _Pending) -> None:
        record: dict[str, object] = {
            "requestId": pending.request_id,
            "status": pending.status,
            "metrics": {"durationMs": round(pending.duration_ms, 3)},
        }
        self._record("DEBUG", "platform.runtimeDone", record)

    def peak_kb(self) -> int:
        now = time.monotonic()
        if now - self._peak_read_at > 0.5:
            self._peak = self._peak_kb() or self._peak
            self._peak_read_at = now
        return self._peak
