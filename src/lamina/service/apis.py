"""HTTP APIs the engine serves: API Gateway REST APIs and HTTP APIs with Lambda proxy routes.

Kept in memory (loaded at start and after another engine's change) and in the store. Serving
a request is `api/apis.py`'s work: it finds the API by id (`get`), its route
(`domain.apis.match`) and invokes the route's function on the synchronous path.
"""

from __future__ import annotations

from typing import Any

from lamina.domain import apis, arns, errors
from lamina.domain.apis import HttpApi


class ApiService:
    """Create, replace, delete and list HTTP APIs; `url` is the base URL a user calls."""

    def __init__(self, store: Any, region: str, account: str, port: int = 9001) -> None:
        self.store = store
        self.region = region
        self.account = account
        self.port = port  # the engine's port once it listens (app.py sets it)
        self._apis: dict[str, HttpApi] = {}

    async def load(self) -> None:
        self._apis = {a.api_id: a for a in await self.store.list_http_apis()}

    async def put(self, api: HttpApi) -> HttpApi:
        """Create or replace `api` (its id is the key)."""
        apis.validate(api)
        for route in api.routes:
            self.target(route)
        await self.store.put_http_api(api)
        self._apis[api.api_id] = api
        return api

    async def delete(self, api_id: str) -> None:
        if api_id not in self._apis:
            raise errors.ResourceNotFound(f"API {api_id} does not exist.")
        await self.store.delete_http_api(api_id)
        self._apis.pop(api_id, None)

    def get(self, api_id: str) -> HttpApi | None:
        return self._apis.get(api_id)

    def list(self) -> list[HttpApi]:
        return [self._apis[k] for k in sorted(self._apis)]

    def url(self, api: HttpApi) -> str:
        """http://{api_id}.execute-api.localhost:{port}/{stage} ($default: no stage part)."""
        base = f"http://{api.api_id}.execute-api.localhost:{self.port}"
        return base if api.stage == apis.DEFAULT_STAGE else f"{base}/{api.stage}"

    def fallback_url(self, api: HttpApi) -> str:
        """The same API for clients that cannot resolve *.localhost."""
        base = f"http://127.0.0.1:{self.port}/_lamina/apis/{api.api_id}"
        return base if api.stage == apis.DEFAULT_STAGE else f"{base}/{api.stage}"

    def target(self, route: apis.Route) -> arns.FunctionRef:
        try:
            ref = arns.parse_function_name(route.target_arn, self.region, None, field="TargetArn")
            return arns.keyed(ref, self.account)
        except errors.LaminaError as exc:
            raise errors.InvalidParameterValue(
                f"Route {route.key}: TargetArn {route.target_arn!r} is not a Lambda function "
                f"of this engine: {exc.message or exc.error_type}"
            ) from None
