def handler(event, context):
    print("hello from awslambdaric")
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
    }


def fail(event, context):
    raise KeyError("missing thing")
