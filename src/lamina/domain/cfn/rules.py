"""A template's `Rules`, checked as CloudFormation checks them before it makes anything: each
rule whose `RuleCondition` holds (or that has none) must have every `Assert` of its
`Assertions` hold; the first that does not refuses the template with its
`AssertDescription`.

Rule functions: Fn::And, Fn::Or, Fn::Not, Fn::Equals, Fn::If, Fn::Contains,
Fn::EachMemberEquals, Fn::EachMemberIn, Fn::RefAll (the values of the template's parameters
of a type), plus Ref to parameters and pseudo parameters. Fn::ValueOf and Fn::ValueOfAll ask
for attributes of account resources (a VPC's tags, ...) that Lamina does not look up: a
rule using them is refused, naming it.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lamina.domain import errors
from lamina.domain.cfn import intrinsics
from lamina.domain.cfn.intrinsics import Scope


def check(rules: Any, scope: Scope, definitions: dict[str, Any]) -> None:
    """Raise errors.TemplateError when a rule's assertion does not hold."""
    if rules is None:
        return
    if not isinstance(rules, dict):
        raise errors.TemplateError("Template format error: Rules must be a mapping")
    for name, rule in rules.items():
        where = f"Rules.{name}"
        if not isinstance(rule, dict) or not isinstance(rule.get("Assertions"), list):
            raise errors.TemplateError(
                f"Template format error: rule {name} must contain an Assertions list"
            )
        if "RuleCondition" in rule and not _truth(
            rule["RuleCondition"], scope, definitions, f"{where}.RuleCondition"
        ):
            continue
        for index, assertion in enumerate(rule["Assertions"]):
            at = f"{where}.Assertions[{index}]"
            if not isinstance(assertion, dict) or "Assert" not in assertion:
                raise errors.TemplateError(f"Template format error: {at} must contain Assert")
            if not _truth(assertion["Assert"], scope, definitions, at):
                description = assertion.get("AssertDescription")
                raise errors.TemplateError(
                    str(description)
                    if description
                    else f"Template error: the assertion of rule {name} failed ({at})"
                )


def _truth(value: Any, scope: Scope, definitions: dict[str, Any], where: str) -> bool:
    found = _value(value, scope, definitions, where)
    if isinstance(found, bool):
        return found
    if isinstance(found, str) and found.lower() in ("true", "false"):
        return found.lower() == "true"
    raise errors.TemplateError(
        f"Template error: a rule condition must be a rule function (at {where})"
    )


def _value(value: Any, scope: Scope, definitions: dict[str, Any], where: str) -> Any:
    """A rule expression's value: a boolean, or the value a Ref or RefAll gives."""
    if not (isinstance(value, dict) and len(value) == 1):
        return intrinsics.resolve(value, scope, where) if isinstance(value, (dict, list)) else value
    ((key, argument),) = value.items()
    function = _RULE_FUNCTIONS.get(key)
    if function is None:
        return intrinsics.resolve(value, scope, where)
    return function(key, argument, scope, definitions, where)


def _and_or(key: str, argument: Any, scope: Scope, definitions: dict[str, Any], where: str) -> bool:
    if not (isinstance(argument, list) and 2 <= len(argument) <= 10):
        raise errors.TemplateError(f"Template error: {key} takes 2 to 10 conditions (at {where})")
    results = [_truth(a, scope, definitions, where) for a in argument]
    return all(results) if key == "Fn::And" else any(results)


def _not(key: str, argument: Any, scope: Scope, definitions: dict[str, Any], where: str) -> bool:
    if not (isinstance(argument, list) and len(argument) == 1):
        raise errors.TemplateError(f"Template error: Fn::Not takes one condition (at {where})")
    return not _truth(argument[0], scope, definitions, where)


def _if(key: str, argument: Any, scope: Scope, definitions: dict[str, Any], where: str) -> Any:
    if not (isinstance(argument, list) and len(argument) == 3):
        raise errors.TemplateError(
            f"Template error: Fn::If takes [condition, value if true, value if false] (at {where})"
        )
    condition = argument[0]
    held = (
        scope.conditions.get(condition)
        if isinstance(condition, str)
        else _truth(condition, scope, definitions, where)
    )
    if held is None:
        raise errors.TemplateError(
            f"Template error: Fn::If names an unknown condition {condition} (at {where})"
        )
    return _value(argument[1] if held else argument[2], scope, definitions, where)


def _compare(
    key: str, argument: Any, scope: Scope, definitions: dict[str, Any], where: str
) -> bool:
    """Fn::Equals, Fn::Contains, Fn::EachMemberEquals and Fn::EachMemberIn."""
    if not (isinstance(argument, list) and len(argument) == 2):
        raise errors.TemplateError(f"Template error: {key} takes two values (at {where})")
    left, right = (_text(_value(a, scope, definitions, where)) for a in argument)
    if key == "Fn::Equals":
        return bool(left == right)
    if key == "Fn::Contains":
        return isinstance(left, list) and right in left
    members = left if isinstance(left, list) else [left]
    if key == "Fn::EachMemberEquals":
        return all(member == right for member in members)
    return isinstance(right, list) and all(member in right for member in members)


def _ref_all(
    key: str, argument: Any, scope: Scope, definitions: dict[str, Any], where: str
) -> list[Any]:
    return [
        definition_value
        for name, definition in definitions.items()
        if isinstance(definition, dict) and definition.get("Type") == argument
        for definition_value in _listed(scope.parameters.get(name))
    ]


def _account_lookup(
    key: str, argument: Any, scope: Scope, definitions: dict[str, Any], where: str
) -> Any:
    raise errors.TemplateError(
        f"Template error: {key} reads attributes of account "
        f"resources, which Lamina does not look up (at {where})"
    )


_RULE_FUNCTIONS: dict[str, Callable[[str, Any, Scope, dict[str, Any], str], Any]] = {
    "Fn::And": _and_or,
    "Fn::Or": _and_or,
    "Fn::Not": _not,
    "Fn::If": _if,
    "Fn::Equals": _compare,
    "Fn::Contains": _compare,
    "Fn::EachMemberEquals": _compare,
    "Fn::EachMemberIn": _compare,
    "Fn::RefAll": _ref_all,
    "Fn::ValueOf": _account_lookup,
    "Fn::ValueOfAll": _account_lookup,
}


def _listed(value: Any) -> list[Any]:
    return [_text(v) for v in value] if isinstance(value, list) else [_text(value)]


def _text(value: Any) -> Any:
    if isinstance(value, list):
        return [_text(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value
