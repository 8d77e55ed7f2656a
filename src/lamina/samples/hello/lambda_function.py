"""Lamina's sample function: invoke it with {"name": "you"}."""

import os


def lambda_handler(event, context):
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    print(f"Hello, {name}! ({context.function_name}, request {context.aws_request_id})")
    return {
        "message": f"Hello, {name}!",
        "runtime": os.environ.get("AWS_EXECUTION_ENV"),
        "remainingMs": context.get_remaining_time_in_millis(),
    }
