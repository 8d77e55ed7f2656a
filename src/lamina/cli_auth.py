"""SigV4 for the `lamina` client commands, so they work against an engine run with `--auth
sigv4` (harmless against one without).

Credentials come from botocore's own resolution: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and
AWS_SESSION_TOKEN), else the profile AWS_PROFILE names (or `default`) in the shared
credentials file, which is LAMINA_CREDENTIALS when set (the engine's own file), else
AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials. The instance-metadata and container
providers are left out: a CLI on a laptop must not wait for them. No credentials: unsigned.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError
from botocore.session import Session


@functools.lru_cache(maxsize=1)
def _resolved() -> tuple[Any, str]:
    """(frozen credentials or None, region)."""
    session = Session()
    if os.environ.get("LAMINA_CREDENTIALS") and not os.environ.get("AWS_SHARED_CREDENTIALS_FILE"):
        session.set_config_variable("credentials_file", os.environ["LAMINA_CREDENTIALS"])
    try:
        resolver = session.get_component("credential_provider")
        for name in ("container-role", "iam-role"):
            resolver.remove(name)
        credentials = session.get_credentials()
        region = (  # the engine's (LAMINA_REGION) first: it refuses another region's scope
            os.environ.get("LAMINA_REGION")
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or session.get_config_variable("region")
            or "us-east-1"
        )
    except BotoCoreError:  # e.g. AWS_PROFILE names no profile: go unsigned, the engine says why
        return None, "us-east-1"
    return (credentials.get_frozen_credentials() if credentials else None), region


def headers(
    method: str, url: str, data: bytes | None, given: dict[str, str] | None = None
) -> dict[str, str]:
    """`given` plus the SigV4 headers (service `lambda`) of a request, when there are
    credentials to sign with."""
    out = dict(given or {})
    credentials, region = _resolved()
    if credentials is None:
        return out
    request = AWSRequest(method=method, url=url, data=data or b"", headers=out)
    SigV4Auth(credentials, "lambda", region).add_auth(request)
    return dict(request.headers.items())


def presign(url: str, expires: int = 300) -> str:
    """A presigned GET of `url` (lamina console-url), or `url` itself without credentials."""
    credentials, region = _resolved()
    if credentials is None:
        raise SystemExit(
            "lamina: no AWS credentials found to sign the console URL with (set "
            "LAMINA_CREDENTIALS and AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY)"
        )
    request = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(credentials, "lambda", region, expires=expires).add_auth(request)
    return str(request.url)
