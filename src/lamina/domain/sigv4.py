"""Signature Version 4 checked as AWS checks it, and the keys it is checked against (no I/O).

The expected signature is computed by botocore's own signer (`botocore.auth.SigV4Auth`), not by
a canonicalisation written here: the incoming request is rebuilt as a botocore `AWSRequest`
with exactly the headers the client signed, its timestamp and the credential scope it named,
signed with the secret of the key it named, and the two signatures are compared in constant
time. Both forms are read: the `Authorization` header and the query string of a presigned URL
(`X-Amz-Signature`). The payload hash is the `x-amz-content-sha256` header where the client
sent one (`UNSIGNED-PAYLOAD` included; any other value must match the body), else the body's.

Keys come from the credentials file (`Keyring`), and from the short-lived credentials the
engine gives each function (`Keyring.function_credentials`): those carry their identity in
the session token, sealed with a MAC of a secret derived from the file, so every engine that
reads the same file accepts them and nothing is stored.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from lamina.domain import aws_chunked, errors
from lamina.domain.identity import Caller

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_S = 300  # AWS refuses a request signed more than 5 minutes away from now
MAX_PRESIGN_S = 604800  # X-Amz-Expires: at most 7 days
FUNCTION_CREDENTIALS_S = 12 * 3600  # Lambda's execution-role credentials last up to 12 h
_STAMP = "%Y%m%dT%H%M%SZ"
_UNHASHED = ("UNSIGNED-PAYLOAD", "STREAMING-")
_TOKEN_PREFIX = "LAMINA1."
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service "
    "documentation for details."
)
_BAD_TOKEN = "The security token included in the request is invalid."


@dataclass(frozen=True)
class Key:
    """One long-term key of the credentials file."""

    access_key: str
    secret_key: str
    account: str
    profile: str = "default"


class Keyring:
    """The keys an engine accepts: the file's, and the functions' it derives itself."""

    def __init__(self, keys: list[Key]) -> None:
        self.keys = {key.access_key: key for key in keys}
        seed = "\n".join(
            f"{k.access_key}:{k.secret_key}:{k.account}"
            for k in sorted(keys, key=lambda k: k.access_key)
        )
        self._key = hashlib.sha256(b"lamina function credentials\n" + seed.encode()).digest()

    def function_credentials(
        self,
        account: str,
        function_arn: str,
        role: str,
        now: float | None = None,
        lifetime: float = FUNCTION_CREDENTIALS_S,
    ) -> dict[str, str]:
        """AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN for a function of
        `account`: accepted by every engine reading the same file, until they expire."""
        access_key = "ASIA" + base64.b32encode(os.urandom(10)).decode()  # 20 characters
        token = self._seal(
            "token",
            {
                "k": access_key,
                "a": account,
                "f": function_arn,
                "r": role,
                "e": _expiry(now, lifetime),
            },
        )
        return {
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": self._function_secret(token),
            "AWS_SESSION_TOKEN": token,
        }

    def console_session(self, caller: Caller, now: float, lifetime: float) -> str:
        """The console's session cookie for a verified caller."""
        return self._seal(
            "console",
            {
                "a": caller.account,
                "k": caller.access_key,
                "p": caller.arn,
                "e": _expiry(now, lifetime),
            },
        )

    def console_caller(self, session: str, now: float) -> Caller | None:
        claims = self._open("console", session)
        if claims is None or now >= claims["e"]:
            return None
        return Caller(account=claims["a"], access_key=claims["k"], arn=claims["p"])

    def _seal(self, purpose: str, claims: dict[str, object]) -> str:
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{_TOKEN_PREFIX}{payload}.{_b64(self._mac(purpose, payload))}"

    def _open(self, purpose: str, token: str) -> dict[str, Any] | None:
        """The claims of a token this keyring sealed for `purpose`, else None."""
        if not token.startswith(_TOKEN_PREFIX):
            return None
        payload, _, mac = token[len(_TOKEN_PREFIX) :].partition(".")
        if not hmac.compare_digest(mac.encode(), _b64(self._mac(purpose, payload)).encode()):
            return None
        claims: dict[str, Any] = json.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
        return claims

    def _mac(self, purpose: str, payload: str) -> bytes:
        return hmac.new(self._key, f"{purpose}\n{payload}".encode(), hashlib.sha256).digest()

    def _function_secret(self, token: str) -> str:
        return _b64(self._mac("secret", token))[:40]

    def resolve(self, access_key: str, token: str | None, now: float) -> tuple[str, Caller]:
        """(secret key, caller) of an access key and its session token, or the AWS error."""
        key = self.keys.get(access_key)
        if key is not None:
            if token:  # a long-term key never comes with a session token
                raise errors.UnrecognizedClient(_BAD_TOKEN)
            return key.secret_key, Caller(
                account=key.account, access_key=access_key, arn=f"arn:aws:iam::{key.account}:root"
            )
        claims = self._open("token", token or "")
        if claims is None or claims["k"] != access_key:
            raise errors.UnrecognizedClient(_BAD_TOKEN)
        if now >= claims["e"]:
            raise errors.ExpiredToken("The security token included in the request is expired")
        role_name = str(claims["r"]).rpartition("/")[2] or "lambda"
        function_arn = str(claims["f"])
        function_name = function_arn.split(":")[6] if function_arn.count(":") >= 6 else ""
        return self._function_secret(token or ""), Caller(
            account=claims["a"],
            access_key=access_key,
            function_arn=function_arn,
            arn=f"arn:aws:sts::{claims['a']}:assumed-role/{role_name}/{function_name}",
        )


@dataclass(frozen=True)
class Signed:
    """What a request says about its signature, read from its header or its query string."""

    access_key: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    signed_headers: list[str]
    signature: str
    timestamp: str  # X-Amz-Date (or Date) as YYYYMMDDTHHMMSSZ
    token: str | None
    expires: int | None  # X-Amz-Expires of a presigned URL
    query: str  # the query string without X-Amz-Signature


def read(headers: dict[str, str], query: str) -> Signed:
    """The signature parts of a request; MissingAuthenticationToken if it has none."""
    authorization = headers.get("authorization")
    if authorization is None and "X-Amz-Signature=" in query:
        return _read_query(headers, query)
    if authorization is None:
        raise errors.MissingAuthenticationToken("Missing Authentication Token")
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise errors.IncompleteSignature(
            f"Authorization header requires '{ALGORITHM}' signing; got '{algorithm[:40]}'."
        )
    fields = {}
    for part in rest.split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if not fields.get(n)]
    if missing:
        raise errors.IncompleteSignature(
            f"Authorization header requires '{missing[0]}' parameter. Authorization header "
            f"requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    return _signed(
        fields["Credential"],
        fields["SignedHeaders"],
        fields["Signature"],
        _timestamp(headers.get("x-amz-date"), headers.get("date")),
        headers.get("x-amz-security-token"),
        None,
        query,
    )


def _read_query(headers: dict[str, str], query: str) -> Signed:
    params = dict(parse_qsl(query, keep_blank_values=True))
    missing = [
        n
        for n in (
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
        )
        if not params.get(n)
    ]
    if missing or params["X-Amz-Algorithm"] != ALGORITHM:
        raise errors.IncompleteSignature(
            f"AWS query-string parameters must include {', '.join(missing) or 'a valid '}"
            f"{'' if missing else 'X-Amz-Algorithm'}. Re-examine the query-string "
            f"parameters."
        )
    try:
        expires = int(params.get("X-Amz-Expires") or MAX_PRESIGN_S)
    except ValueError:
        expires = -1
    if not 0 < expires <= MAX_PRESIGN_S:
        raise errors.IncompleteSignature(
            f"X-Amz-Expires must be between 1 and {MAX_PRESIGN_S} seconds."
        )
    kept = "&".join(pair for pair in query.split("&") if not pair.startswith("X-Amz-Signature="))
    return _signed(
        params["X-Amz-Credential"],
        params["X-Amz-SignedHeaders"],
        params["X-Amz-Signature"],
        _timestamp(params["X-Amz-Date"], None),
        params.get("X-Amz-Security-Token"),
        expires,
        kept,
    )


def _signed(
    credential: str,
    signed_headers: str,
    signature: str,
    timestamp: str,
    token: str | None,
    expires: int | None,
    query: str,
) -> Signed:
    scope = credential.split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not scope[0]:
        raise errors.IncompleteSignature(
            f"Credential should be scoped to a valid region, a service and 'aws4_request'; "
            f"got '{credential[:120]}'."
        )
    if scope[1] != timestamp[:8]:
        raise errors.InvalidSignature(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{scope[1]}' != '{timestamp[:8]}', from '{timestamp}'."
        )
    return Signed(
        scope[0],
        scope[1],
        scope[2],
        scope[3],
        [h.strip().lower() for h in signed_headers.split(";") if h.strip()],
        signature.strip(),
        timestamp,
        token,
        expires,
        query,
    )


def _timestamp(amz_date: str | None, date: str | None) -> str:
    try:
        if amz_date:
            _epoch(amz_date)
            return amz_date
        if date:
            return parsedate_to_datetime(date).astimezone(UTC).strftime(_STAMP)
    except (ValueError, TypeError):
        pass
    raise errors.IncompleteSignature(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    )


def check_time(signed: Signed, now: float) -> None:
    """Signature expired / not yet current, as AWS words them (5 minutes either way; a
    presigned URL lasts X-Amz-Expires from its X-Amz-Date)."""
    at = _epoch(signed.timestamp)
    stamp = _stamp(now)
    if signed.expires is not None and now > at + signed.expires:
        raise errors.InvalidSignature(
            f"Signature expired: {stamp} is now later than "
            f"{_stamp(at + signed.expires)} ({signed.timestamp} + {signed.expires} sec.)"
        )
    if signed.expires is None and at < now - MAX_SKEW_S:
        raise errors.InvalidSignature(
            f"Signature expired: {signed.timestamp} is now earlier than "
            f"{_stamp(now - MAX_SKEW_S)} ({stamp} - 5 min.)"
        )
    if at > now + MAX_SKEW_S:  # both forms
        raise errors.InvalidSignature(
            f"Signature not yet current: {signed.timestamp} is still later than "
            f"{_stamp(now + MAX_SKEW_S)} ({stamp} + 5 min.)"
        )


class _Signer(SigV4Auth):  # type: ignore[misc]  # botocore is untyped here
    """botocore's SigV4 signer, told exactly which headers the client signed (botocore would
    choose its own set, leaving out e.g. user-agent that another SDK may have signed)."""

    def __init__(
        self, credentials: Credentials, service: str, region: str, signed_headers: list[str]
    ) -> None:
        super().__init__(credentials, service, region)
        self._names = signed_headers

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name in self._names:
            chosen[name] = request.headers.get(name, "")
        return chosen


def _signer(
    signed: Signed,
    secret_key: str,
    method: str,
    raw_path: str,
    headers: dict[str, str],
    body: bytes,
) -> tuple[_Signer, AWSRequest]:
    """botocore's signer set as the client's, and the request rebuilt as it signed it."""
    sent = {name: headers.get(name, "") for name in signed.signed_headers}
    content_hash = headers.get("x-amz-content-sha256")
    if content_hash is not None:
        sent["X-Amz-Content-SHA256"] = content_hash
    host = headers.get("host", "localhost")
    url = f"http://{host}{raw_path or '/'}" + (f"?{signed.query}" if signed.query else "")
    request = AWSRequest(method=method, url=url, headers=sent, data=body)
    request.context["timestamp"] = signed.timestamp
    signer = _Signer(
        Credentials(signed.access_key, secret_key),
        signed.service,
        signed.region,
        signed.signed_headers,
    )
    return signer, request


def verify_body(
    keyring: Keyring,
    method: str,
    raw_path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    services: tuple[str, ...],
    now: float | None = None,
    region: str | None = None,
) -> tuple[Caller, bytes]:
    """The verified caller of a request signed for one of `services` (and for `region`, the
    engine's, where given), or the AWS error; and the body the request carries: an
    aws-chunked body decoded, each of its chunk signatures checked in the chain from the
    request's own signature."""
    now = time.time() if now is None else now
    signed = read(headers, query)
    if region is not None and signed.region != region:
        raise errors.InvalidSignature(
            f"Credential should be scoped to a valid region, not '{signed.region[:64]}'. "
        )
    if signed.service not in services:
        raise errors.InvalidSignature(
            f"Credential should be scoped to correct service: '{services[0]}'. "
        )
    if signed.expires is None and "host" not in signed.signed_headers:
        raise errors.InvalidSignature("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    secret, caller = keyring.resolve(signed.access_key, signed.token, now)
    check_time(signed, now)
    content_hash = headers.get("x-amz-content-sha256")
    if (
        content_hash is not None
        and not content_hash.startswith(_UNHASHED)
        and not hmac.compare_digest(content_hash, hashlib.sha256(body).hexdigest())
    ):
        raise errors.InvalidSignature(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )
    signer, request = _signer(signed, secret, method, raw_path, headers, body)
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    if not hmac.compare_digest(expected, signed.signature):
        raise errors.InvalidSignature(_MISMATCH)
    if aws_chunked.wanted(headers):
        body = aws_chunked.decode(
            body,
            headers,
            signed.signature,
            f"{signed.date}/{signed.region}/{signed.service}/aws4_request",
            signed.timestamp,
            lambda string_to_sign: str(signer.signature(string_to_sign, request)),
        )
    return caller, body


def _expiry(now: float | None, lifetime: float) -> int:
    return int((time.time() if now is None else now) + lifetime)


def _epoch(stamp: str) -> float:
    """YYYYMMDDTHHMMSSZ → seconds (strptime costs ten times more: it is on every request)."""
    if (
        len(stamp) != 16
        or stamp[8] != "T"
        or stamp[15] != "Z"
        or not (stamp[:8] + stamp[9:15]).isdigit()
    ):
        raise ValueError(stamp)
    return float(
        calendar.timegm(
            (
                int(stamp[:4]),
                int(stamp[4:6]),
                int(stamp[6:8]),
                int(stamp[9:11]),
                int(stamp[11:13]),
                int(stamp[13:15]),
            )
        )
    )


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(_STAMP)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
