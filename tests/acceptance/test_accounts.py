"""Accounts over signed HTTP: `lamina serve --auth sigv4 --credentials FILE` with two profiles
in two accounts, real boto3 clients and a function calling the engine with the credentials
the engine gives it (docs/SECURITY.md, Accounts). The same rules are tested in-process in
tests/integration/test_accounts.py; this file runs once the engine has `--auth`."""

from __future__ import annotations

import http.client
import json
import site
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import ROOT, closed_after_test, make_zip, serving

OWN, OTHER = "123456789012", "111122223333"
KEYS = {
    OWN: ("AKIAOWNACCOUNT000001", "own-secret"),
    OTHER: ("AKIAOTHERACCOUNT0001", "other-secret"),
}
CALLS_LAMBDA = """
import os, sys
sys.path.extend(os.environ["TEST_SITE"].split(os.pathsep))
import boto3

def handler(event, context):
    lam = boto3.client("lambda", endpoint_url=os.environ["TEST_ENDPOINT"],
                       region_name="us-east-1")
    return [f["FunctionArn"] for f in lam.list_functions()["Functions"]]
"""


def _has_auth() -> bool:
    shown = subprocess.run(
        [sys.executable, "-m", "lamina", "serve", "--help"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return "--auth" in shown


pytestmark = pytest.mark.skipif(
    not _has_auth(),
    reason="`lamina serve` has no --auth yet (SigV4 verification, issue 14): runs once it does",
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("accounts")
    credentials = folder / "credentials"
    credentials.write_text(
        "".join(
            f"[{name}]\naws_access_key_id = {KEYS[account][0]}\n"
            f"aws_secret_access_key = {KEYS[account][1]}\naws_account_id = {account}\n\n"
            for name, account in (("own", OWN), ("other", OTHER))
        )
    )
    with serving(
        folder / "data", "--sandbox", "none", "--auth", "sigv4", "--credentials", str(credentials)
    ) as running:
        yield running


def _client(engine, account: str, service: str = "lambda"):
    key, secret = KEYS[account]
    return closed_after_test(
        boto3.client(
            service,
            endpoint_url=engine.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"total_max_attempts": 1}),
        )
    )


def _arn(account: str, name: str) -> str:
    return f"arn:aws:lambda:us-east-1:{account}:function:{name}"


def test_two_accounts_separated_and_a_policy_lets_one_in(engine) -> None:
    own, other = _client(engine, OWN), _client(engine, OTHER)
    package = make_zip({"index.py": CALLS_LAMBDA})
    sites = [*site.getsitepackages(), str(Path(__file__).resolve().parents[2] / "src")]
    created = other.create_function(
        FunctionName="theirs",
        Runtime=f"python3.{sys.version_info.minor}",
        Role=f"arn:aws:iam::{OTHER}:role/r",
        Handler="index.handler",
        Code={"ZipFile": package},
        Environment={"Variables": {"TEST_SITE": ":".join(sites), "TEST_ENDPOINT": engine.endpoint}},
    )
    assert created["FunctionArn"] == _arn(OTHER, "theirs")
    other.get_waiter("function_active_v2").wait(FunctionName="theirs")
    assert own.list_functions()["Functions"] == []
    with pytest.raises(ClientError) as caught:
        own.get_function(FunctionName="theirs")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as caught:
        own.invoke(FunctionName=_arn(OTHER, "theirs"))
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    other.add_permission(
        FunctionName="theirs", StatementId="own", Principal=OWN, Action="lambda:InvokeFunction"
    )
    # allowed now; and the function, calling the engine with the credentials it was given,
    # acts as its own account: it sees its account's functions only
    response = own.invoke(FunctionName=_arn(OTHER, "theirs"))
    assert "FunctionError" not in response, response["Payload"].read()
    assert json.loads(response["Payload"].read()) == [_arn(OTHER, "theirs")]


SAME = """
import os

def handler(event, context):
    print("marker", os.environ["MARK"])
    return {
        "mark": os.environ["MARK"],
        "name": context.function_name,
        "env": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        "group": os.environ["AWS_LAMBDA_LOG_GROUP_NAME"],
        "arn": context.invoked_function_arn,
    }

def destination(event, context):
    print("delivered", event["responsePayload"]["mark"], event["requestContext"]["functionArn"])
"""


def _url_get(url: str) -> dict:
    host = url.split("//", 1)[1].rstrip("/")
    conn = http.client.HTTPConnection("127.0.0.1", int(host.rsplit(":", 1)[1]), timeout=30)
    conn.request("GET", "/", headers={"Host": host})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200, body
    return json.loads(body)


def _messages(logs, group: str, wanted: str, seconds: float = 20.0) -> str:
    """The text of a log group's events once `wanted` shows up (async work lands later)."""
    end = time.monotonic() + seconds
    while True:
        try:
            events = logs.filter_log_events(logGroupName=group)["events"]
        except ClientError:
            events = []
        text = "".join(e["message"] for e in events)
        if wanted in text or time.monotonic() > end:
            return text
        time.sleep(0.1)


def _create(lam, account: str, name: str, handler: str = "index.handler") -> dict:
    created = lam.create_function(
        FunctionName=name,
        Runtime=f"python3.{sys.version_info.minor}",
        Role=f"arn:aws:iam::{account}:role/r",
        Handler=handler,
        Code={"ZipFile": make_zip({"index.py": SAME})},
        Environment={"Variables": {"MARK": account}},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    return created


def test_two_accounts_each_have_their_own_function_of_the_same_name(engine) -> None:
    lams = {account: _client(engine, account) for account in (OWN, OTHER)}
    for account, lam in lams.items():  # the second create is no conflict: names are per account
        created = _create(lam, account, "my-fn")
        assert (created["FunctionName"], created["FunctionArn"]) == (
            "my-fn",
            _arn(account, "my-fn"),
        )
        _create(lam, account, "my-dest", "index.destination")
    for account, lam in lams.items():  # each runs its own code, named as the caller named it
        answer = json.loads(lam.invoke(FunctionName="my-fn")["Payload"].read())
        assert answer == {
            "mark": account,
            "name": "my-fn",
            "env": "my-fn",
            "group": "/aws/lambda/my-fn",
            "arn": _arn(account, "my-fn"),
        }
        assert lam.get_function(FunctionName="my-fn")["Configuration"]["FunctionArn"] == _arn(
            account, "my-fn"
        )
    own, other = lams[OWN], lams[OTHER]
    # a change to one account's function leaves the other's alone
    other.update_function_configuration(
        FunctionName="my-fn", Environment={"Variables": {"MARK": "changed"}}
    )
    other.get_waiter("function_updated_v2").wait(FunctionName="my-fn")
    assert json.loads(own.invoke(FunctionName="my-fn")["Payload"].read())["mark"] == OWN
    assert json.loads(other.invoke(FunctionName="my-fn")["Payload"].read())["mark"] == "changed"
    # versions, aliases, concurrency, URLs, event invoke configs: each account's own
    for account, lam in lams.items():
        assert lam.publish_version(FunctionName="my-fn")["Version"] == "1"
        alias = lam.create_alias(FunctionName="my-fn", Name="live", FunctionVersion="1")
        assert alias["AliasArn"] == _arn(account, "my-fn") + ":live"
    other.put_function_concurrency(FunctionName="my-fn", ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as caught:
        other.invoke(FunctionName="my-fn")
    assert caught.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert json.loads(own.invoke(FunctionName="my-fn:live")["Payload"].read())["mark"] == OWN
    assert "ReservedConcurrentExecutions" not in own.get_function_concurrency(FunctionName="my-fn")
    other.delete_function_concurrency(FunctionName="my-fn")
    urls = {
        a: lam.create_function_url_config(FunctionName="my-fn", AuthType="NONE")["FunctionUrl"]
        for a, lam in lams.items()
    }
    assert urls[OWN] != urls[OTHER]
    assert _url_get(urls[OWN])["mark"] == OWN and _url_get(urls[OTHER])["mark"] == "changed"
    for account, lam in lams.items():
        config = lam.put_function_event_invoke_config(
            FunctionName="my-fn",
            DestinationConfig={"OnSuccess": {"Destination": _arn(account, "my-dest")}},
        )
        assert config["FunctionArn"] == _arn(account, "my-fn:$LATEST")
        assert lam.invoke(FunctionName="my-fn", InvocationType="Event")["StatusCode"] == 202
    # logs: each account sees its own log groups, with its own function's lines
    for account, mark in ((OWN, OWN), (OTHER, "changed")):
        logs = _client(engine, account, "logs")
        text = _messages(logs, "/aws/lambda/my-fn", f"marker {mark}")
        assert f"marker {mark}" in text
        assert f"marker {OTHER if account == OWN else OWN}" not in text
        assert "REPORT RequestId" in text and f"{OTHER}:my-fn" not in text  # no internal key
        # the destination of each account's async invoke is its own my-dest
        wanted = f"delivered {mark} {_arn(account, 'my-fn')}"
        assert wanted in _messages(logs, "/aws/lambda/my-dest", wanted)
        groups = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/my-")["logGroups"]
        assert [g["logGroupName"] for g in groups] == ["/aws/lambda/my-dest", "/aws/lambda/my-fn"]
        assert all(f":{account}:log-group:" in g["arn"] for g in groups)
    # mappings: each account's own, to its own function
    for account, lam in lams.items():
        lam.create_event_source_mapping(
            FunctionName="my-fn", EventSourceArn=f"arn:aws:sqs:us-east-1:{account}:q", Enabled=False
        )
        listed = lam.list_event_source_mappings(FunctionName="my-fn")["EventSourceMappings"]
        assert [m["FunctionArn"] for m in listed] == [_arn(account, "my-fn")]
        lam.delete_event_source_mapping(UUID=listed[0]["UUID"])
    # layers: the same name in each account, numbered on its own
    for account, lam in lams.items():
        layer = lam.publish_layer_version(
            LayerName="my-layer", Content={"ZipFile": make_zip({"python/lib.py": "X = 1\n"})}
        )
        assert layer["LayerVersionArn"] == f"arn:aws:lambda:us-east-1:{account}:layer:my-layer:1"
        listed = [item["LayerName"] for item in lam.list_layers()["Layers"]]
        assert listed.count("my-layer") == 1
    # by ARN, another account reaches the owner's function of that name once its policy allows
    with pytest.raises(ClientError) as caught:
        own.invoke(FunctionName=_arn(OTHER, "my-fn"))
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    other.add_permission(
        FunctionName="my-fn", StatementId="own", Principal=OWN, Action="lambda:InvokeFunction"
    )
    answer = json.loads(own.invoke(FunctionName=_arn(OTHER, "my-fn"))["Payload"].read())
    assert (answer["mark"], answer["arn"]) == ("changed", _arn(OTHER, "my-fn"))
    # deleting one account's function leaves the other's running
    own.delete_function(FunctionName="my-fn")
    assert json.loads(other.invoke(FunctionName="my-fn")["Payload"].read())["mark"] == "changed"
    with pytest.raises(ClientError) as caught:
        own.get_function(FunctionName="my-fn")
    assert caught.value.response["Error"]["Message"] == f"Function not found: {_arn(OWN, 'my-fn')}"


DURABLE = """
import os
from aws_durable_execution_sdk_python import DurableContext, durable_execution

@durable_execution
def handler(event, context: DurableContext):
    return context.step(lambda _: os.environ["MARK"], name="mark")
"""


def test_two_accounts_run_durable_executions_of_their_own_same_named_function(engine) -> None:
    pytest.importorskip("aws_durable_execution_sdk_python")
    from tests.durable_sdk import sdk_package

    lams = {account: _client(engine, account) for account in (OWN, OTHER)}
    started = {}
    for account, lam in lams.items():
        lam.create_function(
            FunctionName="my-durable",
            Runtime="python3.13",
            Role=f"arn:aws:iam::{account}:role/r",
            Handler="handler.handler",
            Timeout=30,
            Code={"ZipFile": sdk_package({"handler.py": DURABLE.encode()})},
            Environment={"Variables": {"MARK": account}},
            DurableConfig={"ExecutionTimeout": 300},
        )
        lam.get_waiter("function_active_v2").wait(FunctionName="my-durable")
        started[account] = lam.invoke(
            FunctionName="my-durable", Qualifier="$LATEST", InvocationType="Event", Payload=b"{}"
        )["DurableExecutionArn"]
        assert started[account].startswith(_arn(account, "my-durable:$LATEST/durable-execution/"))
    for account, lam in lams.items():
        deadline = time.monotonic() + 60
        while True:
            found = lam.get_durable_execution(DurableExecutionArn=started[account])
            if found["Status"] not in ("RUNNING", "PENDING") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert (found["Status"], json.loads(found["Result"])) == ("SUCCEEDED", account), found
        listed = lam.list_durable_executions_by_function(FunctionName="my-durable")
        assert [e["DurableExecutionArn"] for e in listed["DurableExecutions"]] == [started[account]]
