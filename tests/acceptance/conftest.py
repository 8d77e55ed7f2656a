"""Fixture factories for the acceptance files that run an engine of their own (with flags the
session engine does not have). A file names its fixtures by assignment, as pytest-postgresql's
factories do:

    engine = module_engine("debug", "--sandbox", "none")
    lam = module_client()

Each is module-scoped: the file's engine starts once on the worker that runs the file (the
scheduler in tests/conftest.py keeps an acceptance file on one worker)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from tests.conftest import Server, client, serving


def module_engine(
    name: str,
    *args: str,
    moto_env: str | None = None,
    params: Mapping[str, Sequence[str]] | None = None,
) -> Any:
    """A module-scoped fixture: an engine started with `args` on a data folder of its own
    (named after `name`), stopped after the module, its log checked for tracebacks.
    `moto_env` names an environment variable that points the engine at the session's moto
    (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3). `params` runs the module once per entry, with
    that entry's flags added (its key is the test id)."""

    @pytest.fixture(scope="module", params=list(params) if params else None)
    def engine(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Server]:
        folder = f"{name}-{request.param}" if params else name
        flags = [*args, *(params[request.param] if params else ())]
        env = {moto_env: request.getfixturevalue("moto").endpoint} if moto_env else None
        with serving(tmp_path_factory.mktemp(folder) / "data", *flags, env=env) as running:
            yield running

    return engine


def module_client(service: str = "lambda", **config: object) -> Any:
    """A module-scoped fixture: a boto3 client of `service` on the module's `engine`
    (`config` as conftest.client takes it), closed after the module."""

    @pytest.fixture(scope="module")
    def service_client(engine: Server) -> Iterator[Any]:
        with contextlib.closing(client(engine.endpoint, service, **config)) as made:
            yield made

    return service_client
