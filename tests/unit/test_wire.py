import base64
import json
import re

import pytest

from lamina.api import wire
from lamina.domain import errors
from lamina.domain.model import FunctionConfig, Invocation
from lamina.http.server import Response
from lamina.runtime.runtime_api import wire as runtime_wire

CONFIG = FunctionConfig(
    name="f",
    runtime="python3.12",
    handler="a.b",
    role="arn:aws:iam::123456789012:role/r",
    code_sha256="c2hh",
    code_size=10,
    revision_id="rev",
    last_modified="2026-01-01T00:00:00.000+0000",
)


def test_payload_rules():
    assert wire.payload(b"", "RequestResponse") == b"{}"
    assert wire.payload(b'{"a":1}', "RequestResponse") == b'{"a":1}'
    with pytest.raises(errors.InvalidRequestContent, match="^Could not parse request body"):
        wire.payload(b"{", "RequestResponse")
    with pytest.raises(errors.InvalidRequestContent):
        wire.payload(b"\xff\xfe", "RequestResponse")
    with pytest.raises(errors.RequestTooLarge, match="6291456 bytes for the InvokeFunction"):
        wire.payload(b"1" * 6_291_457, "RequestResponse")
    with pytest.raises(errors.RequestTooLarge, match="too large for the Event invocation type"):
        wire.payload(b"1" * 1_048_577, "Event")


def test_headers():
    assert wire.invocation_type(None) == "RequestResponse"
    with pytest.raises(errors.ValidationError, match="invocationType"):
        wire.invocation_type("Sometimes")
    assert wire.log_type("Tail") is True and wire.log_type("None") is False
    with pytest.raises(errors.ValidationError):
        wire.log_type("All")
    context = base64.b64encode(b'{"custom":{"a":1}}').decode()
    assert json.loads(wire.client_context(context)) == {"custom": {"a": 1}}
    for bad in ("%%%", base64.b64encode(b"[1]").decode(), "A" * 3584):
        with pytest.raises(errors.InvalidRequestContent):
            wire.client_context(bad)


def test_error_response_shapes():
    response = wire.error_response(errors.ResourceNotFound("Function not found: x"), "rid")
    assert response.status == 404
    assert ("x-amzn-ErrorType", "ResourceNotFoundException") in response.headers
    assert json.loads(response.body) == {"Type": "User", "Message": "Function not found: x"}
    throttle = wire.error_response(errors.TooManyRequests("ConcurrentInvocationLimitExceeded"), "r")
    assert throttle.status == 429 and ("Retry-After", "1") in throttle.headers
    assert json.loads(throttle.body) == {
        "Reason": "ConcurrentInvocationLimitExceeded",
        "Type": "User",
        "message": "Rate Exceeded.",
    }
    reserved = wire.error_response(
        errors.TooManyRequests("ReservedFunctionConcurrentInvocationLimitExceeded"), "r"
    )
    assert not [h for h in reserved.headers if h[0] == "Retry-After"], "AWS sends none"
    validation = wire.error_response(errors.ValidationError("bad"), "r")
    assert json.loads(validation.body) == {"message": "bad"}
    service = wire.error_response(errors.ServiceError("oops"), "r")
    assert service.status == 500 and json.loads(service.body)["Type"] == "Service"


ARN = "arn:aws:lambda:eu-west-1:123456789012:function:f"


def test_function_configuration_shape():
    body = wire.function_configuration(CONFIG, ARN)
    assert body["FunctionArn"] == ARN and body["Version"] == "$LATEST"
    assert "Environment" not in body
    assert body["State"] == "Pending" and body["StateReasonCode"] == "Creating"
    with_env = wire.function_configuration(CONFIG.replace(environment={"AB": "1"}), ARN)
    assert with_env["Environment"] == {"Variables": {"AB": "1"}}
    given_empty = wire.function_configuration(CONFIG.replace(has_environment=True), ARN)
    assert given_empty["Environment"] == {"Variables": {}}


def test_runtime_version_arn_is_stable_per_runtime_and_region():
    def version_arn(config, arn=ARN):
        return wire.function_configuration(config, arn)["RuntimeVersionConfig"]["RuntimeVersionArn"]

    first = version_arn(CONFIG)
    assert re.fullmatch(r"arn:aws:lambda:eu-west-1::runtime:[0-9a-f]{64}", first)
    assert version_arn(CONFIG.replace(name="other", revision_id="r9")) == first
    assert version_arn(CONFIG.replace(runtime="python3.11")) != first
    assert version_arn(CONFIG, ARN.replace("eu-west-1", "us-east-1")).split(":")[3] == "us-east-1"
    assert "RuntimeVersionConfig" not in wire.function_configuration(CONFIG, ARN, listed=True)


def test_listed_configurations_leave_out_state():
    body = wire.function_configuration(
        CONFIG.replace(last_update_status="Successful"), ARN, listed=True
    )
    assert not {"State", "StateReason", "StateReasonCode", "LastUpdateStatus"} & set(body)


def test_logging_config_shows_levels_only_when_set():
    assert wire.function_configuration(CONFIG, ARN)["LoggingConfig"] == {
        "LogFormat": "Text",
        "LogGroup": "/aws/lambda/f",
    }
    json_config = CONFIG.replace(
        log_format="JSON",
        application_log_level="DEBUG",
        system_log_level="WARN",
        log_group="custom",
    )
    assert wire.function_configuration(json_config, ARN)["LoggingConfig"] == {
        "LogFormat": "JSON",
        "LogGroup": "custom",
        "ApplicationLogLevel": "DEBUG",
        "SystemLogLevel": "WARN",
    }


def test_settings_decoding_checks_types():
    settings = wire.function_settings(
        {
            "Timeout": 5,
            "Environment": {"Variables": {"AB": "1"}},
            "EphemeralStorage": {"Size": 1024},
        }
    )
    assert (settings.timeout, settings.environment, settings.ephemeral_storage) == (
        5,
        {"AB": "1"},
        1024,
    )
    with pytest.raises(errors.ValidationError):
        wire.function_settings({"Timeout": "5"})
    with pytest.raises(errors.ValidationError):
        wire.function_settings({"MemorySize": True})


@pytest.mark.parametrize(
    ("function_error", "tail"), [(False, None), (True, None), (False, b"START\nEND\n")]
)
def test_an_invoke_answer_encodes_as_its_header_pairs_do(function_error, tail):
    """The synchronous Invoke's answer is formatted in one go, byte for byte what a plain
    Response of its headers gives (the AWS headers: request id, version, content type, and
    the function error and log result when there are)."""
    answer = wire.invoke_response("rid-1", "$LATEST", b'{"a":1}', "text/x", function_error, tail)
    headers = dict(answer.headers)
    assert headers["x-amzn-RequestId"] == "rid-1"
    assert headers["X-Amz-Executed-Version"] == "$LATEST"
    assert headers["Content-Type"] == "text/x"
    assert ("X-Amz-Function-Error" in headers) is function_error
    if tail is not None:
        assert base64.b64decode(headers["X-Amz-Log-Result"]) == tail
    plain = Response(answer.status, answer.headers, answer.body)
    for keep_alive in (True, False):
        assert answer.encode(keep_alive) == plain.encode(keep_alive)


def test_runtime_api_wire():
    invocation = Invocation(
        "rid", CONFIG, "arn:f", b"{}", client_context='{"a":1}', trace_id="Root=1-x"
    )
    response = runtime_wire.next_response(invocation, 1234, "inv-1")
    headers = dict(response.headers)
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "rid"
    assert headers["Lambda-Runtime-Invocation-Id"] == "inv-1"
    assert "Lambda-Runtime-Aws-Tenant-Id" not in headers
    assert headers["Lambda-Runtime-Deadline-Ms"] == "1234"
    assert headers["Lambda-Runtime-Client-Context"] == '{"a":1}'
    assert "Lambda-Runtime-Cognito-Identity" not in headers
    # encoded once (202) or in one formatting (the event), byte for byte what Response gives
    for fast in (response, runtime_wire.ACCEPTED):
        plain = Response(fast.status, fast.headers, fast.body)
        for keep_alive in (True, False):
            assert fast.encode(keep_alive) == plain.encode(keep_alive)
    assert response.encode(True).startswith(
        b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: rid"
    )
    assert response.encode(True).endswith(b"Content-Length: 2\r\n\r\n{}")
    cause = json.dumps({"errorMessage": "m", "errorType": "T", "errorCause": {"x": 1}}).encode()
    stripped = runtime_wire.error_document(cause, runtime_wire.ERROR_CAUSE_CONTENT_TYPE)
    assert json.loads(stripped) == {"errorMessage": "m", "errorType": "T"}
    assert runtime_wire.error_document(b"raw", "text/plain") == b"raw"
    assert runtime_wire.error_type_of("Runtime.X", b"") == "Runtime.X"
    assert runtime_wire.error_type_of(None, b'{"errorType":"E"}') == "E"
    assert runtime_wire.error_type_of(None, b"nope") == "Unhandled"
    assert (
        runtime_wire.platform_error("Sandbox.Timedout", "m")
        == b'{"errorType":"Sandbox.Timedout","errorMessage":"m"}'
    )
