"""Code from S3: CreateFunction, UpdateFunctionCode and PublishLayerVersion with
S3Bucket/S3Key/S3ObjectVersion, against moto's S3 server (reached through
AWS_ENDPOINT_URL_S3, the per-service variable), with boto3 and the AWS CLI. Lambda's errors
word for word (recorded against AWS), and its size limits for packages that come from S3."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import urllib.request
import uuid
import zipfile

import pytest

from tests.acceptance.conftest import module_client, module_engine
from tests.acceptance.test_aws_cli import AWS
from tests.acceptance.test_versions import error_of, wait_updated
from tests.conftest import PY_RUNTIME, ROLE, client, invoke_json, make_zip

NO_KEY = (
    "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The "
    "specified key does not exist."
)
NO_BUCKET = (
    "Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error Message: "
    "The specified bucket does not exist"
)


def source(word: str) -> bytes:
    return make_zip(
        {"index.py": f"def handler(event, context):\n    return {{'word': '{word}'}}\n"}
    )


def sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


engine = module_engine("s3code", moto_env="AWS_ENDPOINT_URL_S3")
lam = module_client()


@pytest.fixture(scope="module")
def s3(moto):
    s3_client = moto.client("s3")
    yield s3_client
    s3_client.close()


@pytest.fixture
def bucket(s3) -> str:
    name = f"code-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def create(lam, name: str, code: dict, **extra) -> dict:
    created = lam.create_function(
        FunctionName=name,
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="index.handler",
        Code=code,
        **extra,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
    )
    return created


def test_create_update_and_get_a_function_from_s3(lam, s3, bucket, fname):
    first, second = source("first"), source("second")
    s3.put_object(Bucket=bucket, Key="code/function.zip", Body=first)
    created = create(lam, fname, {"S3Bucket": bucket, "S3Key": "code/function.zip"})
    assert created["CodeSha256"] == sha(first) and created["CodeSize"] == len(first)
    assert invoke_json(lam, fname)[1] == {"word": "first"}

    got = lam.get_function(FunctionName=fname)
    assert got["Code"]["RepositoryType"] == "S3"
    with urllib.request.urlopen(got["Code"]["Location"]) as download:
        assert download.read() == first  # Lambda's own copy of the package

    s3.put_object(Bucket=bucket, Key="code/function.zip", Body=second)
    updated = lam.update_function_code(
        FunctionName=fname, S3Bucket=bucket, S3Key="code/function.zip"
    )
    assert updated["CodeSha256"] == sha(second)
    wait_updated(lam, fname)
    assert invoke_json(lam, fname)[1] == {"word": "second"}
    # the object in the bucket changing again changes nothing: Lambda keeps its copy
    s3.put_object(Bucket=bucket, Key="code/function.zip", Body=source("third"))
    assert invoke_json(lam, fname)[1] == {"word": "second"}


def test_an_object_version_selects_the_package(lam, s3, bucket, fname):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=bucket, Key="f.zip", Body=source("old"))["VersionId"]
    s3.put_object(Bucket=bucket, Key="f.zip", Body=source("new"))
    create(lam, fname, {"S3Bucket": bucket, "S3Key": "f.zip", "S3ObjectVersion": old})
    assert invoke_json(lam, fname)[1] == {"word": "old"}
    lam.update_function_code(FunctionName=fname, S3Bucket=bucket, S3Key="f.zip")
    wait_updated(lam, fname)
    assert invoke_json(lam, fname)[1] == {"word": "new"}
    code, message, status = error_of(
        lam.update_function_code,
        FunctionName=fname,
        S3Bucket=bucket,
        S3Key="f.zip",
        S3ObjectVersion="nope",
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message.startswith("Error occurred while GetObject. S3 Error Code: ")


def test_a_missing_bucket_or_key_is_refused_as_aws_words_it(lam, s3, bucket, fname):
    missing = f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    for code, expected in (
        ({"S3Bucket": missing, "S3Key": "code/function.zip"}, NO_BUCKET),
        ({"S3Bucket": bucket, "S3Key": "non/existent.zip"}, NO_KEY),
    ):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as raised:
            lam.create_function(
                FunctionName=fname,
                Runtime=PY_RUNTIME,
                Role=ROLE,
                Handler="index.handler",
                Code=code,
            )
        response = raised.value.response
        assert response["Error"]["Message"] == expected
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert json.loads(json.dumps(response)).get("Type") == "User"
    assert error_of(lam.get_function, FunctionName=fname)[0] == "ResourceNotFoundException"

    s3.put_object(Bucket=bucket, Key="ok.zip", Body=source("kept"))
    create(lam, fname, {"S3Bucket": bucket, "S3Key": "ok.zip"})
    assert error_of(lam.update_function_code, FunctionName=fname, S3Bucket=missing, S3Key="ok.zip")[
        1:
    ] == (NO_BUCKET, 400)
    assert error_of(
        lam.update_function_code, FunctionName=fname, S3Bucket=bucket, S3Key="non/existent.zip"
    )[1:] == (NO_KEY, 400)
    assert invoke_json(lam, fname)[1] == {"word": "kept"}  # nothing changed


def test_a_layer_from_s3(lam, s3, bucket, fname):
    layer = make_zip({"python/greeting.py": "WORD = 'from an S3 layer'\n"})
    s3.put_object(Bucket=bucket, Key="layers/greeting.zip", Body=layer)
    published = lam.publish_layer_version(
        LayerName=f"l-{fname}", Content={"S3Bucket": bucket, "S3Key": "layers/greeting.zip"}
    )
    assert published["Content"]["CodeSha256"] == sha(layer)
    assert published["Content"]["CodeSize"] == len(layer)
    uses = make_zip(
        {"index.py": "import greeting\ndef handler(event, context):\n    return greeting.WORD\n"}
    )
    s3.put_object(Bucket=bucket, Key="uses.zip", Body=uses)
    create(
        lam, fname, {"S3Bucket": bucket, "S3Key": "uses.zip"}, Layers=[published["LayerVersionArn"]]
    )
    assert invoke_json(lam, fname)[1] == "from an S3 layer"
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as raised:
        lam.publish_layer_version(
            LayerName=f"l-{fname}", Content={"S3Bucket": bucket, "S3Key": "missing.zip"}
        )
    assert raised.value.response["Error"]["Message"] == NO_KEY


def test_s3_takes_packages_over_50_mb_and_refuses_over_250_mb_unzipped(lam, s3, bucket, fname):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return 'big'\n")
        archive.writestr("blob.bin", os.urandom(52_500_000))  # does not compress
    big = buffer.getvalue()
    assert len(big) > 52_428_800  # over 50 MB, still within the request's size as base64
    assert error_of(
        lam.create_function,
        FunctionName=fname,
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="index.handler",
        Code={"ZipFile": big},
    ) == ("RequestEntityTooLargeException", "Zipped size must be smaller than 52428800 bytes", 413)
    s3.put_object(Bucket=bucket, Key="big.zip", Body=big)
    created = create(lam, fname, {"S3Bucket": bucket, "S3Key": "big.zip"})
    assert created["CodeSize"] == len(big)
    assert invoke_json(lam, fname)[1] == "big"

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in range(3):  # 3 x 90 MB of zeros: 270 MB once unzipped
            archive.writestr(f"zeros{part}.bin", bytes(90 * 1024 * 1024))
    s3.put_object(Bucket=bucket, Key="huge.zip", Body=buffer.getvalue())
    code, message, status = error_of(
        lam.create_function,
        FunctionName=f"{fname}-huge",
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="index.handler",
        Code={"S3Bucket": bucket, "S3Key": "huge.zip"},
    )
    assert (code, message, status) == (
        "InvalidParameterValueException",
        "Unzipped size must be smaller than 262144000 bytes",
        400,
    )


def test_bad_s3_members_get_validation_errors(lam):
    raw = client(lam.meta.endpoint_url, parameter_validation=False)
    code, message, status = error_of(
        raw.create_function,
        FunctionName="x",
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="index.handler",
        Code={"S3Bucket": "a.", "S3Key": "k"},
    )
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith("1 validation error detected: Value 'a.' at 'code.s3Bucket'")
    raw.close()


@pytest.mark.skipif(not AWS.exists(), reason=f"{AWS} missing: run scripts/setup --test")
def test_the_aws_cli_deploys_from_s3(engine, s3, bucket, tmp_path):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    s3.put_object(Bucket=bucket, Key="cli.zip", Body=source("cli"))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_MAX_ATTEMPTS": "1",
    }

    def aws(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(AWS), "lambda", *args, "--endpoint-url", engine.endpoint],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = aws(
        "create-function",
        "--function-name",
        name,
        "--runtime",
        PY_RUNTIME,
        "--handler",
        "index.handler",
        "--role",
        ROLE,
        "--code",
        f"S3Bucket={bucket},S3Key=cli.zip",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["CodeSha256"] == sha(source("cli"))
    assert aws("wait", "function-active-v2", "--function-name", name).returncode == 0
    done = aws(
        "update-function-code",
        "--function-name",
        name,
        "--s3-bucket",
        bucket,
        "--s3-key",
        "missing.zip",
    )
    assert done.returncode != 0
    assert (
        "An error occurred (InvalidParameterValueException) when calling the "
        f"UpdateFunctionCode operation: {NO_KEY}"
    ) in done.stderr
