"""Lamina answers as AWS answers, field for field, with boto3.

Each assertion states a fact about AWS's Lambda API as AWS answered it when recorded (the
LocalStack parity recordings, checked against AWS on 2025-11-25; see docs/AWS_ANSWERS.md), in
our own words, so the facts stay tested without the outside oracle.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import time

import pytest
from botocore.exceptions import ClientError

from tests.conftest import (
    FUNCTIONS,
    PY_RUNTIME,
    ROLE,
    create_function,
    engine_client,
    invoke_json,
    make_zip,
    zip_dir,
)

PACKAGE = zip_dir(FUNCTIONS / "python")
ARN = "arn:aws:lambda:us-east-1:123456789012:function:"
STATE_FIELDS = {
    "State",
    "StateReason",
    "StateReasonCode",
    "LastUpdateStatus",
    "LastUpdateStatusReason",
    "LastUpdateStatusReasonCode",
}


def error_of(call, *args, **kwargs) -> tuple[str, str, int, dict]:
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    response = raised.value.response
    return (
        response["Error"]["Code"],
        response["Error"].get("Message", ""),
        response["ResponseMetadata"]["HTTPStatusCode"],
        response,
    )


def make(lam, name: str, **extra) -> dict:
    return create_function(lam, name, PACKAGE, handler="index.describe", **extra)


# configurations ---------------------------------------------------------------------------
def test_a_configuration_shows_what_aws_shows_after_create(lam, fname):
    created = lam.create_function(
        FunctionName=fname,
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="index.echo",
        Code={"ZipFile": PACKAGE},
        Environment={"Variables": {}},
    )
    assert created["Environment"] == {"Variables": {}}, "an empty Environment is echoed"
    assert (created["State"], created["StateReasonCode"]) == ("Pending", "Creating")
    assert "LastUpdateStatus" not in created, "a create answers without an update status"
    runtime_arn = created["RuntimeVersionConfig"]["RuntimeVersionArn"]
    assert re.fullmatch(r"arn:aws:lambda:us-east-1::runtime:[0-9a-f]{64}", runtime_arn)
    assert created["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{fname}"}
    lam.get_waiter("function_active_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    active = lam.get_function(FunctionName=fname)["Configuration"]
    assert (active["State"], active["LastUpdateStatus"]) == ("Active", "Successful")
    assert not {"StateReason", "LastUpdateStatusReason"} & set(active)
    assert active["RevisionId"] != created["RevisionId"], "Pending → Active renews it"
    assert active["Environment"] == {"Variables": {}}
    assert lam.get_function_configuration(FunctionName=fname)["RevisionId"] == active["RevisionId"]

    other = make(lam, f"{fname}-b")  # no Environment given: none shown
    assert "Environment" not in other
    assert other["RuntimeVersionConfig"]["RuntimeVersionArn"] == runtime_arn, (
        "one runtime version ARN per runtime"
    )
    another = "python3.12" if PY_RUNTIME != "python3.12" else "python3.11"
    changed = lam.update_function_configuration(FunctionName=f"{fname}-b", Runtime=another)
    assert changed["RuntimeVersionConfig"]["RuntimeVersionArn"] != runtime_arn


def test_updates_renew_the_revision_twice_and_tags_renew_it_without_a_cold_start(lam, fname):
    make(lam, fname)
    first = lam.get_function(FunctionName=fname)["Configuration"]["RevisionId"]
    environment = invoke_json(lam, fname)[1]["log_stream_name"]
    lam.tag_resource(Resource=ARN + fname, Tags={"team": "a"})
    tagged = lam.get_function(FunctionName=fname)["Configuration"]["RevisionId"]
    lam.untag_resource(Resource=ARN + fname, TagKeys=["team"])
    untagged = lam.get_function(FunctionName=fname)["Configuration"]["RevisionId"]
    assert len({first, tagged, untagged}) == 3, "TagResource and UntagResource renew it"
    assert invoke_json(lam, fname)[1]["log_stream_name"] == environment, (
        "tags do not retire a warm environment"
    )
    with pytest.raises(ClientError):
        lam.update_function_code(FunctionName=fname, ZipFile=PACKAGE, RevisionId=first)

    updated = lam.update_function_configuration(
        FunctionName=fname, Description="d", RevisionId=untagged
    )
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["LastUpdateStatusReasonCode"] == "Creating"
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    done = lam.get_function(FunctionName=fname)["Configuration"]
    assert done["LastUpdateStatus"] == "Successful"
    assert done["RevisionId"] not in (untagged, updated["RevisionId"]), (
        "InProgress → Successful renews it again"
    )
    assert invoke_json(lam, fname)[1]["log_stream_name"] != environment, (
        "a change of settings retires it"
    )


def test_logging_levels_come_with_the_json_format(lam, fname):
    make(lam, fname, LoggingConfig={"LogFormat": "JSON"})
    shown = lam.get_function_configuration(FunctionName=fname)["LoggingConfig"]
    assert shown == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "INFO",
        "LogGroup": f"/aws/lambda/{fname}",
    }
    changed = lam.update_function_configuration(
        FunctionName=fname, LoggingConfig={"ApplicationLogLevel": "DEBUG", "LogGroup": "mine"}
    )
    assert changed["LoggingConfig"] == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "DEBUG",
        "SystemLogLevel": "INFO",
        "LogGroup": "mine",
    }
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    text = lam.update_function_configuration(
        FunctionName=fname, LoggingConfig={"LogFormat": "Text"}
    )
    assert text["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "mine"}


def test_lists_leave_out_state_and_runtime_version(lam, fname):
    make(lam, fname, Publish=True)
    listed = [f for f in lam.list_functions()["Functions"] if f["FunctionName"] == fname]
    assert [f["FunctionArn"] for f in listed] == [ARN + fname]
    every = [
        f
        for f in lam.list_functions(FunctionVersion="ALL")["Functions"]
        if f["FunctionName"] == fname
    ]
    assert [f["FunctionArn"] for f in every] == [f"{ARN}{fname}:$LATEST", f"{ARN}{fname}:1"]
    versions = lam.list_versions_by_function(FunctionName=fname)["Versions"]
    for shown in (*listed, *every, *versions):
        assert not (STATE_FIELDS | {"RuntimeVersionConfig"}) & set(shown), shown
    code, message, status, _ = error_of(lam.list_functions, FunctionVersion="invalid")
    assert (code, status) == ("ValidationException", 400)
    assert message == (
        "1 validation error detected: Value 'invalid' at 'functionVersion' "
        "failed to satisfy constraint: Member must satisfy enum value set: [ALL]"
    )


# versions -----------------------------------------------------------------------------------
def test_publishing_as_aws_decides_it(lam, fname):
    created = lam.create_function(
        FunctionName=fname,
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="index.echo",
        Code={"ZipFile": PACKAGE},
        Publish=True,
    )
    assert (created["Version"], created["FunctionArn"], created["State"]) == (
        "1",
        ARN + fname,
        "Pending",
    ), "Publish on create answers the function as created"
    lam.get_waiter("function_active_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    latest = lam.get_function(FunctionName=fname)["Configuration"]["RevisionId"]
    again = lam.publish_version(FunctionName=fname, Description="only a description")
    assert (again["Version"], again["Description"]) == ("1", ""), (
        "nothing deployed since version 1: it is returned as it is"
    )
    lam.update_function_configuration(FunctionName=fname, Description="changed")
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    before = lam.get_function(FunctionName=fname)["Configuration"]["RevisionId"]
    second = lam.publish_version(FunctionName=fname)
    assert (second["Version"], second["Description"]) == ("2", "changed"), (
        "a description-only update is a change worth a version"
    )
    assert (second["State"], second["LastUpdateStatus"]) == ("Active", "Successful")
    assert lam.get_function(FunctionName=fname)["Configuration"]["RevisionId"] not in (
        before,
        latest,
    ), "publishing renews $LATEST's RevisionId"
    assert lam.publish_version(FunctionName=fname, Description="x")["Version"] == "2"

    published = lam.update_function_code(FunctionName=fname, ZipFile=PACKAGE, Publish=True)
    assert (published["Version"], published["FunctionArn"]) == ("3", f"{ARN}{fname}:3")
    assert (published["State"], published["StateReasonCode"]) == ("Pending", "Creating")
    assert "LastUpdateStatus" not in published


def test_delete_function_checks_qualifiers_as_aws_does(lam, fname):
    make(lam, fname)
    for _ in range(2):  # a version that does not exist is deleted already
        assert (
            lam.delete_function(FunctionName=fname, Qualifier="1233")["ResponseMetadata"][
                "HTTPStatusCode"
            ]
            == 204
        )
    assert error_of(lam.delete_function, FunctionName=fname, Qualifier="live")[:3] == (
        "InvalidParameterValueException",
        "Deletion of aliases is not currently supported.",
        400,
    )
    assert error_of(
        lam.delete_function, FunctionName=f"{ARN}gone-{fname}:$LATEST", Qualifier="$LATEST"
    )[:2] == (
        "InvalidParameterValueException",
        "$LATEST version cannot be deleted without deleting the function.",
    )
    lam.delete_function(FunctionName=fname)
    assert error_of(lam.delete_function, FunctionName=fname, Qualifier="1233")[:2] == (
        "ResourceNotFoundException",
        f"Function not found: {ARN}{fname}",
    )


# names and qualifiers -----------------------------------------------------------------------
NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-"
    r"[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)"
    r"(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?"
)


def test_names_and_qualifiers_are_checked_with_awss_patterns(lam, raw_lam, fname):
    code, message, status, _ = error_of(lam.get_function, FunctionName="my-function!")
    assert (code, status) == ("ValidationException", 400)
    assert message == (
        "1 validation error detected: Value 'my-function!' at 'functionName' "
        "failed to satisfy constraint: Member must satisfy regular expression "
        f"pattern: {NAME_PATTERN}"
    )
    bad_arn = "arn:aws:lambda:invalid-region:123456789012:function:f"
    code, message, _, _ = error_of(raw_lam.invoke, FunctionName=bad_arn, Qualifier="q" * 129)
    assert message.startswith("2 validation errors detected: ")
    assert (
        f"Value '{'q' * 129}' at 'qualifier' failed to satisfy constraint: Member must have "
        "length less than or equal to 128" in message
    )
    assert f"Value '{bad_arn}' at 'functionName'" in message
    code, message, _, _ = error_of(lam.get_function, FunctionName=fname, Qualifier="invalid!")
    assert message.endswith(r"pattern: \$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+")
    # names that pass the pattern but name nothing are simply not found
    for name in ("dotted.name", "a" * 65):
        assert error_of(lam.get_function, FunctionName=name)[:2] == (
            "ResourceNotFoundException",
            f"Function not found: {ARN}{name}",
        )
    assert (
        error_of(lam.get_function, FunctionName=fname, Qualifier="$latest")[1]
        == f"Function not found: {ARN}{fname}:$latest"
    )
    assert (
        error_of(lam.invoke, FunctionName=fname)[1] == f"Function not found: {ARN}{fname}:$LATEST"
    ), "Invoke names $LATEST"
    code, message, status, raw = error_of(
        lam.get_function, FunctionName=f"arn:aws:lambda:us-east-1:210987654321:function:{fname}"
    )
    assert (code, status, message) == ("AccessDeniedException", 403, None), (
        "another account's function: AWS says nothing more"
    )
    code, message, _, _ = error_of(
        lam.create_function,
        FunctionName="a" * 65,
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="index.echo",
        Code={"ZipFile": PACKAGE},
    )
    assert (code, message) == (
        "InvalidParameterValueException",
        f"1 validation error detected: Value '{'a' * 65}' at "
        "'functionName' failed to satisfy constraint: Member must have "
        "length less than or equal to 64",
    )


def test_missing_members_are_a_bare_null(raw_lam, fname):
    make(raw_lam, fname)
    code, message, _, _ = error_of(raw_lam.untag_resource, Resource=ARN + fname, TagKeys=[])
    assert message == (
        "1 validation error detected: Value null at 'tagKeys' failed to satisfy "
        "constraint: Member must not be null"
    )


# what hangs on functions -------------------------------------------------------------------
def test_other_operations_word_their_404s_as_aws_does(lam, fname):
    missing = f"{fname}-none"
    assert (
        error_of(lam.create_function_url_config, FunctionName=missing, AuthType="NONE")[1]
        == "Function does not exist"
    )
    assert (
        error_of(lam.list_function_url_configs, FunctionName=missing)[1]
        == "Function does not exist"
    )
    assert (
        error_of(lam.get_function_url_config, FunctionName=missing)[1]
        == "The resource you requested does not exist."
    )
    assert (
        error_of(lam.get_function_event_invoke_config, FunctionName=missing)[1]
        == f"The function {ARN}{missing}:$LATEST doesn't have an EventInvokeConfig"
    )
    assert (
        error_of(lam.put_function_event_invoke_config, FunctionName=missing)[1]
        == "You must specify at least one of error handling or destination setting."
    ), "the settings are checked before the function"
    assert (
        error_of(
            lam.put_function_event_invoke_config, FunctionName=missing, MaximumRetryAttempts=1
        )[1]
        == "The function doesn't exist."
    )
    assert (
        error_of(
            lam.put_function_concurrency, FunctionName=missing, ReservedConcurrentExecutions=1
        )[1]
        == f"Function not found: {ARN}{missing}:$LATEST"
    )
    assert (
        error_of(lam.get_policy, FunctionName=missing)[1]
        == "The resource you requested does not exist."
    )


def test_event_invoke_destinations_as_aws_checks_them(lam, fname):
    make(lam, fname)
    empty = lam.put_function_event_invoke_config(
        FunctionName=fname, DestinationConfig={"OnSuccess": {}}
    )
    assert empty["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    iam = f"arn:aws:iam:us-east-1:123456789012:function:{fname}"
    assert error_of(
        lam.put_function_event_invoke_config,
        FunctionName=fname,
        DestinationConfig={"OnSuccess": {"Destination": iam}},
    )[1] == (
        f"The provided destination config DestinationConfig(onSuccess=OnSuccess(destination="
        f"{iam}), onFailure=null) is invalid."
    )
    code, message, _, _ = error_of(
        lam.put_function_event_invoke_config,
        FunctionName=fname,
        DestinationConfig={"OnFailure": {"Destination": "arn:aws:_-/!lambda:x"}},
    )
    assert code == "ValidationException"
    assert "at 'destinationConfig.onFailure.destination' failed to satisfy constraint" in message


def test_url_configurations_show_invoke_mode_on_read(lam, fname):
    make(lam, fname)
    created = lam.create_function_url_config(
        FunctionName=fname, AuthType="NONE", InvokeMode="RESPONSE_STREAM"
    )
    assert created["InvokeMode"] == "RESPONSE_STREAM", "given, so echoed"
    assert lam.get_function_url_config(FunctionName=fname)["InvokeMode"] == "RESPONSE_STREAM"


def test_alias_routing_errors_as_aws_words_them(lam, fname):
    make(lam, fname)
    lam.publish_version(FunctionName=fname)
    message = error_of(
        lam.create_alias,
        FunctionName=fname,
        Name="a",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 2.0}},
    )[1]
    assert message.endswith(
        "Map value must satisfy constraint: [Member must have value less "
        "than or equal to 1.0, Member must have value greater than or "
        "equal to 0.0, Member must not be null]"
    )
    code, message, _, _ = error_of(
        lam.create_alias,
        FunctionName=fname,
        Name="a",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"$LATEST": 0.5}},
    )
    assert code == "ValidationException" and message.endswith(
        "Member must satisfy regular expression pattern: [0-9]+]"
    )
    assert error_of(
        lam.create_alias,
        FunctionName=fname,
        Name="a",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}},
    )[1] == (
        "Invalid function version 1. Function version 1 is already included in routing "
        "configuration."
    )
    _, _, _, raw = error_of(
        lam.create_alias,
        FunctionName=fname,
        Name="a",
        FunctionVersion="$LATEST",
        RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}},
    )
    assert "Type" not in raw, "AWS leaves Type out of this one"
    assert (
        error_of(lam.create_alias, FunctionName=f"{fname}-none", Name="a", FunctionVersion="1")[1]
        == f"Function not found: {ARN}{fname}-none:1"
    )


def test_provisioned_concurrency_rules(lam, fname):
    make(lam, fname)
    lam.publish_version(FunctionName=fname)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    assert (
        error_of(lam.get_provisioned_concurrency_config, FunctionName=fname, Qualifier="$LATEST")[1]
        == "The function resource provided must be an alias or a published version."
    )
    assert (
        error_of(lam.get_provisioned_concurrency_config, FunctionName=fname, Qualifier="nope")[1]
        == f"Cannot find alias arn: {ARN}{fname}:nope"
    )
    assert (
        error_of(lam.get_provisioned_concurrency_config, FunctionName=fname, Qualifier="10")[1]
        == f"Function not found: {ARN}{fname}:10"
    )
    assert (
        lam.delete_provisioned_concurrency_config(FunctionName=fname, Qualifier="1")[
            "ResponseMetadata"
        ]["HTTPStatusCode"]
        == 204
    ), "deleting none succeeds"
    limit = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    message = error_of(
        lam.put_provisioned_concurrency_config,
        FunctionName=fname,
        Qualifier="1",
        ProvisionedConcurrentExecutions=limit + 1,
    )[1]
    assert message == (
        "Specified ConcurrentExecutions for function is greater than account's "
        f"unreserved concurrency [{limit}]."
    )
    lam.put_provisioned_concurrency_config(
        FunctionName=fname, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    assert error_of(
        lam.put_provisioned_concurrency_config,
        FunctionName=fname,
        Qualifier="live",
        ProvisionedConcurrentExecutions=1,
    )[:3] == (
        "ResourceConflictException",
        "Alias can't be used for Provisioned Concurrency "
        "configuration on an already Provisioned version",
        409,
    )
    lam.delete_provisioned_concurrency_config(FunctionName=fname, Qualifier="1")
    lam.put_provisioned_concurrency_config(
        FunctionName=fname, Qualifier="live", ProvisionedConcurrentExecutions=1
    )
    assert (
        error_of(
            lam.put_provisioned_concurrency_config,
            FunctionName=fname,
            Qualifier="1",
            ProvisionedConcurrentExecutions=1,
        )[1]
        == "Version is pointed by a Provisioned Concurrency alias"
    )
    lam.delete_alias(FunctionName=fname, Name="live")
    assert (
        lam.list_provisioned_concurrency_configs(FunctionName=fname)[
            "ProvisionedConcurrencyConfigs"
        ]
        == []
    ), "an alias takes its configuration with it"


# layers --------------------------------------------------------------------------------------
def test_layers_as_aws_answers(lam, fname):
    published = lam.publish_layer_version(
        LayerName=fname, Content={"ZipFile": PACKAGE}, CompatibleRuntimes=[]
    )
    assert published["CompatibleRuntimes"] == [] and "CompatibleArchitectures" not in published
    before = lam.get_account_settings()["AccountUsage"]["TotalCodeSize"]
    lam.publish_layer_version(LayerName=fname, Content={"ZipFile": PACKAGE})
    assert (
        lam.get_account_settings()["AccountUsage"]["TotalCodeSize"]
        == before + published["Content"]["CodeSize"]
    ), "layers count in TotalCodeSize"
    code, message, _, _ = error_of(lam.list_layers, CompatibleRuntime="nosuchruntime")
    assert code == "ValidationException" and "at 'compatibleRuntime'" in message
    assert error_of(lam.list_layers, CompatibleArchitecture="z80")[1].endswith(
        "Member must satisfy enum value set: [x86_64, arm64]"
    )
    assert error_of(lam.get_layer_version, LayerName=fname, VersionNumber=0)[:2] == (
        "InvalidParameterValueException",
        "Layer Version Cannot be less than 1",
    )
    layer_arn = published["LayerArn"]
    assert (
        error_of(lam.get_layer_version_policy, LayerName=fname, VersionNumber=9)[1]
        == f"Layer version {layer_arn}:9 does not exist."
    )
    code, message, _, _ = error_of(
        lam.publish_layer_version,
        LayerName=fname,
        Content={"ZipFile": PACKAGE},
        CompatibleRuntimes=["cobol", PY_RUNTIME],
        CompatibleArchitectures=["z80"],
    )
    assert message.startswith(
        f"2 validation errors detected: Value '[cobol, {PY_RUNTIME}]' at 'compatibleRuntimes'"
    )


# event source mappings, tags and VPCs (with moto for SQS and EC2) ------------------------------
@pytest.fixture(scope="module")
def mlam(tmp_path_factory, moto):
    data = tmp_path_factory.mktemp("answers") / "data"
    with engine_client(data, env={"AWS_ENDPOINT_URL": moto.endpoint}) as lambda_client:
        yield lambda_client


def test_mapping_tags_and_checks(mlam, moto, fname):
    make(mlam, fname)
    queue_arn = f"arn:aws:sqs:us-east-1:123456789012:{fname}"
    moto.client("sqs").create_queue(QueueName=fname)
    assert error_of(
        mlam.create_event_source_mapping, FunctionName=f"{fname}-none", EventSourceArn=queue_arn
    )[:2] == ("InvalidParameterValueException", "Function does not exist")
    assert (
        error_of(
            mlam.create_event_source_mapping,
            FunctionName=f"{fname}-none",
            EventSourceArn=queue_arn,
            DestinationConfig={"OnSuccess": {"Destination": queue_arn}},
        )[1]
        == "Unsupported DestinationConfig parameter for given event source mapping type."
    ), "the settings are checked before the function"
    mapping = mlam.create_event_source_mapping(
        FunctionName=fname, EventSourceArn=queue_arn, Tags={"team": "a"}
    )
    assert "LastProcessingResult" not in mapping, "an SQS mapping has no result yet"
    mapping_arn = mapping["EventSourceMappingArn"]
    assert mlam.list_tags(Resource=mapping_arn)["Tags"] == {"team": "a"}
    mlam.tag_resource(Resource=mapping_arn, Tags={"stage": "b"})
    mlam.untag_resource(Resource=mapping_arn, TagKeys=["team"])
    assert mlam.list_tags(Resource=mapping_arn)["Tags"] == {"stage": "b"}
    gone = mapping_arn[:-12] + "000000000000"
    assert error_of(mlam.list_tags, Resource=gone)[1] == f"Event source mapping not found: {gone}"
    provider = "arn:aws:lambda:us-east-1:123456789012:capacity-provider:cp"
    assert (
        error_of(mlam.list_tags, Resource=provider)[1] == f"Capacity provider not found: {provider}"
    )
    code, message, _, _ = error_of(
        mlam.list_tags, Resource="arn:aws:lambda:us-east-1:123456789012:foo:bar"
    )
    assert code == "ValidationException" and "at 'resource' failed to satisfy" in message
    mlam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_vpc_config_is_recorded_with_its_vpc(mlam, moto, fname):
    ec2 = moto.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(VpcId=vpc_id, GroupName=fname, Description="d")["GroupId"]
    created = make(mlam, fname, VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [group]})
    assert created["VpcConfig"] == {
        "SubnetIds": [subnet],
        "SecurityGroupIds": [group],
        "VpcId": vpc_id,
        "Ipv6AllowedForDualStack": False,
    }
    detached = mlam.update_function_configuration(
        FunctionName=fname, VpcConfig={"SubnetIds": [], "SecurityGroupIds": []}
    )
    assert detached["VpcConfig"] == {
        "SubnetIds": [],
        "SecurityGroupIds": [],
        "VpcId": "",
        "Ipv6AllowedForDualStack": False,
    }
    code, message, _, _ = error_of(
        make,
        mlam,
        f"{fname}-b",
        VpcConfig={"SubnetIds": ["subnet-0nosuch"], "SecurityGroupIds": [group]},
    )
    assert (code, message) == (
        "InvalidParameterValueException",
        "Error occurred while DescribeSubnets. EC2 Error "
        "Code: InvalidSubnetID.NotFound. EC2 Error Message: The subnet ID 'subnet-0nosuch' "
        "does not exist",
    )
    code, message, _, _ = error_of(
        make,
        mlam,
        f"{fname}-b",
        VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [group, "sg-0123456789abcdef0"]},
    )
    assert (code, message) == (
        "InvalidParameterValueException",
        "Error occurred while DescribeSecurityGroups. EC2 "
        "Error Code: InvalidGroup.NotFound. EC2 Error Message: The security group "
        "'sg-0123456789abcdef0' does not exist",
    ), "EC2's wording, whatever EC2 service answers"
    code, message, _, _ = error_of(
        make,
        mlam,
        f"{fname}-b",
        VpcConfig={"SubnetIds": ["bad-format"], "SecurityGroupIds": [group]},
    )
    assert (code, message) == (
        "ValidationException",
        "1 validation error detected: Value '[bad-format]' at "
        "'vpcConfig.subnetIds' failed to satisfy constraint: Member must satisfy constraint: "
        "[Member must have length less than or equal to 1024, Member must have length greater "
        "than or equal to 0, Member must satisfy regular expression pattern: subnet-[0-9a-z]*]",
    )


def test_a_reserved_concurrency_throttle_has_no_retry_after(lam, fname):
    make(lam, fname)
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=0)
    code, message, status, raw = error_of(lam.invoke, FunctionName=fname)
    assert (code, message, status) == ("TooManyRequestsException", "Rate Exceeded.", 429)
    assert raw["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert "retry-after" not in raw["ResponseMetadata"]["HTTPHeaders"], "AWS sends none"


def test_a_missing_code_signing_configuration_has_no_type(lam):
    absent = "arn:aws:lambda:us-east-1:123456789012:code-signing-config:csc-0123456789abcdefg"
    code, message, status, raw = error_of(lam.get_code_signing_config, CodeSigningConfigArn=absent)
    assert (code, message, status) == (
        "ResourceNotFoundException",
        f"The Lambda code signing configuration {absent} can not be found.",
        404,
    )
    assert "Type" not in raw, "AWS's body carries no Type here"


# --settle-time: changes take time, as AWS's do -------------------------------------------------
@pytest.fixture(scope="module")
def slow_lam(tmp_path_factory):
    with engine_client(tmp_path_factory.mktemp("settle") / "data", "--settle-time", "1") as lam:
        yield lam


def test_with_a_settle_time_changes_stay_pending_and_in_progress_as_on_aws(slow_lam, fname):
    created = slow_lam.create_function(
        FunctionName=fname,
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="index.echo",
        Code={"ZipFile": PACKAGE},
        Publish=True,
    )
    assert created["State"] == "Pending" and created["Version"] == "1"
    version = slow_lam.get_function(FunctionName=fname, Qualifier="1")["Configuration"]
    assert (version["State"], version["StateReasonCode"]) == ("Pending", "Creating")
    assert "LastUpdateStatus" not in version, "AWS shows no update status on a Pending version"
    code, message, status, _ = error_of(
        slow_lam.update_function_configuration, FunctionName=fname, Description="too soon"
    )
    assert (code, status) == ("ResourceConflictException", 409)
    assert message.endswith("The function is currently in the following state: Pending")
    slow_lam.get_waiter("function_active_v2").wait(
        FunctionName=fname, Qualifier="1", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50}
    )
    assert (
        slow_lam.get_function(FunctionName=fname, Qualifier="1")["Configuration"][
            "LastUpdateStatus"
        ]
        == "Successful"
    ), "the version settled"
    slow_lam.get_waiter("function_active_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50}
    )

    updated = slow_lam.update_function_code(FunctionName=fname, ZipFile=PACKAGE, Publish=True)
    assert (updated["Version"], updated["State"]) == ("2", "Pending")
    latest = slow_lam.get_function(FunctionName=fname)["Configuration"]
    assert (latest["LastUpdateStatus"], latest["LastUpdateStatusReasonCode"]) == (
        "InProgress",
        "Creating",
    )
    assert latest["RevisionId"] != updated["RevisionId"]
    slow_lam.get_waiter("function_active_v2").wait(
        FunctionName=fname, Qualifier="2", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50}
    )
    slow_lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50}
    )

    answered = slow_lam.update_function_configuration(FunctionName=fname, Timeout=5)
    code, message, status, _ = error_of(
        slow_lam.update_function_code, FunctionName=fname, ZipFile=PACKAGE
    )
    assert (code, status) == ("ResourceConflictException", 409)
    assert "An update is in progress for resource" in message
    assert (
        slow_lam.get_function(FunctionName=fname)["Configuration"]["RevisionId"]
        == answered["RevisionId"]
    )
    slow_lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50}
    )
    settled = slow_lam.get_function(FunctionName=fname)["Configuration"]
    assert settled["RevisionId"] != answered["RevisionId"], "InProgress → Successful renews it"

    put = slow_lam.put_provisioned_concurrency_config(
        FunctionName=fname, Qualifier="2", ProvisionedConcurrentExecutions=1
    )
    got = slow_lam.get_provisioned_concurrency_config(FunctionName=fname, Qualifier="2")
    assert (put["Status"], got["Status"], got["AllocatedProvisionedConcurrentExecutions"]) == (
        "IN_PROGRESS",
        "IN_PROGRESS",
        0,
    ), "allocating takes its time too"
    for _ in range(100):
        got = slow_lam.get_provisioned_concurrency_config(FunctionName=fname, Qualifier="2")
        if got["Status"] != "IN_PROGRESS":
            break
        time.sleep(0.1)
    assert (got["Status"], got["AllocatedProvisionedConcurrentExecutions"]) == ("READY", 1)


# the invocation side (test_lambda.py's recordings) ---------------------------------------------
def test_a_log_tail_is_the_invocation_only_and_report_ends_with_a_tab(lam, fname):
    make(lam, fname)
    response = lam.invoke(FunctionName=fname, LogType="Tail")
    lines = base64.b64decode(response["LogResult"]).decode().splitlines(keepends=True)
    assert lines[0].startswith("START RequestId: "), "no INIT_START in AWS's tail"
    assert lines[-2].startswith("END RequestId: ")
    assert lines[-1].startswith("REPORT RequestId: ") and "\tInit Duration: " in lines[-1]
    assert lines[-1].endswith(" ms\t\n"), "each field of REPORT ends with a tab, the last too"


def url_call(url: str, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    host = url.split("//", 1)[1].rstrip("/")
    conn = http.client.HTTPConnection("127.0.0.1", int(host.rsplit(":", 1)[1]), timeout=30)
    conn.request("GET", path, headers={"Host": host, **(headers or {})})
    response = conn.getresponse()
    answer = (response.status, dict(response.getheaders()), response.read())
    conn.close()
    return answer


def test_function_urls_answer_as_aws_does(lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    code, message, _, _ = error_of(
        lam.create_function_url_config, FunctionName=fname, AuthType="NONE", InvokeMode="UNKNOWN"
    )
    assert (code, message) == (
        "ValidationException",
        "1 validation error detected: Value "
        "'UNKNOWN' at 'invokeMode' failed to satisfy constraint: Member "
        "must satisfy enum value set: [RESPONSE_STREAM, BUFFERED]",
    )
    url = lam.create_function_url_config(FunctionName=fname, AuthType="NONE")["FunctionUrl"]
    host = url.split("//", 1)[1].rstrip("/")
    status, _, body = url_call(url, "//pa2%25Fth/1?q=1", {"Connection": "keep-alive"})
    event = json.loads(body)
    assert status == 200
    assert event["requestContext"]["http"]["path"] == "/pa2%Fth/1", "decoded, slashes merged"
    assert event["rawPath"] == "//pa2%25Fth/1"
    assert event["requestContext"]["domainName"] == host == event["headers"]["host"]
    assert "connection" not in event["headers"], "hop-by-hop headers are not passed on"

    lam.update_function_code(
        FunctionName=fname,
        ZipFile=make_zip(
            {
                "index.py": (
                    "def echo(event, context):\n"
                    "    return {'statusCode': 201, 'body': event['rawPath']}\n"
                )
            }
        ),
    )
    lam.get_waiter("function_updated_v2").wait(FunctionName=fname)
    assert url_call(url, "/mapped")[::2] == (201, b"/mapped")
    lam.update_function_url_config(FunctionName=fname, InvokeMode="RESPONSE_STREAM")
    status, _, body = url_call(url, "/streamed")
    assert (status, json.loads(body)) == (200, {"statusCode": 201, "body": "/streamed"}), (
        "a function that does not stream has its result sent as it is"
    )

    lam.delete_function_url_config(FunctionName=fname)
    status, headers, body = url_call(url, "/")
    assert status == 403 and headers["x-amzn-ErrorType"] == "AccessDeniedException"
    assert json.loads(body) == {
        "Message": "Forbidden. For troubleshooting Function URL "
        "authorization issues, see: "
        "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"
    }


def test_provisioned_concurrency_whose_init_fails_says_so_as_aws_does(lam, fname):
    create_function(
        lam,
        fname,
        make_zip({"index.py": "raise RuntimeError('no init')\n"}),
        handler="index.handler",
    )
    version = lam.publish_version(FunctionName=fname)["Version"]
    lam.put_provisioned_concurrency_config(
        FunctionName=fname, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    for _ in range(300):
        config = lam.get_provisioned_concurrency_config(FunctionName=fname, Qualifier=version)
        if config["Status"] != "IN_PROGRESS":
            break
        time.sleep(0.1)
    assert (config["Status"], config["StatusReason"]) == ("FAILED", "FUNCTION_ERROR_INIT_FAILURE")
    assert (
        config["AllocatedProvisionedConcurrentExecutions"],
        config["AvailableProvisionedConcurrentExecutions"],
    ) == (0, 0)


def test_a_destination_record_on_sqs_carries_the_trace_header(mlam, moto, fname):
    sqs = moto.client("sqs")
    url = sqs.create_queue(QueueName=fname)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    create_function(mlam, fname, PACKAGE, handler="index.fail")
    mlam.put_function_event_invoke_config(
        FunctionName=fname,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )
    mlam.invoke(FunctionName=fname, InvocationType="Event", Payload=b"{}")
    messages = []
    for _ in range(20):
        messages = sqs.receive_message(
            QueueUrl=url, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if messages:
            break
    assert messages, "the failure reached the queue"
    assert re.fullmatch(
        r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}(;.*)?", messages[0]["Attributes"]["AWSTraceHeader"]
    )


def test_provisioned_concurrency_is_carved_out_of_the_reservation(lam, fname):
    make(lam, fname)
    version = lam.publish_version(FunctionName=fname)["Version"]
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=1)
    assert lam.invoke(FunctionName=fname)["StatusCode"] == 200, "the whole reservation is free"
    lam.put_provisioned_concurrency_config(
        FunctionName=fname, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    for _ in range(300):
        if (
            lam.get_provisioned_concurrency_config(FunctionName=fname, Qualifier=version)["Status"]
            != "IN_PROGRESS"
        ):
            break
        time.sleep(0.1)
    code, message, status, raw = error_of(lam.invoke, FunctionName=fname, Qualifier="$LATEST")
    assert (code, message, status) == ("TooManyRequestsException", "Rate Exceeded.", 429)
    assert raw["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded", (
        "nothing of the reservation is left beside the provisioned share"
    )
    assert lam.invoke(FunctionName=fname, Qualifier=version)["StatusCode"] == 200
    code, message, _, raw = error_of(
        lam.put_function_concurrency, FunctionName=fname, ReservedConcurrentExecutions=0
    )
    assert (code, message) == (
        "InvalidParameterValueException",
        " ReservedConcurrentExecutions"
        "  0 should not be lower than function's total provisioned "
        "concurrency [1].",
    ) and "Type" not in raw, "AWS's words, no Type"
    lam.delete_provisioned_concurrency_config(FunctionName=fname, Qualifier=version)
    assert lam.invoke(FunctionName=fname)["StatusCode"] == 200
