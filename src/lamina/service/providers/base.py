"""What a resource provider is, and what it is given (the deploy context).

A provider makes one CloudFormation resource type real. The stack service calls, in order:
  check(logical_id, properties)          before anything is created; properties may hold
                                         `intrinsics.Pending` values (not known yet): check the
                                         rest, and raise errors.TemplateError naming the
                                         resource and property
  name(logical_id, properties)           the physical name to create under (None: the
                                         service gives one), kept in the journal first
  create(logical_id, properties, name)   → Made(physical_id, attributes)
  replaces(old, new)                     whether changing old → new properties needs a new
                                         resource (CloudFormation's "Replacement")
  update(resource, properties)           in place → Made
  delete(resource)                       gone; a resource already gone is not an error
`physical_id` is what `Ref` returns; `attributes` are what `Fn::GetAtt` may ask for (each
provider lists the names it answers in `attributes`, so a typo is refused before creating).

New resource types: subclass Provider, list it in `service/providers/__init__.py` (`REGISTRY`).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lamina.domain import errors
from lamina.domain.cfn.intrinsics import Pending
from lamina.domain.identity import Caller
from lamina.domain.stacks import PACKAGE_BUCKET, StackResource, physical_name

__all__ = ["PACKAGE_BUCKET"]


@dataclass
class Made:
    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict)


class ProviderError(Exception):
    """A call a provider made failed: the message is one line, shown as the reason."""


# (method, path, query, headers, body) → (status, headers, body): the engine's Lambda API
# handler, given a request made in-process (api/stacks.py `in_process`, wired by app.py)
# and the caller it acts as (domain.identity.Caller; None: the engine's own account)
Dispatch = Callable[
    [str, str, str, dict[str, str], bytes, Any], Awaitable[tuple[int, list[tuple[str, str]], bytes]]
]


class LambdaApi:
    """Lamina's own Lambda API, called in-process as CloudFormation calls Lambda's: every
    request goes through the same decoding, checks and locks as one from a client."""

    def __init__(self, caller: Caller | None = None) -> None:
        self.dispatch: Dispatch | None = None  # set when the engine starts
        self.host = "127.0.0.1"
        self.caller = caller

    def as_account(self, account: str) -> LambdaApi:
        """The same API, called as `account`'s root principal (a stack of that account)."""
        other = LambdaApi(Caller(account, arn=f"arn:aws:iam::{account}:root"))
        other.dispatch, other.host = self.dispatch, self.host
        return other

    async def call(
        self, method: str, path: str, body: Any = None, query: str = "", missing_ok: bool = False
    ) -> dict[str, Any]:
        data = b"" if body is None else json.dumps(body).encode()
        assert self.dispatch is not None, "the engine has not started its Lambda API"
        status, headers, text = await self.dispatch(
            method,
            path,
            query,
            {"content-type": "application/json", "host": self.host},
            data,
            self.caller,
        )
        found = json.loads(text) if text else {}
        if status < 300:
            return found
        code = {k.lower(): v for k, v in headers}.get("x-amzn-errortype", "")
        if missing_ok and status == 404:
            return {}
        message = found.get("message") or found.get("Message") or text.decode()
        raise ProviderError(f"{code}: {message}" if code else message)


@dataclass
class DeployContext:
    """What providers may use, for one stack operation."""

    stack: str
    stack_id: str
    region: str
    account: str
    lambda_api: LambdaApi
    aws: Any  # adapters.aws.AwsClients
    package: Callable[[str], Awaitable[bytes | None]]  # a stored package by its sha256 key
    # tags the next CreateFunction of a name carries (aws:cloudformation:*); None: forget
    system_tags: Callable[[str, dict[str, str] | None], Awaitable[None]]
    notice: Callable[[str], None]
    iam_endpoint: bool = False  # IAM calls go to an endpoint (else simulated)
    services: dict[str, Any] = field(default_factory=dict)  # engine features (schedules, apis)
    # the stack's resources as made so far (a provider may read another's attributes: a
    # route finds its integration, a method its resource's path)
    resources: Callable[[], dict[str, StackResource]] = field(default=dict)
    # held while a provider reads, changes and writes back an engine object that several
    # resources share (an API's routes)
    changes: asyncio.Lock = field(default_factory=asyncio.Lock)

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account}:{resource}"


class Provider:
    """One resource type (see the module docstring). Defaults: update replaces."""

    type: ClassVar[str] = ""
    attributes: ClassVar[tuple[str, ...]] = ()
    max_name: ClassVar[int] = 64
    lower_name: ClassVar[bool] = False
    name_property: ClassVar[str | None] = None
    # properties whose change needs a new resource; None: every property
    replace_on: ClassVar[tuple[str, ...] | None] = None
    # properties CloudFormation's schema types as integers / booleans ("A.B": nested): a
    # value that resolved to text ("256" from Fn::Select) is converted, as CloudFormation does
    integers: ClassVar[tuple[str, ...]] = ()
    booleans: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def coerce(cls, properties: dict[str, Any]) -> dict[str, Any]:
        for path in cls.integers:
            _convert(properties, path.split("."), _integer)
        for path in cls.booleans:
            _convert(properties, path.split("."), _boolean)
        return properties

    def __init__(self, ctx: DeployContext) -> None:
        self.ctx = ctx

    async def check(self, logical_id: str, properties: dict[str, Any]) -> None:
        return None

    def name(self, logical_id: str, properties: dict[str, Any]) -> str | None:
        if self.name_property is None:
            return None
        given = properties.get(self.name_property)
        if isinstance(given, str) and given:
            return given
        return physical_name(self.ctx.stack, logical_id, self.max_name, self.lower_name)

    def replaces(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        keys = set(old) | set(new) if self.replace_on is None else self.replace_on
        return any(old.get(k) != new.get(k) for k in keys)

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        raise NotImplementedError

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        raise NotImplementedError

    async def delete(self, resource: StackResource) -> None:
        raise NotImplementedError

    # helpers --------------------------------------------------------------------------
    def cfn_tags(self, logical_id: str) -> dict[str, str]:
        """The tags CloudFormation puts on what it creates."""
        return {
            "aws:cloudformation:stack-name": self.ctx.stack,
            "aws:cloudformation:logical-id": logical_id,
            "aws:cloudformation:stack-id": self.ctx.stack_id,
        }


def _convert(properties: dict[str, Any], path: list[str], how: Any) -> None:
    holder: Any = properties
    for key in path[:-1]:
        holder = holder.get(key) if isinstance(holder, dict) else None
    if isinstance(holder, dict) and path[-1] in holder:
        holder[path[-1]] = how(holder[path[-1]])


def _integer(value: Any) -> Any:
    if (
        isinstance(value, str)
        and not isinstance(value, Pending)
        and value.strip().lstrip("-").isdigit()
    ):
        return int(value)
    return value


def _boolean(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def tag_map(tags: Any) -> dict[str, str]:
    """CloudFormation's `Tags` ([{Key, Value}] or, for some types, a map) as a map."""
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    out = {}
    for tag in tags or []:
        if isinstance(tag, dict) and "Key" in tag:
            out[str(tag["Key"])] = str(tag.get("Value", ""))
    return out


def known(value: Any) -> bool:
    """Whether a property value is known before anything is created (no Pending in it)."""
    if isinstance(value, Pending):
        return False
    if isinstance(value, dict):
        return all(known(v) for v in value.values())
    if isinstance(value, list):
        return all(known(v) for v in value)
    return True


def refuse(logical_id: str, prop: str, message: str) -> errors.TemplateError:
    return errors.TemplateError(f"Resource {logical_id}, property {prop}: {message}")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
