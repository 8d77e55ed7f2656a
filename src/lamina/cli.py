"""The client commands of `lamina`: they talk to a running engine over HTTP (stdlib; signed
with SigV4 by `cli_auth` when there are credentials; `trace` and `status` draw with rich, in
`cli_trace`)."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from lamina import cli_auth


def get(
    endpoint: str, path: str, method: str = "GET", body: Any = None, **params: Any
) -> dict[str, Any]:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    url = f"{endpoint.rstrip('/')}{path}" + (f"?{query}" if query else "")
    data = None if body is None else json.dumps(body).encode()
    try:
        request = urllib.request.Request(
            url, data=data, method=method, headers=cli_auth.headers(method, url, data)
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return json.loads(text) if text else {}
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")
        try:
            message = json.loads(body)
            message = message.get("Message") or message.get("message") or body
        except ValueError:
            message = body
        raise SystemExit(f"lamina: {exc.code} {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SystemExit(f"lamina: cannot reach the engine at {endpoint}: {exc}") from None


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) + f".{int(epoch % 1 * 1000):03d}"
    )


def invocations(
    endpoint: str,
    function: str | None,
    limit: int,
    as_json: bool,
    kind: str | None = None,
    status: str | None = None,
    since: str | None = None,
) -> None:
    found = get(
        endpoint,
        "/_lamina/invocations",
        function=function,
        limit=limit,
        type=kind,
        status=status,
        since=since,
    )["Invocations"]
    if as_json:
        json.dump(found, sys.stdout, indent=2)
        print()
        return
    if not found:
        print("no invocations recorded")
        return
    print(
        f"{'ACCEPTED':23}  {'FUNCTION':20} {'TYPE':15} {'STATUS':9} {'ATTEMPTS':>8} "
        f"{'MS':>9}  {'ERROR':24} REQUEST ID"
    )
    for item in found:
        duration = item["DurationMs"]
        print(
            f"{_when(item['AcceptedAt']):23}  {item['FunctionName'][:20]:20} "
            f"{item['InvocationType']:15} {item['Status']:9} {item['Attempts']:>8} "
            f"{'-' if duration is None else f'{duration:.2f}':>9}  "
            f"{(item['ErrorType'] or '')[:24]:24} {item['RequestId']}"
        )


def trace(endpoint: str, request_id: str, as_json: bool, with_logs: bool = False) -> None:
    """The timeline of one invocation, drawn on a time axis with rich (or JSON)."""
    quoted = urllib.parse.quote(request_id)
    found = get(endpoint, f"/_lamina/invocations/{quoted}")
    logs = get(endpoint, f"/_lamina/invocations/{quoted}/logs") if with_logs else None
    if as_json:
        json.dump(
            found if logs is None else {**found, "Logs": logs["Attempts"]}, sys.stdout, indent=2
        )
        print()
        return
    from lamina import cli_trace

    cli_trace.draw(found, logs, scale=get(endpoint, "/_lamina/clock")["Scale"])


def status(endpoint: str, function: str | None, as_json: bool) -> None:
    """Functions, their environments and queues, and event source mappings, now."""
    found = get(endpoint, "/_lamina/overview")
    if function is not None:
        found["Functions"] = [f for f in found["Functions"] if f["FunctionName"] == function]
        found["Mappings"] = [m for m in found["Mappings"] if m["FunctionName"] == function]
    if as_json:
        json.dump(found, sys.stdout, indent=2)
        print()
        return
    from lamina import cli_trace

    cli_trace.draw_status(found)


def logs(endpoint: str, function: str, follow: bool, since: str | None, limit: int) -> None:
    path = f"/_lamina/logs/{urllib.parse.quote(function)}"
    page = get(endpoint, path, since=since, limit=limit)
    while True:
        for event in page["Events"]:
            print(f"{event['Timestamp']} {event['Message']}")
        sys.stdout.flush()
        if not follow:
            return
        time.sleep(0.5)
        page = get(endpoint, path, token=page["NextToken"])


def since_to_iso(value: str | None) -> str | None:
    """'10m', '2h', '30s' or an ISO time → the ISO time logs are read after."""
    if value is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value[-1:] in units and value[:-1].isdigit():
        moment = time.time() - int(value[:-1]) * units[value[-1]]
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + ".000Z"
    return value


def fault(
    endpoint: str,
    function: str,
    action: str | None,
    attempts: list[int],
    times: int | None,
    payload: str | None,
    error_type: str | None,
    message: str | None,
    clear: bool,
) -> None:
    path = f"/_lamina/faults/{urllib.parse.quote(function)}"
    if clear:
        get(endpoint, path, method="DELETE")
        print(f"no faults for {function}")
        return
    rules = get(endpoint, path)["Rules"]
    if action is not None:
        rule: dict[str, Any] = {
            "action": action,
            "attempts": attempts,
            "times": times,
            "error_type": error_type,
            "message": message,
        }
        if payload is not None:
            try:
                rule["payload"] = json.loads(payload)
            except ValueError:
                raise SystemExit(f"lamina: --payload is not JSON: {payload!r}") from None
        rules = get(endpoint, path, method="PUT", body={"Rules": [*rules, rule]})["Rules"]
    for rule in rules:
        which = ",".join(map(str, rule["attempts"])) or "every"
        times_text = "" if rule["times"] is None else f" ({rule['times']} more times)"
        print(f"{function}: attempt {which} → {rule['action']}{times_text}")


def debug(
    endpoint: str, function: str, qualifier: str | None, port: int | None, wait: bool, off: bool
) -> None:
    """`lamina debug`: debug mode on (or off) for a function version; prints where to attach."""
    path = f"/_lamina/debug/{urllib.parse.quote(function)}"
    if off:
        get(endpoint, path, method="DELETE", Qualifier=qualifier)
        print(f"debug mode off for {function}" + (f":{qualifier}" if qualifier else ""))
        return
    body: dict[str, Any] = {"Wait": wait}
    if qualifier is not None:
        body["Qualifier"] = qualifier
    if port is not None:
        body["Port"] = port
    settings = get(endpoint, path, method="PUT", body=body)
    waiting = "; its next invocation waits for a debugger to attach" if settings["Wait"] else ""
    print(
        f"debug mode on for {function} (version {settings['Version']}): its next "
        f"environment listens on 127.0.0.1:{settings['Port']}{waiting}. The timeout does not "
        "fire while debug mode is on; `lamina debug "
        f"{function} --off` ends it."
    )
