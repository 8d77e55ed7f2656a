"""Hot reload with boto3: `Code={"S3Bucket": "hot-reload", "S3Key": "/folder"}` runs a function
straight from a folder, and an edit there retires its environments so that the next invocation
runs the code as saved. Python and Node functions edited again and again (a module the handler
imports, a new file, a deleted file, an edit while an invocation runs), layers, provisioned
environments, switching to and from hot reload, a missing folder, a restart.

"Retired" is observed, not slept on: after each save the test waits for the environments that
ran before it to be gone from the engine's overview, then checks that one invocation sees the
new code."""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.acceptance.conftest import module_client
from tests.acceptance.test_versions import error_of, wait_updated
from tests.conftest import (
    PY_RUNTIME,
    ROLE,
    Server,
    client,
    have_node,
    invoke_json,
    make_zip,
    serving,
    start_server,
)

HOT_SHA = "hot-reloading-hash-not-available"

PY_HANDLER = """\
import os
import time

import helper

VALUE = {value!r}
COUNTER = [0]


def handler(event, context):
    COUNTER[0] += 1
    if event.get("marker"):
        open(event["marker"], "w").close()
        time.sleep(event.get("sleep", 0))
    try:
        import extra
        found = extra.VALUE
    except ImportError:
        found = None
    return {{"value": VALUE, "helper": helper.WORD, "counter": COUNTER[0], "extra": found,
             "init": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}}
"""

NODE_HANDLER = """\
import {{ word }} from './helper.mjs';
let counter = 0;
export const handler = async () => {{
  counter += 1;
  return {{ value: {value!r}, helper: word, counter }};
}};
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    # unsandboxed: a function here marks its progress in a file on the host (see
    # test_sandbox.py for what a sandbox shows; a hot-reload folder is bound at /var/task)
    with serving(
        tmp_path_factory.mktemp("hot") / "data",
        "--sandbox",
        "none",
        "--idle-timeout",
        "60",
        env={"LAMINA_TEST_HOME": str(tmp_path_factory.getbasetemp())},
    ) as running:
        yield running


lam = module_client()


def live(engine: Server, name: str) -> set[str]:
    """Ids of the function's live environments (starting, busy, warm or frozen)."""
    return {env["Id"] for env in engine.get(f"/_lamina/functions/{name}")["Environments"]}


def wait_gone(engine: Server, name: str, ids: set[str], timeout: float = 10.0) -> None:
    """Wait until none of the environments `ids` lives any more (the reload happened)."""
    deadline = time.monotonic() + timeout
    while live(engine, name) & ids:
        assert time.monotonic() < deadline, f"environments {ids} of {name} were not retired"
        time.sleep(0.02)


def wait_watched(engine: Server, folder: Path, timeout: float = 10.0) -> None:
    """Wait until the engine watches `folder` (it exists and its watch is in place)."""
    deadline = time.monotonic() + timeout
    while not any(
        f["Path"] == str(folder) and f["Watched"]
        for f in engine.get("/_lamina/hot-reload")["Folders"]
    ):
        assert time.monotonic() < deadline, f"{folder} is not watched"
        time.sleep(0.02)


def save(path: Path, text: str) -> None:
    path.write_text(text)


def edit_and_see(engine, lam, name: str, change, expected: dict) -> dict:
    """Make `change` to the folder; the environments that ran before end, and the next
    invocation returns `expected` (a subset) from a fresh environment."""
    before = live(engine, name)
    assert before, "an environment ran before the edit"
    change()
    wait_gone(engine, name, before)
    result = invoke_json(lam, name)[1]
    assert {k: result[k] for k in expected} == expected, result
    return result


def python_folder(root: Path, value: str = "value1") -> Path:
    folder = root / f"fn-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    save(folder / "handler.py", PY_HANDLER.format(value=value))
    save(folder / "helper.py", "WORD = 'helper1'\n")
    return folder


def create_hot(
    lam,
    name: str,
    folder: Path | str,
    runtime: str = PY_RUNTIME,
    bucket: str = "hot-reload",
    **extra,
) -> dict:
    created = lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Handler="handler.handler",
        Code={"S3Bucket": bucket, "S3Key": str(folder)},
        **extra,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
    )
    return created


def test_a_python_function_runs_from_its_folder_and_sees_every_edit(engine, lam, fname, tmp_path):
    folder = python_folder(tmp_path)
    created = create_hot(lam, fname, folder)
    assert (created["CodeSha256"], created["CodeSize"]) == (HOT_SHA, 0)
    got = lam.get_function(FunctionName=fname)
    assert got["Code"] == {"RepositoryType": "S3", "Location": folder.as_uri()}
    assert got["Configuration"]["CodeSha256"] == HOT_SHA

    assert invoke_json(lam, fname)[1]["value"] == "value1"
    assert invoke_json(lam, fname)[1]["counter"] == 2  # warm (and frozen in between)

    # the same file edited again and again, same size each time (bytecode must not go stale)
    for n in range(2, 7):
        edit_and_see(
            engine,
            lam,
            fname,
            lambda n=n: save(folder / "handler.py", PY_HANDLER.format(value=f"value{n}")),
            {"value": f"value{n}", "counter": 1},
        )
    edit_and_see(
        engine,
        lam,
        fname,
        lambda: save(folder / "helper.py", "WORD = 'helper2'\n"),
        {"helper": "helper2", "value": "value6"},
    )
    edit_and_see(
        engine,
        lam,
        fname,
        lambda: save(folder / "extra.py", "VALUE = 'new file'\n"),
        {"extra": "new file"},
    )
    edit_and_see(engine, lam, fname, lambda: (folder / "extra.py").unlink(), {"extra": None})
    nested = folder / "pkg"
    edit_and_see(engine, lam, fname, lambda: nested.mkdir(), {"counter": 1})
    edit_and_see(engine, lam, fname, lambda: save(nested / "data.txt", "x"), {"counter": 1})
    assert not (folder / "__pycache__").exists()  # no bytecode written into the folder


def test_an_edit_during_an_invocation_applies_to_the_next_one(engine, lam, fname, tmp_path):
    folder = python_folder(tmp_path)
    create_hot(lam, fname, folder)
    assert invoke_json(lam, fname)[1]["value"] == "value1"
    marker = tmp_path / "running"  # outside the watched folder
    results: list[dict] = []
    caller = threading.Thread(
        target=lambda: results.append(
            invoke_json(lam, fname, {"marker": str(marker), "sleep": 1.0})[1]
        )
    )
    caller.start()
    deadline = time.monotonic() + 10
    while not marker.exists():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    running = live(engine, fname)
    save(folder / "handler.py", PY_HANDLER.format(value="during"))
    caller.join(15)
    assert results[0]["value"] == "value1"  # the invocation under way finished as it began
    wait_gone(engine, fname, running)
    assert invoke_json(lam, fname)[1]["value"] == "during"


@pytest.mark.skipif(not have_node(), reason="node not installed")
def test_a_node_function_sees_every_edit(engine, lam, fname, tmp_path):
    folder = tmp_path / "node-fn"
    folder.mkdir()
    save(folder / "handler.mjs", NODE_HANDLER.format(value="value1"))
    save(folder / "helper.mjs", "export const word = 'helper1';\n")
    created = create_hot(lam, fname, folder, runtime="nodejs20.x")
    assert created["CodeSha256"] == HOT_SHA
    assert invoke_json(lam, fname)[1] == {"value": "value1", "helper": "helper1", "counter": 1}
    assert invoke_json(lam, fname)[1]["counter"] == 2
    for n in range(2, 5):
        edit_and_see(
            engine,
            lam,
            fname,
            lambda n=n: save(folder / "handler.mjs", NODE_HANDLER.format(value=f"value{n}")),
            {"value": f"value{n}", "counter": 1},
        )
    edit_and_see(
        engine,
        lam,
        fname,
        lambda: save(folder / "helper.mjs", "export const word = 'helper2';\n"),
        {"helper": "helper2", "value": "value4"},
    )


def test_a_hot_reload_layer_reloads_every_function_that_uses_it(engine, lam, fname, tmp_path):
    layer = tmp_path / "layer"
    (layer / "python").mkdir(parents=True)
    save(layer / "python" / "shared.py", "WORD = 'layer1'\n")
    published = lam.publish_layer_version(
        LayerName=f"l-{fname}", Content={"S3Bucket": "hot-reload", "S3Key": str(layer)}
    )
    assert published["Content"]["CodeSha256"] == HOT_SHA
    assert published["Content"]["Location"] == layer.as_uri()
    packaged = make_zip({"python/other.py": "WORD = 'zipped'\n"})
    zipped = lam.publish_layer_version(LayerName=f"z-{fname}", Content={"ZipFile": packaged})
    code = make_zip(
        {
            "index.py": "import shared\n"
            "def handler(event, context):\n"
            "    try:\n"
            "        import other\n"
            "    except ImportError:\n"
            "        return [shared.WORD]\n"
            "    return [shared.WORD, other.WORD]\n"
        }
    )
    names = [fname, f"{fname}-two"]
    layer_sets = [
        [published["LayerVersionArn"]],  # the folder itself is its /opt
        [zipped["LayerVersionArn"], published["LayerVersionArn"]],
    ]  # laid out
    for name, arns in zip(names, layer_sets, strict=True):
        lam.create_function(
            FunctionName=name,
            Runtime=PY_RUNTIME,
            Role=ROLE,
            Handler="index.handler",
            Code={"ZipFile": code},
            Layers=arns,
        )
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
    assert invoke_json(lam, names[0])[1][0] == "layer1"
    assert invoke_json(lam, names[1])[1] == ["layer1", "zipped"]
    before = live(engine, names[0]) | live(engine, names[1])
    save(layer / "python" / "shared.py", "WORD = 'layer2'\n")
    for name in names:
        wait_gone(engine, name, before)
    assert invoke_json(lam, names[0])[1][0] == "layer2"
    assert invoke_json(lam, names[1])[1] == ["layer2", "zipped"]


def test_provisioned_environments_start_again_on_the_new_code(engine, lam, fname, tmp_path):
    folder = python_folder(tmp_path)
    create_hot(lam, fname, folder)
    version = lam.publish_version(FunctionName=fname, CodeSha256="any: not checked")["Version"]
    lam.put_provisioned_concurrency_config(
        FunctionName=fname, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    lam.get_waiter("published_version_active").wait(FunctionName=fname, Qualifier=version)

    def provisioned_ready() -> set[str]:
        return {
            e["Id"]
            for e in engine.get(f"/_lamina/functions/{fname}")["Environments"]
            if e["Provisioned"] and e["State"] in ("warm", "frozen")
        }

    deadline = time.monotonic() + 20
    while not (first := provisioned_ready()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    result = invoke_json(lam, fname, Qualifier=version)[1]
    assert (result["value"], result["init"]) == ("value1", "provisioned-concurrency")
    save(folder / "handler.py", PY_HANDLER.format(value="value2"))
    deadline = time.monotonic() + 20
    while not (again := provisioned_ready()) or again & first:
        assert time.monotonic() < deadline, "the provisioned environment did not start again"
        time.sleep(0.05)
    result = invoke_json(lam, fname, Qualifier=version)[1]
    assert (result["value"], result["init"], result["counter"]) == (
        "value2",
        "provisioned-concurrency",
        1,
    )
    lam.delete_provisioned_concurrency_config(FunctionName=fname, Qualifier=version)


def test_update_function_code_switches_to_and_from_hot_reload(engine, lam, fname, tmp_path):
    folder = python_folder(tmp_path, "from the folder")
    zipped = make_zip(
        {"handler.py": "def handler(event, context):\n    return {'value': 'from the zip'}\n"}
    )
    lam.create_function(
        FunctionName=fname,
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": zipped},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=fname)
    assert invoke_json(lam, fname)[1]["value"] == "from the zip"
    updated = lam.update_function_code(FunctionName=fname, S3Bucket="hot-reload", S3Key=str(folder))
    assert (updated["CodeSha256"], updated["CodeSize"]) == (HOT_SHA, 0)
    wait_updated(lam, fname)
    assert invoke_json(lam, fname)[1]["value"] == "from the folder"
    edit_and_see(
        engine,
        lam,
        fname,
        lambda: save(folder / "handler.py", PY_HANDLER.format(value="edited")),
        {"value": "edited"},
    )
    back = lam.update_function_code(FunctionName=fname, ZipFile=zipped)
    assert back["CodeSize"] == len(zipped)
    wait_updated(lam, fname)
    assert lam.get_function(FunctionName=fname)["Code"]["Location"].startswith("http://")
    save(folder / "handler.py", PY_HANDLER.format(value="ignored"))
    assert invoke_json(lam, fname)[1]["value"] == "from the zip"


def test_a_missing_folder_is_a_clear_error_until_it_exists(engine, lam, fname, tmp_path):
    folder = tmp_path / "later"
    create_hot(lam, fname, folder)  # accepted: the folder may come later (LocalStack too)
    response, body = invoke_json(lam, fname)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.InvalidEntrypoint"
    assert f"The hot-reload folder {folder} does not exist" in body["errorMessage"]
    assert {"Path": str(folder), "Watched": False} in engine.get("/_lamina/hot-reload")["Folders"]
    shutil.copytree(python_folder(tmp_path, "arrived"), folder)
    wait_watched(engine, folder)
    assert invoke_json(lam, fname)[1]["value"] == "arrived"
    before = live(engine, fname)
    shutil.rmtree(folder)
    wait_gone(engine, fname, before)
    response, body = invoke_json(lam, fname)
    assert response["FunctionError"] == "Unhandled"
    assert "does not exist" in body["errorMessage"]
    assert engine.process.poll() is None
    lam.delete_function(FunctionName=fname)


def test_keys_must_be_absolute_and_may_name_variables(
    engine, lam, fname, tmp_path, tmp_path_factory
):
    code, message, status = error_of(
        lam.create_function,
        FunctionName=fname,
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="handler.handler",
        Code={"S3Bucket": "hot-reload", "S3Key": "not/absolute"},
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == (
        "When using hot reloading, the archive key has to be an absolute path! "
        "Your archive key: not/absolute"
    )
    folder = python_folder(tmp_path, "expanded")
    base = tmp_path_factory.getbasetemp()  # the engine's $LAMINA_TEST_HOME
    create_hot(lam, fname, f"$LAMINA_TEST_HOME/{folder.relative_to(base)}")
    assert invoke_json(lam, fname)[1]["value"] == "expanded"
    assert lam.get_function(FunctionName=fname)["Code"]["Location"] == folder.as_uri()


def test_hot_reload_survives_a_restart_and_the_bucket_name_is_a_flag(tmp_path, fname):
    folder = python_folder(tmp_path, "before")
    data = tmp_path / "data"
    engine = start_server(data, "--hot-reload-bucket", "my-code")
    lam = client(engine.endpoint)
    try:
        create_hot(lam, fname, folder, bucket="my-code")
        assert invoke_json(lam, fname)[1]["value"] == "before"
    finally:
        lam.close()
        engine.stop()
    engine = start_server(data, "--hot-reload-bucket", "my-code")
    lam = client(engine.endpoint)
    try:
        assert invoke_json(lam, fname)[1]["value"] == "before"
        edit_and_see(
            engine,
            lam,
            fname,
            lambda: save(folder / "handler.py", PY_HANDLER.format(value="after")),
            {"value": "after"},
        )
        assert (
            json.loads(json.dumps(lam.get_function(FunctionName=fname)["Code"]))["Location"]
            == folder.as_uri()
        )
    finally:
        lam.close()
        engine.stop()
    assert "Traceback" not in engine.log(), engine.log()
