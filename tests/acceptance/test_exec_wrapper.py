"""Wrapper scripts (AWS_LAMBDA_EXEC_WRAPPER) with boto3: a layer's /opt/wrapper starts the
Python and Node.js runtimes, setting a variable and adding an interpreter option, with the
sandbox and without; a missing or non-executable wrapper fails Init as Lambda's runtimes do
(Runtime.ExitError, exit status 127 or 126); an OS-only runtime ignores the variable."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import (
    FUNCTIONS,
    PY_RUNTIME,
    create_function,
    engine_client,
    have_node,
    invoke_json,
    make_zip,
    zip_dir,
)

PY_WRAPPER = """#!/bin/sh
export WRAPPED_BY="layer wrapper"
interpreter=$1
shift
exec "$interpreter" -X wrapped=yes "$@"
"""
NODE_WRAPPER = """#!/bin/sh
export WRAPPED_BY="layer wrapper"
interpreter=$1
shift
exec "$interpreter" --stack-trace-limit=42 "$@"
"""
PY_HANDLER = (
    "import os, sys\n"
    "def handler(event, context):\n"
    "    return {'by': os.environ.get('WRAPPED_BY'), 'x': sys._xoptions.get('wrapped'),\n"
    "            'wrapper': os.environ.get('AWS_LAMBDA_EXEC_WRAPPER')}\n"
)
NODE_HANDLER = (
    "exports.handler = async () => ({by: process.env.WRAPPED_BY ?? null,"
    " argv: process.execArgv, wrapper: process.env.AWS_LAMBDA_EXEC_WRAPPER});\n"
)


@pytest.fixture(scope="module", params=["engine", "no-sandbox"])
def wlam(request, lam, tmp_path_factory) -> Iterator[object]:
    """The session engine (sandboxed where bubblewrap runs), then one with --sandbox none."""
    if request.param == "engine":
        yield lam
        return
    data = tmp_path_factory.mktemp("wrapper") / "data"
    with engine_client(data, "--sandbox", "none") as plain:
        yield plain


def _layer(lam, script: str, mode: int = 0o755) -> str:
    name = f"w-{uuid.uuid4().hex[:10]}"
    package = make_zip({"wrapper": script}, modes={"wrapper": mode})
    published = lam.publish_layer_version(LayerName=name, Content={"ZipFile": package})
    return published["LayerVersionArn"]


def _with_wrapper(lam, name: str, package: bytes, runtime: str, layer: str | None, path: str):
    create_function(
        lam,
        name,
        package,
        runtime=runtime,
        Layers=[layer] if layer else [],
        Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": path}},
    )


def test_python_starts_through_a_layers_wrapper(wlam, fname):
    layer = _layer(wlam, PY_WRAPPER)
    _with_wrapper(
        wlam, fname, make_zip({"index.py": PY_HANDLER}), PY_RUNTIME, layer, "/opt/wrapper"
    )
    response, body = invoke_json(wlam, fname)
    assert "FunctionError" not in response, body
    assert body == {"by": "layer wrapper", "x": "yes", "wrapper": "/opt/wrapper"}
    assert invoke_json(wlam, fname)[1] == body  # warm: the same runtime


def test_nodejs_starts_through_a_layers_wrapper(wlam, fname):
    if not have_node():
        pytest.skip("no node on this machine")
    layer = _layer(wlam, NODE_WRAPPER)
    package = make_zip({"index.js": NODE_HANDLER})
    _with_wrapper(wlam, fname, package, "nodejs20.x", layer, "/opt/wrapper")
    response, body = invoke_json(wlam, fname)
    assert "FunctionError" not in response, body
    assert body["by"] == "layer wrapper"
    assert "--stack-trace-limit=42" in body["argv"]
    assert body["wrapper"] == "/opt/wrapper"


@pytest.mark.parametrize(
    ("mode", "path", "status", "said"),
    [
        (0o644, "/opt/wrapper", 126, "/opt/wrapper: is not an executable"),
        (None, "/idontexist.sh", 127, "/idontexist.sh: does not exist"),
    ],
    ids=["not-executable", "missing"],
)
def test_a_wrapper_that_cannot_run_fails_init(wlam, fname, mode, path, status, said):
    layer = _layer(wlam, PY_WRAPPER, mode=mode) if mode is not None else None
    _with_wrapper(wlam, fname, make_zip({"index.py": PY_HANDLER}), PY_RUNTIME, layer, path)
    response = wlam.invoke(FunctionName=fname, LogType="Tail")
    answer = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled"
    assert answer["errorType"] == "Runtime.ExitError"
    assert answer["errorMessage"].startswith("RequestId: ")
    assert answer["errorMessage"].endswith(
        f"Error: Runtime exited with error: exit status {status}"
    )
    assert said in base64.b64decode(response["LogResult"]).decode()


def test_an_os_only_runtime_ignores_the_wrapper(wlam, fname):
    _with_wrapper(
        wlam, fname, zip_dir(FUNCTIONS / "shell"), "provided.al2023", None, "/idontexist.sh"
    )
    response, body = invoke_json(wlam, fname, {"n": 1})
    assert "FunctionError" not in response, body
    assert body["echo"] == {"n": 1}
