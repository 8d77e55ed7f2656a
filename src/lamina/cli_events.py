"""`lamina schedules` and `lamina apis`: the engine's schedules and HTTP APIs, over HTTP."""

from __future__ import annotations

import json
import sys
import urllib.parse
from typing import Any

from lamina.cli import get


def _print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2)
    print()


def schedules(
    endpoint: str,
    name: str | None,
    as_json: bool,
    stack: str | None = None,
    change: dict[str, Any] | None = None,
    delete: bool = False,
) -> None:
    """List schedules; show, create/replace (`change`) or delete one."""
    if name is None:
        found = get(endpoint, "/_lamina/schedules", stack=stack)["Schedules"]
        if as_json:
            _print_json(found)
            return
        if not found:
            print("no schedules")
            return
        print(
            f"{'NAME':28} {'EXPRESSION':24} {'STATE':8} {'NEXT DUE (UTC)':20} {'FIRED':>5}  TARGET"
        )
        for item in found:
            print(
                f"{item['Name'][:28]:28} {item['ScheduleExpression'][:24]:24} "
                f"{item['State']:8} {item['NextDue'] or '-':20} {item['Fired']:>5}  "
                f"{item['TargetArn']}"
            )
        return
    path = f"/_lamina/schedules/{urllib.parse.quote(name, safe='')}"
    if delete:
        get(endpoint, path, method="DELETE")
        print(f"deleted schedule {name}")
        return
    item = get(endpoint, path, method="PUT", body=change) if change else get(endpoint, path)
    if as_json:
        _print_json(item)
        return
    for key in (
        "Name",
        "Arn",
        "ScheduleExpression",
        "ScheduleExpressionTimezone",
        "Source",
        "State",
        "TargetArn",
        "Input",
        "NextDue",
        "LastDue",
        "LastRequestId",
        "LastError",
        "Fired",
        "Missed",
        "Stack",
    ):
        if item.get(key) is not None:
            print(f"{key + ':':28}{item[key]}")


def schedule_change(
    expression: str | None,
    target: str | None,
    input_text: str | None,
    scheduler: bool,
    timezone: str | None,
    disabled: bool,
) -> dict[str, Any] | None:
    """The PUT body of `lamina schedules NAME --expression … --target …` (None: no change)."""
    if expression is None and target is None:
        return None
    if expression is None or target is None:
        raise SystemExit("lamina: a schedule needs both --expression and --target")
    return {
        "ScheduleExpression": expression,
        "TargetArn": target,
        "Input": input_text,
        "Source": "scheduler" if scheduler else "events",
        "ScheduleExpressionTimezone": timezone,
        "State": "DISABLED" if disabled else "ENABLED",
    }


def apis(
    endpoint: str,
    api_id: str | None,
    as_json: bool,
    stack: str | None = None,
    delete: bool = False,
    from_file: str | None = None,
) -> None:
    """List HTTP APIs with their URLs and routes; show, create/replace or delete one."""
    if api_id is None:
        found = get(endpoint, "/_lamina/apis", stack=stack)["Apis"]
        if as_json:
            _print_json(found)
            return
        if not found:
            print("no HTTP APIs")
            return
        for item in found:
            _print_api(item)
        return
    path = f"/_lamina/apis/{urllib.parse.quote(api_id, safe='')}"
    if delete:
        get(endpoint, path, method="DELETE")
        print(f"deleted API {api_id}")
        return
    if from_file is not None:
        try:
            with open(from_file) as handle:
                body = json.load(handle)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"lamina: cannot read {from_file}: {exc}") from None
        item = get(endpoint, path, method="PUT", body=body)
    else:
        item = get(endpoint, path)
    if as_json:
        _print_json(item)
    else:
        _print_api(item)


def _print_api(item: dict[str, Any]) -> None:
    print(f"{item['ApiId']}  {item['Name']}  ({item['ProtocolType']}, stage {item['StageName']})")
    print(f"  {item['Url']}")
    print(f"  {item['FallbackUrl']}")
    for route in item["Routes"]:
        print(
            f"    {route['RouteKey']:36} → {route['TargetArn']} "
            f"(payload {route['PayloadFormatVersion']})"
        )
