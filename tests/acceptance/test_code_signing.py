"""Code signing configurations with boto3: their API (shapes and errors recorded against AWS),
attachment to functions, `Enforce` and `Warn` on deployments, a restart."""

from __future__ import annotations

import re

from tests.acceptance.test_versions import error_of
from tests.conftest import FUNCTIONS, PY_RUNTIME, ROLE, create_function, engine_client, zip_dir

PACKAGE = zip_dir(FUNCTIONS / "python")
PROFILE = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/test/abcdefghij"
CSC_ARN = re.compile(r"arn:aws:lambda:us-east-1:123456789012:code-signing-config:csc-[a-z0-9]{17}")
UNVERIFIED = (
    "Lambda cannot deploy the function. The function or layer might be signed using a "
    "signature that the client is not configured to accept. Check the provided "
    "signature for {}."
)


def new_config(lam, policy: str = "Enforce", **extra) -> dict:
    response = lam.create_code_signing_config(
        Description="Testing CodeSigning Config",
        AllowedPublishers={"SigningProfileVersionArns": [PROFILE]},
        CodeSigningPolicies={"UntrustedArtifactOnDeployment": policy},
        **extra,
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
    return response["CodeSigningConfig"]


def test_configuration_lifecycle(lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    config = new_config(lam)
    arn = config["CodeSigningConfigArn"]
    assert CSC_ARN.fullmatch(arn)
    assert config["CodeSigningConfigId"] == arn.rsplit(":", 1)[1]
    assert {
        k: v
        for k, v in config.items()
        if k not in ("CodeSigningConfigArn", "CodeSigningConfigId", "LastModified")
    } == {
        "Description": "Testing CodeSigning Config",
        "AllowedPublishers": {"SigningProfileVersionArns": [PROFILE]},
        "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": "Enforce"},
    }

    updated = lam.update_code_signing_config(
        CodeSigningConfigArn=arn, CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Warn"}
    )
    assert updated["CodeSigningConfig"]["CodeSigningPolicies"] == {
        "UntrustedArtifactOnDeployment": "Warn"
    }
    assert updated["CodeSigningConfig"]["Description"] == "Testing CodeSigning Config"
    assert (
        lam.get_code_signing_config(CodeSigningConfigArn=arn)["CodeSigningConfig"]
        == updated["CodeSigningConfig"]
    )
    listed = [
        c["CodeSigningConfigArn"]
        for c in lam.get_paginator("list_code_signing_configs")
        .paginate()
        .build_full_result()["CodeSigningConfigs"]
    ]
    assert arn in listed

    assert (
        lam.get_function_code_signing_config(FunctionName=fname)["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 200
    )
    attached = lam.put_function_code_signing_config(CodeSigningConfigArn=arn, FunctionName=fname)
    assert (attached["CodeSigningConfigArn"], attached["FunctionName"]) == (arn, fname)
    got = lam.get_function_code_signing_config(FunctionName=fname)
    assert (got["CodeSigningConfigArn"], got["FunctionName"]) == (arn, fname)
    assert lam.list_functions_by_code_signing_config(CodeSigningConfigArn=arn)["FunctionArns"] == [
        f"arn:aws:lambda:us-east-1:123456789012:function:{fname}"
    ]

    code, message, status = error_of(lam.delete_code_signing_config, CodeSigningConfigArn=arn)
    assert (code, status) == ("ResourceConflictException", 409), message
    assert (
        lam.delete_function_code_signing_config(FunctionName=fname)["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 204
    )
    assert "CodeSigningConfigArn" not in lam.get_function_code_signing_config(FunctionName=fname)
    assert lam.list_functions_by_code_signing_config(CodeSigningConfigArn=arn)["FunctionArns"] == []
    assert (
        lam.delete_code_signing_config(CodeSigningConfigArn=arn)["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 204
    )
    assert (
        error_of(lam.get_code_signing_config, CodeSigningConfigArn=arn)[0]
        == "ResourceNotFoundException"
    )


def test_errors_as_aws_answers_them(lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    arn = new_config(lam)["CodeSigningConfigArn"]
    absent = arn[:-1] + ("x" if arn[-1] != "x" else "y")
    missing = f"The Lambda code signing configuration {absent} can not be found."
    for call in (
        lam.delete_code_signing_config,
        lam.get_code_signing_config,
        lam.update_code_signing_config,
        lam.list_functions_by_code_signing_config,
    ):
        assert error_of(call, CodeSigningConfigArn=absent) == (
            "ResourceNotFoundException",
            missing,
            404,
        ), call
    not_attached = (
        "CodeSigningConfigNotFoundException",
        (
            "The code signing configuration cannot be found. Check that the provided "
            f"configuration is not deleted: {absent}."
        ),
        404,
    )
    assert (
        error_of(
            lam.put_function_code_signing_config, FunctionName=fname, CodeSigningConfigArn=absent
        )
        == not_attached
    )
    assert (
        error_of(
            lam.put_function_code_signing_config,
            FunctionName=f"{fname}-none",
            CodeSigningConfigArn=absent,
        )
        == not_attached
    ), "the configuration first"
    no_function = (
        "ResourceNotFoundException",
        f"Function not found: arn:aws:lambda:us-east-1:123456789012:function:{fname}-none",
        404,
    )
    assert (
        error_of(
            lam.put_function_code_signing_config,
            FunctionName=f"{fname}-none",
            CodeSigningConfigArn=arn,
        )
        == no_function
    )
    assert (
        error_of(lam.delete_function_code_signing_config, FunctionName=f"{fname}-none")
        == no_function
    )
    assert (
        error_of(lam.get_function_code_signing_config, FunctionName=f"{fname}-none") == no_function
    )
    # nothing attached: deleting is not an error
    assert (
        lam.delete_function_code_signing_config(FunctionName=fname)["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 204
    )
    # an update that changes nothing answers the configuration as it is
    assert lam.update_code_signing_config(CodeSigningConfigArn=arn)["CodeSigningConfig"][
        "CodeSigningPolicies"
    ] == {"UntrustedArtifactOnDeployment": "Enforce"}
    code, message, status = error_of(
        lam.create_code_signing_config,
        AllowedPublishers={"SigningProfileVersionArns": ["not-an-arn"]},
    )
    assert (code, status) == ("ValidationException", 400) and "not-an-arn" in message
    lam.delete_code_signing_config(CodeSigningConfigArn=arn)


def test_enforce_refuses_deployments_and_warn_accepts_them(lam, fname):
    enforce = new_config(lam, "Enforce")["CodeSigningConfigArn"]
    assert error_of(
        lam.create_function,
        FunctionName=fname,
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="index.echo",
        Code={"ZipFile": PACKAGE},
        CodeSigningConfigArn=enforce,
    ) == ("CodeVerificationFailedException", UNVERIFIED.format(fname), 400)
    assert error_of(lam.get_function, FunctionName=fname)[2] == 404, "nothing was created"

    warn = new_config(lam, "Warn")["CodeSigningConfigArn"]
    create_function(lam, fname, PACKAGE, handler="index.echo", CodeSigningConfigArn=warn)
    assert lam.get_function_code_signing_config(FunctionName=fname)["CodeSigningConfigArn"] == warn
    lam.update_function_code(FunctionName=fname, ZipFile=PACKAGE)  # Warn: accepted

    lam.update_code_signing_config(
        CodeSigningConfigArn=warn, CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Enforce"}
    )
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    sha = lam.get_function_configuration(FunctionName=fname)["CodeSha256"]
    assert error_of(lam.update_function_code, FunctionName=fname, ZipFile=PACKAGE + b"") == (
        "CodeVerificationFailedException",
        UNVERIFIED.format(fname),
        400,
    )
    assert lam.get_function_configuration(FunctionName=fname)["CodeSha256"] == sha
    assert (
        error_of(
            lam.create_function,
            FunctionName=f"{fname}-x",
            Runtime=PY_RUNTIME,
            Role=ROLE,
            Handler="index.echo",
            Code={"ZipFile": PACKAGE},
            CodeSigningConfigArn=enforce[:-1] + "0" if enforce[-1] != "0" else enforce[:-1] + "1",
        )[0]
        == "CodeSigningConfigNotFoundException"
    )
    # the configuration changes settings, never the code already deployed
    assert lam.invoke(FunctionName=fname, Payload=b'{"a": 1}')["StatusCode"] == 200
    lam.delete_function(FunctionName=fname)
    lam.delete_code_signing_config(CodeSigningConfigArn=warn)
    lam.delete_code_signing_config(CodeSigningConfigArn=enforce)


def test_configurations_and_attachments_survive_a_restart(tmp_path):
    with engine_client(tmp_path / "data") as lam:
        arn = new_config(lam, "Warn", Tags={"team": "a"})["CodeSigningConfigArn"]
        create_function(lam, "signed", PACKAGE, handler="index.echo", CodeSigningConfigArn=arn)
    with engine_client(tmp_path / "data") as lam:
        assert lam.get_code_signing_config(CodeSigningConfigArn=arn)["CodeSigningConfig"][
            "CodeSigningPolicies"
        ] == {"UntrustedArtifactOnDeployment": "Warn"}
        assert (
            lam.get_function_code_signing_config(FunctionName="signed")["CodeSigningConfigArn"]
            == arn
        )
        assert lam.list_tags(Resource=arn)["Tags"] == {"team": "a"}
