"""The AWS CLI (v1, from PyPI) against a real `lamina serve`: commands, output and exit codes.

Every test runs `.venv/bin/aws lambda ... --endpoint-url` as a child process with test
credentials and no AWS configuration files, and checks what the CLI prints and writes, as a
person or a shell script would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import FUNCTIONS, PY_RUNTIME, ROLE, make_zip, zip_dir

AWS = Path(sys.executable).parent / "aws"
PACKAGE = zip_dir(FUNCTIONS / "python")

pytestmark = pytest.mark.skipif(not AWS.exists(), reason=f"{AWS} missing: run scripts/setup --test")

Aws = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def aws(server, tmp_path) -> Aws:
    """Run `aws lambda ARGS --endpoint-url <engine>`; fails the test on a non-zero exit
    unless `check=False`."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_MAX_ATTEMPTS": "1",
    }

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(AWS), "lambda", *args, "--endpoint-url", server.endpoint, "--output", "json"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert done.returncode == 0, f"aws lambda {' '.join(args)}: {done.stderr}"
        return done

    return run


def printed(done: subprocess.CompletedProcess) -> dict:
    return json.loads(done.stdout)


@pytest.fixture
def package_file(tmp_path) -> Path:
    path = tmp_path / "function.zip"
    path.write_bytes(PACKAGE)
    return path


def create(aws: Aws, name: str, package_file: Path, handler: str, *extra: str) -> dict:
    created = printed(
        aws(
            "create-function",
            "--function-name",
            name,
            "--runtime",
            PY_RUNTIME,
            "--handler",
            handler,
            "--role",
            ROLE,
            "--zip-file",
            f"fileb://{package_file}",
            *extra,
        )
    )
    aws("wait", "function-active-v2", "--function-name", name)
    return created


def invoke(aws: Aws, name: str, outfile: Path, *extra: str) -> tuple[dict, str]:
    done = aws("invoke", "--function-name", name, *extra, str(outfile))
    return printed(done), outfile.read_text()


def test_create_wait_get_list_and_delete(aws, fname, package_file):
    created = create(
        aws, fname, package_file, "index.echo", "--timeout", "7", "--memory-size", "256"
    )
    assert created["FunctionName"] == fname
    assert created["FunctionArn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{fname}"
    assert (created["State"], created["StateReasonCode"]) == ("Pending", "Creating")
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(PACKAGE).digest()).decode()
    assert created["CodeSize"] == len(PACKAGE)
    assert (created["Timeout"], created["MemorySize"], created["Runtime"]) == (7, 256, PY_RUNTIME)

    got = printed(aws("get-function", "--function-name", fname))
    assert got["Configuration"]["State"] == "Active"
    assert got["Configuration"]["CodeSha256"] == created["CodeSha256"]
    # as on AWS: becoming Active renews the RevisionId, and the create's update is Successful
    assert got["Configuration"]["RevisionId"] != created["RevisionId"]
    assert got["Configuration"]["LastUpdateStatus"] == "Successful"
    assert got["Code"]["RepositoryType"] == "S3"

    listed = printed(aws("list-functions"))["Functions"]
    mine = [f for f in listed if f["FunctionName"] == fname]
    assert len(mine) == 1 and mine[0]["Handler"] == "index.echo"
    assert "State" not in mine[0], "AWS lists functions without their state"

    assert printed(aws("delete-function", "--function-name", fname)) == {"StatusCode": 204}
    gone = aws("get-function", "--function-name", fname, check=False)
    assert gone.returncode == 255
    assert "ResourceNotFoundException" in gone.stderr
    assert fname not in [f["FunctionName"] for f in printed(aws("list-functions"))["Functions"]]


def test_create_twice_is_a_conflict(aws, fname, package_file):
    create(aws, fname, package_file, "index.echo")
    again = aws(
        "create-function",
        "--function-name",
        fname,
        "--runtime",
        PY_RUNTIME,
        "--handler",
        "index.echo",
        "--role",
        ROLE,
        "--zip-file",
        f"fileb://{package_file}",
        check=False,
    )
    assert again.returncode == 255
    assert "(ResourceConflictException)" in again.stderr
    assert "CreateFunction operation" in again.stderr


def test_invoke_writes_the_outfile_and_prints_status(aws, fname, package_file, tmp_path):
    create(aws, fname, package_file, "index.echo")
    status, body = invoke(
        aws, fname, tmp_path / "out.json", "--payload", '{"hello": "cli", "n": [1, 2]}'
    )
    assert status == {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
    assert json.loads(body) == {"hello": "cli", "n": [1, 2]}


def test_invoke_log_type_tail_prints_the_log_tail(aws, fname, package_file, tmp_path):
    create(aws, fname, package_file, "index.log_lines")
    status, body = invoke(aws, fname, tmp_path / "out.json", "--log-type", "Tail")
    assert status["StatusCode"] == 200 and "FunctionError" not in status
    assert json.loads(body) == "logged"
    tail = base64.b64decode(status["LogResult"]).decode()
    start = next(line for line in tail.splitlines() if line.startswith("START RequestId: "))
    request_id = start.split()[2]
    assert len(request_id) == 36
    assert start == f"START RequestId: {request_id} Version: $LATEST"
    assert "printed line" in tail and "to stderr" in tail
    assert f"END RequestId: {request_id}" in tail
    assert f"REPORT RequestId: {request_id}\tDuration: " in tail
    assert "Init Duration:" in tail


def test_function_error_prints_unhandled_and_the_error_document(aws, fname, package_file, tmp_path):
    create(aws, fname, package_file, "index.fail")
    status, body = invoke(aws, fname, tmp_path / "out.json", "--payload", '{"message": "cli boom"}')
    assert status == {"StatusCode": 200, "FunctionError": "Unhandled", "ExecutedVersion": "$LATEST"}
    error = json.loads(body)
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "cli boom"
    assert len(error["requestId"]) == 36
    assert any("in fail" in frame for frame in error["stackTrace"])


def test_update_function_configuration_then_invoke_sees_it(aws, fname, package_file, tmp_path):
    create(aws, fname, package_file, "index.echo")
    updated = printed(
        aws(
            "update-function-configuration",
            "--function-name",
            fname,
            "--handler",
            "index.describe",
            "--timeout",
            "9",
            "--memory-size",
            "512",
            "--environment",
            "Variables={STAGE=cli,COLOR=blue}",
        )
    )
    assert updated["LastUpdateStatus"] == "InProgress"
    assert (updated["Handler"], updated["Timeout"], updated["MemorySize"]) == (
        "index.describe",
        9,
        512,
    )
    aws("wait", "function-updated-v2", "--function-name", fname)
    config = printed(aws("get-function-configuration", "--function-name", fname))
    assert config["LastUpdateStatus"] == "Successful"
    assert config["Environment"] == {"Variables": {"STAGE": "cli", "COLOR": "blue"}}
    _, body = invoke(aws, fname, tmp_path / "out.json")
    described = json.loads(body)
    assert described["memory_limit_in_mb"] == "512"
    assert described["env"]["STAGE"] == "cli" and described["env"]["COLOR"] == "blue"
    assert described["env"]["_HANDLER"] == "index.describe"
    assert 8000 < described["remaining_ms"] <= 9000


def test_invoke_missing_function_fails_with_resource_not_found(aws, fname, tmp_path):
    done = aws("invoke", "--function-name", fname, str(tmp_path / "out.json"), check=False)
    assert done.returncode == 255
    assert "(ResourceNotFoundException)" in done.stderr
    assert "Invoke operation" in done.stderr
    assert (
        f"Function not found: arn:aws:lambda:us-east-1:123456789012:function:{fname}" in done.stderr
    )
    assert done.stdout == ""


def test_invalid_json_payload_is_invalid_request_content(aws, fname, package_file, tmp_path):
    create(aws, fname, package_file, "index.echo")
    done = aws(
        "invoke",
        "--function-name",
        fname,
        "--payload",
        "{not json",
        str(tmp_path / "out.json"),
        check=False,
    )
    assert done.returncode == 255
    assert "(InvalidRequestContentException)" in done.stderr
    assert "Could not parse request body into json" in done.stderr


def test_add_permission_get_policy_and_remove_permission(aws, fname, package_file):
    create(aws, fname, package_file, "index.echo")
    permission = (
        "add-permission",
        "--function-name",
        fname,
        "--statement-id",
        "s3",
        "--action",
        "lambda:InvokeFunction",
        "--principal",
        "s3.amazonaws.com",
        "--source-arn",
        "arn:aws:s3:::my-bucket",
    )
    statement = json.loads(printed(aws(*permission))["Statement"])
    assert statement["Resource"] == f"arn:aws:lambda:us-east-1:123456789012:function:{fname}"
    assert statement["Condition"] == {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::my-bucket"}}
    policy = printed(aws("get-policy", "--function-name", fname))
    assert json.loads(policy["Policy"])["Statement"] == [statement]
    again = aws(*permission, check=False)
    assert again.returncode == 255
    assert "(ResourceConflictException)" in again.stderr
    assert "The statement id (s3) provided already exists." in again.stderr
    removed = aws("remove-permission", "--function-name", fname, "--statement-id", "s3")
    assert removed.stdout == ""
    gone = aws("get-policy", "--function-name", fname, check=False)
    assert gone.returncode == 255 and "(ResourceNotFoundException)" in gone.stderr


def test_publish_layer_version_and_use_it(aws, fname, tmp_path):
    layer_file = tmp_path / "layer.zip"
    layer_file.write_bytes(make_zip({"python/greeting.py": "WORD = 'from the layer'\n"}))
    published = printed(
        aws(
            "publish-layer-version",
            "--layer-name",
            fname,
            "--zip-file",
            f"fileb://{layer_file}",
            "--compatible-runtimes",
            PY_RUNTIME,
        )
    )
    assert published["Version"] == 1
    assert published["LayerVersionArn"].endswith(f":layer:{fname}:1")
    assert published["Content"]["CodeSize"] == layer_file.stat().st_size
    function_file = tmp_path / "function.zip"
    function_file.write_bytes(
        make_zip(
            {
                "index.py": (
                    "import greeting\ndef handler(event, context):\n    return greeting.WORD\n"
                )
            }
        )
    )
    created = create(
        aws, fname, function_file, "index.handler", "--layers", published["LayerVersionArn"]
    )
    assert created["Layers"][0]["Arn"] == published["LayerVersionArn"]
    assert invoke(aws, fname, tmp_path / "out.json")[1] == '"from the layer"'
    listed = printed(aws("list-layer-versions", "--layer-name", fname))
    assert [v["Version"] for v in listed["LayerVersions"]] == [1]
    assert aws("delete-layer-version", "--layer-name", fname, "--version-number", "1").stdout == ""


def test_create_function_url_config_then_curl_it(aws, fname, package_file):
    create(aws, fname, package_file, "index.echo")
    created = printed(
        aws("create-function-url-config", "--function-name", fname, "--auth-type", "NONE")
    )
    assert created["AuthType"] == "NONE" and "InvokeMode" not in created  # not given
    out = subprocess.run(
        ["curl", "-s", created["FunctionUrl"] + "hello?name=cli"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    event = json.loads(out.stdout)
    assert event["rawPath"] == "/hello" and event["queryStringParameters"] == {"name": "cli"}
    listed = printed(aws("list-function-url-configs", "--function-name", fname))
    assert [(c["FunctionUrl"], c["InvokeMode"]) for c in listed["FunctionUrlConfigs"]] == [
        (created["FunctionUrl"], "BUFFERED")
    ]
    assert aws("delete-function-url-config", "--function-name", fname).stdout == ""


def test_code_signing_and_capacity_providers(aws, tmp_path):
    """A few of the newest operations through the CLI, as a deploy script would call them."""
    created = printed(
        aws(
            "create-code-signing-config",
            "--allowed-publishers",
            "SigningProfileVersionArns=arn:aws:signer:us-east-1:123456789012:/signing-profiles/p/x",
            "--code-signing-policies",
            "UntrustedArtifactOnDeployment=Enforce",
        )
    )["CodeSigningConfig"]
    arn = created["CodeSigningConfigArn"]
    (tmp_path / "f.zip").write_bytes(PACKAGE)
    refused = aws(
        "create-function",
        "--function-name",
        "cli-signed",
        "--runtime",
        PY_RUNTIME,
        "--role",
        ROLE,
        "--handler",
        "index.echo",
        "--zip-file",
        "fileb://f.zip",
        "--code-signing-config-arn",
        arn,
        check=False,
    )
    assert refused.returncode != 0
    assert "CodeVerificationFailedException" in refused.stderr
    assert printed(aws("list-code-signing-configs"))["CodeSigningConfigs"]
    aws("delete-code-signing-config", "--code-signing-config-arn", arn)

    provider = printed(
        aws(
            "create-capacity-provider",
            "--capacity-provider-name",
            "cli-provider",
            "--vpc-config",
            "SubnetIds=subnet-0123,SecurityGroupIds=sg-0123",
            "--permissions-config",
            "CapacityProviderOperatorRoleArn=arn:aws:iam::123456789012:role/operator",
        )
    )
    assert provider["CapacityProvider"]["State"] == "Pending"
    listed = printed(aws("list-capacity-providers"))["CapacityProviders"]
    assert [p["State"] for p in listed if p["CapacityProviderArn"].endswith(":cli-provider")] == [
        "Active"
    ]
    assert (
        printed(aws("delete-capacity-provider", "--capacity-provider-name", "cli-provider"))[
            "CapacityProvider"
        ]["State"]
        == "Deleting"
    )
