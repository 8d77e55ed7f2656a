"""Capacity providers (Lambda Managed Instances) with boto3: the provider API, functions on a
provider (CapacityProviderConfig), function scaling configurations, errors, a restart."""

from __future__ import annotations

import uuid

from tests.acceptance.test_versions import error_of
from tests.conftest import ROLE, create_function, engine_client, make_zip

PACKAGE = make_zip({"index.py": "def handler(event, context):\n    return event\n"})
VPC = {"SubnetIds": ["subnet-0123456789abcdef0"], "SecurityGroupIds": ["sg-0123456789abcdef0"]}
OPERATOR = {"CapacityProviderOperatorRoleArn": "arn:aws:iam::123456789012:role/operator"}
PREFIX = "arn:aws:lambda:us-east-1:123456789012:capacity-provider:"


def new_provider(lam, **extra) -> dict:
    name = f"cp-{uuid.uuid4().hex[:10]}"
    response = lam.create_capacity_provider(
        CapacityProviderName=name, VpcConfig=VPC, PermissionsConfig=OPERATOR, **extra
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    return response["CapacityProvider"]


def on_provider(arn: str, **extra) -> dict:
    return {"LambdaManagedInstancesCapacityProviderConfig": {"CapacityProviderArn": arn, **extra}}


def test_provider_lifecycle(lam):
    created = new_provider(
        lam, CapacityProviderScalingConfig={"MaxVCpuCount": 8}, Tags={"team": "a"}
    )
    arn = created["CapacityProviderArn"]
    name = arn.rsplit(":", 1)[1]
    assert arn == PREFIX + name
    assert created["State"] == "Pending"
    assert created["VpcConfig"] == VPC and created["PermissionsConfig"] == OPERATOR
    assert created["CapacityProviderScalingConfig"]["MaxVCpuCount"] == 8
    got = lam.get_capacity_provider(CapacityProviderName=name)["CapacityProvider"]
    assert got["State"] == "Active"
    assert lam.get_capacity_provider(CapacityProviderName=arn)["CapacityProvider"] == got
    listed = lam.list_capacity_providers(State="Active")["CapacityProviders"]
    assert arn in [p["CapacityProviderArn"] for p in listed]
    assert arn not in [
        p["CapacityProviderArn"]
        for p in lam.list_capacity_providers(State="Pending")["CapacityProviders"]
    ]
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "a"}
    lam.tag_resource(Resource=arn, Tags={"env": "dev"})
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "a", "env": "dev"}

    updated = lam.update_capacity_provider(
        CapacityProviderName=name,
        CapacityProviderScalingConfig={
            "ScalingMode": "Manual",
            "ScalingPolicies": [
                {
                    "PredefinedMetricType": "LambdaCapacityProviderAverageCPUUtilization",
                    "TargetValue": 60.0,
                }
            ],
        },
    )
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 202
    scaling = updated["CapacityProvider"]["CapacityProviderScalingConfig"]
    assert (scaling["ScalingMode"], scaling["MaxVCpuCount"]) == ("Manual", 8)

    deleted = lam.delete_capacity_provider(CapacityProviderName=name)
    assert (
        deleted["ResponseMetadata"]["HTTPStatusCode"],
        deleted["CapacityProvider"]["State"],
    ) == (202, "Deleting")
    assert error_of(lam.get_capacity_provider, CapacityProviderName=name) == (
        "ResourceNotFoundException",
        f"Capacity provider not found: {arn}",
        404,
    )


def test_provider_errors(lam, raw_lam):
    created = new_provider(lam)
    name = created["CapacityProviderArn"].rsplit(":", 1)[1]
    assert error_of(
        lam.create_capacity_provider,
        CapacityProviderName=name,
        VpcConfig=VPC,
        PermissionsConfig=OPERATOR,
    )[::2] == ("ResourceConflictException", 409)
    for bad in (
        {"SubnetIds": [], "SecurityGroupIds": []},
        {"SubnetIds": ["vpc-1"], "SecurityGroupIds": []},
    ):
        assert error_of(
            raw_lam.create_capacity_provider,
            CapacityProviderName="cp-bad",
            VpcConfig=bad,
            PermissionsConfig=OPERATOR,
        )[::2] == ("ValidationException", 400)
    assert error_of(
        lam.create_capacity_provider,
        CapacityProviderName="cp-bad",
        VpcConfig=VPC,
        PermissionsConfig={"CapacityProviderOperatorRoleArn": "role"},
    )[::2] == ("ValidationException", 400)
    assert error_of(
        lam.create_capacity_provider,
        CapacityProviderName="cp bad",
        VpcConfig=VPC,
        PermissionsConfig=OPERATOR,
    )[::2] == ("ValidationException", 400)
    for call in (
        lam.get_capacity_provider,
        lam.delete_capacity_provider,
        lam.update_capacity_provider,
        lam.list_function_versions_by_capacity_provider,
    ):
        assert error_of(call, CapacityProviderName="cp-absent")[::2] == (
            "ResourceNotFoundException",
            404,
        ), call
    lam.delete_capacity_provider(CapacityProviderName=name)


def test_functions_on_a_provider(lam, fname):
    provider = new_provider(lam)
    arn, name = provider["CapacityProviderArn"], provider["CapacityProviderArn"].rsplit(":", 1)[1]
    created = create_function(
        lam, fname, PACKAGE, runtime="python3.13", CapacityProviderConfig=on_provider(arn)
    )
    assert created["MemorySize"] == 2048, "Managed Instances functions have at least 2 GB"
    assert created["CapacityProviderConfig"] == on_provider(
        arn, PerExecutionEnvironmentMaxConcurrency=16, ExecutionEnvironmentMemoryGiBPerVCpu=2.0
    )
    changed = lam.update_function_configuration(
        FunctionName=fname,
        CapacityProviderConfig=(on_provider(arn, PerExecutionEnvironmentMaxConcurrency=4)),
    )
    assert (
        changed["CapacityProviderConfig"]["LambdaManagedInstancesCapacityProviderConfig"][
            "PerExecutionEnvironmentMaxConcurrency"
        ]
        == 4
    )
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    assert (
        lam.get_function_configuration(FunctionName=fname)["CapacityProviderConfig"]
        == changed["CapacityProviderConfig"]
    )
    assert (
        lam.list_function_versions_by_capacity_provider(CapacityProviderName=name)[
            "FunctionVersions"
        ]
        == []
    ), "nothing published yet"
    version = lam.publish_version(FunctionName=fname)["Version"]
    listed = lam.list_function_versions_by_capacity_provider(CapacityProviderName=name)
    assert listed["CapacityProviderArn"] == arn
    assert listed["FunctionVersions"] == [
        {
            "FunctionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{fname}:{version}",
            "State": "Active",
        }
    ]

    scaling = lam.get_function_scaling_config(FunctionName=fname, Qualifier=version)
    assert scaling["AppliedFunctionScalingConfig"] == {"MinExecutionEnvironments": 3}
    assert "RequestedFunctionScalingConfig" not in scaling
    put = lam.put_function_scaling_config(
        FunctionName=fname,
        Qualifier=version,
        FunctionScalingConfig={"MinExecutionEnvironments": 1, "MaxExecutionEnvironments": 5},
    )
    assert (put["ResponseMetadata"]["HTTPStatusCode"], put["FunctionState"]) == (202, "Active")
    scaling = lam.get_function_scaling_config(FunctionName=fname, Qualifier=version)
    assert (
        scaling["RequestedFunctionScalingConfig"]
        == scaling["AppliedFunctionScalingConfig"]
        == {"MinExecutionEnvironments": 1, "MaxExecutionEnvironments": 5}
    )
    assert scaling["FunctionArn"].endswith(f":{fname}:{version}")
    assert (
        error_of(
            lam.put_function_scaling_config,
            FunctionName=fname,
            Qualifier=version,
            FunctionScalingConfig={"MinExecutionEnvironments": 6, "MaxExecutionEnvironments": 5},
        )[2]
        == 400
    )
    assert error_of(lam.get_function_scaling_config, FunctionName=fname, Qualifier="99")[::2] == (
        "ResourceNotFoundException",
        404,
    )

    assert error_of(lam.delete_capacity_provider, CapacityProviderName=name)[::2] == (
        "ResourceConflictException",
        409,
    ), "versions use it"
    lam.delete_function(FunctionName=fname)
    lam.delete_capacity_provider(CapacityProviderName=name)


def test_function_errors(lam, raw_lam, fname):
    arn = new_provider(lam)["CapacityProviderArn"]
    assert error_of(
        lam.create_function,
        FunctionName=fname,
        Runtime="python3.12",
        Role=ROLE,
        Handler="index.handler",
        Code={"ZipFile": PACKAGE},
        CapacityProviderConfig=on_provider(arn),
    ) == (
        "InvalidParameterValueException",
        "Runtime Enum python3.12 does not support specified feature: Lambda Managed Instances",
        400,
    )
    assert error_of(
        lam.create_function,
        FunctionName=fname,
        Runtime="python3.13",
        Role=ROLE,
        Handler="index.handler",
        Code={"ZipFile": PACKAGE},
        CapacityProviderConfig=on_provider(PREFIX + "cp-absent"),
    ) == ("ResourceNotFoundException", f"Capacity provider not found: {PREFIX}cp-absent", 404)
    assert error_of(
        raw_lam.create_function,
        FunctionName=fname,
        Runtime="python3.13",
        Role=ROLE,
        Handler="index.handler",
        Code={"ZipFile": PACKAGE},
        CapacityProviderConfig=on_provider(arn, PerExecutionEnvironmentMaxConcurrency=0),
    )[::2] == ("ValidationException", 400)
    assert error_of(
        lam.create_function,
        FunctionName=fname,
        Runtime="python3.13",
        Role=ROLE,
        Handler="index.handler",
        Code={"ZipFile": PACKAGE},
        MemorySize=1024,
        CapacityProviderConfig=on_provider(arn),
    )[::2] == ("InvalidParameterValueException", 400)
    create_function(lam, fname, PACKAGE, handler="index.handler")
    assert error_of(
        lam.update_function_configuration,
        FunctionName=fname,
        CapacityProviderConfig=on_provider(arn),
    ) == (
        "InvalidParameterValueException",
        "CapacityProviderConfig isn't supported for Lambda Default functions.",
        400,
    )
    assert "CapacityProviderConfig" not in lam.get_function_configuration(FunctionName=fname)
    assert error_of(lam.get_function_scaling_config, FunctionName=fname, Qualifier="1")[::2] == (
        "InvalidParameterValueException",
        400,
    )


def test_providers_and_functions_survive_a_restart(tmp_path):
    with engine_client(tmp_path / "data") as lam:
        arn = new_provider(lam)["CapacityProviderArn"]
        create_function(
            lam, "managed", PACKAGE, runtime="python3.13", CapacityProviderConfig=on_provider(arn)
        )
        lam.publish_version(FunctionName="managed")
        lam.put_function_scaling_config(
            FunctionName="managed",
            Qualifier="1",
            FunctionScalingConfig={"MaxExecutionEnvironments": 2},
        )
    with engine_client(tmp_path / "data") as lam:
        assert (
            lam.get_capacity_provider(CapacityProviderName=arn)["CapacityProvider"]["State"]
            == "Active"
        )
        assert lam.get_function_configuration(FunctionName="managed")[
            "CapacityProviderConfig"
        ] == on_provider(
            arn, PerExecutionEnvironmentMaxConcurrency=16, ExecutionEnvironmentMemoryGiBPerVCpu=2.0
        )
        assert lam.get_function_scaling_config(FunctionName="managed", Qualifier="1")[
            "RequestedFunctionScalingConfig"
        ] == {"MaxExecutionEnvironments": 2}


def test_latest_published_is_refused_not_replaced(lam, fname):
    """$LATEST.PUBLISHED is not built: asking for it is a clear error, not a numbered version."""
    arn = new_provider(lam)["CapacityProviderArn"]
    create_function(
        lam, fname, PACKAGE, runtime="python3.13", CapacityProviderConfig=on_provider(arn)
    )
    code, message, status = error_of(
        lam.publish_version, FunctionName=fname, PublishTo="LATEST_PUBLISHED"
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "$LATEST.PUBLISHED" in message
    assert lam.list_versions_by_function(FunctionName=fname)["Versions"][1:] == []
    assert error_of(
        lam.get_function_scaling_config, FunctionName=fname, Qualifier="$LATEST.PUBLISHED"
    )[::2] == ("ResourceNotFoundException", 404)
