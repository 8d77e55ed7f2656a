"""Accounts: each caller's account owns its functions; another account reaches them only by
ARN and only where the function's resource policy allows it (docs/SECURITY.md, Accounts).

A real engine runs in-process and requests go through its Lambda API handler with a verified
caller set on them, as `--auth sigv4` sets it (tests/acceptance/test_accounts.py drives the
same rules over signed HTTP once that mode exists)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lamina.api.stacks import _InProcess
from lamina.app import Engine
from lamina.config import Config
from lamina.domain.arns import FunctionRef
from lamina.domain.identity import Caller
from lamina.http.server import Request
from tests.conftest import PY_RUNTIME, make_zip

OWN = "123456789012"  # the engine's --account
OTHER = "111122223333"
HANDLER = "def handler(event, context):\n    return {'arn': context.invoked_function_arn}\n"


class Client:
    """Lambda API calls as one account's principal."""

    def __init__(self, engine: Engine, account: str | None) -> None:
        self.engine = engine
        self.caller = (
            None
            if account is None
            else Caller(account, "AKIA" + account, f"arn:aws:iam::{account}:user/tester")
        )

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: str = "",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = b"" if body is None else json.dumps(body).encode()
        request = Request(
            method,
            path,
            query,
            {"content-type": "application/json", **(headers or {})},
            data,
            _InProcess(),
        )
        request.caller = self.caller
        response = await self.engine.api(request)
        raw = response.body or b""
        return response.status, json.loads(raw) if raw else None

    async def create(
        self, name: str, layers: tuple[str, ...] = (), expect: int = 201
    ) -> dict[str, Any]:
        zipped = base64.b64encode(make_zip({"app.py": HANDLER})).decode()
        status, body = await self.call(
            "POST",
            "/2015-03-31/functions",
            {
                "FunctionName": name,
                "Runtime": PY_RUNTIME,
                "Handler": "app.handler",
                "Role": f"arn:aws:iam::{OWN}:role/r",
                "Code": {"ZipFile": zipped},
                "Layers": list(layers),
            },
        )
        assert status == expect, body
        if status != 201:
            return dict(body)
        for _ in range(100):  # Pending → Active
            _, config = await self.call("GET", f"/2015-03-31/functions/{name}/configuration")
            if config["State"] == "Active":
                break
            await asyncio.sleep(0.05)
        return dict(body)

    async def invoke(self, name: str, kind: str = "RequestResponse") -> tuple[int, Any]:
        return await self.call(
            "POST",
            f"/2015-03-31/functions/{quote(name, safe='')}/invocations",
            {},
            headers={"x-amz-invocation-type": kind},
        )


@asynccontextmanager
async def engine(tmp: Path) -> AsyncIterator[Engine]:
    running = Engine(Config(port=0, data_dir=tmp, pollers=False, account=OWN))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def arn(account: str, name: str) -> str:
    return f"arn:aws:lambda:us-east-1:{account}:function:{name}"


def test_accounts_are_separated_and_policies_let_another_account_in(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with engine(tmp_path) as running:
            own, other = Client(running, None), Client(running, OTHER)
            created = await other.create("theirs")
            assert created["FunctionArn"] == arn(OTHER, "theirs")
            await own.create("mine")
            # each account lists only its own functions
            _, listed = await other.call("GET", "/2015-03-31/functions")
            assert [f["FunctionArn"] for f in listed["Functions"]] == [arn(OTHER, "theirs")]
            _, listed = await own.call("GET", "/2015-03-31/functions")
            assert [f["FunctionName"] for f in listed["Functions"]] == ["mine"]
            # a plain name of another account's function is not found, in the caller's account
            status, body = await own.call("GET", "/2015-03-31/functions/theirs")
            assert status == 404, body
            assert body["Message"] == f"Function not found: {arn(OWN, 'theirs')}"
            status, body = await own.invoke("theirs")
            assert (status, body["Type"]) == (404, "User"), body
            # its ARN is refused with AWS's words until the policy allows the caller
            status, body = await own.invoke(arn(OTHER, "theirs"))
            assert status == 403, body
            assert body["Message"] == (
                f"User: arn:aws:iam::{OWN}:root is not authorized to perform: "
                f"lambda:InvokeFunction on resource: {arn(OTHER, 'theirs')} because no "
                "resource-based policy allows the lambda:InvokeFunction action"
            )
            # a destination in another account needs its policy too (the engine acts as the
            # calling function's account)
            theirs = FunctionRef("theirs", None, OTHER)
            assert not running.permissions.may_invoke(theirs, OWN)
            assert running.permissions.may_invoke(theirs, OTHER)
            for kind in ("Event", "DryRun"):
                assert (await own.invoke(arn(OTHER, "theirs"), kind))[0] == 403, kind
            status, _ = await other.call(
                "POST",
                "/2015-03-31/functions/theirs/policy",
                {"StatementId": "own-account", "Action": "lambda:InvokeFunction", "Principal": OWN},
            )
            assert status == 201
            status, body = await own.invoke(arn(OTHER, "theirs"))
            assert (status, body) == (200, {"arn": arn(OTHER, "theirs")})
            assert running.permissions.may_invoke(theirs, OWN)
            assert (await own.invoke(arn(OTHER, "theirs"), "Event"))[0] == 202
            assert (await own.invoke(arn(OTHER, "theirs"), "DryRun"))[0] == 204
            # the grant is for Invoke only: reading the function is still refused
            status, body = await own.call(
                "GET", f"/2015-03-31/functions/{quote(arn(OTHER, 'theirs'), safe='')}"
            )
            assert (status, body["Message"]) == (403, None), body  # AWS's words: none
            # a function calling the engine with its own credentials acts as its account
            function = Client(running, OTHER)
            function.caller = Caller(OTHER, "ASIAFUNCTION", function_arn=arn(OTHER, "theirs"))
            _, listed = await function.call("GET", "/2015-03-31/functions")
            assert [f["FunctionName"] for f in listed["Functions"]] == ["theirs"]
            assert (await function.invoke("mine"))[0] == 404
            # the owner calls its own function by name and by ARN
            assert (await other.invoke("theirs"))[0] == 200
            assert (await other.invoke(arn(OTHER, "theirs")))[0] == 200
            status, body = await other.invoke(arn(OWN, "mine"))
            assert status == 403, body

    asyncio.run(scenario())


def test_mappings_belong_to_their_functions_account(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with engine(tmp_path) as running:
            own, other = Client(running, None), Client(running, OTHER)
            await other.create("theirs")
            queue = f"arn:aws:sqs:us-east-1:{OTHER}:q"
            status, mapping = await other.call(
                "POST",
                "/2015-03-31/event-source-mappings",
                {"FunctionName": "theirs", "EventSourceArn": queue, "Enabled": False},
            )
            assert status == 202, mapping
            assert mapping["EventSourceMappingArn"].split(":")[4] == OTHER
            assert mapping["FunctionArn"] == arn(OTHER, "theirs")
            path = f"/2015-03-31/event-source-mappings/{mapping['UUID']}"
            assert (await own.call("GET", path))[0] == 404
            assert (await own.call("DELETE", path))[0] == 404
            _, listed = await own.call("GET", "/2015-03-31/event-source-mappings")
            assert listed["EventSourceMappings"] == []
            _, listed = await other.call("GET", "/2015-03-31/event-source-mappings")
            assert [m["UUID"] for m in listed["EventSourceMappings"]] == [mapping["UUID"]]
            for name in ("theirs", arn(OTHER, "theirs")):  # not a target for another account
                status, body = await own.call(
                    "POST",
                    "/2015-03-31/event-source-mappings",
                    {"FunctionName": name, "EventSourceArn": queue, "Enabled": False},
                )
                assert (status, body["message"]) == (400, "Function does not exist"), body

    asyncio.run(scenario())


def _stack_template(account: str, code: str) -> dict[str, Any]:
    """A stack of one function, `stacked`, running `code` (a handler in index.py)."""
    return {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "FunctionName": "stacked",
                    "Runtime": PY_RUNTIME,
                    "Handler": "index.handler",
                    "Role": f"arn:aws:iam::{account}:role/r",
                    "Code": {"ZipFile": code},
                },
            }
        }
    }


def test_a_stack_deploys_into_its_account(tmp_path: Path) -> None:
    template = _stack_template(OTHER, HANDLER)

    async def scenario() -> None:
        async with engine(tmp_path) as running:
            own, other = Client(running, None), Client(running, OTHER)
            status, stack = await other.call("PUT", "/_lamina/stacks/app", {"Template": template})
            assert status == 200, stack
            assert stack["StackId"].split(":")[4] == OTHER
            await running.stacks.wait(f"{OTHER}:app")  # its key (domain.arns)
            _, listed = await other.call("GET", "/2015-03-31/functions")
            assert [f["FunctionArn"] for f in listed["Functions"]] == [arn(OTHER, "stacked")]
            _, listed = await own.call("GET", "/2015-03-31/functions")
            assert listed["Functions"] == []
            _, stacks = await own.call("GET", "/_lamina/stacks")
            assert stacks["Stacks"] == []
            status, body = await own.call("GET", "/_lamina/stacks/app")
            assert status == 400 and body["Message"] == "Stack with id app does not exist"
            status, body = await own.call("DELETE", "/_lamina/stacks/app")
            assert status == 400, body
            _, described = await other.call("GET", "/_lamina/stacks/app")
            assert described["StackStatus"] == "CREATE_COMPLETE", described

    asyncio.run(scenario())


def test_layers_of_another_account_need_its_permission(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with engine(tmp_path) as running:
            own, other = Client(running, None), Client(running, OTHER)
            zipped = base64.b64encode(make_zip({"python/lib.py": "X = 1\n"})).decode()
            status, layer = await other.call(
                "POST", "/2018-10-31/layers/their-lib/versions", {"Content": {"ZipFile": zipped}}
            )
            assert status == 201, layer
            version_arn = layer["LayerVersionArn"]
            assert version_arn == f"arn:aws:lambda:us-east-1:{OTHER}:layer:their-lib:1"
            _, listed = await own.call("GET", "/2018-10-31/layers")
            assert listed["Layers"] == []
            _, listed = await other.call("GET", "/2018-10-31/layers")
            assert [item["LayerArn"] for item in listed["Layers"]] == [version_arn[:-2]]
            status, _ = await own.call("GET", "/2018-10-31/layers/their-lib/versions/1")
            assert status == 404
            by_arn = f"/2018-10-31/layers/{quote(version_arn[:-2], safe='')}/versions/1"
            find = "find=LayerVersion&Arn=" + quote(version_arn, safe="")
            status, body = await own.call("GET", by_arn)
            assert status == 403 and "lambda:GetLayerVersion" in body["Message"], body
            assert (await own.call("GET", "/2018-10-31/layers", query=find))[0] == 403
            body = await own.create("uses-their-lib", (version_arn,), expect=403)
            assert "lambda:GetLayerVersion" in body["Message"], body
            status, _ = await other.call(
                "POST",
                "/2018-10-31/layers/their-lib/versions/1/policy",
                {"StatementId": "own", "Action": "lambda:GetLayerVersion", "Principal": OWN},
            )
            assert status == 201
            assert (await own.call("GET", by_arn))[1]["LayerVersionArn"] == version_arn
            assert (await own.call("GET", "/2018-10-31/layers", query=find))[0] == 200
            created = await own.create("uses-their-lib", (version_arn,))
            assert [item["Arn"] for item in created["Layers"]] == [version_arn]
            assert (await own.invoke("uses-their-lib"))[0] == 200
            # the owner alone changes the layer's policy or deletes it
            status, _ = await own.call("DELETE", by_arn)
            assert status == 403

    asyncio.run(scenario())


def test_lamina_views_show_a_signed_caller_its_own_account(tmp_path: Path) -> None:
    """The console's endpoints and /metrics: a verified caller sees its account; the engine's
    own view (no caller: --auth none, the metrics bearer) sees every account."""

    async def scenario() -> None:
        async with engine(tmp_path) as running:
            operator, own, other = (
                Client(running, None),
                Client(running, OWN),
                Client(running, OTHER),
            )
            await own.create("mine")
            await other.create("theirs")
            assert (await own.invoke("mine"))[0] == 200
            assert (await other.invoke("theirs"))[0] == 200

            async def names(client: Client, path: str, key: str) -> set[str]:
                status, body = await client.call("GET", path)
                assert status == 200, body
                return {item["FunctionName"] for item in body[key]}

            assert await names(operator, "/_lamina/overview", "Functions") == {"mine", "theirs"}
            assert await names(own, "/_lamina/overview", "Functions") == {"mine"}
            assert await names(other, "/_lamina/overview", "Functions") == {"theirs"}
            assert await names(other, "/_lamina/invocations", "Invocations") == {"theirs"}
            assert await names(operator, "/_lamina/invocations", "Invocations") == {
                "mine",
                "theirs",
            }
            rules = {"Rules": [{"action": "throttle", "attempts": [1]}]}
            for method, path in (
                ("GET", "/_lamina/functions/mine"),
                ("GET", "/_lamina/logs/mine"),
                ("GET", "/_lamina/faults/mine"),
                ("PUT", "/_lamina/faults/mine"),
                ("GET", "/_lamina/mappings"),
            ):
                status, body = await other.call(
                    method,
                    path,
                    rules if method == "PUT" else None,
                    query="function=mine" if path.endswith("mappings") else "",
                )
                assert status == 404, (path, body)
                assert body["Message"] == f"Function not found: {arn(OTHER, 'mine')}", path
            assert (await own.call("PUT", "/_lamina/faults/mine", rules))[0] == 200

            async def series(client: Client) -> str:
                request = Request("GET", "/metrics", "", {}, b"", _InProcess())
                request.caller = client.caller
                response = await running.api(request)
                assert response.status == 200
                return bytes(response.body or b"").decode()

            text = await series(other)
            assert 'function="theirs"' in text and 'function="mine"' not in text
            assert "# TYPE lamina_invocations_total counter" in text
            text = await series(operator)  # another account's series: labelled with its key
            assert f'function="{OTHER}:theirs"' in text and 'function="mine"' in text

    asyncio.run(scenario())


def test_two_accounts_deploy_stacks_of_the_same_name(tmp_path: Path) -> None:
    """Stack names, and the functions a stack makes, are unique per account."""

    def template(account: str) -> dict[str, Any]:
        code = f"def handler(event, context):\n    return ['{account}', context.function_name]\n"
        return _stack_template(account, code)

    async def scenario() -> None:
        async with engine(tmp_path) as running:
            clients = {OWN: Client(running, None), OTHER: Client(running, OTHER)}
            for account, client in clients.items():
                status, stack = await client.call(
                    "PUT", "/_lamina/stacks/my-stack", {"Template": template(account)}
                )
                assert status == 200, stack
                assert stack["StackName"] == "my-stack"
                assert stack["StackId"].split(":")[4] == account
            await running.stacks.wait("my-stack")
            await running.stacks.wait(f"{OTHER}:my-stack")
            for account, client in clients.items():
                _, described = await client.call("GET", "/_lamina/stacks/my-stack")
                assert described["StackStatus"] == "CREATE_COMPLETE", described
                _, listed = await client.call("GET", "/_lamina/stacks")
                assert [(s["StackName"], s["StackId"].split(":")[4]) for s in listed["Stacks"]] == [
                    ("my-stack", account)
                ]
                assert (await client.invoke("stacked")) == (200, [account, "stacked"])
            # deleting one account's stack leaves the other's and its function
            status, _ = await clients[OWN].call("DELETE", "/_lamina/stacks/my-stack")
            assert status == 200
            await running.stacks.wait("my-stack")
            assert (await clients[OWN].invoke("stacked"))[0] == 404
            assert (await clients[OTHER].invoke("stacked")) == (200, [OTHER, "stacked"])
            _, described = await clients[OTHER].call("GET", "/_lamina/stacks/my-stack")
            assert described["StackStatus"] == "CREATE_COMPLETE", described
            # a name cannot spell another account's key
            own = clients[OWN]
            status, body = await own.call("GET", f"/_lamina/stacks/{OTHER}:my-stack")
            assert status == 400 and "stackName" in body["Message"], body
            for path in (f"/_lamina/logs/{OTHER}:stacked", f"/_lamina/functions/{OTHER}:stacked"):
                assert (await own.call("GET", path))[0] == 404, path
            _, detail = await clients[OTHER].call("GET", "/_lamina/functions/stacked")
            assert (detail["FunctionName"], detail["FunctionArn"]) == (
                "stacked",
                arn(OTHER, "stacked"),
            )

    asyncio.run(scenario())


def test_same_names_in_two_accounts_survive_a_restart(tmp_path: Path) -> None:
    """The engine's own account keeps its functions under their plain names (so a database
    of a single-account engine reads as it did); another account's come back as its own."""

    async def scenario() -> None:
        async with engine(tmp_path) as running:
            for account in (None, OTHER):
                await Client(running, account).create("my-fn")
            assert (await Client(running, OTHER).invoke("my-fn"))[1] == {"arn": arn(OTHER, "my-fn")}
        stored = _stored_names(tmp_path)
        assert stored == ["111122223333:my-fn", "my-fn"]
        async with engine(tmp_path) as running:
            for account in (OWN, OTHER):
                client = Client(running, None if account == OWN else account)
                assert (await client.invoke("my-fn")) == (200, {"arn": arn(account, "my-fn")})
                _, listed = await client.call("GET", "/2015-03-31/functions")
                assert [(f["FunctionName"], f["FunctionArn"]) for f in listed["Functions"]] == [
                    ("my-fn", arn(account, "my-fn"))
                ]

    asyncio.run(scenario())


def _stored_names(data_dir: Path) -> list[str]:
    """The function names the store holds (the keys: the engine's own account's are plain)."""
    with contextlib.closing(sqlite3.connect(data_dir / "lamina.db")) as db:
        return sorted(row[0] for row in db.execute("SELECT name FROM functions"))
