"""`lamina serve --assume-role`: each execution environment runs with credentials of its
function's execution role, as on Lambda (STS AssumeRole, the session named after the function),
here from moto's STS. The functions ask STS who they are with the credentials they were given."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.acceptance.test_auth import python_function
from tests.conftest import (
    closing,
    engine_client,
    free_port,
    invoke_json,
)

WHO_AM_I = """
import os, time
import boto3

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    sts = boto3.client("sts", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    return {
        "identity": sts.get_caller_identity()["Arn"],
        "key": os.environ["AWS_ACCESS_KEY_ID"],
        "token": os.environ["AWS_SESSION_TOKEN"],
        "stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
    }
"""


@pytest.fixture(scope="module")
def role_lam(tmp_path_factory, moto):
    env = {"AWS_ENDPOINT_URL": moto.endpoint}
    data = tmp_path_factory.mktemp("assume-role") / "data"
    with engine_client(
        data, "--assume-role", "--function-env", f"AWS_ENDPOINT_URL={moto.endpoint}", env=env
    ) as lambda_client:
        yield lambda_client


def make_role(moto, name: str) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    with closing(moto.client("iam")) as iam:
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"][
            "Arn"
        ]


@pytest.mark.parametrize("length", [1, 2])
def test_a_function_runs_as_its_role_in_a_session_named_after_it(role_lam, moto, fname, length):
    role = make_role(moto, f"role-{fname}")
    name = fname[-1] * length  # Lambda names the session "<name>@lambda_function" for 1 char
    try:
        role_lam.delete_function(FunctionName=name)
    except role_lam.exceptions.ResourceNotFoundException:
        pass
    python_function(role_lam, name, WHO_AM_I, role, Timeout=30)
    response, payload = invoke_json(role_lam, name)
    assert "FunctionError" not in response, payload
    session = name if length > 1 else f"{name}@lambda_function"
    account = role.split(":")[4]
    assert payload["identity"] == f"arn:aws:sts::{account}:assumed-role/role-{fname}/{session}"
    assert payload["key"] != "lamina"


def test_each_environment_has_keys_of_its_own(role_lam, moto, fname):
    role = make_role(moto, f"role-{fname}")
    python_function(role_lam, fname, WHO_AM_I, role, Timeout=30)

    def call(_: int) -> dict:
        return invoke_json(role_lam, fname, {"sleep": 1})[1]

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(call, range(2))
    assert first["stream"] != second["stream"]  # two environments at once
    assert first["key"] != second["key"] and first["token"] != second["token"]
    assert first["identity"] == second["identity"]
    assert first["identity"].endswith(f":assumed-role/role-{fname}/{fname}")
    # a warm environment keeps its credentials
    assert invoke_json(role_lam, fname)[1]["key"] in (first["key"], second["key"])


def test_a_role_sts_cannot_give_fails_the_init_with_the_cause(tmp_path, fname):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: STS unreachable
    with engine_client(tmp_path / "data", "--assume-role", env={"AWS_ENDPOINT_URL": closed}) as lam:
        python_function(lam, fname, WHO_AM_I, Timeout=30)
        response, payload = invoke_json(lam, fname)
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.Unknown"
    assert "could not assume the execution role" in payload["errorMessage"]
    assert "--assume-role" in payload["errorMessage"]
