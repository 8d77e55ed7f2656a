import json
import os

VERSION = "v1"


def handler(event, context):
    records = event.get("Records") or []
    if records:
        print("SQS", json.dumps([r["body"] for r in records]))
    return {
        "statusCode": 200,
        "body": json.dumps(
            {
                "from": "python",
                "version": VERSION,
                "greeting": os.environ.get("GREETING"),
                "path": event.get("path"),
                "source": event.get("source"),
                "records": len(records),
            }
        ),
    }
