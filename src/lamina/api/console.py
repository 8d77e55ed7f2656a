"""The web console: `GET /_lamina/` and its static files under `/_lamina/static/`.

Plain HTML, CSS and JavaScript shipped inside the package (`lamina/console/`): no build step,
nothing fetched from the network. The page reads the JSON endpoints of `admin` and
`overview` and polls them for live updates.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from lamina.api.context import ApiContext
from lamina.domain import errors
from lamina.http.server import Request, Response

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
_HEADERS = [("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-cache")]


@lru_cache(maxsize=32)
def _asset(name: str) -> tuple[str, bytes] | None:
    suffix = name[name.rfind(".") :] if "." in name else ""
    if suffix not in _TYPES or "/" in name or name.startswith("."):
        return None
    entry = resources.files("lamina").joinpath("console", name)
    if not entry.is_file():
        return None
    return _TYPES[suffix], entry.read_bytes()


def _serve(name: str, request_id: str) -> Response:
    found = _asset(name)
    if found is None:
        raise errors.ResourceNotFound(f"Console file not found: {name}")
    content_type, data = found
    return Response(
        200, [("Content-Type", content_type), ("x-amzn-RequestId", request_id), *_HEADERS], data
    )


async def index(ctx: ApiContext, request: Request, request_id: str) -> Response:
    return _serve("index.html", request_id)


async def static(ctx: ApiContext, request: Request, request_id: str, asset: str) -> Response:
    return _serve(asset, request_id)
