"""Stacks: what `lamina deploy` made from a template, as CloudFormation keeps it (pure).

A `Stack` holds the template as deployed, its parameters, each resource's physical id,
attributes and resolved properties, its outputs, and the journal of the operation in
progress (`journal`): each step it took, written to the store before the next, so a deploy
interrupted by anything, even the engine's death, can be rolled back from the store.

Stack statuses are CloudFormation's:
  create:  CREATE_IN_PROGRESS → CREATE_COMPLETE | ROLLBACK_IN_PROGRESS → ROLLBACK_COMPLETE
  update:  UPDATE_IN_PROGRESS → UPDATE_COMPLETE_CLEANUP_IN_PROGRESS → UPDATE_COMPLETE
                               | UPDATE_ROLLBACK_IN_PROGRESS → UPDATE_ROLLBACK_COMPLETE
  delete:  DELETE_IN_PROGRESS → (gone) | DELETE_FAILED
"""

from __future__ import annotations

import random
import string
from dataclasses import asdict, dataclass, field
from typing import Any

# Code.S3Bucket of a package `lamina deploy` uploaded to the engine (read from its own store),
# and LocalStack's bucket for code run straight from a local folder (hot reload)
PACKAGE_BUCKET = "lamina-packages"
HOT_RELOAD_BUCKET = "hot-reload"

IN_PROGRESS = ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
               "ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "DELETE_IN_PROGRESS")
STABLE = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE",
          "DELETE_FAILED", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_FAILED")


@dataclass
class StackResource:
    """One resource a stack made (or, skipped, did not)."""

    logical_id: str
    type: str
    physical_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    status: str = "CREATE_IN_PROGRESS"
    reason: str | None = None
    retain: bool = False
    skipped: bool = False  # an unsupported type deployed with --skip-unsupported
    depends: list[str] = field(default_factory=list)  # what it was made after

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StackResource:
        return cls(**data)


@dataclass
class Stack:
    name: str
    stack_id: str
    status: str
    template: dict[str, Any]
    parameters: dict[str, str] = field(default_factory=dict)
    resources: dict[str, StackResource] = field(default_factory=dict)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    # the operation in progress: [{"action": "create"|"update"|"replace", "logical_id": ...,
    # "old": StackResource dict or None, "new": StackResource dict}], in the order taken
    journal: list[dict[str, Any]] = field(default_factory=list)
    # what the last deploy printed beside events: SAM events Lamina does not run, skips
    notices: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    # the stack as it was before the operation in progress (an update rolls back to it)
    previous: dict[str, Any] | None = None
    event_seq: int = 0

    @property
    def in_progress(self) -> bool:
        return self.status in IN_PROGRESS

    def exports(self) -> dict[str, str]:
        return {o["ExportName"]: o["OutputValue"] for o in self.outputs if o.get("ExportName")}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["resources"] = {k: v.to_dict() for k, v in self.resources.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stack:
        data = dict(data)
        data["resources"] = {k: StackResource.from_dict(v)
                             for k, v in data.get("resources", {}).items()}
        return cls(**data)


@dataclass(frozen=True)
class StackEvent:
    """A line of a stack's history, as CloudFormation's DescribeStackEvents shows it."""

    stack: str
    seq: int
    at: float
    logical_id: str
    type: str
    status: str
    physical_id: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stack_arn(region: str, account: str, name: str, unique: str) -> str:
    return f"arn:aws:cloudformation:{region}:{account}:stack/{name}/{unique}"


_ALPHABET = string.ascii_uppercase + string.digits


def physical_name(stack: str, logical_id: str, max_length: int = 64,
                  lower: bool = False) -> str:
    """The name CloudFormation gives a resource whose name the template leaves out:
    `stack-LogicalId-RANDOM13`, the stack and logical id cut to fit `max_length`."""
    suffix = "".join(random.choices(_ALPHABET, k=13))
    room = max_length - len(suffix) - 2
    stack_part = stack[:max(room - min(len(logical_id), room // 2), room // 2)]
    logical_part = logical_id[:room - len(stack_part)]
    name = f"{stack_part}-{logical_part}-{suffix}"
    return name.lower() if lower else name
