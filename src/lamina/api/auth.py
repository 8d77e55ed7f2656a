"""`--auth sigv4`: the one check every request of the Lambda API port passes before dispatch.

What is open and what needs what (docs/SECURITY.md has the why):

* `/_lamina/health`: open (load balancers probe it; it tells only "ok" or "draining").
* Function URLs and HTTP APIs: open here; an `AWS_IAM` function URL verifies its signature
  itself (`Gate.verify`, service `lambda`), as AWS does.
* `/metrics`: `Authorization: Bearer <--metrics-token>`, or a SigV4 signature.
* The console and the rest of `/_lamina/*`: a SigV4 signature, or the console's session
  cookie, which a presigned `GET /_lamina/` (`lamina console-url`) sets.
* Everything else (the Lambda API; CloudWatch Logs on the same port, service `logs`): SigV4.

A request whose `x-amz-content-sha256` or `Content-Encoding` says aws-chunked has its body
decoded here (domain/aws_chunked.py), each chunk signature verified, before any handler
reads it; other requests pay one header test.

A verified request carries its `Caller` (`request.caller`); with `--auth none` nothing is
checked and `request.caller` stays None (the engine's own account acts).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

from lamina.api.context import ApiContext
from lamina.domain import arns, aws_chunked, sigv4
from lamina.domain.identity import Caller
from lamina.http.server import Request, Response

COOKIE = "lamina_console"
CONSOLE_SESSION_S = 12 * 3600
_OPEN = ("/_lamina/health",)


def viewer(request: Request) -> str | None:
    """The account Lamina's own views (the console, `/_lamina/*`, `/metrics`) are limited to:
    the verified caller's (its key's, or its console session's); None, the whole engine, with
    `--auth none`, for the `--metrics-token` bearer (the operator) and in process."""
    caller = request.caller
    return None if caller is None else str(caller.account)


def sees(owner_of: Callable[[str], str | None], request: Request, function: str) -> bool:
    """Whether a request's viewer may see `function` (`owner_of`: the catalog's `owner`)."""
    account = viewer(request)
    return account is None or owner_of(function) == account


def function_name(ctx: ApiContext, request: Request, name: str) -> str:
    """A function a view names: for a limited viewer, its own (another account's is not
    found, as in the Lambda API); for the whole-engine viewer, any."""
    if viewer(request) is None:
        if name.startswith("arn:"):  # the operator may name another account's function
            ref = arns.parse_function_name(name, ctx.region, None)
            return ctx.key(ref.account or ctx.account, ref.name)
        return ctx.own_key(request, name)
    key = ctx.own_key(request, name)
    ctx.functions.entry(key)  # the caller has none of that name: not found, as in the Lambda API
    return key


def chunked(request: Request) -> bool:
    return aws_chunked.wanted(request.headers)


def decode_chunked(request: Request) -> None:
    """With `--auth none`: an aws-chunked body decoded (its trailing checksum checked; chunk
    signatures are not, as no signature is). Called only when `aws_chunked.wanted`."""
    request.body = aws_chunked.decode(request.body, request.headers)


class Gate:
    """Verifies each request against the engine's keys (None: auth is off)."""

    def __init__(
        self, keyring: sigv4.Keyring, metrics_token: str = "", region: str | None = None
    ) -> None:
        self.keyring = keyring
        self.metrics_token = metrics_token
        self.region = region  # the engine's: a signature scoped to another is refused

    def check(self, request: Request, service: str = "lambda") -> None:
        """Set `request.caller`, or raise the AWS error that refuses it."""
        path = request.path
        if path in _OPEN or getattr(request._protocol, "in_process", False):
            return
        if path == "/metrics" and self._bearer(request):
            return
        if path.startswith("/_lamina"):
            caller = self._console_caller(request)
            if caller is not None:
                request.caller = caller
                return
        request.caller = self.verify(request, service)

    def verify(self, request: Request, service: str = "lambda") -> Caller:
        """The verified caller; an aws-chunked body is decoded in place, each chunk checked."""
        caller, request.body = sigv4.verify_body(
            self.keyring,
            request.method,
            request.raw_path,
            request.query,
            request.headers,
            request.body,
            (service,),
            region=self.region,
        )
        return caller

    def _bearer(self, request: Request) -> bool:
        given = request.headers.get("authorization", "")
        return (
            bool(self.metrics_token)
            and given.startswith("Bearer ")
            and hmac.compare_digest(given[7:].strip().encode(), self.metrics_token.encode())
        )

    def _console_caller(self, request: Request) -> Caller | None:
        for part in request.headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return self.keyring.console_caller(value, time.time())
        return None

    def console_login(self, request: Request) -> Response | None:
        """A presigned `GET /_lamina/` (verified already) becomes a session cookie and a
        redirect to the console's plain address, so the browser's later calls carry it."""
        if (
            request.method != "GET"
            or request.path.rstrip("/") != "/_lamina"
            or "X-Amz-Signature=" not in request.query
            or request.caller is None
        ):
            return None
        session = self.keyring.console_session(request.caller, time.time(), CONSOLE_SESSION_S)
        cookie = (
            f"{COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={CONSOLE_SESSION_S}"
        )
        return Response(
            303, [("Location", "/_lamina/"), ("Cache-Control", "no-store"), ("Set-Cookie", cookie)]
        )
