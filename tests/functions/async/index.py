"""Handlers for async invocation tests: each run is appended to $RUNS_DIR/<request id>."""

import json
import os
import time


def _record(event, context, outcome):
    path = os.path.join(os.environ["RUNS_DIR"], context.aws_request_id)
    with open(path, "a") as handle:
        handle.write(
            json.dumps(
                {"at": time.time(), "outcome": outcome, "event": event, "engine": os.getppid()}
            )
            + "\n"
        )


def fail(event, context):
    _record(event, context, "fail")
    raise RuntimeError("intentional failure")


def succeed(event, context):
    _record(event, context, "ok")
    return {"handled": event}


def slow(event, context):
    _record(event, context, "start")
    time.sleep(event.get("seconds", 2))
    _record(event, context, "end")
    return "slept"


def counted(event, context):
    """Counts its runs per call (one line per run in $RUNS_DIR/<marker>), then sleeps."""
    with open(os.path.join(os.environ["RUNS_DIR"], event["marker"]), "a") as handle:
        handle.write(context.aws_request_id + "\n")
    time.sleep(event.get("seconds", 5))
    return {"marker": event["marker"], "request_id": context.aws_request_id}
