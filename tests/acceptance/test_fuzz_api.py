"""schemathesis drives every operation of `/_lamina/openapi.json` (botocore's Lambda model)
against a real `lamina serve`: valid and invalid parameters, headers and bodies.

Each answer must be one Lambda could give: no 500 / ServiceException, no hang, no reset,
every 4xx with `x-amzn-ErrorType` and AWS's JSON error body; and no traceback in the engine's
log. Half the cases name a function that exists (`fuzz-target`), so they get past the 404.

The default run takes FUZZ_EXAMPLES (5) cases per operation; `-m fuzz` takes 100, and
LAMINA_FUZZ_EXAMPLES=N any number.
"""

from __future__ import annotations

import json
import os
import zlib

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from lamina.api import openapi
from tests.acceptance.conftest import module_engine
from tests.conftest import PY_RUNTIME, ROLE, Server, client, make_zip

FUZZ_EXAMPLES = 5
TARGET = "fuzz-target"
# AWS answers these 5xx itself (a network or KMS failure it met); ServiceException is a bug
AWS_5XX = {
    "ResourceNotReadyException",
    "EC2ThrottledException",
    "EC2UnexpectedException",
    "ENILimitReachedException",
    "InvalidRuntimeException",
    "InvalidZipFileException",
    "SubnetIPAddressLimitReachedException",
    "InvalidSubnetIDException",
    "InvalidSecurityGroupIDException",
    "EFSIOException",
    "EFSMountFailureException",
    "EFSMountConnectivityException",
    "EFSMountTimeoutException",
    "KMSAccessDeniedException",
    "KMSDisabledException",
    "KMSInvalidStateException",
    "KMSNotFoundException",
    "SnapStartException",
    "SnapStartTimeoutException",
    "SerializedRequestEntityTooLargeException",
    "RecursiveInvocationException",
}


# tests/conftest.py sets LAMINA_FUZZ_EXAMPLES=100 under `-m fuzz`
EXAMPLES = int(os.environ.get("LAMINA_FUZZ_EXAMPLES") or FUZZ_EXAMPLES)


engine = module_engine("fuzz", "--sandbox", "none")


@pytest.fixture
def target(engine: Server) -> None:
    """`fuzz-target` exists before each operation's cases (a case may have deleted it)."""
    lam = client(engine.endpoint)
    try:
        lam.get_function(FunctionName=TARGET)
    except lam.exceptions.ResourceNotFoundException:
        lam.create_function(
            FunctionName=TARGET,
            Runtime=PY_RUNTIME,
            Role=ROLE,
            Handler="index.handler",
            Code={
                "ZipFile": make_zip(
                    {"index.py": "def handler(event, context):\n    return event\n"}
                )
            },
        )
    finally:
        lam.close()


# the same document the engine serves (test_the_engine_serves_its_description checks that)
# (the default run: generated cases only; -m fuzz adds schemathesis' boundary "coverage" and
# the model's examples)
PHASES = {
    "fuzzing": {"enabled": True},
    "coverage": {"enabled": EXAMPLES >= 50},
    "examples": {"enabled": EXAMPLES >= 50},
}
DOCUMENT = json.loads(openapi.document())
if EXAMPLES < 50:  # generating strings for botocore's patterns costs 2.5x: kept for -m fuzz
    for component in DOCUMENT["components"]["schemas"].values():
        component.pop("pattern", None)
schema = schemathesis.openapi.from_dict(
    DOCUMENT, config=schemathesis.Config.from_dict({"phases": PHASES})
)


def test_the_engine_serves_its_description(engine: Server) -> None:
    served = requests.get(engine.endpoint + "/_lamina/openapi.json", timeout=30)
    assert served.headers["Content-Type"] == "application/json"
    document = served.json()
    assert document == json.loads(openapi.document())
    operations = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert {"Invoke", "CreateFunction", "GetLayerVersionByArn", "ListLayers"} <= operations
    assert len(operations) == len(client(engine.endpoint).meta.service_model.operation_names)


@pytest.mark.fuzz
@schema.parametrize()
@settings(
    max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
def test_every_operation_answers_as_aws(
    case: schemathesis.Case, engine: Server, target: None
) -> None:
    if (
        zlib.crc32(repr((case.path_parameters, case.body)).encode()) % 2
        and "FunctionName" in (case.path_parameters or {})
        and case.operation.label != "DELETE /2015-03-31/functions/{FunctionName}"
    ):
        case.path_parameters["FunctionName"] = TARGET
    try:
        response = case.call(base_url=engine.endpoint, timeout=60)
    except requests.Timeout:
        pytest.fail(f"no answer in 60 s: {case.as_curl_command()}")
    except requests.ConnectionError as error:
        pytest.fail(f"connection reset ({error}): {case.as_curl_command()}")
    check_answer(response.status_code, response.headers, response.content, case.as_curl_command())


def check_answer(status: int, headers: dict[str, list[str]], body: bytes, curl: str) -> None:
    error_type = (headers.get("x-amzn-errortype") or [""])[0].split(":")[0]
    assert status != 500 and error_type != "ServiceException", f"{status} {body!r}\n{curl}"
    assert status < 500 or error_type in AWS_5XX, f"{status} {body!r}\n{curl}"
    if status < 400:
        return
    if status == 431:  # the HTTP layer's refusal of a head over 64 KB: answered, then closed
        assert (headers.get("connection") or [""])[0] == "close", curl
        return
    assert error_type, f"{status} without x-amzn-ErrorType: {body!r}\n{curl}"
    document = json.loads(body)
    assert isinstance(document, dict), body
    assert "__type" in document or (
        "Type" in document or "message" in document or "Message" in document
    ), f"{body!r}\n{curl}"
