"""What TagResource, UntagResource and ListTags accept: the ARN of a function, an event source
mapping, or (on AWS) a layer, a code signing configuration or a capacity provider, checked
against AWS's own pattern (as its ValidationException quotes it, recorded 2025-11-25)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lamina.domain import errors

_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
RESOURCE_PATTERN = (
    r"arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
    r"(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)|"
    r"code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:"
    + _UUID
    + r"|capacity-provider:[a-zA-Z0-9-_]+)"
)
_RESOURCE_RE = re.compile(RESOURCE_PATTERN)
_KIND_RE = re.compile(r"arn:[^:]*:lambda:[^:]*:\d{12}:(?P<kind>[a-z-]+):(?P<id>.+)")


@dataclass(frozen=True, slots=True)
class TaggedResource:
    """The resource a tags operation names: its kind and what follows it in the ARN."""

    arn: str
    kind: str  # function | event-source-mapping | layer | code-signing-config | capacity-provider
    id: str  # a function's name (with any qualifier), a mapping's UUID, ...


def parse(resource: str) -> TaggedResource:
    if not _RESOURCE_RE.fullmatch(resource):
        raise errors.ValidationError.field(
            resource,
            "resource",
            "Member must satisfy regular expression pattern: " + RESOURCE_PATTERN,
        )
    match = _KIND_RE.fullmatch(resource)
    if match is None:  # cannot happen: RESOURCE_PATTERN accepts only such ARNs
        raise errors.InvalidParameterValue(f"Unsupported resource: {resource}")
    return TaggedResource(resource, match["kind"], match["id"])


def not_found(resource: TaggedResource) -> errors.ResourceNotFound:
    """The 404 AWS answers for a tagged resource that does not exist."""
    named = {
        "event-source-mapping": "Event source mapping",
        "capacity-provider": "Capacity provider",
    }.get(resource.kind)
    if named is None:
        return errors.ResourceNotFound("The resource you requested does not exist.")
    return errors.ResourceNotFound(f"{named} not found: {resource.arn}")
