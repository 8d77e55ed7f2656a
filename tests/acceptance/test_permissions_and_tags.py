"""What Terraform and SAM call besides the basics, with boto3: resource policies
(Add/RemovePermission, GetPolicy), tags, code signing, runtime management and recursion
settings; their errors, a restart, and their end with the function, version or alias."""

from __future__ import annotations

import json

from tests.acceptance.test_versions import error_of
from tests.conftest import FUNCTIONS, client, create_function, invoke_json, start_server, zip_dir

PACKAGE = zip_dir(FUNCTIONS / "python")
ARN = "arn:aws:lambda:us-east-1:123456789012:function:"
BUCKET = "arn:aws:s3:::my-bucket"
STALE = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy "
    "API to retrieve the latest Revision Id"
)
NO_POLICY = "The resource you requested does not exist."


def allow_s3(lam, name: str, sid: str = "s3", **extra) -> dict:
    response = lam.add_permission(
        FunctionName=name,
        StatementId=sid,
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        **extra,
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
    return json.loads(response["Statement"])


def policy_of(lam, name: str, **extra) -> tuple[dict, str]:
    response = lam.get_policy(FunctionName=name, **extra)
    return json.loads(response["Policy"]), response["RevisionId"]


def test_statements_are_added_listed_and_removed(lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    statement = allow_s3(lam, fname, SourceArn=BUCKET, SourceAccount="123456789012")
    assert statement == {
        "Sid": "s3",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": ARN + fname,
        "Condition": {
            "StringEquals": {"AWS:SourceAccount": "123456789012"},
            "ArnLike": {"AWS:SourceArn": BUCKET},
        },
    }
    policy, first_revision = policy_of(lam, fname)
    assert policy == {"Version": "2012-10-17", "Id": "default", "Statement": [statement]}

    url = json.loads(
        lam.add_permission(
            FunctionName=fname,
            StatementId="url",
            Action="lambda:InvokeFunctionUrl",
            Principal="*",
            FunctionUrlAuthType="NONE",
            PrincipalOrgID="o-1234567890",
            RevisionId=first_revision,
        )["Statement"]
    )
    assert url["Principal"] == "*"
    assert url["Condition"] == {
        "StringEquals": {"lambda:FunctionUrlAuthType": "NONE", "aws:PrincipalOrgID": "o-1234567890"}
    }
    account = json.loads(
        lam.add_permission(
            FunctionName=fname, StatementId="account", Action="lambda:*", Principal="210987654321"
        )["Statement"]
    )
    assert account["Principal"] == {"AWS": "arn:aws:iam::210987654321:root"}
    assert "Condition" not in account
    policy, revision = policy_of(lam, fname)
    assert [s["Sid"] for s in policy["Statement"]] == ["s3", "url", "account"]
    assert revision != first_revision

    assert error_of(
        lam.remove_permission, FunctionName=fname, StatementId="url", RevisionId=first_revision
    ) == ("PreconditionFailedException", STALE, 412)
    removed = lam.remove_permission(FunctionName=fname, StatementId="url", RevisionId=revision)
    assert removed["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert [s["Sid"] for s in policy_of(lam, fname)[0]["Statement"]] == ["s3", "account"]
    lam.remove_permission(FunctionName=fname, StatementId="s3")
    lam.remove_permission(FunctionName=fname, StatementId="account")
    assert error_of(lam.get_policy, FunctionName=fname) == (
        "ResourceNotFoundException",
        NO_POLICY,
        404,
    )
    assert invoke_json(lam, fname, {"a": 1})[1] == {"a": 1}, "policies are not enforced"


def test_versions_and_aliases_have_policies_of_their_own(lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    lam.publish_version(FunctionName=fname)
    alias = lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    assert allow_s3(lam, fname, Qualifier="1")["Resource"] == f"{ARN}{fname}:1"
    # the same statement id on another qualifier; an alias's RevisionId before its first one
    assert (
        allow_s3(lam, f"{fname}:live", RevisionId=alias["RevisionId"])["Resource"]
        == f"{ARN}{fname}:live"
    )
    assert error_of(lam.get_policy, FunctionName=fname)[2] == 404, "the function has none"
    assert policy_of(lam, fname, Qualifier="1")[0]["Statement"][0]["Resource"].endswith(":1")
    assert policy_of(lam, f"{fname}:live")[0]["Statement"][0]["Sid"] == "s3"

    lam.delete_alias(FunctionName=fname, Name="live")
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    assert error_of(lam.get_policy, FunctionName=fname, Qualifier="live")[1] == NO_POLICY
    lam.delete_alias(FunctionName=fname, Name="live")
    lam.delete_function(FunctionName=fname, Qualifier="1")
    assert error_of(lam.get_policy, FunctionName=fname, Qualifier="1")[1] == NO_POLICY


def test_permission_errors(lam, raw_lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    lam.publish_version(FunctionName=fname)
    allow_s3(lam, fname)
    assert error_of(
        lam.add_permission,
        FunctionName=fname,
        StatementId="s3",
        Action="lambda:InvokeFunction",
        Principal="sns.amazonaws.com",
    ) == (
        "ResourceConflictException",
        (
            "The statement id (s3) provided already exists. Please "
            "provide a new statement id, or remove the existing "
            "statement."
        ),
        409,
    )
    assert error_of(
        lam.add_permission,
        FunctionName=fname,
        StatementId="x",
        Qualifier="$LATEST",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
    ) == (
        "InvalidParameterValueException",
        "We currently do not support adding policies for $LATEST.",
        400,
    )
    assert error_of(
        lam.add_permission,
        FunctionName=fname,
        StatementId="example.com",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
    ) == (
        "ValidationException",
        (
            "1 validation error detected: Value 'example.com' at "
            "'statementId' failed to satisfy constraint: Member must "
            "satisfy regular expression pattern: ([a-zA-Z0-9-_]+)"
        ),
        400,
    )
    code, message, _ = error_of(
        lam.add_permission,
        FunctionName=fname,
        StatementId="s" * 101,
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
    )
    assert code == "ValidationException"
    assert message.endswith("Member must have length less than or equal to 100")
    code, message, _ = error_of(
        lam.add_permission,
        FunctionName=fname,
        StatementId="x",
        Action="s3:GetObject",
        Principal="s3.amazonaws.com",
    )
    assert (code, "at 'action'" in message) == ("ValidationException", True)
    for missing in ("Action", "Principal"):
        request = {
            "FunctionName": fname,
            "StatementId": "x",
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
        }
        del request[missing]
        code, message, _ = error_of(raw_lam.add_permission, **request)
        assert code == "ValidationException"
        assert message == (
            f"1 validation error detected: Value null at '{missing.lower()}' "
            "failed to satisfy constraint: Member must not be null"
        )
    assert error_of(
        lam.add_permission,
        FunctionName=fname,
        StatementId="x",
        Action="lambda:InvokeFunction",
        Principal="invalid.nonaws.com",
    ) == (
        "InvalidParameterValueException",
        "The provided principal was invalid. Please check the principal and try again.",
        400,
    )
    assert error_of(
        lam.add_permission,
        FunctionName=fname,
        StatementId="x",
        RevisionId="old",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
    ) == ("PreconditionFailedException", STALE, 412)
    assert error_of(
        lam.add_permission,
        FunctionName=f"{fname}:nope",
        StatementId="x",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
    ) == ("ResourceNotFoundException", f"Cannot find alias arn: {ARN}{fname}:nope", 404)
    assert error_of(
        lam.add_permission,
        FunctionName=fname,
        Qualifier="42",
        StatementId="x",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
    ) == ("ResourceNotFoundException", f"Function not found: {ARN}{fname}:42", 404)
    assert error_of(
        lam.add_permission,
        FunctionName=f"{fname}-none",
        StatementId="x",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
    ) == ("ResourceNotFoundException", f"Function not found: {ARN}{fname}-none", 404)
    assert error_of(lam.remove_permission, FunctionName=fname, StatementId="nope") == (
        "ResourceNotFoundException",
        "Statement nope is not found in resource policy.",
        404,
    )
    assert error_of(lam.remove_permission, FunctionName=fname, StatementId="s3", Qualifier="1") == (
        "ResourceNotFoundException",
        "No policy is associated with the given resource.",
        404,
    )
    assert error_of(lam.remove_permission, FunctionName=f"{fname}-none", StatementId="s3") == (
        "ResourceNotFoundException",
        f"No policy found for: {ARN}{fname}-none",
        404,
    )
    assert error_of(lam.get_policy, FunctionName=fname, Qualifier="1") == (
        "ResourceNotFoundException",
        NO_POLICY,
        404,
    )


def test_tags_are_added_and_removed(lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo", Tags={"team": "a", "cost": "1"})
    arn = ARN + fname
    tagged = lam.tag_resource(Resource=arn, Tags={"team": "b", "stage": "dev"})
    assert tagged["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "b", "cost": "1", "stage": "dev"}
    untagged = lam.untag_resource(Resource=arn, TagKeys=["cost", "stage", "missing"])
    assert untagged["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.get_function(FunctionName=fname)["Tags"] == {"team": "b"}
    lam.untag_resource(Resource=arn, TagKeys=["team"])
    assert lam.list_tags(Resource=arn)["Tags"] == {}
    assert "Tags" not in lam.get_function(FunctionName=fname)


def test_tag_errors(lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    arn = ARN + fname
    assert error_of(lam.tag_resource, Resource=f"{arn}:1", Tags={"a": "b"}) == (
        "InvalidParameterValueException",
        "Tags on function aliases and versions are not supported. Please specify a function ARN.",
        400,
    )
    for call, extra in (
        (lam.tag_resource, {"Tags": {"a": "b"}}),
        (lam.untag_resource, {"TagKeys": ["a"]}),
        (lam.list_tags, {}),
    ):
        assert error_of(call, Resource=f"{arn}-none", **extra) == (
            "ResourceNotFoundException",
            f"Function not found: {arn}-none",
            404,
        )
    lam.tag_resource(Resource=arn, Tags={f"k{n}": "v" for n in range(50)})
    assert error_of(lam.tag_resource, Resource=arn, Tags={"one-more": "v"}) == (
        "InvalidParameterValueException",
        "Number of tags exceeds resource tag limit.",
        400,
    )
    lam.tag_resource(Resource=arn, Tags={"k0": "replacing one is fine"})
    assert (
        error_of(lam.tag_resource, Resource=arn, Tags={"k" * 129: "v"})[0] == "ValidationException"
    )
    assert (
        error_of(lam.tag_resource, Resource=arn, Tags={"k1": "v" * 257})[0] == "ValidationException"
    )
    assert (
        error_of(lam.tag_resource, Resource=arn, Tags={"aws:k1": "v"})[0]
        == "InvalidParameterValueException"
    )
    assert len(lam.list_tags(Resource=arn)["Tags"]) == 50


def test_code_signing_runtime_management_and_recursion(lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    signing = lam.get_function_code_signing_config(FunctionName=fname)
    assert "CodeSigningConfigArn" not in signing, "none attached: an empty answer, as on AWS"
    assert error_of(lam.get_function_code_signing_config, FunctionName=f"{fname}-none")[2] == 404

    assert lam.get_function_recursion_config(FunctionName=fname)["RecursiveLoop"] == "Terminate"
    lam.publish_version(FunctionName=fname)
    assert (
        lam.put_function_recursion_config(FunctionName=fname, RecursiveLoop="Allow")[
            "RecursiveLoop"
        ]
        == "Allow"
    )
    assert lam.publish_version(FunctionName=fname)["Version"] == "1", "a function setting"
    lam.update_function_configuration(FunctionName=fname, Timeout=9)
    assert lam.get_function_recursion_config(FunctionName=fname)["RecursiveLoop"] == "Allow"
    assert error_of(
        lam.put_function_recursion_config, FunctionName=fname, RecursiveLoop="Sometimes"
    ) == (
        "ValidationException",
        (
            "1 validation error detected: Value 'Sometimes' at "
            "'recursiveLoop' failed to satisfy constraint: Member must "
            "satisfy enum value set: [Terminate, Allow]"
        ),
        400,
    )

    runtime = lam.get_runtime_management_config(FunctionName=fname)
    assert (runtime["UpdateRuntimeOn"], runtime["FunctionArn"]) == ("Auto", ARN + fname)
    assert "RuntimeVersionArn" not in runtime
    version_arn = "arn:aws:lambda:us-east-1::runtime:0123456789abcdef"
    put = lam.put_runtime_management_config(
        FunctionName=fname, UpdateRuntimeOn="Manual", RuntimeVersionArn=version_arn
    )
    assert (put["UpdateRuntimeOn"], put["RuntimeVersionArn"]) == ("Manual", version_arn)
    assert lam.get_runtime_management_config(FunctionName=fname)["RuntimeVersionArn"] == version_arn
    assert error_of(
        lam.put_runtime_management_config, FunctionName=fname, UpdateRuntimeOn="Manual"
    )[:2] == (
        "InvalidParameterValueException",
        "RuntimeVersionArn is required when UpdateRuntimeOn is Manual.",
    )
    assert (
        error_of(
            lam.put_runtime_management_config, FunctionName=fname, UpdateRuntimeOn="Sometimes"
        )[0]
        == "ValidationException"
    )
    lam.put_runtime_management_config(
        FunctionName=fname, Qualifier="1", UpdateRuntimeOn="FunctionUpdate"
    )
    version = lam.get_runtime_management_config(FunctionName=fname, Qualifier="1")
    assert (version["UpdateRuntimeOn"], version["FunctionArn"]) == (
        "FunctionUpdate",
        f"{ARN}{fname}:1",
    )
    assert lam.get_runtime_management_config(FunctionName=fname)["UpdateRuntimeOn"] == "Manual"
    assert invoke_json(lam, fname, {"n": 2})[1] == {"n": 2}


def test_everything_survives_a_restart_and_goes_with_the_function(tmp_path):
    data = tmp_path / "data"
    engine = start_server(data)
    lam = client(engine.endpoint)
    try:
        for name in ("kept", "gone"):
            create_function(lam, name, PACKAGE, handler="index.echo", Tags={"team": name})
            lam.publish_version(FunctionName=name)
            lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
            allow_s3(lam, name, SourceArn=BUCKET)
            allow_s3(lam, name, Qualifier="live")
            lam.tag_resource(Resource=ARN + name, Tags={"stage": "prod"})
            lam.put_runtime_management_config(FunctionName=name, UpdateRuntimeOn="FunctionUpdate")
            lam.put_function_recursion_config(FunctionName=name, RecursiveLoop="Allow")
        before = policy_of(lam, "kept"), policy_of(lam, "kept", Qualifier="live")
        lam.delete_function(FunctionName="gone")
        create_function(lam, "gone", PACKAGE, handler="index.echo")
    finally:
        lam.close()
        engine.stop()
    engine = start_server(data)
    lam = client(engine.endpoint)
    try:
        assert (policy_of(lam, "kept"), policy_of(lam, "kept", Qualifier="live")) == before
        assert lam.list_tags(Resource=ARN + "kept")["Tags"] == {"team": "kept", "stage": "prod"}
        assert (
            lam.get_runtime_management_config(FunctionName="kept")["UpdateRuntimeOn"]
            == "FunctionUpdate"
        )
        assert lam.get_function_recursion_config(FunctionName="kept")["RecursiveLoop"] == "Allow"
        assert error_of(lam.get_policy, FunctionName="gone")[1] == NO_POLICY
        assert lam.list_tags(Resource=ARN + "gone")["Tags"] == {}
        assert (
            lam.get_function_recursion_config(FunctionName="gone")["RecursiveLoop"] == "Terminate"
        )
        assert lam.get_runtime_management_config(FunctionName="gone")["UpdateRuntimeOn"] == "Auto"
    finally:
        lam.close()
        engine.stop()
    assert "Traceback" not in engine.log(), engine.log()
