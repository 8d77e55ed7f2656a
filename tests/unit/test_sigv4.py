"""domain.sigv4: requests signed by botocore (and by a signer choosing other headers), checked
without a server: each variant and each refusal with AWS's words."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lamina.config import load_credentials
from lamina.domain import errors, sigv4

KEY = sigv4.Key("AKIAUNIT000000000001", "unit/secret+1", "111122223333", "unit")
RING = sigv4.Keyring([KEY])
NOW = datetime.datetime(2026, 12, 3, 2, 0, 0, tzinfo=datetime.UTC).timestamp()
HOST = "127.0.0.1:9001"
PATH = (
    "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A111122223333%3Afunction%3Af/invocations"
)


def sign(
    method="POST",
    path=PATH,
    query="",
    body=b"{}",
    at=NOW,
    key=KEY.access_key,
    secret=KEY.secret_key,
    service="lambda",
    headers=None,
    token=None,
    signer=SigV4Auth,
    region="us-east-1",
):
    stamp = datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    url = f"http://{HOST}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    request.headers["X-Amz-Date"] = stamp
    if token:
        request.headers["X-Amz-Security-Token"] = token
    request.context["timestamp"] = stamp
    auth = signer(Credentials(key, secret, token), service, region)
    auth._inject_signature_to_request(
        request,
        auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request),
    )
    sent = {name.lower(): value for name, value in request.headers.items()}
    sent.setdefault("host", HOST)
    return sent


def check(
    headers,
    method="POST",
    path=PATH,
    query="",
    body=b"{}",
    now=NOW,
    ring=RING,
    services=("lambda",),
    region=None,
):
    caller, decoded = sigv4.verify_body(
        ring, method, path, query, headers, body, services, now=now, region=region
    )
    assert decoded == body  # not aws-chunked: the body as it came
    return caller


def refusal(call) -> tuple[str, str]:
    with pytest.raises(errors.Unauthenticated) as caught:
        call()
    assert caught.value.status == 403 and caught.value.body() == {"message": caught.value.message}
    return caught.value.error_type, caught.value.message


def test_a_botocore_signature_names_its_caller():
    caller = check(sign())
    assert (caller.account, caller.access_key, caller.arn, caller.function_arn) == (
        "111122223333",
        KEY.access_key,
        "arn:aws:iam::111122223333:root",
        None,
    )


def test_headers_another_sdk_signs_are_honoured():
    class SignsUserAgent(SigV4Auth):
        def headers_to_sign(self, request):
            chosen = super().headers_to_sign(request)
            chosen["user-agent"] = request.headers["User-Agent"]
            return chosen

    headers = sign(headers={"User-Agent": "aws-sdk-js/3"}, signer=SignsUserAgent)
    assert "user-agent" in headers["authorization"]
    assert check(headers).account == "111122223333"
    headers["user-agent"] = "changed"
    assert refusal(lambda: check(headers))[0] == "InvalidSignatureException"


def test_payload_hashes():
    assert check(sign(headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}), body=b"other")
    assert refusal(lambda: check(sign(), body=b"other"))[0] == "InvalidSignatureException"
    wrong = sign(headers={"X-Amz-Content-SHA256": "ab" * 32})
    assert "x-amz-content-sha256" in refusal(lambda: check(wrong))[1]


def test_each_refusal_in_aws_words():
    assert refusal(lambda: check({"host": HOST})) == (
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )
    assert refusal(lambda: check(sign(secret="wrong")))[1].startswith(
        "The request signature we calculated does not match the signature you provided."
    )
    assert refusal(lambda: check(sign(key="AKIANOBODY"))) == (
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )
    expired = (
        "Signature expired: 20261203T020000Z is now earlier than 20261203T020001Z "
        "(20261203T020501Z - 5 min.)"
    )
    assert refusal(lambda: check(sign(), now=NOW + 301)) == ("InvalidSignatureException", expired)
    assert refusal(lambda: check(sign(), now=NOW - 301))[1].startswith(
        "Signature not yet current: 20261203T020000Z is still later than"
    )
    assert check(sign(), now=NOW + 299)
    assert refusal(lambda: check(sign(service="s3")))[1].startswith(
        "Credential should be scoped to correct service: 'lambda'."
    )
    assert (
        refusal(lambda: check({"host": HOST, "authorization": "Bearer x"}))[0]
        == "IncompleteSignatureException"
    )
    assert (
        refusal(
            lambda: check(
                {
                    "host": HOST,
                    "x-amz-date": "20261203T020000Z",
                    "authorization": "AWS4-HMAC-SHA256 Credential=A/20261203/"
                    "us-east-1/lambda/aws4_request",
                }
            )
        )[0]
        == "IncompleteSignatureException"
    )
    other_day = sign()
    other_day["authorization"] = other_day["authorization"].replace("/20261203/", "/20261202/")
    assert refusal(lambda: check(other_day))[1].startswith(
        "Date in Credential scope does not match YYYYMMDD"
    )


def test_the_scope_must_name_the_engines_region():
    assert check(sign(), region="us-east-1").account == "111122223333"
    assert refusal(lambda: check(sign(region="eu-west-1"), region="us-east-1")) == (
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'eu-west-1'. ",
    )
    # without an engine region (a caller that does not pin one) the scope's region is used
    assert check(sign(region="eu-west-1")).account == "111122223333"


def presigned(expires=60, at=NOW, secret=KEY.secret_key) -> str:
    stamp = datetime.datetime.fromtimestamp(at, datetime.UTC)
    request = AWSRequest(method="GET", url=f"http://{HOST}/2015-03-31/functions/")
    request.context["timestamp"] = stamp.strftime("%Y%m%dT%H%M%SZ")
    auth = SigV4QueryAuth(
        Credentials(KEY.access_key, secret), "lambda", "us-east-1", expires=expires
    )
    auth._modify_request_before_signing(request)
    auth._inject_signature_to_request(
        request,
        auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request),
    )
    return request.url.split("?", 1)[1]


def test_presigned_urls_last_their_expiry():
    query = presigned()
    path = "/2015-03-31/functions/"
    assert check({"host": HOST}, "GET", path, query, b"", now=NOW + 59).account == "111122223333"
    assert refusal(lambda: check({"host": HOST}, "GET", path, query, b"", now=NOW + 61))[1] == (
        "Signature expired: 20261203T020101Z is now later than 20261203T020100Z "
        "(20261203T020000Z + 60 sec.)"
    )
    assert (
        refusal(lambda: check({"host": HOST}, "GET", path, presigned(secret="x"), b"", now=NOW))[0]
        == "InvalidSignatureException"
    )
    too_long = query.replace("X-Amz-Expires=60", "X-Amz-Expires=604801")
    assert (
        refusal(lambda: check({"host": HOST}, "GET", path, too_long, b"", now=NOW))[0]
        == "IncompleteSignatureException"
    )


def test_function_credentials_are_sealed_by_the_file_and_expire():
    arn = "arn:aws:lambda:us-east-1:111122223333:function:f"
    given = RING.function_credentials(
        "111122223333", arn, "arn:aws:iam::111122223333:role/r", now=NOW
    )
    assert given["AWS_ACCESS_KEY_ID"].startswith("ASIA") and len(given["AWS_ACCESS_KEY_ID"]) == 20
    headers = sign(
        key=given["AWS_ACCESS_KEY_ID"],
        secret=given["AWS_SECRET_ACCESS_KEY"],
        token=given["AWS_SESSION_TOKEN"],
    )
    caller = check(headers, now=NOW + 60)
    assert (caller.account, caller.function_arn, caller.arn) == (
        "111122223333",
        arn,
        "arn:aws:sts::111122223333:assumed-role/r/f",
    )
    assert refusal(lambda: check(headers, now=NOW + 12 * 3600 + 1, ring=RING))  # skew first
    late = sign(
        key=given["AWS_ACCESS_KEY_ID"],
        secret=given["AWS_SECRET_ACCESS_KEY"],
        token=given["AWS_SESSION_TOKEN"],
        at=NOW + 12 * 3600,
    )
    assert refusal(lambda: check(late, now=NOW + 12 * 3600)) == (
        "ExpiredTokenException",
        "The security token included in the request is expired",
    )
    other = sigv4.Keyring([sigv4.Key(KEY.access_key, "another secret", KEY.account)])
    assert refusal(lambda: check(headers, now=NOW, ring=other))[0] == "UnrecognizedClientException"
    long_term_with_token = sign(token="anything")
    assert refusal(lambda: check(long_term_with_token))[0] == "UnrecognizedClientException"


def test_console_sessions():
    caller = check(sign())
    session = RING.console_session(caller, NOW, 3600)
    assert RING.console_caller(session, NOW + 10) == caller
    assert RING.console_caller(session, NOW + 3600) is None
    assert RING.console_caller(session[:-2] + "AA", NOW) is None
    assert RING.console_caller("garbage", NOW) is None


def test_the_credentials_file(tmp_path: Path):
    path = tmp_path / "credentials"
    path.write_text(
        "[a]\naws_access_key_id = K\naws_secret_access_key = S\naws_account_id = 111122223333\n"
    )
    assert load_credentials(path) == [sigv4.Key("K", "S", "111122223333", "a")]
    path.write_text("[a]\naws_access_key_id = K\naws_secret_access_key = S\n")
    with pytest.raises(SystemExit, match="aws_account_id"):
        load_credentials(path)
    path.write_text("[a]\naws_access_key_id = K\naws_secret_access_key = S\naws_account_id = 12\n")
    with pytest.raises(SystemExit, match="12 digits"):
        load_credentials(path)
    with pytest.raises(SystemExit, match="cannot read"):
        load_credentials(tmp_path / "missing")
