"""Handlers the tests invoke: one package, one handler per behaviour."""

import json
import logging
import os
import resource
import sys
import tempfile
import threading
import time

COUNTER = {"ticks": 0, "thread": None}


def echo(event, context):
    return event


def fail(event, context):
    raise ValueError(event.get("message", "intentional failure"))


def sleep(event, context):
    time.sleep(event.get("seconds", 1))
    return {
        "slept": event.get("seconds", 1),
        "pid": os.getpid(),
        "environment": context.log_stream_name,
    }


def exit_code(event, context):
    sys.stdout.write("about to exit\n")
    sys.stdout.flush()
    os._exit(event.get("code", 3))


def big_response(event, context):
    return "x" * event.get("bytes", 7 * 1024 * 1024)


def allocate(event, context):
    chunks = []
    for _ in range(event.get("megabytes", 400)):
        chunks.append(bytearray(1024 * 1024))
        time.sleep(0.002)
    return {"allocated": len(chunks)}


def describe(event, context):
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "client_context": None
        if context.client_context is None
        else {"custom": context.client_context.custom, "env": context.client_context.env},
        "env": dict(os.environ),
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "sys_path": sys.path,
        "executable": sys.executable,
        "argv": sys.argv,
        "tz": [time.tzname[0], time.timezone],
        "tmp": tempfile.gettempdir(),
        "open_files": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


def log_lines(event, context):
    print("printed line")
    logging.getLogger().warning("a warning from logging")
    sys.stderr.write("to stderr\n")
    return "logged"


def flood(event, context):
    line = "y" * 1023 + "\n"
    block = line * 1024
    for _ in range(event.get("megabytes", 100)):
        sys.stdout.write(block)
    return "flooded"


def _tick():
    while True:
        COUNTER["ticks"] += 1
        time.sleep(0.01)


def ticker(event, context):
    if COUNTER["thread"] is None:
        COUNTER["thread"] = threading.Thread(target=_tick, daemon=True)
        COUNTER["thread"].start()
    return {"ticks": COUNTER["ticks"], "pid": os.getpid(), "environment": context.log_stream_name}


def unserializable(event, context):
    return {"a set": {1, 2}}


def write_tmp(event, context):
    import tempfile

    path = os.path.join(tempfile.gettempdir(), "scratch.txt")
    with open(path, "w") as handle:
        handle.write(json.dumps(event))
    with open(path) as handle:
        return {"path": path, "content": json.loads(handle.read())}
