"""CloudFormation's intrinsic functions and condition functions, resolved over plain values.

`resolve(value, scope, where)` walks a template value and replaces every intrinsic with what
it stands for: Ref, Fn::GetAtt, Fn::Sub (both forms), Fn::Join, Fn::Select, Fn::Split, Fn::If,
Fn::FindInMap, Fn::GetAZs, Fn::Base64, Fn::ImportValue, Fn::Cidr; `Ref: AWS::NoValue` removes
the key or list item that holds it. Condition functions (Fn::Equals, Fn::And, Fn::Or, Fn::Not,
Condition) are evaluated by `conditions()` once, from parameters.

A value that cannot be known yet (an attribute of a resource not created) resolves to a
`Pending` string: functions over it stay Pending, so checks can skip what is not known yet.
Errors are TemplateErrors naming where in the template they are (`where`).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lamina.domain import errors


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Any = _NoValue()


class Pending(str):
    """A value known only once a resource exists (its text says which)."""


@dataclass
class Scope:
    """What names resolve to. `ref(logical_id)` and `getatt(logical_id, attribute)` answer
    for resources (a Pending value while unknown); parameters and pseudo parameters are
    values; `conditions` are already evaluated."""

    parameters: dict[str, Any]
    ref: Callable[[str], Any]
    getatt: Callable[[str, str], Any]
    conditions: dict[str, bool] = field(default_factory=dict)
    mappings: dict[str, Any] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)
    region: str = "us-east-1"
    resources: frozenset[str] = frozenset()


def _fail(where: str, message: str) -> errors.TemplateError:
    return errors.TemplateError(f"Template error: {message} (at {where})")


def resolve(value: Any, scope: Scope, where: str) -> Any:
    """`value` with every intrinsic function replaced (see the module docstring)."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, argument),) = value.items()
            handler = _FUNCTIONS.get(key)
            if handler is not None:
                return handler(argument, scope, f"{where}.{key}")
        out = {}
        for key, item in value.items():
            resolved = resolve(item, scope, f"{where}.{key}")
            if resolved is not NO_VALUE:
                out[key] = resolved
        return out
    if isinstance(value, list):
        items = [resolve(item, scope, f"{where}[{i}]") for i, item in enumerate(value)]
        return [item for item in items if item is not NO_VALUE]
    return value


def _ref(argument: Any, scope: Scope, where: str) -> Any:
    if not isinstance(argument, str):
        raise _fail(where, "Ref takes the name of a parameter or resource")
    if argument == "AWS::NoValue":
        return NO_VALUE
    if argument in scope.parameters:
        return scope.parameters[argument]
    if argument in scope.resources:
        return scope.ref(argument)
    raise _fail(
        where,
        f"Unresolved resource dependencies [{argument}] in the Resources block of the template",
    )


def _getatt(argument: Any, scope: Scope, where: str) -> Any:
    if isinstance(argument, str):
        argument = argument.split(".", 1)
    if not (isinstance(argument, list) and len(argument) == 2):
        raise _fail(where, "Fn::GetAtt takes [LogicalId, Attribute]")
    logical_id, attribute = argument[0], resolve(argument[1], scope, where)
    if not isinstance(logical_id, str) or not isinstance(attribute, str):
        raise _fail(where, "Fn::GetAtt takes [LogicalId, Attribute]")
    if logical_id not in scope.resources:
        raise _fail(
            where,
            f"Unresolved resource dependencies [{logical_id}] in the Resources "
            "block of the template",
        )
    return scope.getatt(logical_id, attribute)


_SUB = re.compile(r"\$\{([^}]*)\}")


def _sub(argument: Any, scope: Scope, where: str) -> Any:
    if isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], dict):
        text, variables = argument[0], resolve(argument[1], scope, where)
    else:
        text, variables = argument, {}
    if not isinstance(text, str):
        raise _fail(where, "Fn::Sub takes a string or [string, {variables}]")
    pending = False

    def one(match: re.Match[str]) -> str:
        nonlocal pending
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        name = name.strip()
        if name in variables:
            found = variables[name]
        elif "." in name and name.split(".", 1)[0] in scope.resources:
            found = _getatt(name.split(".", 1), scope, where)
        else:
            found = _ref(name, scope, where)
        if isinstance(found, Pending):
            pending = True
        if isinstance(found, list):
            found = ",".join(map(str, found))
        return _text(found, where)

    out = _SUB.sub(one, text)
    return Pending(out) if pending else out


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise _fail(where, f"a value used as text is not a string: {json.dumps(value)[:80]}")


def _join(argument: Any, scope: Scope, where: str) -> Any:
    if not (isinstance(argument, list) and len(argument) == 2):
        raise _fail(where, "Fn::Join takes [delimiter, [values]]")
    delimiter, items = argument[0], resolve(argument[1], scope, where)
    if isinstance(items, Pending):
        return Pending(f"Fn::Join over {items}")
    if not isinstance(delimiter, str) or not isinstance(items, list):
        raise _fail(where, "Fn::Join takes [delimiter, [values]]")
    out = delimiter.join(_text(item, where) for item in items)
    return Pending(out) if any(isinstance(i, Pending) for i in items) else out


def _select(argument: Any, scope: Scope, where: str) -> Any:
    if not (isinstance(argument, list) and len(argument) == 2):
        raise _fail(where, "Fn::Select takes [index, [values]]")
    index, items = resolve(argument[0], scope, where), resolve(argument[1], scope, where)
    if isinstance(items, Pending) or isinstance(index, Pending):
        return Pending(f"Fn::Select from {items}")
    try:
        position = int(index)
    except (TypeError, ValueError):
        raise _fail(where, f"Fn::Select index is not a number: {index!r}") from None
    if not isinstance(items, list):
        raise _fail(where, "Fn::Select takes a list of values")
    if not 0 <= position < len(items):
        raise _fail(where, f"Fn::Select cannot select index {position} of {len(items)} values")
    return items[position]


def _split(argument: Any, scope: Scope, where: str) -> Any:
    if not (isinstance(argument, list) and len(argument) == 2):
        raise _fail(where, "Fn::Split takes [delimiter, text]")
    delimiter, text = argument[0], resolve(argument[1], scope, where)
    if isinstance(text, Pending):
        return Pending(f"Fn::Split of {text}")
    if not isinstance(delimiter, str) or not isinstance(text, str) or not delimiter:
        raise _fail(where, "Fn::Split takes [delimiter, text]")
    return text.split(delimiter)


def _if(argument: Any, scope: Scope, where: str) -> Any:
    if not (isinstance(argument, list) and len(argument) == 3 and isinstance(argument[0], str)):
        raise _fail(where, "Fn::If takes [condition, value if true, value if false]")
    if argument[0] not in scope.conditions:
        raise _fail(where, f"Fn::If names an unknown condition: {argument[0]}")
    chosen = argument[1] if scope.conditions[argument[0]] else argument[2]
    return resolve(chosen, scope, where)


def _find_in_map(argument: Any, scope: Scope, where: str) -> Any:
    if not (isinstance(argument, list) and len(argument) in (3, 4)):
        raise _fail(where, "Fn::FindInMap takes [map, top-level key, second-level key]")
    names = [resolve(a, scope, where) for a in argument[:3]]
    found: Any = scope.mappings
    for depth, name in enumerate(names):
        if not isinstance(found, dict) or not isinstance(name, str) or name not in found:
            if (
                len(argument) == 4
                and isinstance(argument[3], dict)
                and "DefaultValue" in argument[3]
            ):
                return resolve(argument[3]["DefaultValue"], scope, where)
            kind = ("Mapping", "Key", "Second-level key")[depth]
            raise _fail(where, f"Fn::FindInMap: {kind} '{name}' not found")
        found = found[name]
    return found


def _get_azs(argument: Any, scope: Scope, where: str) -> Any:
    region = resolve(argument, scope, where) or scope.parameters.get("AWS::Region", scope.region)
    return [f"{region}{zone}" for zone in "abc"]


def _base64(argument: Any, scope: Scope, where: str) -> Any:
    text = resolve(argument, scope, where)
    if isinstance(text, Pending):
        return Pending(f"Fn::Base64 of {text}")
    return base64.b64encode(_text(text, where).encode()).decode()


def _import_value(argument: Any, scope: Scope, where: str) -> Any:
    name = resolve(argument, scope, where)
    if not isinstance(name, str):
        raise _fail(where, "Fn::ImportValue takes an export name")
    if name not in scope.exports:
        raise _fail(where, f"No export named {name} found")
    return scope.exports[name]


def _cidr(argument: Any, scope: Scope, where: str) -> Any:
    if not (isinstance(argument, list) and len(argument) == 3):
        raise _fail(where, "Fn::Cidr takes [ipBlock, count, cidrBits]")
    block, count, bits = (resolve(a, scope, where) for a in argument)
    try:
        network = ipaddress.ip_network(block, strict=False)
        prefix = network.max_prefixlen - int(bits)
        subnets = network.subnets(new_prefix=prefix)
        return [str(next(subnets)) for _ in range(int(count))]
    except (ValueError, TypeError, StopIteration) as exc:
        raise _fail(where, f"Fn::Cidr cannot make those blocks: {exc}") from None


def _condition_ref(argument: Any, scope: Scope, where: str) -> Any:
    if argument not in scope.conditions:
        raise _fail(where, f"unknown condition {argument}")
    return scope.conditions[argument]


_FUNCTIONS: dict[str, Callable[[Any, Scope, str], Any]] = {
    "Ref": _ref,
    "Fn::GetAtt": _getatt,
    "Fn::Sub": _sub,
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::If": _if,
    "Fn::FindInMap": _find_in_map,
    "Fn::GetAZs": _get_azs,
    "Fn::Base64": _base64,
    "Fn::ImportValue": _import_value,
    "Fn::Cidr": _cidr,
}


# conditions -----------------------------------------------------------------------------
def conditions(definitions: dict[str, Any], scope: Scope) -> dict[str, bool]:
    """Every condition of the template, evaluated (conditions may name one another)."""
    if not isinstance(definitions, dict):
        raise errors.TemplateError("Template format error: Conditions must be a mapping")
    evaluator = _Conditions(definitions, scope)
    for name in definitions:
        evaluator.evaluate(name)
    return evaluator.done


class _Conditions:
    """A template's conditions, each evaluated once, following `Condition` references (a
    cycle is an error); `Fn::Equals` resolves its values in a scope that sees them."""

    def __init__(self, definitions: dict[str, Any], scope: Scope) -> None:
        self.definitions = definitions
        self.done: dict[str, bool] = {}
        self.visiting: list[str] = []
        self.scope = Scope(
            scope.parameters,
            scope.ref,
            scope.getatt,
            self.done,
            scope.mappings,
            scope.exports,
            scope.region,
            scope.resources,
        )

    def evaluate(self, name: str) -> bool:
        if name in self.done:
            return self.done[name]
        if name not in self.definitions:
            raise _fail(
                f"Conditions.{self.visiting[-1] if self.visiting else name}",
                f"unknown condition {name}",
            )
        if name in self.visiting:
            raise errors.TemplateError(
                "Template error: circular condition references: "
                + " -> ".join([*self.visiting, name])
            )
        self.visiting.append(name)
        self.done[name] = self.truth(self.definitions[name], f"Conditions.{name}")
        self.visiting.pop()
        return self.done[name]

    def truth(self, value: Any, where: str) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not (isinstance(value, dict) and len(value) == 1):
            raise _fail(where, "a condition must be a condition function")
        ((key, argument),) = value.items()
        if key == "Condition":
            return self.evaluate(argument)
        function = _CONDITION_FUNCTIONS.get(key)
        if function is None:
            raise _fail(where, f"{key} is not a condition function")
        return function(self, argument, where)


def _equals(conds: _Conditions, argument: Any, where: str) -> bool:
    if not (isinstance(argument, list) and len(argument) == 2):
        raise _fail(where, "Fn::Equals takes two values")
    left, right = (resolve(a, conds.scope, where) for a in argument)
    return bool(_comparable(left) == _comparable(right))


def _each(key: str, conds: _Conditions, argument: Any, where: str) -> list[bool]:
    """Every condition of an Fn::And or Fn::Or, all evaluated (no short cut)."""
    if not (isinstance(argument, list) and 2 <= len(argument) <= 10):
        raise _fail(where, f"{key} takes 2 to 10 conditions")
    return [conds.truth(a, where) for a in argument]


def _not(conds: _Conditions, argument: Any, where: str) -> bool:
    if not (isinstance(argument, list) and len(argument) == 1):
        raise _fail(where, "Fn::Not takes one condition")
    return not conds.truth(argument[0], where)


_CONDITION_FUNCTIONS: dict[str, Callable[[_Conditions, Any, str], bool]] = {
    "Fn::Equals": _equals,
    "Fn::And": lambda conds, argument, where: all(_each("Fn::And", conds, argument, where)),
    "Fn::Or": lambda conds, argument, where: any(_each("Fn::Or", conds, argument, where)),
    "Fn::Not": _not,
}


def _comparable(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


# references (for the dependency graph) ---------------------------------------------------
def references(value: Any, conditions_now: dict[str, bool]) -> set[str]:
    """Names a value refers to through Ref, Fn::GetAtt and Fn::Sub (only the branch of an
    Fn::If its condition takes)."""
    found: set[str] = set()

    def walk(item: Any) -> None:
        if isinstance(item, list):
            for entry in item:
                walk(entry)
            return
        if not isinstance(item, dict):
            return
        if len(item) == 1 and _function_references(item, found, walk, conditions_now):
            return
        for entry in item.values():
            walk(entry)

    walk(value)
    return found


def _function_references(
    item: dict[str, Any],
    found: set[str],
    walk: Callable[[Any], None],
    conditions_now: dict[str, bool],
) -> bool:
    """Add what a one-key object refers to when it is a Ref, Fn::GetAtt, Fn::Sub or Fn::If;
    False when it is none of them (its values are walked as any object's)."""
    ((key, argument),) = item.items()
    if key == "Ref" and isinstance(argument, str):
        found.add(argument)
        return True
    if key == "Fn::GetAtt":
        name = (
            argument.split(".", 1)[0]
            if isinstance(argument, str)
            else argument[0]
            if isinstance(argument, list) and argument
            else None
        )
        if isinstance(name, str):
            found.add(name)
        return True
    if key == "Fn::Sub":
        _sub_references(argument, found, walk)
        return True
    if key == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
        taken = conditions_now.get(argument[0])
        if taken is None:
            walk(argument[1:])
        else:
            walk(argument[1] if taken else argument[2])
        return True
    return False


def _sub_references(argument: Any, found: set[str], walk: Callable[[Any], None]) -> None:
    text, variables = (
        (argument[0], argument[1])
        if isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], dict)
        else (argument, {})
    )
    walk(variables)
    if not isinstance(text, str):
        return
    for name in _SUB.findall(text):
        if name.startswith("!"):
            continue
        name = name.strip()
        if name not in variables:
            found.add(name.split(".", 1)[0])
