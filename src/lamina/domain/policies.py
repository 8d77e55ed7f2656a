"""Resource-based policy statements: what AddPermission adds to a function's policy.

Lamina records policies and returns them as Lambda builds them. They are enforced only for a
caller of another account (`allows`): within its own account a caller may do anything (there
are no IAM identity policies here). Statement and policy shapes follow
responses recorded against AWS (LocalStack `TestLambdaPermissions` snapshots) and
https://docs.aws.amazon.com/lambda/latest/dg/access-control-resource-based.html
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from typing import Any

from lamina.domain import errors

ACCOUNT_RE = re.compile(r"\d{12}")
IAM_ARN_RE = re.compile(r"arn:aws[a-zA-Z-]*:(iam|sts):")  # IAM users and roles, STS sessions
# (attribute, field in messages, pattern, longest) per the AddPermission request model.
_CONSTRAINTS = (
    ("statement_id", "statementId", r"([a-zA-Z0-9-_]+)", 100),
    ("action", "action", r"(lambda:[*]|lambda:[a-zA-Z]+|[*])", 10_000),
    ("principal", "principal", r"[^\s]+", 2_048),
    (
        "source_arn",
        "sourceArn",
        (
            r"arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}"
            r"((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)"
        ),
        10_000,
    ),
    ("source_account", "sourceAccount", r"\d{12}", 12),
    ("principal_org_id", "principalOrgID", r"o-[a-z0-9]{10,32}", 34),
    ("event_source_token", "eventSourceToken", r"[a-zA-Z0-9._\-]+", 256),
)
_REQUIRED = ("statement_id", "action", "principal")
AUTH_TYPES = ("NONE", "AWS_IAM")


@dataclass(frozen=True, slots=True)
class Permission:
    """An AddPermission request (None: not given)."""

    statement_id: str | None
    action: str | None
    principal: str | None
    source_arn: str | None = None
    source_account: str | None = None
    principal_org_id: str | None = None
    event_source_token: str | None = None
    function_url_auth_type: str | None = None
    invoked_via_function_url: bool | None = None


def check(permission: Permission) -> None:
    """The ValidationException AWS answers for the first member that breaks the model."""
    check_members(permission, _CONSTRAINTS, _REQUIRED)
    auth_type = permission.function_url_auth_type
    if auth_type is not None and auth_type not in AUTH_TYPES:
        raise errors.ValidationError.field(
            auth_type, "functionUrlAuthType", "Member must satisfy enum value set: [NONE, AWS_IAM]"
        )


def check_members(
    request: Any, constraints: tuple[tuple[str, str, str, int], ...], required: tuple[str, ...]
) -> None:
    """Each (attribute, field in messages, pattern, longest) of `constraints` on `request`:
    the ValidationException AWS answers for the first member that breaks its model."""
    for name, field, pattern, longest in constraints:
        value = getattr(request, name)
        if value is None:
            if name in required:
                raise errors.ValidationError.field(None, field, "Member must not be null")
            continue
        if not isinstance(value, str):
            raise errors.ValidationError.field(value, field, "Member must be a string")
        if len(value) > longest:
            raise errors.ValidationError.field(
                value, field, f"Member must have length less than or equal to {longest}"
            )
        if not re.fullmatch(pattern, value):
            raise errors.ValidationError.field(
                value, field, f"Member must satisfy regular expression pattern: {pattern}"
            )


def principal(value: str) -> str | dict[str, str]:
    """The Principal element Lambda writes for the Principal parameter."""
    if value == "*":
        return "*"
    if value.endswith(".amazonaws.com"):
        return {"Service": value}
    if ACCOUNT_RE.fullmatch(value):
        return {"AWS": f"arn:aws:iam::{value}:root"}
    if IAM_ARN_RE.match(value):
        return {"AWS": value}
    raise errors.InvalidParameterValue(
        "The provided principal was invalid. Please check the principal and try again."
    )


def statement(permission: Permission, resource: str) -> dict[str, Any]:
    """The statement AddPermission adds for `permission` on `resource` (a function ARN,
    qualified when the policy is a version's or an alias's); `check` it first."""
    assert permission.statement_id and permission.action and permission.principal
    condition: dict[str, dict[str, str]] = {}
    for operator, key, value in (
        ("StringEquals", "AWS:SourceAccount", permission.source_account),
        ("StringEquals", "lambda:FunctionUrlAuthType", permission.function_url_auth_type),
        ("StringEquals", "aws:PrincipalOrgID", permission.principal_org_id),
        ("StringEquals", "lambda:EventSourceToken", permission.event_source_token),
        ("ArnLike", "AWS:SourceArn", permission.source_arn),
        (
            "Bool",
            "lambda:InvokedViaFunctionUrl",
            "true" if permission.invoked_via_function_url else None,
        ),
    ):
        if value is not None:
            condition.setdefault(operator, {})[key] = value
    body: dict[str, Any] = {
        "Sid": permission.statement_id,
        "Effect": "Allow",
        "Principal": principal(permission.principal),
        "Action": permission.action,
        "Resource": resource,
    }
    if condition:
        body["Condition"] = condition
    return body


def check_addition(
    statements: tuple[dict[str, Any], ...],
    statement_id: str | None,
    revision: str | None,
    given_revision: str | None,
    stale: str,
) -> None:
    """AWS's answers to adding statement `statement_id` to a policy at `revision`: 412 when
    the caller's RevisionId is not the policy's, 409 when the id is taken."""
    if given_revision is not None and given_revision != revision:
        raise errors.PreconditionFailed(stale)
    if any(s.get("Sid") == statement_id for s in statements):
        raise errors.ResourceConflict(
            f"The statement id ({statement_id}) provided already exists. Please provide a new "
            "statement id, or remove the existing statement."
        )


def without(
    statements: tuple[dict[str, Any], ...],
    statement_id: str,
    revision: str | None,
    given_revision: str | None,
    stale: str,
) -> tuple[dict[str, Any], ...]:
    """The statements left once `statement_id` is removed; AWS's 404 when it is not there,
    412 when the caller's RevisionId is not the policy's."""
    kept = tuple(s for s in statements if s.get("Sid") != statement_id)
    if len(kept) == len(statements):
        raise errors.ResourceNotFound(f"Statement {statement_id} is not found in resource policy.")
    if given_revision is not None and given_revision != revision:
        raise errors.PreconditionFailed(stale)
    return kept


MAX_POLICY = 20_480  # characters of a PutResourcePolicy document (the API model)
_EFFECTS = ("Allow", "Deny")


def parse_document(text: object) -> tuple[str | None, str | None, tuple[dict[str, Any], ...]]:
    """A PutResourcePolicy document: (Version, Id, statements), or AWS's error. Each statement
    needs an Effect, a Principal and an Action (IAM's grammar for resource policies); the
    messages of the InvalidParameterValueException are Lamina's own (unconfirmed)."""
    if not isinstance(text, str):
        raise errors.ValidationError.field(None, "policy", "Member must not be null")
    if not 1 <= len(text) <= MAX_POLICY:
        raise errors.ValidationError.field(
            text, "policy", f"Member must have length less than or equal to {MAX_POLICY}"
        )
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise errors.InvalidParameterValue("The policy is not valid JSON.") from None
    if not isinstance(document, dict) or "Statement" not in document:
        raise errors.InvalidParameterValue("The policy must be a JSON object with a Statement.")
    statements = document["Statement"]
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise errors.InvalidParameterValue("The policy must have at least one statement.")
    for number, item in enumerate(statements):
        _check_statement(item, number)
    sids = [item["Sid"] for item in statements if item.get("Sid") is not None]
    if len(sids) != len(set(sids)):
        raise errors.InvalidParameterValue("Statement ids (Sid) of a policy must be unique.")
    version, policy_id = document.get("Version"), document.get("Id")
    if version is not None and version not in ("2012-10-17", "2008-10-17"):
        raise errors.InvalidParameterValue(f"The policy Version {version} is not supported.")
    return version, policy_id if isinstance(policy_id, str) else None, tuple(statements)


def _check_statement(item: object, number: int) -> None:
    if not isinstance(item, dict):
        raise errors.InvalidParameterValue(f"Statement {number} of the policy is not an object.")
    if item.get("Effect") not in _EFFECTS:
        raise errors.InvalidParameterValue(
            f"Statement {number} of the policy needs an Effect of Allow or Deny."
        )
    if "Principal" not in item and "NotPrincipal" not in item:
        raise errors.InvalidParameterValue(f"Statement {number} of the policy needs a Principal.")
    if "Action" not in item and "NotAction" not in item:
        raise errors.InvalidParameterValue(f"Statement {number} of the policy needs an Action.")
    sid = item.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise errors.InvalidParameterValue(f"The Sid of statement {number} is not a string.")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who asks, as a resource policy sees it: an account's principal (`account`, and its
    IAM `arn` when known) or an AWS service acting for a resource (`service`, `source_arn`,
    `source_account`)."""

    account: str | None = None
    arn: str | None = None
    service: str | None = None
    source_arn: str | None = None
    source_account: str | None = None
    # a request through a function URL: its AuthType, and "true" (lambda:InvokedViaFunctionUrl)
    url_auth_type: str | None = None
    via_url: str | None = None


def allows(statements: tuple[dict[str, Any], ...], action: str, who: Principal) -> bool:
    """Whether a resource policy lets `who` do `action`: an Allow statement matches and no
    Deny does (IAM's evaluation of a resource policy alone). Conditions other than
    AWS:SourceArn, AWS:SourceAccount, aws:PrincipalAccount, lambda:FunctionUrlAuthType and
    lambda:InvokedViaFunctionUrl (a function URL's request) never match (no organizations), so
    a statement carrying one grants nothing."""
    matching = [s for s in statements if _matches(s, action, who)]
    return any(s.get("Effect") == "Allow" for s in matching) and not any(
        s.get("Effect") == "Deny" for s in matching
    )


# The actions whose AccessDeniedException AWS words (an Invoke's, seen in users' reports);
# for the others (GetFunction, recorded in tests/acceptance/test_aws_answers.py) it answers
# `{"Message": null}`.
_WORDED = ("lambda:InvokeFunction", "lambda:GetLayerVersion")


def denied(who: Principal, action: str | None, resource: str) -> str:
    """AccessDeniedException's message for a call no resource policy allows; "" (AWS's
    `{"Message": null}`) where AWS says nothing more."""
    if action not in _WORDED:
        return ""
    user = who.arn or f"arn:aws:iam::{who.account}:root"
    return (
        f"User: {user} is not authorized to perform: {action} on resource: {resource} "
        f"because no resource-based policy allows the {action} action"
    )


def _matches(statement: dict[str, Any], action: str, who: Principal) -> bool:
    return (
        _action_matches(statement.get("Action"), action)
        and _principal_matches(statement.get("Principal"), who)
        and _conditions_hold(statement.get("Condition") or {}, who)
    )


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _action_matches(value: Any, action: str) -> bool:
    return any(
        isinstance(pattern, str) and fnmatch.fnmatchcase(action.lower(), pattern.lower())
        for pattern in _listed(value)
    )


def _principal_matches(value: Any, who: Principal) -> bool:
    if value == "*" or value == {"AWS": "*"}:
        return True
    if not isinstance(value, dict):
        return False
    if who.service is not None:
        return who.service in _listed(value.get("Service"))
    return any(_aws_matches(item, who) for item in _listed(value.get("AWS")))


def _aws_matches(item: Any, who: Principal) -> bool:
    if not isinstance(item, str) or who.account is None:
        return False
    if item == "*" or item == who.account or item == f"arn:aws:iam::{who.account}:root":
        return True
    return who.arn is not None and item == who.arn


_CONDITION_KEYS = {
    "aws:sourcearn": "source_arn",
    "aws:sourceaccount": "source_account",
    "aws:principalaccount": "account",
    "lambda:functionurlauthtype": "url_auth_type",
    "lambda:invokedviafunctionurl": "via_url",
}


def _conditions_hold(condition: dict[str, Any], who: Principal) -> bool:
    for operator, tests in condition.items():
        if not isinstance(tests, dict):
            return False
        for key, expected in tests.items():
            attribute = _CONDITION_KEYS.get(str(key).lower())
            actual = getattr(who, attribute) if attribute else None
            if actual is None or not _compare(operator, actual, _listed(expected)):
                return False
    return True


def _compare(operator: str, actual: str, expected: list[Any]) -> bool:
    if operator in ("StringEquals", "ArnEquals"):
        return actual in expected
    if operator == "Bool":
        return actual.lower() in [str(e).lower() for e in expected]
    if operator in ("StringLike", "ArnLike"):
        return any(isinstance(e, str) and fnmatch.fnmatchcase(actual, e) for e in expected)
    return False
