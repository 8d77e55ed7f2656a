"""Template parameters: types, defaults, constraints and overrides, as CloudFormation checks
them (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html).

`resolve_parameters` returns each parameter's value: a string, or a list of strings for the
list types. `AWS::SSM::Parameter::Value<...>` parameters hold an SSM parameter *name*; the
caller passes `ssm` to read its value (the stack service reads it through the SSM endpoint).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lamina.domain import errors

_LIST_TYPES = ("CommaDelimitedList", "List<Number>")
_SSM_PREFIX = "AWS::SSM::Parameter::Value<"
MASK = "****"


def _is_list(kind: str) -> bool:
    return (
        kind in _LIST_TYPES
        or kind.startswith("List<")
        or (
            kind.startswith(_SSM_PREFIX)
            and ("List<" in kind[len(_SSM_PREFIX) :] or "CommaDelimitedList" in kind)
        )
    )


def _known_type(kind: str) -> bool:
    return kind in ("String", "Number", *_LIST_TYPES) or kind.startswith(("AWS::", "List<AWS::"))


def resolve_parameters(
    definitions: Any, given: dict[str, str], ssm: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """Every parameter's value (given, else its default), checked against its constraints."""
    if definitions is None:
        definitions = {}
    if not isinstance(definitions, dict):
        raise errors.TemplateError("Template format error: Parameters must be a mapping")
    unknown = sorted(set(given) - set(definitions))
    if unknown:
        raise errors.TemplateError(
            f"Parameters: [{', '.join(unknown)}] do not exist in the template"
        )
    values: dict[str, Any] = {}
    missing = []
    for name, definition in definitions.items():
        if not isinstance(definition, dict) or not isinstance(definition.get("Type"), str):
            raise errors.TemplateError(
                f"Template format error: Every Parameters object must contain a Type member "
                f"(parameter {name})"
            )
        kind = definition["Type"]
        if not _known_type(kind):
            raise errors.TemplateError(
                f"Template format error: Unrecognized parameter type: {kind} (parameter {name})"
            )
        if name in given:
            raw: Any = given[name]
        elif "Default" in definition:
            raw = definition["Default"]
        else:
            missing.append(name)
            continue
        values[name] = _value(name, kind, raw, definition, ssm)
    if missing:
        raise errors.TemplateError(f"Parameters: [{', '.join(missing)}] must have values")
    return values


def _value(
    name: str, kind: str, raw: Any, definition: dict[str, Any], ssm: Callable[[str], str] | None
) -> Any:
    if isinstance(raw, list):
        raw = ",".join(str(item) for item in raw)
    text = _scalar_text(raw)
    if kind.startswith(_SSM_PREFIX):
        if ssm is None:
            raise errors.TemplateError(
                f"Parameter '{name}' names an SSM parameter, and no SSM "
                "endpoint is available to read it"
            )
        text = ssm(text)
    if _is_list(kind):
        items = [item.strip() for item in text.split(",")] if text != "" else []
        for item in items:
            _check(name, kind, item, definition)
        return items
    _check(name, kind, text, definition)
    return text


def _scalar_text(raw: Any) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def _check(name: str, kind: str, text: str, definition: dict[str, Any]) -> None:
    number_kind = kind in ("Number", "List<Number>")
    if number_kind:
        try:
            number = float(text)
        except ValueError:
            raise errors.TemplateError(f"Parameter '{name}' must be a number not {text}") from None
        tests: tuple[tuple[str, Callable[[float], bool]], ...] = (
            ("MinValue", lambda limit: number < limit),
            ("MaxValue", lambda limit: number > limit),
        )
        for key, test in tests:
            if key in definition and test(float(definition[key])):
                raise errors.TemplateError(
                    f"Parameter '{name}' must be a number "
                    f"{'not less' if key == 'MinValue' else 'not greater'}"
                    f" than {definition[key]}"
                )
    allowed = definition.get("AllowedValues")
    if isinstance(allowed, list) and text not in [_scalar_text(a) for a in allowed]:
        raise errors.TemplateError(f"Parameter '{name}' must be one of AllowedValues")
    pattern = definition.get("AllowedPattern")
    if isinstance(pattern, str) and re.fullmatch(pattern, text) is None:
        raise errors.TemplateError(f"Parameter '{name}' must match pattern {pattern}")
    for key, test in (
        ("MinLength", lambda limit: len(text) < limit),
        ("MaxLength", lambda limit: len(text) > limit),
    ):
        if key in definition and test(int(definition[key])):
            raise errors.TemplateError(
                f"Parameter '{name}' must contain at "
                f"{'least' if key == 'MinLength' else 'most'} {definition[key]} characters"
            )


def shown(definitions: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Parameter values as a stack shows them: NoEcho ones masked."""
    return {
        name: MASK
        if (definitions.get(name) or {}).get("NoEcho") in (True, "true", "True")
        else value
        for name, value in values.items()
    }


def ssm_parameters(definitions: Any, given: dict[str, str]) -> dict[str, str]:
    """{parameter: SSM parameter name} of the AWS::SSM::Parameter::Value parameters."""
    out = {}
    for name, definition in (definitions or {}).items():
        if isinstance(definition, dict) and str(definition.get("Type", "")).startswith(_SSM_PREFIX):
            raw = given.get(name, definition.get("Default"))
            if raw is not None:
                out[name] = _scalar_text(raw)
    return out
