"""CloudWatch Logs on the engine's port (awsJson1.1: `POST /` with
`X-Amz-Target: Logs_20140328.<Operation>`), for Lambda's log groups: DescribeLogGroups,
DescribeLogStreams, GetLogEvents, FilterLogEvents (service.log_groups). Point the AWS CLI's
`aws logs` (`tail`, `get-log-events`, …) or a logs client at the engine's endpoint URL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from lamina.api.context import ApiContext
from lamina.domain import errors
from lamina.http.server import Request, Response
from lamina.service.log_groups import LogGroupService

TARGET = "Logs_20140328."
CONTENT_TYPE = "application/x-amz-json-1.1"
_OPERATIONS = {
    "DescribeLogGroups": LogGroupService.describe_log_groups,
    "DescribeLogStreams": LogGroupService.describe_log_streams,
    "GetLogEvents": LogGroupService.get_log_events,
    "FilterLogEvents": LogGroupService.filter_log_events,
}
# Lamina's error classes as CloudWatch Logs names them
_CODES = {
    "ResourceNotFoundException": "ResourceNotFoundException",
    "InvalidParameterValueException": "InvalidParameterException",
    "ValidationException": "ValidationException",
    "InvalidRequestContentException": "SerializationException",
    "UnknownOperationException": "UnknownOperationException",
    # --auth sigv4 refusals: awsJson services answer them with 400, not Lambda's 403
    **{
        name: name
        for name in (
            "MissingAuthenticationTokenException",
            "IncompleteSignatureException",
            "InvalidSignatureException",
            "UnrecognizedClientException",
            "ExpiredTokenException",
        )
    },
}


def is_logs(request: Request) -> bool:
    return (
        request.method == "POST"
        and request.path == "/"
        and request.headers.get("x-amz-target", "").startswith(TARGET)
    )


async def handle(ctx: ApiContext, request: Request, request_id: str) -> Response:
    operation = request.headers.get("x-amz-target", "")[len(TARGET) :]
    method = _OPERATIONS.get(operation)
    if method is None or ctx.log_groups is None:
        raise errors.UnknownOperation(
            f"Lamina serves DescribeLogGroups, DescribeLogStreams, "
            f"GetLogEvents and FilterLogEvents, not {operation}."
        )
    try:
        document = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        document = None
    if not isinstance(document, dict):
        raise errors.InvalidRequestContent("Request body is not a JSON object.")
    body = await asyncio.get_running_loop().run_in_executor(
        None, method, ctx.log_groups, document, ctx.caller_account(request)
    )  # reads files
    return _json(200, body, request_id)


def error_response(error: errors.LaminaError, request_id: str) -> Response:
    """An error as CloudWatch Logs answers it (awsJson1.1: `__type` and `message`)."""
    code = _CODES.get(error.error_type, "ServiceUnavailableException")
    return _json(
        400 if error.fault == "client" else 500,
        {"__type": code, "message": error.message},
        request_id,
    )


def _json(status: int, body: Any, request_id: str) -> Response:
    return Response(
        status,
        [("x-amzn-RequestId", request_id), ("Content-Type", CONTENT_TYPE)],
        json.dumps(body, separators=(",", ":")).encode(),
    )
