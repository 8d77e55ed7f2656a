"""Code signing configurations and their use by functions (see `domain.code_signing`).

Configurations are kept in memory (loaded at start and after another engine's change) and in
the store. A function names at most one (`CodeSigningConfigArn` on CreateFunction, or
PutFunctionCodeSigningConfig), kept on its `$LATEST`; every later deployment of code to it
goes through `check_deployment`, which `FunctionService` calls.
"""

from __future__ import annotations

import builtins
import logging
import time
from typing import Any

from lamina.domain import code_signing, errors
from lamina.domain.code_signing import CodeSigningConfig
from lamina.service.functions import FunctionService, timestamp
from lamina.service.ports import Store

log = logging.getLogger("lamina.code_signing")


class CodeSigningService:
    """The code signing operations (see the module docstring)."""

    def __init__(self, store: Store, functions: FunctionService) -> None:
        self.store = store
        self.functions = functions
        self._configs: dict[str, CodeSigningConfig] = {}
        functions.check_code_signing = self.check_deployment

    async def load(self) -> None:
        self._configs = {c.arn: c for c in await self.store.list_code_signing_configs()}

    # configurations ----------------------------------------------------------------------
    def get(self, arn: str) -> CodeSigningConfig:
        config = self._configs.get(code_signing.check_arn(arn))
        if config is None:
            raise code_signing.not_found(arn)
        return config

    def list(self) -> list[CodeSigningConfig]:
        return sorted(self._configs.values(), key=lambda c: (c.last_modified, c.arn))

    async def create(
        self, publishers: Any, policies: Any, description: Any, tags: dict[str, str]
    ) -> CodeSigningConfig:
        config = CodeSigningConfig(
            code_signing.new_arn(self.functions.region, self.functions.account),
            code_signing.profiles(publishers, required=True) or (),
            code_signing.policy(policies) or "Warn",
            code_signing.description(description) or "",
            timestamp(time.time()),
            dict(tags),
        )
        await self._save(config)
        return config

    async def update(
        self, arn: str, publishers: Any, policies: Any, description: Any
    ) -> CodeSigningConfig:
        """Change what was given; a member left out keeps its value."""
        current = self.get(arn)
        changes: dict[str, Any] = {}
        for key, value in (
            ("profiles", code_signing.profiles(publishers, required=False)),
            ("policy", code_signing.policy(policies)),
            ("description", code_signing.description(description)),
        ):
            if value is not None:
                changes[key] = value
        if not changes:
            return current
        config = current.replace(**changes, last_modified=timestamp(time.time()))
        await self._save(config)
        return config

    async def delete(self, arn: str) -> None:
        self.get(arn)
        if self.functions_using(arn):
            raise code_signing.in_use(arn)
        await self.store.delete_code_signing_config(arn)
        self._configs.pop(arn, None)

    async def set_tags(self, arn: str, tags: dict[str, str]) -> None:
        await self._save(self.get(arn).replace(tags=tags))

    def functions_using(self, arn: str) -> builtins.list[str]:
        return [f.name for f in self.functions.list() if f.code_signing_config_arn == arn]

    async def _save(self, config: CodeSigningConfig) -> None:
        await self.store.put_code_signing_config(config)
        self._configs[config.arn] = config

    # functions ---------------------------------------------------------------------------
    def of_function(self, function: str) -> str | None:
        return self.functions.entry(function).latest.code_signing_config_arn

    async def attach(self, function: str, arn: Any) -> str:
        """PutFunctionCodeSigningConfig: the configuration is checked before the function,
        as on AWS."""
        code_signing.check_arn(arn)
        if arn not in self._configs:
            raise code_signing.not_found_for_function(arn)
        await self.functions.configure(function, None, code_signing_config_arn=arn)
        return str(arn)

    async def detach(self, function: str) -> None:
        """DeleteFunctionCodeSigningConfig (nothing attached: nothing to do, as on AWS)."""
        if self.of_function(function) is not None:
            await self.functions.configure(function, None, code_signing_config_arn=None)

    def check_deployment(self, function: str, arn: str | None) -> None:
        """A package is about to be deployed to `function` (see `domain.code_signing`)."""
        if arn is None:
            return
        config = self._configs.get(arn)
        if config is None:
            raise code_signing.not_found_for_function(arn)
        if config.policy == "Enforce":
            raise code_signing.unverified(function)
        log.warning(
            "function %s: code signing configuration %s (Warn) accepts a package "
            "Lamina cannot verify (no AWS Signer here)",
            function,
            arn,
        )


def check_unqualified(qualifier: str | None) -> None:
    if qualifier is not None:  # message unconfirmed
        raise errors.InvalidParameterValue(
            "Code signing configurations apply to functions only. Please specify a function "
            "name or an unqualified function ARN."
        )
