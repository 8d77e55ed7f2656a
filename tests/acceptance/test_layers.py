"""Layers with boto3: publish, get, list and delete versions; functions that use them (Python
modules, Node packages, tools on PATH, a custom runtime's bootstrap, later layers overriding
earlier ones); their errors; a function outliving its layer version; a restart."""

from __future__ import annotations

import base64
import hashlib
import urllib.request
import uuid

import pytest

from tests.acceptance.test_versions import error_of
from tests.conftest import (
    PY_RUNTIME,
    create_function,
    engine_client,
    have_node,
    invoke_json,
    make_zip,
)

LAYER_ARN = "arn:aws:lambda:us-east-1:123456789012:layer:"
GREETING = make_zip({"python/greeting.py": "WORD = 'hello from a layer'\n"})
USES_GREETING = make_zip(
    {
        "index.py": (
            "import greeting\n"
            "def handler(event, context):\n"
            "    return {'word': greeting.WORD, 'file': greeting.__file__}\n"
        )
    }
)
NOT_FOUND = "The resource you requested does not exist."


@pytest.fixture
def lname() -> str:
    """A fresh layer name for one test."""
    return f"l-{uuid.uuid4().hex[:12]}"


def publish(lam, name: str, package: bytes, **extra) -> dict:
    response = lam.publish_layer_version(LayerName=name, Content={"ZipFile": package}, **extra)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
    return response


def test_publish_get_list_and_delete_versions(lam, lname):
    first = publish(
        lam,
        lname,
        GREETING,
        Description="greeting",
        CompatibleRuntimes=[PY_RUNTIME],
        CompatibleArchitectures=["x86_64"],
        LicenseInfo="MIT",
    )
    assert first["LayerArn"] == LAYER_ARN + lname
    assert first["LayerVersionArn"] == f"{LAYER_ARN}{lname}:1"
    assert first["Version"] == 1
    assert (first["Description"], first["LicenseInfo"]) == ("greeting", "MIT")
    assert first["CompatibleRuntimes"] == [PY_RUNTIME]
    assert first["CompatibleArchitectures"] == ["x86_64"]
    assert first["Content"]["CodeSize"] == len(GREETING)
    assert (
        first["Content"]["CodeSha256"]
        == base64.b64encode(hashlib.sha256(GREETING).digest()).decode()
    )
    assert first["CreatedDate"].endswith("+0000")
    with urllib.request.urlopen(first["Content"]["Location"]) as download:
        assert download.read() == GREETING
    second = publish(
        lam, lname, make_zip({"python/other.py": ""}), CompatibleRuntimes=["nodejs20.x"]
    )
    assert second["Version"] == 2

    got = lam.get_layer_version(LayerName=lname, VersionNumber=1)
    assert {k: got[k] for k in ("LayerArn", "LayerVersionArn", "Version", "Content")} == {
        k: first[k] for k in ("LayerArn", "LayerVersionArn", "Version", "Content")
    }
    by_arn = lam.get_layer_version_by_arn(Arn=f"{LAYER_ARN}{lname}:2")
    assert by_arn["Version"] == 2
    assert lam.get_layer_version(LayerName=LAYER_ARN + lname, VersionNumber=2)["Version"] == 2

    listed = lam.list_layer_versions(LayerName=lname)["LayerVersions"]
    assert [v["Version"] for v in listed] == [2, 1]
    assert "Content" not in listed[0]
    python = lam.list_layer_versions(LayerName=lname, CompatibleRuntime=PY_RUNTIME)
    assert [v["Version"] for v in python["LayerVersions"]] == [1]
    page = lam.list_layer_versions(LayerName=lname, MaxItems=1)
    assert [v["Version"] for v in page["LayerVersions"]] == [2]
    rest = lam.list_layer_versions(LayerName=lname, Marker=page["NextMarker"])
    assert [v["Version"] for v in rest["LayerVersions"]] == [1] and "NextMarker" not in rest
    layers = {layer["LayerName"]: layer for layer in lam.list_layers()["Layers"]}
    assert layers[lname]["LayerArn"] == LAYER_ARN + lname
    assert layers[lname]["LatestMatchingVersion"]["Version"] == 2
    matching = {
        layer["LayerName"]: layer
        for layer in lam.list_layers(CompatibleRuntime=PY_RUNTIME)["Layers"]
    }
    assert matching[lname]["LatestMatchingVersion"]["Version"] == 1

    assert (
        lam.delete_layer_version(LayerName=lname, VersionNumber=2)["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 204
    )
    lam.delete_layer_version(LayerName=lname, VersionNumber=2)  # idempotent, as on AWS
    assert error_of(lam.get_layer_version, LayerName=lname, VersionNumber=2) == (
        "ResourceNotFoundException",
        NOT_FOUND,
        404,
    )
    assert error_of(lam.get_layer_version_by_arn, Arn=f"{LAYER_ARN}{lname}:2")[2] == 404
    assert publish(lam, lname, GREETING)["Version"] == 3, "numbers are never reused"
    assert [v["Version"] for v in lam.list_layer_versions(LayerName=lname)["LayerVersions"]] == [
        3,
        1,
    ]
    lam.delete_layer_version(LayerName=lname, VersionNumber=1)
    lam.delete_layer_version(LayerName=lname, VersionNumber=3)
    assert lname not in {layer["LayerName"] for layer in lam.list_layers()["Layers"]}
    assert lam.list_layer_versions(LayerName=lname)["LayerVersions"] == []


def test_publish_errors(lam, raw_lam, lname):
    code, message, status = error_of(
        raw_lam.publish_layer_version, LayerName=lname, Content={"S3Key": "k.zip"}
    )  # S3: test_s3_code.py
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == "Please provide a source for function code."
    code, message, status = error_of(
        raw_lam.publish_layer_version, LayerName="bad name!", Content={"ZipFile": GREETING}
    )
    assert (code, status) == ("ValidationException", 400)
    assert "at 'layerName' failed to satisfy constraint" in message
    assert (
        error_of(lam.publish_layer_version, LayerName=lname, Content={"ZipFile": b"not a zip"})[0]
        == "InvalidParameterValueException"
    )
    assert error_of(lam.get_layer_version, LayerName=lname, VersionNumber=1) == (
        "ResourceNotFoundException",
        NOT_FOUND,
        404,
    )


def test_python_function_imports_a_layer_module(lam, fname, lname):
    layer = publish(lam, lname, GREETING)
    created = create_function(lam, fname, USES_GREETING, Layers=[layer["LayerVersionArn"]])
    assert created["Layers"] == [{"Arn": layer["LayerVersionArn"], "CodeSize": len(GREETING)}]
    response, body = invoke_json(lam, fname)
    assert "FunctionError" not in response, body
    assert body["word"] == "hello from a layer"
    assert "/python/greeting.py" in body["file"]
    assert lam.get_function(FunctionName=fname)["Configuration"]["Layers"] == created["Layers"]


def test_site_packages_and_a_later_layer_overriding_a_file(lam, fname, lname):
    first = publish(
        lam,
        lname,
        make_zip(
            {
                f"python/lib/{PY_RUNTIME}/site-packages/first.py": "VALUE = 'first'\n",
                "python/shared.py": "VALUE = 'first'\n",
            }
        ),
    )
    second = publish(lam, lname + "-b", make_zip({"python/shared.py": "VALUE = 'second'\n"}))
    package = make_zip(
        {
            "index.py": (
                "import first, shared\n"
                "def handler(event, context):\n"
                "    return [first.VALUE, shared.VALUE]\n"
            )
        }
    )
    create_function(
        lam, fname, package, Layers=[first["LayerVersionArn"], second["LayerVersionArn"]]
    )
    assert invoke_json(lam, fname)[1] == ["first", "second"]
    lam.update_function_configuration(
        FunctionName=fname, Layers=[second["LayerVersionArn"], first["LayerVersionArn"]]
    )
    lam.get_waiter("function_updated_v2").wait(FunctionName=fname)
    assert invoke_json(lam, fname)[1] == ["first", "first"]


@pytest.mark.skipif(not have_node(), reason="node is not installed")
def test_node_function_requires_a_layer_package(lam, fname, lname):
    layer = publish(
        lam,
        lname,
        make_zip(
            {
                "nodejs/node_modules/shout/index.js": "module.exports = (s) => s.toUpperCase() + '!';\n",
                "nodejs/node20/node_modules/versioned/index.js": "module.exports = 'node20 only';\n",
            }
        ),
    )
    package = make_zip(
        {
            "index.js": (
                "const shout = require('shout');\n"
                "const versioned = require('versioned');\n"
                "exports.handler = async () => ({ said: shout('hi'), versioned });\n"
            )
        }
    )
    create_function(lam, fname, package, runtime="nodejs20.x", Layers=[layer["LayerVersionArn"]])
    response, body = invoke_json(lam, fname)
    assert "FunctionError" not in response, body
    assert body == {"said": "HI!", "versioned": "node20 only"}


BOOTSTRAP = """#!/bin/bash
set -euo pipefail
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  headers=$(mktemp)
  curl -sS -D "$headers" -o /dev/null "$api/invocation/next"
  request_id=$(grep -i '^lambda-runtime-aws-request-id:' "$headers" | tr -d '\\r' | cut -d' ' -f2)
  rm -f "$headers"
  curl -sS -o /dev/null -X POST -d "{\\"said\\":\\"$(greet)\\",\\"opt\\":\\"${LAMINA_OPT_DIR:-/opt}\\"}" \\
    "$api/invocation/$request_id/response"
done
"""


def test_custom_runtime_bootstrap_and_tool_from_layers(lam, fname, lname):
    runtime = publish(lam, lname, make_zip({"bootstrap": BOOTSTRAP}, {"bootstrap": 0o755}))
    tool = publish(
        lam,
        lname + "-bin",
        make_zip({"bin/greet": "#!/bin/sh\necho hi from bin\n"}, {"bin/greet": 0o755}),
    )
    create_function(
        lam,
        fname,
        make_zip({"README": "no bootstrap here"}),
        runtime="provided.al2023",
        handler="none",
        Layers=[runtime["LayerVersionArn"], tool["LayerVersionArn"]],
    )
    response, body = invoke_json(lam, fname)
    assert "FunctionError" not in response, body
    assert body["said"] == "hi from bin"
    assert body["opt"].startswith("/")


def test_function_layer_errors(lam, raw_lam, fname, lname):
    layer = publish(lam, lname, GREETING)["LayerVersionArn"]
    missing = f"{LAYER_ARN}{lname}:9"
    assert error_of(
        lam.create_function,
        FunctionName=fname,
        Runtime=PY_RUNTIME,
        Role="arn:aws:iam::123456789012:role/r",
        Handler="index.handler",
        Code={"ZipFile": USES_GREETING},
        Layers=[missing],
    ) == ("InvalidParameterValueException", f"Layer version {missing} does not exist.", 400)
    six = [f"{LAYER_ARN}{lname}-{i}:1" for i in range(6)]
    assert error_of(
        raw_lam.create_function,
        FunctionName=fname,
        Runtime=PY_RUNTIME,
        Role="arn:aws:iam::123456789012:role/r",
        Handler="index.handler",
        Code={"ZipFile": USES_GREETING},
        Layers=six,
    ) == ("InvalidParameterValueException", "Cannot reference more than 5 layers.", 400)
    code, message, _ = error_of(
        lam.create_function,
        FunctionName=fname,
        Runtime=PY_RUNTIME,
        Role="arn:aws:iam::123456789012:role/r",
        Handler="index.handler",
        Code={"ZipFile": USES_GREETING},
        Layers=[layer, f"{LAYER_ARN}{lname}:2"],
    )
    assert code == "InvalidParameterValueException" and "same layer" in message
    create_function(lam, fname, USES_GREETING)
    assert (
        error_of(lam.update_function_configuration, FunctionName=fname, Layers=[missing])[1]
        == f"Layer version {missing} does not exist."
    )
    assert "Layers" not in lam.get_function_configuration(FunctionName=fname)


def test_function_outlives_its_deleted_layer_version_and_versions_keep_layers(lam, fname, lname):
    layer = publish(lam, lname, GREETING)["LayerVersionArn"]
    create_function(lam, fname, USES_GREETING, Layers=[layer])
    published = lam.publish_version(FunctionName=fname)
    assert published["Layers"] == [{"Arn": layer, "CodeSize": len(GREETING)}]
    lam.delete_layer_version(LayerName=lname, VersionNumber=1)
    lam.update_function_configuration(FunctionName=fname, MemorySize=256)  # new environments
    lam.get_waiter("function_updated_v2").wait(FunctionName=fname)
    assert invoke_json(lam, fname)[1]["word"] == "hello from a layer"
    assert invoke_json(lam, fname, Qualifier="1")[1]["word"] == "hello from a layer"
    assert lam.get_function_configuration(FunctionName=fname)["Layers"][0]["Arn"] == layer


def test_layer_version_permissions(lam, lname):
    import json

    arn = publish(lam, lname, GREETING)["LayerVersionArn"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_layer_version_policy(LayerName=lname, VersionNumber=1)
    added = lam.add_layer_version_permission(
        LayerName=lname,
        VersionNumber=1,
        StatementId="xaccount",
        Action="lambda:GetLayerVersion",
        Principal="210987654321",
    )
    assert added["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert json.loads(added["Statement"]) == {
        "Sid": "xaccount",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
        "Action": "lambda:GetLayerVersion",
        "Resource": arn,
    }
    org = lam.add_layer_version_permission(
        LayerName=lname,
        VersionNumber=1,
        StatementId="org",
        Action="lambda:GetLayerVersion",
        Principal="*",
        OrganizationId="o-abcdefghij",
        RevisionId=added["RevisionId"],
    )
    assert json.loads(org["Statement"])["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}
    }
    policy = lam.get_layer_version_policy(LayerName=lname, VersionNumber=1)
    assert policy["RevisionId"] == org["RevisionId"] != added["RevisionId"]
    assert [s["Sid"] for s in json.loads(policy["Policy"])["Statement"]] == ["xaccount", "org"]
    for call, code in (
        (
            {"StatementId": "org", "Action": "lambda:GetLayerVersion", "Principal": "*"},
            "ResourceConflictException",
        ),
        (
            {"StatementId": "x", "Action": "lambda:InvokeFunction", "Principal": "*"},
            "ValidationException",
        ),
        (
            {"StatementId": "x", "Action": "lambda:GetLayerVersion", "Principal": "someone"},
            "ValidationException",
        ),
        (
            {
                "StatementId": "x",
                "Action": "lambda:GetLayerVersion",
                "Principal": "*",
                "RevisionId": added["RevisionId"],
            },
            "PreconditionFailedException",
        ),
    ):
        with pytest.raises(lam.exceptions.ClientError) as refused:
            lam.add_layer_version_permission(LayerName=lname, VersionNumber=1, **call)
        assert refused.value.response["Error"]["Code"] == code, call
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.add_layer_version_permission(
            LayerName=lname,
            VersionNumber=9,
            StatementId="x",
            Action="lambda:GetLayerVersion",
            Principal="*",
        )
    lam.remove_layer_version_permission(LayerName=lname, VersionNumber=1, StatementId="org")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as gone:
        lam.remove_layer_version_permission(LayerName=lname, VersionNumber=1, StatementId="org")
    assert "Statement org is not found in resource policy." in str(gone.value)
    lam.remove_layer_version_permission(LayerName=lname, VersionNumber=1, StatementId="xaccount")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_layer_version_policy(LayerName=lname, VersionNumber=1)


def test_layers_survive_a_restart(tmp_path):
    with engine_client(tmp_path / "data") as lam:
        layer = publish(lam, "kept", GREETING)["LayerVersionArn"]
        lam.add_layer_version_permission(
            LayerName="kept",
            VersionNumber=1,
            StatementId="all",
            Action="lambda:GetLayerVersion",
            Principal="*",
        )
        publish(lam, "kept", GREETING)
        lam.delete_layer_version(LayerName="kept", VersionNumber=2)
        create_function(lam, "uses", USES_GREETING, Layers=[layer])
    with engine_client(tmp_path / "data") as lam:
        assert [
            v["Version"] for v in lam.list_layer_versions(LayerName="kept")["LayerVersions"]
        ] == [1]
        assert publish(lam, "kept", GREETING)["Version"] == 3
        assert lam.get_function_configuration(FunctionName="uses")["Layers"] == [
            {"Arn": layer, "CodeSize": len(GREETING)}
        ]
        assert invoke_json(lam, "uses")[1]["word"] == "hello from a layer"
        assert "all" in lam.get_layer_version_policy(LayerName="kept", VersionNumber=1)["Policy"]
