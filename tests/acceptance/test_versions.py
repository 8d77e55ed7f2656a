"""Versions and aliases with boto3: publish, qualified invokes, weighted routing, errors."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.conftest import (
    FUNCTIONS,
    PY_RUNTIME,
    ROLE,
    client,
    create_function,
    invoke_json,
    make_zip,
    zip_dir,
)

PACKAGE = zip_dir(FUNCTIONS / "python")


def code(label: str) -> bytes:
    return make_zip(
        {
            "index.py": f"def handler(event, context):\n"
            f"    return {{'code': '{label}', 'arn': context.invoked_function_arn,"
            f" 'version': context.function_version}}\n"
        }
    )


def error_of(call, **kwargs) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    response = raised.value.response
    return (
        response["Error"]["Code"],
        response["Error"].get("Message", ""),
        response["ResponseMetadata"]["HTTPStatusCode"],
    )


def wait_updated(lam, name: str) -> None:
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )


def test_publish_snapshots_and_qualified_invokes(lam, fname):
    create_function(lam, fname, code("one"))
    v1 = lam.publish_version(FunctionName=fname, Description="first")
    assert v1["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (v1["Version"], v1["Description"]) == ("1", "first")
    assert v1["FunctionArn"].endswith(f":function:{fname}:1")
    assert lam.publish_version(FunctionName=fname)["Version"] == "1", "unchanged: no new version"
    lam.update_function_code(FunctionName=fname, ZipFile=code("two"))
    wait_updated(lam, fname)
    assert (
        error_of(lam.publish_version, FunctionName=fname, CodeSha256="wrong")[0]
        == "InvalidParameterValueException"
    )
    v2 = lam.publish_version(FunctionName=fname)
    assert v2["Version"] == "2"
    listed = lam.list_versions_by_function(FunctionName=fname)["Versions"]
    assert [v["Version"] for v in listed] == ["$LATEST", "1", "2"]
    response, body = invoke_json(lam, fname, Qualifier="1")
    assert (body["code"], body["version"], response["ExecutedVersion"]) == ("one", "1", "1")
    assert body["arn"].endswith(f":function:{fname}:1")
    response, body = invoke_json(lam, fname)
    assert (body["code"], response["ExecutedVersion"]) == ("two", "$LATEST")
    assert (
        lam.get_function(FunctionName=fname, Qualifier="1")["Configuration"]["CodeSha256"]
        == v1["CodeSha256"]
    )
    assert error_of(lam.get_function, FunctionName=fname, Qualifier="7")[2] == 404


def test_create_with_publish_and_update_with_publish(lam, fname):
    created = lam.create_function(
        FunctionName=fname,
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="index.handler",
        Code={"ZipFile": code("a")},
        Publish=True,
    )
    assert created["Version"] == "1"
    updated = lam.update_function_code(FunctionName=fname, ZipFile=code("b"), Publish=True)
    assert updated["Version"] == "2"
    assert invoke_json(lam, fname, Qualifier="2")[1]["code"] == "b"


def test_aliases_and_their_errors(lam, fname):
    create_function(lam, fname, code("one"))
    lam.publish_version(FunctionName=fname)
    alias = lam.create_alias(
        FunctionName=fname, Name="live", FunctionVersion="1", Description="prod"
    )
    assert alias["AliasArn"].endswith(f":function:{fname}:live")
    assert (alias["FunctionVersion"], alias["Description"]) == ("1", "prod")
    response, body = invoke_json(lam, fname, Qualifier="live")
    assert response["ExecutedVersion"] == "1"
    assert body["arn"].endswith(f":function:{fname}:live")
    assert invoke_json(lam, f"{fname}:live")[0]["ExecutedVersion"] == "1"
    code_, message, status = error_of(
        lam.create_alias, FunctionName=fname, Name="live", FunctionVersion="1"
    )
    assert (code_, status) == ("ResourceConflictException", 409)
    assert message == f"Alias already exists: {alias['AliasArn']}"
    code_, message, status = error_of(lam.get_alias, FunctionName=fname, Name="nope")
    assert (code_, status) == ("ResourceNotFoundException", 404)
    assert message.startswith("Cannot find alias arn:")
    assert (
        error_of(lam.create_alias, FunctionName=fname, Name="123", FunctionVersion="1")[0]
        == "ValidationException"
    )
    assert error_of(lam.create_alias, FunctionName=fname, Name="x", FunctionVersion="9")[2] == 404
    stale = error_of(
        lam.update_alias, FunctionName=fname, Name="live", Description="d", RevisionId="stale"
    )
    assert stale[:3:2] == ("PreconditionFailedException", 412)
    assert (
        lam.update_alias(FunctionName=fname, Name="live", FunctionVersion="$LATEST")[
            "FunctionVersion"
        ]
        == "$LATEST"
    )
    assert [a["Name"] for a in lam.list_aliases(FunctionName=fname)["Aliases"]] == ["live"]
    lam.delete_alias(FunctionName=fname, Name="live")
    assert lam.list_aliases(FunctionName=fname)["Aliases"] == []


def test_weighted_routing_lands_within_statistical_bounds(lam, fname):
    create_function(lam, fname, code("one"))
    lam.publish_version(FunctionName=fname)
    lam.update_function_code(FunctionName=fname, ZipFile=code("two"))
    wait_updated(lam, fname)
    lam.publish_version(FunctionName=fname)
    lam.create_alias(
        FunctionName=fname,
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
    )
    counts = {"1": 0, "2": 0}
    for _ in range(1000):
        response = lam.invoke(FunctionName=fname, Qualifier="canary", Payload=b"{}")
        counts[response["ExecutedVersion"]] += 1
    # binomial(1000, 0.1): mean 100, sd 9.5; ±4 sd fails a correct engine once in 15,000 runs
    assert 62 <= counts["2"] <= 138, counts


@pytest.mark.parametrize(
    "routing, code_, fragment",
    [
        ({"2": 0.1, "3": 0.1}, "InvalidParameterValueException", "cannot be greater than 1"),
        ({"2": 2.0}, "ValidationException", "additionalVersionWeights"),
        ({"1": 0.5}, "InvalidParameterValueException", "already included"),
    ],
)
def test_routing_errors(server, fname, routing, code_, fragment):
    raw = client(server.endpoint, parameter_validation=False)
    create_function(raw, fname, code("x"))
    for _ in range(3):
        raw.update_function_configuration(FunctionName=fname, Description=str(_))
        wait_updated(raw, fname)
        raw.publish_version(FunctionName=fname)
    error = error_of(
        raw.create_alias,
        FunctionName=fname,
        Name="a",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": routing},
    )
    assert error[0] == code_ and fragment in error[1]
    error = error_of(
        raw.create_alias,
        FunctionName=fname,
        Name="b",
        FunctionVersion="$LATEST",
        RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}},
    )
    assert "$LATEST is not supported" in error[1]
    raw.close()


def test_deleting_versions(lam, fname):
    create_function(lam, fname, code("one"))
    lam.publish_version(FunctionName=fname)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    code_, message, status = error_of(lam.delete_function, FunctionName=fname, Qualifier="1")
    assert (code_, status) == ("ResourceConflictException", 409) and "live" in message
    lam.delete_alias(FunctionName=fname, Name="live")
    assert (
        lam.delete_function(FunctionName=fname, Qualifier="1")["ResponseMetadata"]["HTTPStatusCode"]
        == 204
    )
    assert error_of(lam.invoke, FunctionName=fname, Qualifier="1")[2] == 404
    assert invoke_json(lam, fname)[1]["code"] == "one"
    lam.update_function_configuration(FunctionName=fname, Description="again")
    wait_updated(lam, fname)
    assert lam.publish_version(FunctionName=fname)["Version"] == "2", "numbers are not reused"
