"""Rules of code signing configurations, capacity providers and PutResourcePolicy documents,
with plain values (no engine)."""

from __future__ import annotations

import json

import pytest

from lamina.domain import capacity, code_signing, errors, policies

PROVIDER = "arn:aws:lambda:us-east-1:123456789012:capacity-provider:cp"


def test_configuration_arns_look_like_aws_ones():
    arn = code_signing.new_arn("eu-west-1", "210987654321")
    assert code_signing.ARN_RE.fullmatch(arn)
    assert arn.startswith("arn:aws:lambda:eu-west-1:210987654321:code-signing-config:csc-")
    assert arn != code_signing.new_arn("eu-west-1", "210987654321")
    with pytest.raises(errors.ValidationError):
        code_signing.check_arn("arn:aws:lambda:us-east-1:123456789012:code-signing-config:x")


def test_publishers_and_policies():
    profile = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/p/x"
    assert code_signing.profiles({"SigningProfileVersionArns": [profile]}, True) == (profile,)
    assert code_signing.profiles(None, False) is None
    for bad in (
        None,
        {},
        {"SigningProfileVersionArns": []},
        {"SigningProfileVersionArns": [profile] * 21},
        {"SigningProfileVersionArns": ["nope"]},
    ):
        with pytest.raises(errors.ValidationError):
            code_signing.profiles(bad, True)
    assert code_signing.policy({"UntrustedArtifactOnDeployment": "Enforce"}) == "Enforce"
    assert code_signing.policy({}) is None
    with pytest.raises(errors.ValidationError):
        code_signing.policy({"UntrustedArtifactOnDeployment": "Block"})


def test_function_defaults_follow_the_runtime_and_the_memory():
    given = capacity.function_config(
        {"LambdaManagedInstancesCapacityProviderConfig": {"CapacityProviderArn": PROVIDER}}
    )
    assert capacity.settle(given, "python3.13", 2048) == {
        "CapacityProviderArn": PROVIDER,
        "PerExecutionEnvironmentMaxConcurrency": 16,
        "ExecutionEnvironmentMemoryGiBPerVCpu": 2.0,
    }
    assert (
        capacity.settle(given, "nodejs22.x", 4096)["PerExecutionEnvironmentMaxConcurrency"] == 128
    ), "64 per vCPU, 2 vCPUs"
    explicit = {
        **given,
        "PerExecutionEnvironmentMaxConcurrency": 3,
        "ExecutionEnvironmentMemoryGiBPerVCpu": 4.0,
    }
    assert (
        capacity.settle(explicit, "python3.14", 8192)["PerExecutionEnvironmentMaxConcurrency"] == 3
    )


@pytest.mark.parametrize(
    "runtime,ok",
    [
        ("python3.13", True),
        ("python3.12", False),
        ("nodejs22.x", True),
        ("nodejs20.x", False),
        ("java21", True),
        ("provided.al2023", True),
        ("provided.al2", False),
    ],
)
def test_runtimes_of_managed_instances(runtime, ok):
    if ok:
        capacity.check_runtime(runtime)
    else:
        with pytest.raises(errors.InvalidParameterValue):
            capacity.check_runtime(runtime)


def test_provider_members_are_checked():
    assert capacity.name_of(PROVIDER) == "cp"
    with pytest.raises(errors.ValidationError):
        capacity.name_of("no spaces")
    with pytest.raises(errors.ValidationError):
        capacity.vpc_config({"SubnetIds": ["subnet-1"] * 17, "SecurityGroupIds": []})
    assert capacity.scaling_config({"MaxVCpuCount": 4}, {"ScalingMode": "Manual"}) == {
        "ScalingMode": "Manual",
        "MaxVCpuCount": 4,
    }
    with pytest.raises(errors.ValidationError):
        capacity.scaling_config({"MaxVCpuCount": 1})
    with pytest.raises(errors.InvalidParameterValue):
        capacity.scaling_request({"MinExecutionEnvironments": 2, "MaxExecutionEnvironments": 1})
    assert capacity.applied_scaling(None) == {"MinExecutionEnvironments": 3}


def test_put_resource_policy_documents():
    statement = {"Sid": "a", "Effect": "Allow", "Principal": "*", "Action": "lambda:*"}
    assert policies.parse_document(
        json.dumps({"Version": "2012-10-17", "Statement": statement})
    ) == ("2012-10-17", None, (statement,))
    for bad in (
        "[]",
        "{}",
        json.dumps({"Statement": []}),
        json.dumps({"Statement": [{**statement, "Effect": "Maybe"}]}),
        json.dumps({"Statement": [statement, statement]}),
        json.dumps({"Version": "2020-01-01", "Statement": [statement]}),
    ):
        with pytest.raises(errors.InvalidParameterValue):
            policies.parse_document(bad)
    with pytest.raises(errors.ValidationError):
        policies.parse_document("x" * (policies.MAX_POLICY + 1))
