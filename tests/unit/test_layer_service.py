"""The layer service with the function service: `Layers` resolved to the versions a function
keeps, and Lambda's 250 MB counting the function's unzipped code with its layers'."""

from __future__ import annotations

import asyncio

import pytest

from lamina.domain import errors, limits
from lamina.domain.code import CodeSource
from lamina.domain.settings import FunctionSettings
from lamina.service.concurrency import ConcurrencyLimiter
from lamina.service.functions import CreateFunction, FunctionService
from lamina.service.layers import LayerService
from lamina.storage.code import CodeStore
from lamina.storage.memory import MemoryStore
from tests.conftest import ROLE, make_zip


class NoPool:
    def retire(self, name: str, version: str | None = None) -> None:
        return None


def test_unzipped_code_and_layers_count_together(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "UNZIPPED_CODE", 100)
    function_zip, layer_zip = make_zip({"index.py": "x" * 60}), make_zip({"python/l.py": "y" * 60})

    async def main() -> None:
        functions = FunctionService(
            MemoryStore(),
            CodeStore(tmp_path),
            NoPool(),
            ConcurrencyLimiter(10),
            "us-east-1",
            "123456789012",
        )
        layers = LayerService(functions.store, functions)
        layer = await layers.publish("lib", CodeSource(layer_zip), None, None, None, None)
        settings = FunctionSettings(runtime="python3.12", handler="index.handler", role=ROLE)
        with pytest.raises(errors.InvalidParameterValue, match="The actual size is 120 bytes"):
            await functions.create(
                CreateFunction(
                    "f",
                    FunctionSettings(**{**settings.given(), "layers": (layer.version_arn,)}),
                    CodeSource(function_zip),
                )
            )
        config = await functions.create(CreateFunction("f", settings, CodeSource(function_zip)))
        assert config.layers == ()
        await asyncio.sleep(0)
        with pytest.raises(errors.InvalidParameterValue, match="combined with layers"):
            await functions.update_configuration(
                "f", FunctionSettings(layers=(layer.version_arn,)), None
            )
        await layers.delete("lib", 1)
        with pytest.raises(errors.InvalidParameterValue, match="does not exist"):
            await functions.update_configuration(
                "f", FunctionSettings(layers=(layer.version_arn,)), None
            )

    asyncio.run(main())
