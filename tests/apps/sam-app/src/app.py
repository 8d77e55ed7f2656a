import os

import helper

VERSION = "v1"


def handler(event, context):
    if isinstance(event, dict) and event.get("fail"):
        raise RuntimeError("asked to fail")
    return {
        "version": VERSION,
        "greeting": os.environ["GREETING"],
        "stage": os.environ["STAGE"],
        "prod": os.environ["PROD"],
        "queue": os.environ["QUEUE_URL"],
        "helper": helper.shout("ok"),
        "function_version": context.function_version,
        "event": event,
    }
