"""Get/Put/DeleteResourcePolicy (API version 2026-07-09) with boto3: the policy is the one
AddPermission builds, replaced whole; RevisionIds, validation, qualifiers, a restart."""

from __future__ import annotations

import json

from tests.acceptance.test_permissions_and_tags import STALE, allow_s3, policy_of
from tests.acceptance.test_versions import error_of
from tests.conftest import FUNCTIONS, create_function, engine_client, zip_dir

PACKAGE = zip_dir(FUNCTIONS / "python")
ARN = "arn:aws:lambda:us-east-1:123456789012:function:"
STALE_RESOURCE = STALE.replace("GetPolicy", "GetResourcePolicy")


def document(name: str, *sids: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                "Action": "lambda:InvokeFunction",
                "Resource": ARN + name,
            }
            for sid in sids
        ],
    }


def test_put_replaces_what_add_permission_built(lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    allow_s3(lam, fname)
    old_policy, old_revision = policy_of(lam, fname)
    got = lam.get_resource_policy(ResourceArn=ARN + fname)
    assert (json.loads(got["Policy"]), got["RevisionId"]) == (old_policy, old_revision)

    assert error_of(
        lam.put_resource_policy,
        ResourceArn=ARN + fname,
        Policy=json.dumps(document(fname, "a")),
        RevisionId="00000000-0000-0000-0000-000000000000",
    ) == ("PreconditionFailedException", STALE_RESOURCE, 412)
    put = lam.put_resource_policy(
        ResourceArn=ARN + fname,
        Policy=json.dumps(document(fname, "cross-account")),
        RevisionId=old_revision,
    )
    assert json.loads(put["Policy"]) == document(fname, "cross-account")
    assert put["RevisionId"] != old_revision
    # the same policy for GetPolicy and AddPermission: s3's statement is gone
    policy, revision = policy_of(lam, fname)
    assert [s["Sid"] for s in policy["Statement"]] == ["cross-account"]
    assert revision == put["RevisionId"]
    allow_s3(lam, fname, sid="s3-again")
    assert [
        s["Sid"]
        for s in json.loads(lam.get_resource_policy(ResourceArn=ARN + fname)["Policy"])["Statement"]
    ] == ["cross-account", "s3-again"]

    assert (
        error_of(lam.delete_resource_policy, ResourceArn=ARN + fname, RevisionId=revision)[0]
        == "PreconditionFailedException"
    )
    current = lam.get_resource_policy(ResourceArn=ARN + fname)["RevisionId"]
    assert (
        lam.delete_resource_policy(ResourceArn=ARN + fname, RevisionId=current)["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 204
    )
    for call in (lam.get_resource_policy, lam.delete_resource_policy):
        assert error_of(call, ResourceArn=ARN + fname) == (
            "ResourceNotFoundException",
            "The resource you requested does not exist.",
            404,
        )
    assert error_of(lam.get_policy, FunctionName=fname)[2] == 404


def test_versions_aliases_and_bad_input(lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    lam.publish_version(FunctionName=fname)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    lam.put_resource_policy(
        ResourceArn=f"{ARN}{fname}:live", Policy=json.dumps(document(f"{fname}:live", "alias"))
    )
    assert [s["Sid"] for s in policy_of(lam, fname, Qualifier="live")[0]["Statement"]] == ["alias"]
    assert error_of(lam.get_resource_policy, ResourceArn=f"{ARN}{fname}:1")[2] == 404
    assert error_of(lam.get_resource_policy, ResourceArn=f"{ARN}{fname}-none")[2] == 404

    def refused(policy: str) -> tuple[str, int]:
        code, _, status = error_of(lam.put_resource_policy, ResourceArn=ARN + fname, Policy=policy)
        return code, status

    assert refused("{not json") == ("InvalidParameterValueException", 400)
    assert refused(json.dumps({"Version": "2012-10-17"})) == ("InvalidParameterValueException", 400)
    no_effect = document(fname, "x")
    del no_effect["Statement"][0]["Effect"]
    assert refused(json.dumps(no_effect)) == ("InvalidParameterValueException", 400)
    assert refused(json.dumps(document(fname, "twice", "twice"))) == (
        "InvalidParameterValueException",
        400,
    )
    assert refused("x" * 20_481) == ("ValidationException", 400)
    code, message, status = error_of(lam.get_resource_policy, ResourceArn="my-function")
    assert (code, status) == ("ValidationException", 400), message
    assert error_of(lam.get_policy, FunctionName=fname)[2] == 404, "nothing was stored"
    lam.delete_alias(FunctionName=fname, Name="live")
    assert error_of(lam.get_resource_policy, ResourceArn=f"{ARN}{fname}:live")[2] == 404


def test_a_put_policy_survives_a_restart(tmp_path):
    with engine_client(tmp_path / "data") as lam:
        create_function(lam, "kept", PACKAGE, handler="index.echo")
        put = lam.put_resource_policy(
            ResourceArn=ARN + "kept", Policy=json.dumps(document("kept", "a", "b"))
        )
    with engine_client(tmp_path / "data") as lam:
        got = lam.get_resource_policy(ResourceArn=ARN + "kept")
        assert (got["Policy"], got["RevisionId"]) == (put["Policy"], put["RevisionId"])
        lam.remove_permission(FunctionName="kept", StatementId="a")
        assert [s["Sid"] for s in policy_of(lam, "kept")[0]["Statement"]] == ["b"]
