"""AWS's durable execution conformance requirements, validated against a real `lamina serve`.

The requirement YAMLs (expected execution histories and results) and the validator come from
PyPI's aws-durable-execution-conformance-tests, unmodified: `validate_description` invokes
each requirement's function with boto3, sends its callbacks, reads GetDurableExecution and
GetDurableExecutionHistory, and matches them. The handlers are Lamina's own
(tests/functions/durable_conformance), one function per requirement id, running the
unmodified Python SDK (PyPI aws-durable-execution-sdk-python) on python3.13.
"""

from __future__ import annotations

import json
import pathlib
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType

import pytest

from tests.conftest import FUNCTIONS, ROLE, client, make_zip, start_server

validate = pytest.importorskip("aws_durable_execution_conformance_tests.validate")
sam = pytest.importorskip("aws_durable_execution_conformance_tests.sam")
clients_mod = pytest.importorskip("aws_durable_execution_conformance_tests.clients")
sdk = pytest.importorskip("aws_durable_execution_sdk_python")

SUITES = ("step", "wait", "child", "callback", "invoke", "map", "parallel",
          "wait_for_callback", "wait_for_condition")
HANDLERS = FUNCTIONS / "durable_conformance"
ARTIFACTS = pathlib.Path(__file__).resolve().parents[2] / "test-artifacts"


def sdk_package(extra: dict[str, bytes]) -> bytes:
    """A deployment package with the SDK bundled, as SAM builds it."""
    root = pathlib.Path(sdk.__file__).parent
    files: dict[str, str | bytes] = dict(extra)
    for path in root.rglob("*.py"):
        files[f"aws_durable_execution_sdk_python/{path.relative_to(root)}"] = path.read_bytes()
    return make_zip(files)


def requirement_files() -> dict[str, str]:
    tests_dir = pathlib.Path(validate.__file__).parent / "test_requirements"
    return validate.discover_test_files(tests_dir, list(SUITES))


def handler_ids() -> set[str]:
    import ast
    tree = ast.parse((HANDLERS / "handlers.py").read_text())
    return {node.name[2:].replace("_", "-") for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("h_")}


class Invoker(sam.Invoker):
    """The suite's Invoker, with the function map filled directly (no CloudFormation)."""

    def __init__(self, lambda_client: object, names: dict[str, str]) -> None:
        super().__init__("lamina", region="us-east-1", lambda_client=lambda_client)
        self._function_map = names

    def _resolve_function(self, logical_id: str) -> str:
        return self._function_map[logical_id]


@pytest.fixture(scope="module")
def conformance_engine(tmp_path_factory: pytest.TempPathFactory):
    engine = start_server(tmp_path_factory.mktemp("durable-conformance") / "data",
                          "--idle-timeout", "120")
    yield engine
    engine.stop()
    assert "Traceback" not in engine.log(), engine.log()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_conformance_requirements(conformance_engine, tmp_path):
    lam = client(conformance_engine.endpoint, read_timeout=300)
    package = sdk_package({"handlers.py": (HANDLERS / "handlers.py").read_bytes()})
    implemented = handler_ids()
    files = requirement_files()
    env = {"Variables": {"ECHO_FUNCTION": "conf-echo", "FAILING_FUNCTION": "conf-fail"}}
    for name, handler in (("conf-echo", "handlers.echo"), ("conf-fail", "handlers.fail")):
        lam.create_function(FunctionName=name, Runtime="python3.13", Role=ROLE, Handler=handler,
                            Code={"ZipFile": package}, Timeout=60, Environment=env,
                            DurableConfig={"ExecutionTimeout": 300, "RetentionPeriodInDays": 7})
    names: dict[str, str] = {}
    runnable = []
    skipped: dict[str, str] = {}
    for rid in sorted(files, key=lambda r: tuple(int(p) for p in r.split("-"))):
        data = validate.load_yaml_file(files[rid])
        if rid not in implemented:
            skipped[rid] = "no Lamina handler yet"
            continue
        if data.get("ExpectedLogs"):
            skipped[rid] = "validates CloudWatch Logs, which Lamina does not serve"
            continue
        function = f"conf-{rid}"
        lam.create_function(FunctionName=function, Runtime="python3.13", Role=ROLE,
                            Handler=f"handlers.h_{rid.replace('-', '_')}",
                            Code={"ZipFile": package}, Timeout=60, Environment=env,
                            DurableConfig={"ExecutionTimeout": 300, "RetentionPeriodInDays": 7})
        names[function] = function
        runnable.append(rid)
    invoker = Invoker(lam, names)
    aws = clients_mod.AwsClients(MappingProxyType({"lambda": lam}))

    def run(rid: str):
        return validate.validate_description(
            function_name=f"conf-{rid}", description_id=rid, test_file=files[rid],
            invoker=invoker, tmp_dir=str(tmp_path), region="us-east-1", aws_clients=aws,
            output_dir=str(tmp_path / "histories"))

    with ThreadPoolExecutor(8) as pool:
        results = dict(zip(runnable, pool.map(run, runnable)))
    failed = {rid: r.errors for rid, r in results.items() if not r.passed}
    report = {"requirements": len(files), "run": len(results),
              "passed": sorted(rid for rid, r in results.items() if r.passed),
              "failed": failed, "not_run": skipped}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "durable-conformance.json").write_text(json.dumps(report, indent=2))
    print(f"durable conformance: {len(results) - len(failed)} of {len(files)} requirements "
          f"pass ({len(results)} run, {len(skipped)} not run)")
    assert results, "no requirement ran"
    assert not failed, json.dumps(failed, indent=2)[:6000]
