"""`lamina deploy`, `lamina stacks`, `lamina destroy`: client commands over the engine's stack
endpoints (api/stacks.py). The engine does the deploy; this side finds the application,
packages its code, uploads what the engine lacks, and prints the engine's progress."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from lamina import cli_auth, loaders

POLL_S = 0.1  # how often the CLI reads a running operation's new events
_DONE_OK = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE")


class EngineError(Exception):
    """The engine refused or could not be reached: one line."""


def request(
    endpoint: str,
    path: str,
    method: str = "GET",
    body: Any = None,
    raw: bytes | None = None,
    timeout: float = 120,
) -> dict[str, Any]:
    url = f"{endpoint.rstrip('/')}{path}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"Content-Type": "application/zip" if raw is not None else "application/json"}
    try:
        headers = cli_auth.headers(method, url, data, headers)
        with urllib.request.urlopen(
            urllib.request.Request(url, data=data, method=method, headers=headers), timeout=timeout
        ) as response:
            text = response.read()
            return json.loads(text) if text else {}
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace")
        try:
            found = json.loads(text)
            message = found.get("Message") or found.get("message") or text
        except ValueError:
            message = text
        raise EngineError(message) from None
    except (urllib.error.URLError, OSError) as exc:
        raise EngineError(
            f"cannot reach the engine at {endpoint}: {getattr(exc, 'reason', exc)}"
        ) from None


def parameter_overrides(values: list[str]) -> dict[str, str]:
    """KEY=VALUE pairs, or SAM's ParameterKey=K,ParameterValue=V."""
    out = {}
    for value in values:
        if value.startswith("ParameterKey="):
            fields = dict(part.split("=", 1) for part in value.split(",", 1) if "=" in part)
            if "ParameterKey" in fields and "ParameterValue" in fields:
                out[fields["ParameterKey"]] = fields["ParameterValue"]
                continue
        key, sep, item = value.partition("=")
        if not sep or not key:
            raise SystemExit(f"lamina: --parameter-overrides takes KEY=VALUE, got {value!r}")
        out[key] = item
    return out


class Printer:
    """Progress as CloudFormation events (to stderr with --json, so stdout stays JSON)."""

    def __init__(self, as_json: bool, endpoint: str = "") -> None:
        self.out = sys.stderr if as_json else sys.stdout
        self.header = False
        self.endpoint = endpoint

    def line(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def event(self, event: dict[str, Any]) -> None:
        if not self.header:
            self.line(
                f"{'ResourceStatus':36} {'ResourceType':32} {'LogicalResourceId':34} "
                "ResourceStatusReason"
            )
            self.header = True
        self.line(
            f"{event['ResourceStatus']:36} {event['ResourceType']:32} "
            f"{event['LogicalResourceId']:34} {event.get('ResourceStatusReason') or '-'}"
        )


def _follow(endpoint: str, name: str, after: int, printer: Printer) -> str:
    """Print the stack's events until its operation ends; its final status."""
    quoted = urllib.parse.quote(name)
    while True:
        found = request(endpoint, f"/_lamina/stacks/{quoted}/events?after={after}")
        for event in found["Events"]:
            printer.event(event)
            after = max(after, int(event["EventId"]))
        if not found["StackStatus"].endswith("_IN_PROGRESS"):
            return str(found["StackStatus"])
        time.sleep(POLL_S)


def _upload(endpoint: str, app: loaders.Application, printer: Printer) -> None:
    if not app.packages:
        return
    missing = request(
        endpoint, "/_lamina/packages/missing", "POST", {"Keys": sorted(app.packages)}
    )["Missing"]
    for key in missing:
        request(endpoint, "/_lamina/packages", "POST", raw=app.packages[key])
    printer.line(
        f"Packages: {len(app.packages)} ({len(missing)} uploaded, "
        f"{len(app.packages) - len(missing)} already in the engine)"
    )


def deploy_once(
    path: Path,
    endpoint: str,
    stack_name: str | None,
    overrides: dict[str, str],
    as_json: bool,
    skip_unsupported: bool,
    hot_reload: bool = False,
) -> tuple[bool, list[loaders.Application]]:
    """One deploy of every stack at `path` (in order; the first failure stops it), printed;
    (whether all succeeded, the applications read)."""
    printer = Printer(as_json, endpoint)
    try:
        apps = _chosen(loaders.load_all(path, hot_reload), stack_name)
    except loaders.LoadError as exc:
        print(f"lamina: {exc}", file=sys.stderr)
        return False, []
    declared = [set(app.template.get("Parameters") or {}) for app in apps]
    unknown = sorted(set(overrides) - set().union(*declared)) if len(apps) > 1 else []
    if unknown:
        print(
            f"lamina: --parameter-overrides: no stack declares {', '.join(unknown)}",
            file=sys.stderr,
        )
        return False, apps
    stacks: list[dict[str, Any]] = []
    ok = True
    for app, names in zip(apps, declared, strict=True):
        name = app.stack_name if app.fixed_name else (stack_name or app.stack_name)
        given = overrides if len(apps) == 1 else {k: v for k, v in overrides.items() if k in names}
        ok, stack = _deploy_app(app, name, endpoint, given, skip_unsupported, printer)
        if stack is not None:
            stacks.append(stack)
            if not as_json:
                _summary(stack, as_json, printer)
        if not ok:
            break
    if as_json and stacks:
        json.dump(stacks[0] if len(apps) == 1 else {"Stacks": stacks}, sys.stdout, indent=2)
        print()
    return ok, apps


def _chosen(apps: list[loaders.Application], stack_name: str | None) -> list[loaders.Application]:
    """With --stack-name, the one stack of an application that names its stacks (CDK)."""
    if stack_name is None or not apps or not apps[0].fixed_name:
        return apps
    found = [app for app in apps if stack_name in app.aliases]
    if not found:
        raise loaders.LoadError(
            f"no stack {stack_name} in {apps[0].source.parent} (it has "
            f"{', '.join(app.stack_name for app in apps)})"
        )
    return found


def _deploy_app(
    app: loaders.Application,
    name: str,
    endpoint: str,
    overrides: dict[str, str],
    skip_unsupported: bool,
    printer: Printer,
) -> tuple[bool, dict[str, Any] | None]:
    try:
        _upload(endpoint, app, printer)
        started = request(
            endpoint,
            f"/_lamina/stacks/{urllib.parse.quote(name)}",
            "PUT",
            {
                "Template": app.template,
                "Parameters": overrides,
                "SkipUnsupported": skip_unsupported,
            },
        )
        if not started.get("Changes", True):
            printer.line(f"No changes to deploy. Stack {name} is up to date")
            status = started["StackStatus"]
        else:
            printer.line(f"Deploying {app.source} as stack {name} to {printer.endpoint}")
            status = _follow(endpoint, name, int(started.get("LastEventId", 1)) - 1, printer)
        stack = request(endpoint, f"/_lamina/stacks/{urllib.parse.quote(name)}")
    except EngineError as exc:
        print(f"lamina: deploy of {name}: {exc}", file=sys.stderr)
        return False, None
    ok = status in _DONE_OK or not started.get("Changes", True)
    if not ok:
        print(
            f"lamina: deploy of {name} failed: {stack.get('StackStatusReason') or status} "
            f"(stack is {status})",
            file=sys.stderr,
        )
    return ok, stack


def _summary(stack: dict[str, Any], as_json: bool, printer: Printer) -> None:
    for notice in stack.get("Notices", []):
        printer.line(f"Note: {notice}")
    if stack.get("Outputs"):
        printer.line("Outputs:")
        for output in stack["Outputs"]:
            printer.line(f"  {output['OutputKey']:30} {output['OutputValue']}")
    for api in stack.get("HttpApis", []):
        if api.get("Url"):
            printer.line(
                f"HTTP API {api['LogicalResourceId']}: {api['Url']}  (or {api.get('FallbackUrl')})"
            )
    for url in stack.get("FunctionUrls", []):
        printer.line(f"Function URL {url['LogicalResourceId']}: {url['FunctionUrl']}")
    printer.line(f"Stack {stack['StackName']}: {stack['StackStatus']}")


def deploy(
    path: Path,
    endpoint: str,
    stack_name: str | None,
    overrides: list[str],
    as_json: bool,
    skip_unsupported: bool,
    watch: bool,
) -> int:
    given = parameter_overrides(overrides)
    ok, apps = deploy_once(path, endpoint, stack_name, given, as_json, skip_unsupported, watch)
    if not watch:
        return 0 if ok else 1
    if not apps:
        return 1
    return _watch(path, endpoint, stack_name, given, as_json, skip_unsupported, apps)


def _watch(
    path: Path,
    endpoint: str,
    stack_name: str | None,
    given: dict[str, str],
    as_json: bool,
    skip_unsupported: bool,
    apps: list[loaders.Application],
) -> int:
    """Redeploy whenever the template changes (code folders reload on their own). For a CDK
    assembly or a Serverless package, the template is what `cdk synth` or `serverless
    package` writes again."""
    import watchfiles

    # a template file; the folder a tool writes again as a whole (cdk.out, .serverless)
    sources = sorted(
        {
            str(app.source.parent)
            if app.fixed_name or app.source.parent.name == ".serverless"
            else str(app.source)
            for app in apps
        }
    )
    print(
        f"Watching {', '.join(sources)} (Ctrl-C stops); code folders reload without a deploy",
        file=sys.stderr,
        flush=True,
    )
    try:
        for _changes in watchfiles.watch(*sources, debounce=300, raise_interrupt=False):
            deploy_once(path, endpoint, stack_name, given, as_json, skip_unsupported, True)
    except KeyboardInterrupt:
        pass
    return 0


def stacks(endpoint: str, as_json: bool) -> int:
    try:
        found = request(endpoint, "/_lamina/stacks")["Stacks"]
    except EngineError as exc:
        print(f"lamina: {exc}", file=sys.stderr)
        return 1
    if as_json:
        json.dump(found, sys.stdout, indent=2)
        print()
        return 0
    if not found:
        print("no stacks")
        return 0
    print(f"{'STACK':30} {'STATUS':36} {'RESOURCES':>9}  UPDATED")
    for stack in found:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stack["LastUpdatedTime"]))
        print(
            f"{stack['StackName'][:30]:30} {stack['StackStatus']:36} "
            f"{stack['Resources']:>9}  {when}"
        )
    return 0


def destroy(endpoint: str, name: str, as_json: bool) -> int:
    printer = Printer(as_json)
    try:
        request(endpoint, f"/_lamina/stacks/{urllib.parse.quote(name)}", "DELETE")
        status = _follow(endpoint, name, _last_event(endpoint, name), printer)
    except EngineError as exc:
        print(f"lamina: destroy of {name}: {exc}", file=sys.stderr)
        return 1
    if as_json:
        json.dump({"StackName": name, "StackStatus": status}, sys.stdout, indent=2)
        print()
    else:
        printer.line(f"Stack {name}: {status}")
    if status != "DELETE_COMPLETE":
        print(
            f"lamina: destroy of {name} failed ({status}); lamina destroy {name} tries again",
            file=sys.stderr,
        )
        return 1
    return 0


def _last_event(endpoint: str, name: str) -> int:
    """The event id just before DELETE_IN_PROGRESS (so that the delete's events print)."""
    found = request(endpoint, f"/_lamina/stacks/{urllib.parse.quote(name)}/events?after=0")
    ids = [
        int(e["EventId"])
        for e in found["Events"]
        if e["ResourceStatus"] == "DELETE_IN_PROGRESS"
        and e["ResourceType"] == "AWS::CloudFormation::Stack"
    ]
    return ids[-1] - 1 if ids else 0
