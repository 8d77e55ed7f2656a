"""Reading a CloudFormation or SAM template (YAML or JSON) into plain Python values.

YAML templates may use CloudFormation's short-form tags: `!Ref X` is `{"Ref": "X"}`,
`!Condition C` is `{"Condition": "C"}`, `!GetAtt A.B` is `{"Fn::GetAtt": ["A", "B"]}`, and any
other `!Name value` is `{"Fn::Name": value}`. As in CloudFormation, a YAML date such as
`2010-09-09` stays a string (PyYAML would make it a date).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from lamina.domain import errors

_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BASE):  # type: ignore[misc]
    """SafeLoader with CloudFormation's tags, and no implicit timestamps."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BASE.yaml_implicit_resolvers.items()
}


def _construct(loader: Any, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _tag(loader: Any, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value = _construct(loader, node)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _tag)


def parse(text: str, source: str = "template") -> dict[str, Any]:
    """A template's text → its dictionary; a clear TemplateError when it is not one."""
    stripped = text.lstrip()
    try:
        if stripped.startswith("{"):
            document = json.loads(text)
        else:
            document = yaml.load(text, Loader=_Loader)  # a SafeLoader with CloudFormation's tags
    except json.JSONDecodeError as exc:
        raise errors.TemplateError(f"{source} is not valid JSON: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise errors.TemplateError(f"{source} is not valid YAML{where}: {problem}") from None
    if not isinstance(document, dict):
        raise errors.TemplateError(f"{source} is not a template: expected a mapping at the top")
    return document


def is_sam(template: dict[str, Any]) -> bool:
    """Whether the template asks for the SAM transform."""
    transform = template.get("Transform")
    names = transform if isinstance(transform, list) else [transform]
    return any(isinstance(n, str) and n.startswith("AWS::Serverless-") for n in names)
