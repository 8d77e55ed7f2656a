"""`lamina`: serve the engine, or ask a running one what happened."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lamina import cli, config


def _endpoint_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint",
        default=os.environ.get(
            "LAMINA_ENDPOINT",
            f"http://127.0.0.1:{os.environ.get('LAMINA_PORT', config.DEFAULT_PORT)}",
        ),
        help="the engine's URL (env LAMINA_ENDPOINT)",
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="lamina",
        description="Run AWS Lambda functions locally with Lambda's own invocation model. "
        "Point boto3, the AWS CLI or an AWS SDK at the engine with an endpoint URL.",
    )
    commands = top.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="start the engine (Lambda API on --host:--port)",
        description="Start the engine. On --host:--port it serves the Lambda API, the web "
        "console at /_lamina/ and Prometheus metrics at /metrics.",
    )
    config.add_serve_arguments(serve)

    listing = commands.add_parser("invocations", help="list recorded invocations, newest first")
    listing.add_argument("function", nargs="?", help="only this function")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument(
        "--type", choices=["sync", "async", "mapping"], help="only this type of invocation"
    )
    listing.add_argument(
        "--status",
        help="only this outcome: success, error, failed, rejected, "
        "running, queued, retrying, dropped",
    )
    listing.add_argument(
        "--since", help="only those accepted in the last 10m, 2h, 1d … (engine time)"
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    _endpoint_arg(listing)

    trace = commands.add_parser("trace", help="show the timeline of one invocation")
    trace.add_argument("request_id")
    trace.add_argument("--logs", action="store_true", help="also print each attempt's log lines")
    trace.add_argument("--json", action="store_true", help="print JSON")
    _endpoint_arg(trace)

    status = commands.add_parser(
        "status", help="show functions, environments, async queues and event source mappings"
    )
    status.add_argument("function", nargs="?", help="only this function")
    status.add_argument("--json", action="store_true", help="print JSON")
    _endpoint_arg(status)

    logs = commands.add_parser("logs", help="print a function's logs")
    logs.add_argument("function")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("--since", help="only lines after this: 10m, 2h, 30s or an ISO time")
    logs.add_argument("--limit", type=int, default=1000)
    _endpoint_arg(logs)

    fault = commands.add_parser(
        "fault",
        help="script what attempt N of a function does (throttle, timeout, crash, …)",
        description="Add a fault rule to a function (rules apply in order, first match wins), "
        "list its rules, or clear them. Example: lamina fault orders throttle "
        "--attempt 1 --attempt 2; lamina fault orders response --payload "
        '\'{"batchItemFailures": [{"itemIdentifier": "id-1"}]}\'',
    )
    fault.add_argument("function")
    fault.add_argument(
        "action",
        nargs="?",
        choices=["throttle", "timeout", "crash", "init_error", "error", "response"],
    )
    fault.add_argument(
        "--attempt",
        type=int,
        action="append",
        default=[],
        help="only this attempt number (repeatable; default: every attempt)",
    )
    fault.add_argument("--times", type=int, help="apply this many times at most")
    fault.add_argument("--payload", help="the JSON result of a `response` rule")
    fault.add_argument("--error-type", help="errorType of an `error` or `init_error` rule")
    fault.add_argument("--message", help="errorMessage of an `error` or `init_error` rule")
    fault.add_argument("--clear", action="store_true", help="remove the function's rules")
    _endpoint_arg(fault)

    executions = commands.add_parser(
        "executions",
        help="list durable executions, newest first",
        description="List durable executions (of one function, or of every durable function), "
        "newest first. `lamina execution ARN` shows one.",
    )
    executions.add_argument("function", nargs="?", help="only this function")
    executions.add_argument(
        "--status",
        choices=["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"],
        help="only this status",
    )
    executions.add_argument("--limit", type=int, default=50)
    executions.add_argument("--json", action="store_true", help="print JSON")
    _endpoint_arg(executions)

    execution = commands.add_parser(
        "execution",
        help="show one durable execution: its operations and its replays",
        description="Show a durable execution: its operations (as a tree of contexts), its "
        "invocations (replays) and each replay's log lines.",
    )
    execution.add_argument("arn", help="the DurableExecutionArn")
    execution.add_argument("--no-logs", action="store_true", help="leave out the log lines")
    execution.add_argument("--json", action="store_true", help="print JSON")
    _endpoint_arg(execution)

    _debug_parser(commands)
    commands.add_parser("runtimes", help="show which interpreters run which runtimes here")
    console_url = commands.add_parser(
        "console-url",
        help="print a 5-minute presigned URL that opens the console of an "
        "engine run with --auth sigv4",
        description="Print a presigned URL of the console (SigV4, 5 minutes). Opening it sets "
        "a 12-hour session cookie for the console. Credentials: AWS_PROFILE in "
        "LAMINA_CREDENTIALS (or ~/.aws/credentials), or AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY. See docs/SECURITY.md.",
    )
    _endpoint_arg(console_url)
    _deploy_parsers(commands)
    _event_commands(commands)
    return top


def _endpoint_url_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint-url",
        "--endpoint",
        dest="endpoint",
        default=os.environ.get(
            "LAMINA_ENDPOINT_URL",
            f"http://127.0.0.1:{os.environ.get('LAMINA_PORT', config.DEFAULT_PORT)}",
        ),
        help="the engine's URL (env LAMINA_ENDPOINT_URL; default http://127.0.0.1:9001)",
    )


def _deploy_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    deploy = commands.add_parser(
        "deploy",
        help="deploy a SAM, CloudFormation, CDK or Serverless application",
        description="Deploy an application as a stack, as `sam deploy` or CloudFormation "
        "would: PATH is a SAM or CloudFormation template (YAML or JSON), a folder "
        "holding template.yaml, `sam build` output (.aws-sam/build, used when "
        "present), a CDK cloud assembly (cdk.out after `cdk synth`: every stack, "
        "dependencies first) or a Serverless Framework package (.serverless after "
        "`serverless package`). Local code (CodeUri, ContentUri, Code, CDK assets, "
        "Serverless artifacts) is zipped and uploaded; "
        "the engine checks the whole template before it creates anything, creates "
        "Lambda resources itself and other AWS resources through the AWS endpoint it "
        "was started with (AWS_ENDPOINT_URL), and rolls back on failure. A redeploy "
        "changes only what changed. See docs/DEPLOY.md.",
    )
    deploy.add_argument(
        "path",
        type=Path,
        nargs="?",
        default=Path("."),
        help="template file or application folder (default: .)",
    )
    deploy.add_argument(
        "--stack-name",
        help="stack name (default: the application's folder; "
        "a Serverless package's <service>-<stage>); for a CDK assembly, the "
        "one stack to deploy (default: all)",
    )
    deploy.add_argument(
        "--parameter-overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="template parameter values (also ParameterKey=K,ParameterValue=V)",
    )
    deploy.add_argument(
        "--skip-unsupported",
        action="store_true",
        help="deploy the resources Lamina can create and skip the other types "
        "(each skip is printed); without it such a template is refused",
    )
    deploy.add_argument(
        "--watch",
        action="store_true",
        help="run function code straight from its folders (hot reload) and "
        "redeploy when the template changes",
    )
    deploy.add_argument(
        "--json",
        action="store_true",
        help="print the deployed stack as JSON (progress goes to stderr)",
    )
    _endpoint_url_arg(deploy)

    listing = commands.add_parser("stacks", help="list the stacks deployed to the engine")
    listing.add_argument("--json", action="store_true", help="print JSON")
    _endpoint_url_arg(listing)

    destroy = commands.add_parser("destroy", help="delete a stack and everything it created")
    destroy.add_argument("stack_name")
    destroy.add_argument("--json", action="store_true", help="print JSON")
    _endpoint_url_arg(destroy)


def _event_commands(commands: Any) -> None:
    sched = commands.add_parser(
        "schedules",
        help="list, show, create or delete the schedules the engine runs",
        description="Schedules (EventBridge rules and Scheduler schedules) invoke a function "
        "asynchronously on the engine's clock. Without NAME: list them. With NAME: "
        "show it, or create/replace it with --expression and --target, or delete "
        "it. Example: lamina schedules nightly --expression 'cron(0 3 * * ? *)' "
        "--target arn:aws:lambda:us-east-1:123456789012:function:report",
    )
    sched.add_argument("name", nargs="?", help="one schedule")
    sched.add_argument(
        "--expression",
        help="rate(5 minutes), cron(0 12 * * ? *), or with --scheduler at(2026-12-24T10:00:00)",
    )
    sched.add_argument("--target", help="the function's ARN (or name), maybe qualified")
    sched.add_argument(
        "--input",
        help="the JSON the function receives (default: EventBridge's "
        "Scheduled Event; with --scheduler: {})",
    )
    sched.add_argument(
        "--scheduler",
        action="store_true",
        help="an EventBridge Scheduler schedule (time zones, at(), context "
        "attributes in --input) rather than an EventBridge rule",
    )
    sched.add_argument(
        "--timezone",
        help="with --scheduler: the zone of cron() and at(), e.g. Europe/Paris (default UTC)",
    )
    sched.add_argument("--disabled", action="store_true", help="create it disabled")
    sched.add_argument("--delete", action="store_true", help="delete the schedule NAME")
    sched.add_argument("--stack", help="only the schedules of this stack")
    sched.add_argument("--json", action="store_true", help="print JSON")
    _endpoint_arg(sched)

    apis = commands.add_parser(
        "apis",
        help="list, show, create or delete the HTTP APIs the engine serves",
        description="HTTP APIs (API Gateway REST APIs and HTTP APIs) route requests to "
        "functions. Without API_ID: list them with their URLs and routes. With "
        "API_ID: show it, create/replace it from a JSON file (--from-file, the "
        "shape GET answers), or delete it.",
    )
    apis.add_argument("api_id", nargs="?", help="one API (10 lowercase letters or digits)")
    apis.add_argument("--from-file", help="create or replace API_ID from this JSON file")
    apis.add_argument("--delete", action="store_true", help="delete the API API_ID")
    apis.add_argument("--stack", help="only the APIs of this stack")
    apis.add_argument("--json", action="store_true", help="print JSON")
    _endpoint_arg(apis)


def _debug_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    debug = commands.add_parser(
        "debug",
        help="run a function's next environment under a debugger (debugpy, Node's inspector)",
        description="Debug mode: the function's warm environments end and its next one starts "
        "under debugpy (Python) or Node's inspector, listening on 127.0.0.1:PORT "
        "(default 5678 for Python, 9229 for Node.js); one environment at a time, "
        "no timeout while debug mode is on. See docs/DEBUGGING.md for VS Code.",
    )
    debug.add_argument("function")
    debug.add_argument("--qualifier", help="a version or alias (default $LATEST)")
    debug.add_argument("--port", type=int, help="port on 127.0.0.1 to listen on")
    debug.add_argument(
        "--wait", action="store_true", help="hold the next invocation until a debugger attaches"
    )
    debug.add_argument("--off", action="store_true", help="end debug mode")
    _endpoint_arg(debug)


def main(argv: list[str] | None = None) -> int | None:
    args = parser().parse_args(argv)
    return _COMMANDS[args.command](args)


def _serve(args: argparse.Namespace) -> None:
    from lamina import app

    app.run(config.from_args(args))


def _invocations(args: argparse.Namespace) -> None:
    cli.invocations(
        args.endpoint, args.function, args.limit, args.json, args.type, args.status, args.since
    )


def _trace(args: argparse.Namespace) -> None:
    cli.trace(args.endpoint, args.request_id, args.json, args.logs)


def _status(args: argparse.Namespace) -> None:
    cli.status(args.endpoint, args.function, args.json)


def _logs(args: argparse.Namespace) -> None:
    try:
        cli.logs(
            args.endpoint, args.function, args.follow, cli.since_to_iso(args.since), args.limit
        )
    except KeyboardInterrupt:
        pass


def _fault(args: argparse.Namespace) -> None:
    cli.fault(
        args.endpoint,
        args.function,
        args.action,
        args.attempt,
        args.times,
        args.payload,
        args.error_type,
        args.message,
        args.clear,
    )


def _executions(args: argparse.Namespace) -> None:
    from lamina import cli_durable

    cli_durable.executions(args.endpoint, args.function, args.status, args.limit, args.json)


def _execution(args: argparse.Namespace) -> None:
    from lamina import cli_durable

    cli_durable.execution(args.endpoint, args.arn, not args.no_logs, args.json)


def _schedules(args: argparse.Namespace) -> None:
    from lamina import cli_events

    change = cli_events.schedule_change(
        args.expression, args.target, args.input, args.scheduler, args.timezone, args.disabled
    )
    if change is not None and args.name is None:
        raise SystemExit("lamina: name the schedule to create")
    cli_events.schedules(args.endpoint, args.name, args.json, args.stack, change, args.delete)


def _apis(args: argparse.Namespace) -> None:
    from lamina import cli_events

    cli_events.apis(args.endpoint, args.api_id, args.json, args.stack, args.delete, args.from_file)


def _debug(args: argparse.Namespace) -> None:
    cli.debug(args.endpoint, args.function, args.qualifier, args.port, args.wait, args.off)


def _runtimes(args: argparse.Namespace) -> None:
    from lamina.runtime import sandbox
    from lamina.runtime.interpreters import Interpreters

    for family, found in Interpreters().available().items():
        print(f"{family}: " + (", ".join(found) if found else "none found"))
    support = sandbox.probe(os.environ.get("LAMINA_SANDBOX", "auto"), None)
    print(f"sandbox: {support.describe()}")
    if support.warning():
        print(f"warning: {support.warning()}")


def _console_url(args: argparse.Namespace) -> None:
    from lamina import cli_auth

    print(cli_auth.presign(f"{args.endpoint.rstrip('/')}/_lamina/"))


def _deploy_command(args: argparse.Namespace) -> int:
    from lamina import cli_deploy

    if args.command == "deploy":
        return cli_deploy.deploy(
            args.path,
            args.endpoint,
            args.stack_name,
            args.parameter_overrides,
            args.json,
            args.skip_unsupported,
            args.watch,
        )
    if args.command == "stacks":
        return cli_deploy.stacks(args.endpoint, args.json)
    return cli_deploy.destroy(args.endpoint, args.stack_name, args.json)


_COMMANDS: dict[str, Callable[[argparse.Namespace], int | None]] = {
    "console-url": _console_url,
    "serve": _serve,
    "invocations": _invocations,
    "trace": _trace,
    "status": _status,
    "logs": _logs,
    "fault": _fault,
    "executions": _executions,
    "execution": _execution,
    "deploy": _deploy_command,
    "stacks": _deploy_command,
    "destroy": _deploy_command,
    "schedules": _schedules,
    "apis": _apis,
    "debug": _debug,
    "runtimes": _runtimes,
}


if __name__ == "__main__":
    sys.exit(main())
