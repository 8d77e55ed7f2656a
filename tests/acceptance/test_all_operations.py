"""Every operation of the installed botocore Lambda model answers, each called once with boto3.

The list of operations comes from the model botocore ships, not from a list kept here: a new
botocore release with new operations shows its gaps at once. Each call gets a minimal valid
input, generated from the operation's input shape (required members only) with the names of
real resources filled in (`_NAMED`) and a few operations written by hand (`_HAND`).

An operation *answers* when the engine recognises it: any AWS-shaped reply counts, a success
or an error of the operation itself (a validation error, a missing resource, a conflict). It
does not answer when the engine says `UnknownOperationException`, or a 404 that is not
AWS's `ResourceNotFoundException` (or another of the model's not-found errors), or fails
with a 5xx on a valid request. Run with `-s` to see what each operation answered.
"""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from botocore.model import OperationModel, Shape

from tests.conftest import FUNCTIONS, create_function, make_zip, zip_dir

PACKAGE = zip_dir(FUNCTIONS / "python")
ACCOUNT = "123456789012"

# Operations the engine does not answer yet. Empty: every operation of the model answers. An
# operation listed here that answers fails the test, so the list cannot go stale.
NOT_YET_ANSWERED: frozenset[str] = frozenset()


def _model() -> botocore.model.ServiceModel:
    return botocore.session.get_session().get_service_model("lambda")


# 404 errors of the model that mean "the resource named does not exist" (AWS's shapes:
# ResourceNotFoundException, CodeSigningConfigNotFoundException, ...).
_NOT_FOUND = frozenset(
    shape.name
    for shape in _model().error_shapes
    if shape.metadata.get("error", {}).get("httpStatusCode") == 404
    and shape.name.endswith("NotFoundException")
)


OPERATIONS = sorted(_model().operation_names)


@pytest.fixture(scope="module")
def resources(lam) -> dict[str, str]:
    """Real resources the operations name: a function (with a version and an alias), a
    second function for DeleteFunction, and a layer version."""
    suffix = json.dumps(id(lam))[-6:]
    name, victim = f"allops-{suffix}", f"allops-victim-{suffix}"
    create_function(lam, name, PACKAGE, handler="index.echo")
    create_function(lam, victim, PACKAGE, handler="index.echo")
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    layer = lam.publish_layer_version(
        LayerName=f"allops-{suffix}", Content={"ZipFile": make_zip({"python/x.py": "X = 1\n"})}
    )
    return {
        "function": name,
        "victim": victim,
        "layer": layer["LayerArn"].split(":")[-1],
        "layer_arn": layer["LayerVersionArn"],
        "function_arn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}",
    }


def _named(res: dict[str, str]) -> dict[str, Any]:
    """Values for members by name, wherever they appear."""
    return {
        "FunctionName": res["function"],
        "LayerName": res["layer"],
        "VersionNumber": 1,
        "Arn": res["layer_arn"],
        "Resource": res["function_arn"],
        "ResourceArn": res["function_arn"],
        "Role": f"arn:aws:iam::{ACCOUNT}:role/any",
        "Runtime": "python3.12",
        "Handler": "index.echo",
        "Name": "live",
        "FunctionVersion": "1",
        "Qualifier": "live",
        "StatementId": "absent",
        "Action": "lambda:InvokeFunction",
        "Principal": "s3.amazonaws.com",
        "UUID": "a1b2c3d4-5678-90ab-cdef-11111example",
        "CapacityProviderName": "allops-absent",
        "CodeSigningConfigArn": (
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:code-signing-config:csc-0123456789abcdef0"
        ),
        "DurableExecutionArn": (
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:"
            f"{res['function']}:1/durable-execution/absent/absent"
        ),
        "CallbackId": "absent",
        "Payload": b"{}",
        "InvokeArgs": b"{}",
        "TagKeys": ["absent"],
        "Tags": {"k": "v"},
        "Policy": json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                        "Action": "lambda:InvokeFunction",
                        "Resource": res["function_arn"],
                    }
                ],
            }
        ),
    }


def _hand(res: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Operations whose minimal input is better written out."""
    return {
        "CreateFunction": {
            "FunctionName": f"{res['function']}-created",
            "Role": f"arn:aws:iam::{ACCOUNT}:role/any",
            "Runtime": "python3.12",
            "Handler": "index.echo",
            "Code": {"ZipFile": PACKAGE},
        },
        "DeleteFunction": {"FunctionName": res["victim"]},
        "UpdateFunctionCode": {"FunctionName": res["function"], "ZipFile": PACKAGE},
        "PublishLayerVersion": {
            "LayerName": res["layer"],
            "Content": {"ZipFile": make_zip({"python/y.py": "Y = 1\n"})},
        },
        "CreateAlias": {"FunctionName": res["function"], "Name": "other", "FunctionVersion": "1"},
        "CreateFunctionUrlConfig": {"FunctionName": res["function"], "AuthType": "NONE"},
        "PutFunctionConcurrency": {
            "FunctionName": res["function"],
            "ReservedConcurrentExecutions": 5,
        },
        "PutProvisionedConcurrencyConfig": {
            "FunctionName": res["function"],
            "Qualifier": "live",
            "ProvisionedConcurrentExecutions": 1,
        },
        "CreateCodeSigningConfig": {
            "AllowedPublishers": {
                "SigningProfileVersionArns": [
                    f"arn:aws:signer:us-east-1:{ACCOUNT}:/signing-profiles/p/abcdefghij"
                ]
            }
        },
        "CreateCapacityProvider": {
            "CapacityProviderName": f"allops-{res['function'][-6:]}",
            "VpcConfig": {
                "SubnetIds": ["subnet-0123456789abcdef0"],
                "SecurityGroupIds": ["sg-0123456789abcdef0"],
            },
            "PermissionsConfig": {
                "CapacityProviderOperatorRoleArn": f"arn:aws:iam::{ACCOUNT}:role/operator"
            },
        },
    }


def minimal(shape: Shape | None, named: dict[str, Any], depth: int = 0) -> Any:
    """A minimal valid value of `shape`: required members only, lengths at their minimum."""
    if shape is None:
        return {}
    if shape.type_name == "structure":
        return {
            member: named[member]
            if member in named
            else minimal(shape.members[member], named, depth + 1)
            for member in shape.required_members
        }
    if shape.type_name == "string":
        if shape.enum:
            return shape.enum[0]
        return "x" * max(shape.metadata.get("min", 1), 1)
    if shape.type_name in ("integer", "long"):
        return max(shape.metadata.get("min", 1), 1)
    if shape.type_name == "boolean":
        return False
    if shape.type_name == "blob":
        return b"x"
    if shape.type_name == "list":
        return [minimal(shape.member, named, depth + 1)] * shape.metadata.get("min", 0)
    if shape.type_name == "map":
        return {}
    if shape.type_name == "timestamp":
        return 0
    raise AssertionError(f"no minimal value for {shape.type_name}")


def call_once(lam, operation: OperationModel, res: dict[str, str]) -> tuple[bool, str]:
    """Call `operation` once; (answered, what came back)."""
    params = _hand(res).get(operation.name) or minimal(operation.input_shape, _named(res))
    try:
        response = getattr(lam, xform_name(operation.name))(**params)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        status = error.response["ResponseMetadata"]["HTTPStatusCode"]
        if code == "UnknownOperationException" or (status == 404 and code not in _NOT_FOUND):
            return False, f"{status} {code}"
        if status >= 500:  # the engine failed on a valid request: not an answer
            return False, f"{status} {code}: {error.response['Error'].get('Message')}"
        return True, f"{status} {code}"
    return True, str(response["ResponseMetadata"]["HTTPStatusCode"])


def test_every_operation_of_the_model_answers(lam, resources):
    model = _model()
    answered, unanswered = {}, {}
    for name in OPERATIONS:
        ok, what = call_once(lam, model.operation_model(name), resources)
        (answered if ok else unanswered)[name] = what
    print(
        f"\n{len(answered)} of {len(OPERATIONS)} operations answer "
        f"(botocore {botocore.__version__})"
    )
    print("\n".join(f"  {n}: {w}" for n, w in answered.items()))
    missing = {n: w for n, w in unanswered.items() if n not in NOT_YET_ANSWERED}
    assert not missing, f"operations that do not answer: {missing}"
    stale = sorted(set(answered) & NOT_YET_ANSWERED)
    assert not stale, f"these answer now: remove them from NOT_YET_ANSWERED: {stale}"
    assert NOT_YET_ANSWERED <= set(OPERATIONS), "NOT_YET_ANSWERED names unknown operations"
