"""A minimal Lambda API client (unsigned, keep-alive http.client) and the cold-start probe.

The no-op functions every engine runs are defined here (`NOOP`): Python `return event` and
Node `async (event) => event`, the same handlers serverless-offline gets in peer_sls.py.

`cold_start()` is the cold-start figure: CreateFunction, then Invoke until the first
successful response (a 409 "not Active yet" is retried at once), all on one connection, timed
by the client. It reports create_ms (the CreateFunction round trip), first_invoke_ms and
total_ms (CreateFunction sent → first successful response).
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import socket
import time
import urllib.parse
import zipfile

ROLE = "arn:aws:iam::123456789012:role/x"

NOOP = {
    "python": {
        "runtime": "python3.11",
        "handler": "lambda_function.handler",
        "files": {"lambda_function.py": "def handler(event, context):\n    return event\n"},
    },
    "node": {
        "runtime": "nodejs20.x",
        "handler": "index.handler",
        "files": {"index.js": "exports.handler = async (event) => event;\n"},
    },
}


def zip_bytes(files: dict[str, str]) -> bytes:
    """A zip archive holding `files` (name → text)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, text)
    return buffer.getvalue()


class LambdaApi:
    """One keep-alive connection to a Lambda API endpoint."""

    def __init__(self, endpoint: str, timeout: float = 60.0) -> None:
        parts = urllib.parse.urlsplit(endpoint)
        self.host, self.port = parts.hostname, parts.port or 80
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.conn.connect()
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.conn

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request; reconnects once if the server closed the idle connection."""
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers or {})
                response = conn.getresponse()
                data = response.read()
                result = response.status, {k.lower(): v for k, v in response.getheaders()}, data
                if response.will_close:
                    self.close()
                return result
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def create_function(self, name: str, spec: dict) -> tuple[int, bytes]:
        document = {
            "FunctionName": name,
            "Runtime": spec["runtime"],
            "Role": ROLE,
            "Handler": spec["handler"],
            "Timeout": 30,
            "MemorySize": 512,
            "Code": {"ZipFile": base64.b64encode(zip_bytes(spec["files"])).decode()},
        }
        status, _, body = self.request(
            "POST",
            "/2015-03-31/functions",
            json.dumps(document).encode(),
            {"Content-Type": "application/json"},
        )
        return status, body

    def delete_function(self, name: str) -> int:
        status, _, _ = self.request(
            "DELETE", f"/2015-03-31/functions/{urllib.parse.quote(name, safe='')}"
        )
        return status

    def invoke(self, name: str, payload: bytes) -> tuple[int, str | None, bytes]:
        status, headers, body = self.request(
            "POST",
            f"/2015-03-31/functions/{urllib.parse.quote(name, safe='')}/invocations",
            payload,
            {"Content-Type": "application/json", "X-Amz-Invocation-Type": "RequestResponse"},
        )
        return status, headers.get("x-amz-function-error"), body


def cold_start(
    api: LambdaApi, name: str, spec: dict, payload: bytes, max_wait_s: float = 30.0
) -> dict:
    """CreateFunction → first successful Invoke, timed by the client (see module docstring)."""
    t0 = time.perf_counter()
    status, body = api.create_function(name, spec)
    t1 = time.perf_counter()
    if status not in (200, 201):
        return {"function": name, "error": f"create {status}: {body[:200]!r}"}
    retries = 0
    while True:
        t2 = time.perf_counter()
        status, function_error, body = api.invoke(name, payload)
        t3 = time.perf_counter()
        if status == 200 and not function_error:
            break
        if status != 409 or t3 - t0 > max_wait_s:
            return {"function": name, "error": f"invoke {status} {function_error}: {body[:200]!r}"}
        retries += 1
    return {
        "function": name,
        "create_ms": round((t1 - t0) * 1e3, 2),
        "first_invoke_ms": round((t3 - t2) * 1e3, 2),
        "total_ms": round((t3 - t0) * 1e3, 2),
        "retries_409": retries,
    }
