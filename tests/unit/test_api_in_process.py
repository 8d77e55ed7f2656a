"""The Lambda API in process: an engine built by app.py in this test's event loop, requests
handed straight to its Lambda API handler (no socket, no `lamina serve` process), functions
run by the real Python runtime. Each operation's answer is checked as boto3 reads it."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lamina.api.stacks import _InProcess
from lamina.app import Engine
from lamina.config import Config
from lamina.http.server import Request
from tests.integration.test_accounts import Client
from tests.unit.test_pool import connections_closed

ARN = "arn:aws:lambda:us-east-1:123456789012:function:"


async def raw(engine: Engine, method: str, path: str, body: bytes, **headers: str) -> Any:
    """The response itself (status, headers, body) of one request."""
    request = Request(method, path, "", headers, body, _InProcess())
    return await engine.api(request)


async def settled(client: Client, name: str) -> None:
    """Until the last update has settled (LastUpdateStatus Successful), as AWS's waiter."""
    for _ in range(200):
        _, config = await client.call("GET", f"/2015-03-31/functions/{name}/configuration")
        if config.get("LastUpdateStatus", "Successful") == "Successful":
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name} did not settle: {config}")


def run(tmp_path: Path, body: Callable[[Engine, Client], Awaitable[None]]) -> None:
    async def main() -> None:
        engine = Engine(Config(port=0, data_dir=tmp_path, pollers=False, sandbox="none"))
        await engine.start()
        try:
            await body(engine, Client(engine, None))
        finally:
            await engine.stop()
            await connections_closed()

    asyncio.run(main())


def test_the_control_plane_round_trip(tmp_path):
    async def body(engine: Engine, client: Client) -> None:
        fn = "/2015-03-31/functions/f"
        await client.create("f")
        status, config = await client.call("PUT", fn + "/configuration", {"Timeout": 9})
        assert status == 200 and config["Timeout"] == 9
        await settled(client, "f")
        status, version = await client.call("POST", fn + "/versions", {})
        assert (status, version.get("Version")) == (201, "1"), version
        status, alias = await client.call(
            "POST", fn + "/aliases", {"Name": "live", "FunctionVersion": "1"}
        )
        assert (status, alias["AliasArn"]) == (201, ARN + "f:live")
        _, versions = await client.call("GET", fn + "/versions")
        assert [v["Version"] for v in versions["Versions"]] == ["$LATEST", "1"]
        status, _ = await client.call(
            "PUT", "/2017-10-31/functions/f/concurrency", {"ReservedConcurrentExecutions": 5}
        )
        assert status == 200
        _, concurrency = await client.call("GET", "/2019-09-30/functions/f/concurrency")
        assert concurrency == {"ReservedConcurrentExecutions": 5}
        status, configured = await client.call(
            "PUT", "/2019-09-25/functions/f/event-invoke-config", {"MaximumRetryAttempts": 1}
        )
        assert status == 200 and configured["MaximumRetryAttempts"] == 1
        statement = {
            "StatementId": "sns",
            "Action": "lambda:InvokeFunction",
            "Principal": "sns.amazonaws.com",
        }
        status, added = await client.call("POST", fn + "/policy", statement)
        assert status == 201 and json.loads(added["Statement"])["Sid"] == "sns"
        _, policy = await client.call("GET", fn + "/policy")
        assert [s["Sid"] for s in json.loads(policy["Policy"])["Statement"]] == ["sns"]
        tags = "/2017-03-31/tags/" + quote(ARN + "f", safe="")
        assert (await client.call("POST", tags, {"Tags": {"team": "a"}}))[0] == 204
        assert (await client.call("GET", tags))[1] == {"Tags": {"team": "a"}}
        status, url = await client.call("POST", "/2021-10-31/functions/f/url", {"AuthType": "NONE"})
        assert status == 201 and url["FunctionUrl"].startswith("http")
        _, listed = await client.call("GET", "/2015-03-31/functions")
        assert [f["FunctionName"] for f in listed["Functions"]] == ["f"]
        assert (await client.call("DELETE", fn))[0] == 204
        status, missing = await client.call("GET", fn)
        assert status == 404 and missing["Message"] == f"Function not found: {ARN}f"

    run(tmp_path, body)


def test_invoke_answers_as_lambda_does(tmp_path):
    async def body(engine: Engine, client: Client) -> None:
        await client.create("f")
        path = "/2015-03-31/functions/f/invocations"
        answer = await raw(engine, "POST", path, b"{}", **{"x-amz-log-type": "Tail"})
        headers = {k.lower(): v for k, v in answer.headers}
        assert answer.status == 200 and json.loads(answer.body) == {"arn": ARN + "f"}
        assert headers["x-amz-executed-version"] == "$LATEST"
        assert b"REPORT RequestId:" in base64.b64decode(headers["x-amz-log-result"])
        queued = await raw(engine, "POST", path, b"{}", **{"x-amz-invocation-type": "Event"})
        assert queued.status == 202 and not queued.body
        dry = await raw(engine, "POST", path, b"{}", **{"x-amz-invocation-type": "DryRun"})
        assert dry.status == 204
        bad = await raw(engine, "POST", path, b"{}", **{"x-amz-invocation-type": "Sometimes"})
        assert bad.status == 400

    run(tmp_path, body)


def test_bad_requests_get_aws_shaped_errors(tmp_path):
    async def body(engine: Engine, client: Client) -> None:
        status, error = await client.call("POST", "/2015-03-31/functions/nope/invocations", {})
        assert status == 404 and error["Type"] == "User"
        assert error["Message"].startswith("Function not found: ")
        answer = await raw(engine, "POST", "/2015-03-31/functions", b"{not json")
        assert answer.status == 400
        assert (
            dict(answer.headers)
            .get("x-amzn-ErrorType", "")
            .startswith("InvalidRequestContentException")
            or b"Could not parse request body into json" in answer.body
        )
        status, error = await client.call("GET", "/2015-03-31/nothing")
        assert status == 404 and error["Message"] == "Unknown operation: GET /2015-03-31/nothing"
        await client.create("f")
        status, error = await client.call(
            "PUT", "/2015-03-31/functions/f/configuration", {"Timeout": 0}
        )
        assert status == 400 and "Member must have value greater than or equal to 1" in str(error)

    run(tmp_path, body)
