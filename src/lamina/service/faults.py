"""Fault injection (beyond Lambda): script what attempt N of a function does.

A rule says what happens instead of running the function: `throttle` (the call gets 429, an
async event backs off as after a throttle), `timeout`, `crash` (runtime exit), `init_error`,
`error` (a function error of a chosen type and message) or `response` (a chosen result, such
as `{"batchItemFailures": [...]}`). It applies to the attempts listed (every attempt if
none), at most `times` times. So retry, dead-letter, destination and bisect paths can be
exercised on demand, without writing failing code. Rules live in memory: a restart clears
them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from lamina.domain import errors
from lamina.domain.model import InvocationOutcome

ACTIONS = ("throttle", "timeout", "crash", "init_error", "error", "response")


@dataclass
class FaultRule:
    action: str
    attempts: list[int] = field(default_factory=list)
    times: int | None = None
    payload: Any = None
    error_type: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rule_from(document: Any) -> FaultRule:
    """A rule from its JSON form, or the ValidationException for a bad one."""
    if not isinstance(document, dict) or document.get("action") not in ACTIONS:
        raise errors.ValidationError("A fault rule needs an action: one of " + ", ".join(ACTIONS))
    attempts = document.get("attempts") or []
    times = document.get("times")
    if not isinstance(attempts, list) or not all(isinstance(a, int) and a >= 1 for a in attempts):
        raise errors.ValidationError("attempts must be a list of attempt numbers (1, 2, …)")
    if times is not None and (not isinstance(times, int) or times < 1):
        raise errors.ValidationError("times must be a positive integer")
    return FaultRule(
        document["action"],
        attempts,
        times,
        document.get("payload"),
        document.get("error_type"),
        document.get("message"),
    )


class FaultService:
    """The rules of every function, and their application to attempts."""

    def __init__(self) -> None:
        self.rules: dict[str, list[FaultRule]] = {}  # by function (most engines: none)

    def set(self, function: str, rules: list[FaultRule]) -> None:
        self.rules[function] = rules

    def get(self, function: str) -> list[FaultRule]:
        return list(self.rules.get(function, []))

    def clear(self, function: str) -> None:
        self.rules.pop(function, None)

    def match(self, function: str, attempt: int) -> FaultRule | None:
        """The rule that takes attempt `attempt` of `function`, if any (uses one of its times)."""
        rules = self.rules.get(function, [])
        for rule in rules:
            if rule.attempts and attempt not in rule.attempts:
                continue
            if rule.times is not None:
                rule.times -= 1
                if rule.times == 0:
                    rules.remove(rule)  # used up
            return rule
        return None

    @staticmethod
    def outcome(rule: FaultRule, request_id: str, timeout: int) -> InvocationOutcome:
        """What the attempt answers; a throttle raises the 429 instead."""
        if rule.action == "throttle":
            raise errors.TooManyRequests("ReservedFunctionConcurrentInvocationLimitExceeded")
        if rule.action == "response":
            return InvocationOutcome(json.dumps(rule.payload).encode(), environment_id="fault")
        documents: dict[str, dict[str, Any]] = {
            "timeout": {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
            },
            "crash": {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status 1",
            },
            "init_error": {
                "errorMessage": rule.message or "Injected init failure",
                "errorType": rule.error_type or "Runtime.InitError",
                "requestId": "",
                "stackTrace": [],
            },
            "error": {
                "errorMessage": rule.message or "Injected function error",
                "errorType": rule.error_type or "InjectedError",
                "requestId": request_id,
                "stackTrace": [],
            },
        }
        document = documents[rule.action]
        return InvocationOutcome(
            json.dumps(document).encode(),
            function_error=True,
            error_type=document["errorType"],
            environment_id="fault",
        )
