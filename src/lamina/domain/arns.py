"""Function names, qualifiers and ARNs: parsing, validation and formatting (spec §1.1).

Every operation accepts a function as a bare name (`orders`), a name with a qualifier
(`orders:live`), a full ARN (`arn:aws:lambda:us-east-1:123456789012:function:orders[:q]`) or a
partial ARN (`123456789012:function:orders[:q]`). `parse_function_name` turns all of them into
a `FunctionRef` after checking the region and account against the engine's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lamina.domain import errors

LATEST = "$LATEST"

NAME_RE = re.compile(r"[a-zA-Z0-9_-]+")
QUALIFIER_RE = re.compile(r"\$LATEST|[a-zA-Z0-9_-]+")
VERSION_RE = re.compile(r"[0-9]+")
ALIAS_RE = re.compile(r"(?!^[0-9]+$)([a-zA-Z0-9_-]+)")
FUNCTION_ARN_RE = re.compile(
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*):lambda:(?P<region>[a-z0-9-]+):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_.-]+)"
    r"(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?"
)
FUNCTION_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?"
    r"(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
MAX_NAME = 64


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """A function named by a caller, with the qualifier it carried (None: unqualified)."""

    name: str
    qualifier: str | None


def parse_function_name(value: str, region: str, account: str,
                        field: str = "functionName") -> FunctionRef:
    """Parse any accepted FunctionName form; raise the error AWS gives for a bad one."""
    if not value:
        raise errors.ValidationError.field(value, field, "Member must have length greater "
                                           "than or equal to 1")
    match = FUNCTION_ARN_RE.fullmatch(value)
    if match is None or "." in match["name"]:
        raise errors.ValidationError.field(
            value, field, "Member must satisfy regular expression pattern: " + FUNCTION_NAME_PATTERN)
    if value.startswith("arn:") and match["region"] != region:
        raise errors.ResourceNotFound(
            f"Functions from '{match['region']}' are not reachable in this region ('{region}')")
    if match["account"] and match["account"] != account:
        raise errors.AccessDenied("")
    name = match["name"]
    if len(name) > MAX_NAME:
        raise errors.InvalidParameterValue(
            f"1 validation error detected: Value '{name}' at '{field}' failed to satisfy "
            f"constraint: Member must have length less than or equal to {MAX_NAME}")
    return FunctionRef(name, match["qualifier"])


def merge_qualifier(ref: FunctionRef, qualifier: str | None) -> str | None:
    """Combine a qualifier from the name with one from the `Qualifier` parameter."""
    if qualifier is not None and qualifier != "":
        if not QUALIFIER_RE.fullmatch(qualifier) or len(qualifier) > 128:
            raise errors.ValidationError.field(
                qualifier, "qualifier",
                "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)")
        if ref.qualifier is not None and ref.qualifier != qualifier:
            raise errors.InvalidParameterValue(
                "The derived qualifier from the function name does not match the specified "
                "qualifier.")
        return qualifier
    return ref.qualifier


def function_arn(region: str, account: str, name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return arn if qualifier is None else f"{arn}:{qualifier}"
