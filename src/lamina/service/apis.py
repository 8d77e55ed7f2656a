"""HTTP APIs the engine serves (skeleton: the contract's names)."""

from __future__ import annotations

from lamina.domain import apis, errors
from lamina.domain.apis import HttpApi


class ApiService:
    """Create, replace, delete and list HTTP APIs; `url` is the base URL a user calls."""

    def __init__(self, port: int = 9001) -> None:
        self.port = port
        self._apis: dict[str, HttpApi] = {}

    async def put(self, api: HttpApi) -> HttpApi:
        apis.validate(api)
        self._apis[api.api_id] = api
        return api

    async def delete(self, api_id: str) -> None:
        if self._apis.pop(api_id, None) is None:
            raise errors.ResourceNotFound(f"API {api_id} does not exist.")

    def get(self, api_id: str) -> HttpApi | None:
        return self._apis.get(api_id)

    def list(self) -> list[HttpApi]:
        return [self._apis[k] for k in sorted(self._apis)]

    def url(self, api: HttpApi) -> str:
        base = f"http://{api.api_id}.execute-api.localhost:{self.port}"
        return base if api.stage == "$default" else f"{base}/{api.stage}"
