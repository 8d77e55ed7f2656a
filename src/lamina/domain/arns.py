"""Function names, qualifiers and ARNs: parsing, validation and formatting (spec §1.1).

Every operation accepts a function as a bare name (`orders`), a name with a qualifier
(`orders:live`), a full ARN (`arn:aws:lambda:us-east-1:123456789012:function:orders[:q]`) or a
partial ARN (`123456789012:function:orders[:q]`). `parse_function_name` turns all of them into
a `FunctionRef` after checking the region and account against the engine's own.

Function keys: names are unique per account. Inside the engine a function is known by one
key: its plain name for the engine's own account (`--account`, so a single-account engine and
its existing data are unchanged), `<account>:<name>` for any other (names cannot contain ':').
`ApiContext.reachable` turns what a caller names into the key; everything past the API works
with keys; what leaves the engine (responses, logs, the function's environment) shows
`plain_name(key)` and ARNs built by `function_arn`, which read the account from the key.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from lamina.domain import errors

LATEST = "$LATEST"

NAME_RE = re.compile(r"[a-zA-Z0-9_-]+")
VERSION_RE = re.compile(r"[0-9]+")
ALIAS_RE = re.compile(r"(?!^[0-9]+$)([a-zA-Z0-9_-]+)")

# AWS's own patterns, as its ValidationException messages quote them (recorded 2025-11-25):
# FunctionName of most operations (a namespaced name: dots and $LATEST.PUBLISHED pass, and
# such a function is then simply not found), of CreateFunction, and the Qualifier parameter.
_REGION = r"(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}"
FUNCTION_NAME_PATTERN = (
    rf"(arn:(aws[a-zA-Z-]*)?:lambda:)?({_REGION}:)?(\d{{12}}:)?(function:)?"
    r"([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?"
)
CREATE_NAME_PATTERN = (
    rf"(arn:(aws[a-zA-Z-]*)?:lambda:)?({_REGION}:)?(\d{{12}}:)?(function:)?"
    r"([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
QUALIFIER_PATTERN = r"\$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+"
_FUNCTION_NAME_RE = re.compile(FUNCTION_NAME_PATTERN)
_CREATE_NAME_RE = re.compile(CREATE_NAME_PATTERN)
_QUALIFIER_RE = re.compile(QUALIFIER_PATTERN)
_PARTS_RE = re.compile(
    rf"(?:arn:(?:aws[a-zA-Z-]*)?:lambda:)?(?:(?P<region>{_REGION}):)?(?:(?P<account>\d{{12}}):)?"
    r"(?:function:)?(?P<name>[a-zA-Z0-9_.-]+)(?::(?P<qualifier>[^:]+))?"
)
MAX_NAME = 64
MAX_CREATE_VALUE = 140  # CreateFunction's FunctionName (a name, or an ARN)
MAX_QUALIFIER = 128


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """A function named by a caller, with the qualifier it carried (None: unqualified)."""

    name: str
    qualifier: str | None
    account: str | None = None  # the account a (partial) ARN named; None: a plain name


@functools.lru_cache(maxsize=4096)  # pure, and on every Invoke: names repeat
def parse_function_name(
    value: str,
    region: str,
    account: str | None,
    field: str = "functionName",
    qualifier: str | None = None,
    creating: bool = False,
) -> FunctionRef:
    """Parse any accepted FunctionName form; raise the error AWS gives for a bad one. The
    `Qualifier` parameter, if any, is checked with it: AWS reports every broken constraint of
    the two in one ValidationException. An ARN of another account than `account` is refused
    (403), unless `account` is None: then the caller checks (`ApiContext.function_ref`)."""
    problems = _name_problems(value, field, creating) + qualifier_problems(qualifier)
    if problems:
        raise errors.ValidationError.fields(problems)
    match = _PARTS_RE.fullmatch(value)
    if match is None:  # cannot happen: the patterns above accept only what this one parses
        raise errors.ValidationError.field(
            value, field, "Member must satisfy regular expression pattern: " + FUNCTION_NAME_PATTERN
        )
    if match["region"] is not None and match["region"] != region:
        raise errors.ResourceNotFound(
            f"Functions from '{match['region']}' are not reachable in this region ('{region}')"
        )
    if match["account"] and account is not None and match["account"] != account:
        raise errors.AccessDenied("")
    name = match["name"]
    if creating and len(name) > MAX_NAME:
        raise errors.InvalidParameterValue(
            f"1 validation error detected: Value '{name}' at '{field}' failed to satisfy "
            f"constraint: Member must have length less than or equal to {MAX_NAME}"
        )
    return FunctionRef(name, match["qualifier"], match["account"] or None)


def _name_problems(value: str, field: str, creating: bool) -> list[tuple[str, str, str]]:
    if not value:
        return [(value, field, "Member must have length greater than or equal to 1")]
    problems = []
    if creating and len(value) > MAX_CREATE_VALUE:
        problems.append(
            (value, field, f"Member must have length less than or equal to {MAX_CREATE_VALUE}")
        )
    pattern = _CREATE_NAME_RE if creating else _FUNCTION_NAME_RE
    if not pattern.fullmatch(value):
        problems.append(
            (value, field, "Member must satisfy regular expression pattern: " + pattern.pattern)
        )
    return problems


def qualifier_problems(qualifier: str | None) -> list[tuple[str, str, str]]:
    """The constraints a `Qualifier` parameter breaks (an empty one is no qualifier)."""
    if not qualifier:
        return []
    problems = []
    if len(qualifier) > MAX_QUALIFIER:
        problems.append(
            (
                qualifier,
                "qualifier",
                f"Member must have length less than or equal to {MAX_QUALIFIER}",
            )
        )
    if not _QUALIFIER_RE.fullmatch(qualifier):
        problems.append(
            (
                qualifier,
                "qualifier",
                "Member must satisfy regular expression pattern: " + QUALIFIER_PATTERN,
            )
        )
    return problems


def merge_qualifier(ref: FunctionRef, qualifier: str | None) -> str | None:
    """Combine a qualifier from the name with one from the `Qualifier` parameter."""
    if qualifier is not None and qualifier != "":
        problems = qualifier_problems(qualifier)
        if problems:
            raise errors.ValidationError.fields(problems)
        if ref.qualifier is not None and ref.qualifier != qualifier:
            raise errors.InvalidParameterValue(
                "The derived qualifier from the function name does not match the specified "
                "qualifier."
            )
        return qualifier
    return ref.qualifier


def function_key(owner: str, name: str) -> str:
    """The key of function `name` of account `owner` ("": the engine's own account)."""
    return f"{owner}:{name}" if owner else name


def key_owner(key: str) -> str:
    """The account a function key names ("": the engine's own)."""
    return key.rpartition(":")[0]


def keyed(ref: FunctionRef, engine_account: str) -> FunctionRef:
    """`ref` (a name or an ARN a resource names) with its name turned into the function's
    key: of the account its ARN carries, else of the engine's own account."""
    owner = "" if ref.account in (None, engine_account) else ref.account
    return FunctionRef(function_key(owner or "", ref.name), ref.qualifier, ref.account)


def plain_name(key: str) -> str:
    """The function name a key stands for, as callers see it."""
    return key.rpartition(":")[2]


def function_arn(region: str, account: str, name: str, qualifier: str | None = None) -> str:
    """The ARN of function `name` (a plain name or a key: a key's account wins)."""
    if ":" in name:  # a key of another account's function
        account, _, name = name.rpartition(":")
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return arn if qualifier is None else f"{arn}:{qualifier}"
