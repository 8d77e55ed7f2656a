"""Handlers for event source mapping tests: each invocation is appended to $RUNS_DIR/batches."""

import base64
import json
import os
import time


def _log(kind, event):
    with open(os.path.join(os.environ["RUNS_DIR"], "batches"), "a") as handle:
        handle.write(json.dumps({"kind": kind, "event": event}) + "\n")


def sqs(event, context):
    _log("sqs", event)
    failures = [
        {"itemIdentifier": r["messageId"]}
        for r in event["Records"]
        if "fail-once" in r["body"] and r["attributes"]["ApproximateReceiveCount"] == "1"
    ]
    return {"batchItemFailures": failures}


def kinesis(event, context):
    _log("kinesis", event)
    for record in event["Records"]:
        data = json.loads(base64.b64decode(record["kinesis"]["data"]))
        if data.get("poison"):
            raise ValueError("poison record " + record["kinesis"]["sequenceNumber"])
    return "ok"


def dynamodb(event, context):
    _log("dynamodb", event)
    return "ok"


def kafka(event, context):
    _log("kafka", event)
    for records in event["records"].values():
        for record in records:
            if base64.b64decode(record["value"]) == b"poison":
                raise ValueError("poison at offset %d" % record["offset"])
    return "ok"


def kafka_partial(event, context):
    """Reports the first poison record of each partition (Kafka's partial batch response)."""
    _log("kafka", event)
    failures = []
    for key, records in event["records"].items():
        poison = [r for r in records if base64.b64decode(r["value"]) == b"poison"]
        if poison:
            failures.append({"itemIdentifier": {"partition": key, "offset": poison[0]["offset"]}})
    return {"batchItemFailures": failures}


def window(event, context):
    """Counts the records of a tumbling window in its state."""
    _log("window", event)
    state = dict(event["state"])
    state["count"] = state.get("count", 0) + len(event["Records"])
    return {"state": state}


def _payload(record):
    """The JSON a record carries (SQS body or Kinesis data), or {} if it is not JSON."""
    try:
        if "kinesis" in record:
            return json.loads(base64.b64decode(record["kinesis"]["data"]))
        return json.loads(record.get("body", ""))
    except ValueError:
        return {}


def slow(event, context):
    """Sleeps as long as its records say ({"sleep": seconds}), then notes the batch as done in
    $RUNS_DIR/done (the start is logged to $RUNS_DIR/batches like every handler)."""
    _log("slow", event)
    payloads = [_payload(r) for r in event["Records"]]
    time.sleep(sum(p.get("sleep", 0) for p in payloads if isinstance(p, dict)))
    with open(os.path.join(os.environ["RUNS_DIR"], "done"), "a") as handle:
        handle.write(json.dumps(payloads) + "\n")
    return "ok"
