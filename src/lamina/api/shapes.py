"""A control-plane body checked against its operation's input shape in botocore's model, before
any handler reads it: an object where the model has a structure or map, an array where it has
a list, and neither where it has a scalar. A member of the wrong kind (`"OnFailure": []`,
`"Endpoints": "x"`) is answered 400 InvalidRequestContentException, as Lambda's deserializer
refuses it, instead of reaching a handler that expects the right kind. Finer checks (a string
where an integer goes, ranges, patterns, enums) stay with the handlers and their AWS wording.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from botocore import loaders

from lamina.api import wire
from lamina.domain import errors

CONTAINERS = {"structure": dict, "map": dict, "list": list}


@functools.cache
def _model() -> tuple[dict[str, Any], list[tuple[str, re.Pattern[str], str]]]:
    model = loaders.Loader().load_service_model("lambda", "service-2")
    operations = []
    for op in model["operations"].values():
        if "input" not in op or "payload" in model["shapes"][op["input"]["shape"]]:
            continue  # no body, or a raw one (Invoke's payload)
        path = op["http"]["requestUri"].partition("?")[0]
        pattern = re.sub(
            r"\{[^}+]+\+\}",
            ".+",
            re.escape(path).replace(r"\{", "{").replace(r"\}", "}").replace(r"\+", "+"),
        )
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", pattern)
        operations.append((op["http"]["method"], re.compile(pattern + "/?"), op["input"]["shape"]))
    return model["shapes"], operations


def check(method: str, path: str, body: bytes) -> None:
    """Raise InvalidRequestContent if `body` is not a JSON object or a member of it is of the
    wrong JSON kind for the operation `method path` (a path the model has not is not read)."""
    shapes, operations = _model()
    for op_method, pattern, shape in operations:
        if op_method == method and pattern.fullmatch(path):
            _check_members(shapes, shapes[shape], wire.json_body(body), "")
            return


def _check_members(
    shapes: dict[str, Any], shape: dict[str, Any], value: dict[str, Any], where: str
) -> None:
    for name, member in shape["members"].items():
        if name in value and "location" not in member:
            _check(shapes, member["shape"], value[name], f"{where}{name}")


def _check(shapes: dict[str, Any], name: str, value: Any, where: str) -> None:
    if value is None:
        return
    shape = shapes[name]
    kind = shape["type"]
    wanted = CONTAINERS.get(kind)
    if (wanted is None and isinstance(value, (dict, list))) or (
        wanted is not None and not isinstance(value, wanted)
    ):
        names: dict[type, str] = {dict: "Object", list: "Array"}
        found = names.get(type(value), "scalar")
        raise errors.InvalidRequestContent(
            f"Could not parse request body into json: Cannot deserialize value of type "
            f"`{name}` from {found} value (member {where})"
        )
    if kind == "structure":
        _check_members(shapes, shape, value, where + ".")
    elif kind == "list":
        for index, item in enumerate(value):
            _check(shapes, shape["member"]["shape"], item, f"{where}[{index}]")
    elif kind == "map":
        for key, item in value.items():
            _check(shapes, shape["value"]["shape"], item, f"{where}.{key}")
