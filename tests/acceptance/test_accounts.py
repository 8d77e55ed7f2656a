"""Accounts over signed HTTP: `lamina serve --auth sigv4 --credentials FILE` with two profiles
in two accounts, real boto3 clients and a function calling the engine with the credentials
the engine gives it (docs/SECURITY.md, Accounts). The same rules are tested in-process in
tests/integration/test_accounts.py; this file runs once the engine has `--auth`."""

from __future__ import annotations

import json
import site
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import ROOT, make_zip, start_unsandboxed

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
    running = start_unsandboxed(
        folder / "data", "--auth", "sigv4", "--credentials", str(credentials)
    )
    yield running
    running.stop()
    assert "Traceback" not in running.log(), running.log()


def _client(engine, account: str):
    key, secret = KEYS[account]
    return boto3.client(
        "lambda",
        endpoint_url=engine.endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}),
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
