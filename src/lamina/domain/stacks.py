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

import json
import random
import string
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# Code.S3Bucket of a package `lamina deploy` uploaded to the engine (read from its own store),
# and LocalStack's bucket for code run straight from a local folder (hot reload)
PACKAGE_BUCKET = "lamina-packages"
HOT_RELOAD_BUCKET = "hot-reload"

IN_PROGRESS = (
    "CREATE_IN_PROGRESS",
    "UPDATE_IN_PROGRESS",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
    "ROLLBACK_IN_PROGRESS",
    "UPDATE_ROLLBACK_IN_PROGRESS",
    "DELETE_IN_PROGRESS",
)
STABLE = (
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "DELETE_FAILED",
    "ROLLBACK_FAILED",
    "UPDATE_ROLLBACK_FAILED",
)


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

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, "_json", None)  # any change: encoded again
        object.__setattr__(self, name, value)

    def to_json(self) -> str:
        """`to_dict()` as JSON, kept until a field changes (a deploy writes the whole stack at
        each step: most resources have not changed since the last)."""
        cached = self.__dict__.get("_json")
        if cached is None:
            cached = _dumps(self.to_dict())
            object.__setattr__(self, "_json", cached)
        return cached

    def to_dict(self) -> dict[str, Any]:
        """Its fields as a dict (containers copied one level: values are JSON data, which
        nothing changes in place; `asdict`'s deep copy cost most of a deploy's time)."""
        return {
            "logical_id": self.logical_id,
            "type": self.type,
            "physical_id": self.physical_id,
            "properties": dict(self.properties),
            "attributes": dict(self.attributes),
            "status": self.status,
            "reason": self.reason,
            "retain": self.retain,
            "skipped": self.skipped,
            "depends": list(self.depends),
        }

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

    def to_json(self) -> str:
        """`to_dict()` as JSON, built from pieces kept between writes: each resource's own
        (see StackResource.to_json) and the templates' (the template, the previous one and
        the original, which are replaced, never changed in place)."""
        parts = []
        for f in _STACK_FIELDS:
            value = getattr(self, f.name)
            if f.name == "resources":
                text = "{" + ",".join(f"{_dumps(k)}:{r.to_json()}" for k, r in value.items()) + "}"
            elif f.name in ("template", "previous"):
                text = _frozen_json(value)
            elif f.name == "options":
                text = (
                    "{"
                    + ",".join(
                        f"{_dumps(k)}:{_frozen_json(v) if k == 'original' else _dumps(v)}"
                        for k, v in value.items()
                    )
                    + "}"
                )
            else:
                text = _dumps(value)
            parts.append(f'"{f.name}":{text}')
        return "{" + ",".join(parts) + "}"

    def to_dict(self) -> dict[str, Any]:
        """Its fields as a dict, to be written (JSON data, shared, not copied)."""
        data = {f.name: getattr(self, f.name) for f in _STACK_FIELDS}
        data["resources"] = {k: v.to_dict() for k, v in self.resources.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stack:
        data = dict(data)
        data["resources"] = {
            k: StackResource.from_dict(v) for k, v in data.get("resources", {}).items()
        }
        return cls(**data)


_STACK_FIELDS = fields(Stack)
_FROZEN: dict[int, tuple[Any, str]] = {}  # id → (the value, kept alive; its JSON)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _frozen_json(value: Any) -> str:
    """The JSON of a value that is replaced, never changed in place (a template), encoded once
    while it is in use."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return _dumps(value)
    found = _FROZEN.get(id(value))
    if found is not None and found[0] is value:
        return found[1]
    text = _dumps(value)
    if len(_FROZEN) >= 64:
        _FROZEN.pop(next(iter(_FROZEN)))
    _FROZEN[id(value)] = (value, text)
    return text


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


def stack_account(stack_id: str) -> str | None:
    """The account that owns a stack: the one its StackId (an ARN) carries."""
    parts = stack_id.split(":")
    return parts[4] if len(parts) > 5 else None


def stack_arn(region: str, account: str, name: str, unique: str) -> str:
    return f"arn:aws:cloudformation:{region}:{account}:stack/{name}/{unique}"


_ALPHABET = string.ascii_uppercase + string.digits


def physical_name(stack: str, logical_id: str, max_length: int = 64, lower: bool = False) -> str:
    """The name CloudFormation gives a resource whose name the template leaves out:
    `stack-LogicalId-RANDOM13`, the stack and logical id cut to fit `max_length`."""
    suffix = "".join(random.choices(_ALPHABET, k=13))
    room = max_length - len(suffix) - 2
    stack_part = stack[: max(room - min(len(logical_id), room // 2), room // 2)]
    logical_part = logical_id[: room - len(stack_part)]
    name = f"{stack_part}-{logical_part}-{suffix}"
    return name.lower() if lower else name
