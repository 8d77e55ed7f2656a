"""Function URL configurations: Create / Get / Update / Delete / ListFunctionUrlConfigs.

A URL belongs to the unqualified function (kept under `$LATEST`) or to an alias, one each,
and goes with it. Kept in memory (loaded at start and after another engine's change) and in
the store; `by_id` finds the configuration an HTTP request to a URL is for. Serving the
request is `api/urls.py`'s work.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from lamina.domain import errors, urls
from lamina.domain.model import LATEST
from lamina.domain.urls import FunctionUrlConfig
from lamina.service.functions import FunctionService
from lamina.service.ports import Store
from lamina.service.versions import VersionService

_UNSET: Any = object()
_NO_RESOURCE = "The resource you requested does not exist."


class UrlService:
    """The function URL operations (see the module docstring)."""

    def __init__(self, store: Store, functions: FunctionService, versions: VersionService) -> None:
        self.store = store
        self.functions = functions
        self.versions = versions
        self._configs: dict[tuple[str, str], FunctionUrlConfig] = {}
        self._by_id: dict[str, FunctionUrlConfig] = {}
        functions.on_delete.append(self.forget)
        functions.on_delete_qualifier.append(self.forget_qualifier)

    async def load(self) -> None:
        self._index(await self.store.list_function_urls())

    def _index(self, configs: list[FunctionUrlConfig]) -> None:
        self._configs = {(c.function, c.qualifier): c for c in configs}
        self._by_id = {c.url_id: c for c in configs}

    def by_id(self, url_id: str) -> FunctionUrlConfig | None:
        return self._by_id.get(url_id.lower())

    def get(self, function: str, qualifier: str | None) -> FunctionUrlConfig:
        config = self._configs.get(self._key(function, qualifier, _NO_RESOURCE))
        if config is None:
            raise errors.ResourceNotFound(_NO_RESOURCE)
        return config

    def list(self, function: str) -> list[FunctionUrlConfig]:
        self._key(function, None)
        return [c for k, c in sorted(self._configs.items()) if k[0] == function]

    async def create(
        self, function: str, qualifier: str | None, auth_type: Any, cors: Any, invoke_mode: Any
    ) -> FunctionUrlConfig:
        urls.check_auth_type(auth_type, required=True)
        urls.check_invoke_mode(invoke_mode)
        checked_cors = urls.check_cors(cors)
        key = self._key(function, qualifier)
        if key in self._configs:
            raise errors.ResourceConflict(
                f"Failed to create function url config for [functionArn = "
                f"{self.functions.arn(function, qualifier)}]. Error message:  FunctionUrlConfig "
                "exists for this Lambda function"
            )
        now = time.time()
        config = FunctionUrlConfig(
            function, key[1], urls.new_url_id(), auth_type, invoke_mode, checked_cors, now, now
        )
        await self._save(config)
        return config

    async def update(
        self,
        function: str,
        qualifier: str | None,
        auth_type: Any = _UNSET,
        cors: Any = _UNSET,
        invoke_mode: Any = _UNSET,
    ) -> FunctionUrlConfig:
        """Change what was given (a member left out keeps its value)."""
        self._key(function, qualifier)
        current = self.get(function, qualifier)
        changes: dict[str, Any] = {"modified": time.time()}
        if auth_type is not _UNSET and auth_type is not None:
            urls.check_auth_type(auth_type, required=True)
            changes["auth_type"] = auth_type
        if invoke_mode is not _UNSET and invoke_mode is not None:
            urls.check_invoke_mode(invoke_mode)
            changes["invoke_mode"] = invoke_mode
        if cors is not _UNSET:
            changes["cors"] = urls.check_cors(cors)
        config = replace(current, **changes)
        await self._save(config)
        return config

    async def delete(self, function: str, qualifier: str | None) -> None:
        config = self.get(function, qualifier)
        await self.store.delete_function_url(config.function, config.qualifier)
        self._forget(config)

    def forget(self, function: str) -> None:
        """Drop the URLs of a deleted function (the store deleted them with it)."""
        for config in [c for c in self._configs.values() if c.function == function]:
            self._forget(config)

    def forget_qualifier(self, function: str, qualifier: str) -> None:
        """Drop the URL of a deleted alias (the store deleted it with it)."""
        config = self._configs.get((function, qualifier))
        if config is not None:
            self._forget(config)

    def _forget(self, config: FunctionUrlConfig) -> None:
        self._configs.pop((config.function, config.qualifier), None)
        self._by_id.pop(config.url_id, None)

    async def _save(self, config: FunctionUrlConfig) -> None:
        await self.store.put_function_url(config)
        self._configs[(config.function, config.qualifier)] = config
        self._by_id[config.url_id] = config

    def _key(
        self, function: str, qualifier: str | None, missing: str = "Function does not exist"
    ) -> tuple[str, str]:
        """The (function, qualifier) a URL operation names; the 404 AWS answers when the
        function or alias does not exist (Create, Update and List word it `missing`; Get and
        Delete as for a missing configuration)."""
        urls.check_qualifier(qualifier)
        entry = self.functions.find(function)
        if entry is None or (qualifier is not None and qualifier not in entry.aliases):
            raise errors.ResourceNotFound(missing)
        return function, qualifier or LATEST
