"""A stack operation the engine died in is finished from the journal in the store: a create
or update is rolled back, a delete goes on (memory store, a recording Lambda API)."""

from __future__ import annotations

import asyncio
import json

from lamina.domain.stacks import Stack, StackResource
from lamina.service.stacks import StackService
from lamina.storage.memory import MemoryStore


class RecordingApi:
    """The engine's Lambda API as the providers see it: answers every call, records it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []

    async def __call__(
        self, method: str, path: str, query: str, headers: dict, body: bytes, caller: object = None
    ) -> tuple[int, list, bytes]:
        self.calls.append((method, path, json.loads(body) if body else {}))
        return 200, [], b"{}"


def _service(store: MemoryStore) -> tuple[StackService, RecordingApi]:
    service = StackService(
        store,
        functions=None,
        aws=None,
        region="us-east-1",
        account="123456789012",
        iam_endpoint=False,
    )
    api = RecordingApi()
    service.lambda_api.dispatch = api
    return service, api


def _function(name: str, timeout: int, status: str) -> StackResource:
    return StackResource(
        "Fn",
        "AWS::Lambda::Function",
        name,
        {
            "FunctionName": name,
            "Runtime": "python3.12",
            "Handler": "i.h",
            "Role": "arn:aws:iam::123456789012:role/r",
            "Timeout": timeout,
            "Code": {"ZipFile": "x = 1"},
        },
        {"Arn": "arn"},
        status,
    )


def test_a_create_the_engine_died_in_is_rolled_back():
    async def main() -> None:
        store = MemoryStore()
        created = _function("app-Fn-1", 3, "CREATE_COMPLETE")
        stack = Stack(
            "app",
            "arn:stack/app/1",
            "CREATE_IN_PROGRESS",
            {},
            resources={"Fn": created},
            journal=[
                {"action": "create", "logical_id": "Fn", "new": created.to_dict(), "old": None}
            ],
        )
        await store.put_stack(stack)
        service, api = _service(store)
        await service.recover()
        await service.wait("app")
        (found,) = await store.list_stacks()
        assert found.status == "ROLLBACK_COMPLETE" and found.resources == {}
        assert found.journal == []
        assert ("DELETE", "/2015-03-31/functions/app-Fn-1", {}) in api.calls
        statuses = [e.status for e in await store.list_stack_events(stack.stack_id, 0)]
        assert statuses == [
            "ROLLBACK_IN_PROGRESS",
            "DELETE_IN_PROGRESS",
            "DELETE_COMPLETE",
            "ROLLBACK_COMPLETE",
        ]

    asyncio.run(main())


def test_an_update_the_engine_died_in_gets_the_old_configuration_back():
    async def main() -> None:
        store = MemoryStore()
        old, new = (
            _function("app-Fn-1", 3, "CREATE_COMPLETE"),
            _function("app-Fn-1", 30, "UPDATE_COMPLETE"),
        )
        stack = Stack(
            "app",
            "arn:stack/app/1",
            "UPDATE_IN_PROGRESS",
            {"new": True},
            resources={"Fn": new},
            outputs=[{"OutputKey": "K", "OutputValue": "new"}],
            previous={
                "template": {"old": True},
                "parameters": {},
                "outputs": [{"OutputKey": "K", "OutputValue": "old"}],
            },
            journal=[
                {"action": "update", "logical_id": "Fn", "old": old.to_dict(), "new": new.to_dict()}
            ],
        )
        await store.put_stack(stack)
        service, api = _service(store)
        await service.recover()
        await service.wait("app")
        (found,) = await store.list_stacks()
        assert found.status == "UPDATE_ROLLBACK_COMPLETE"
        assert found.resources["Fn"].properties["Timeout"] == 3
        assert found.template == {"old": True} and found.outputs[0]["OutputValue"] == "old"
        (change,) = [c for c in api.calls if c[1].endswith("/configuration")]
        assert change[0] == "PUT" and change[2]["Timeout"] == 3

    asyncio.run(main())


def test_a_delete_the_engine_died_in_goes_on():
    async def main() -> None:
        store = MemoryStore()
        stack = Stack(
            "app",
            "arn:stack/app/1",
            "DELETE_IN_PROGRESS",
            {},
            resources={"Fn": _function("app-Fn-1", 3, "CREATE_COMPLETE")},
        )
        await store.put_stack(stack)
        service, api = _service(store)
        await service.recover()
        await service.wait("app")
        found = await store.list_stacks()
        assert found[0].status == "DELETE_COMPLETE" and found[0].resources == {}
        assert await service.list() == []
        assert api.calls == [("DELETE", "/2015-03-31/functions/app-Fn-1", {})]

    asyncio.run(main())
