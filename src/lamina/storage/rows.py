"""Rows ⇄ domain objects, shared by the SQL back ends."""

from __future__ import annotations

import json
from typing import Any

from lamina.domain.model import AttemptRecord, FunctionConfig, InvocationSummary


def version_row(config: FunctionConfig) -> dict[str, Any]:
    return {"name": config.name, "version": config.version,
            "config": json.dumps(config.to_dict(), separators=(",", ":"))}


def config_from_row(text: str) -> FunctionConfig:
    return FunctionConfig.from_dict(json.loads(text))


def summary_row(summary: InvocationSummary) -> dict[str, Any]:
    return {
        "request_id": summary.request_id, "function": summary.function,
        "qualifier": summary.qualifier, "invocation_type": summary.invocation_type,
        "accepted_at": summary.accepted_at, "status": summary.status,
        "finished_at": summary.finished_at, "attempts": summary.attempts,
        "error_type": summary.error_type, "duration_ms": summary.duration_ms,
    }


def record_row(record: AttemptRecord) -> dict[str, Any]:
    return {"request_id": record.request_id, "at": record.at, "kind": record.kind,
            "detail": json.dumps(record.detail, separators=(",", ":"))}
