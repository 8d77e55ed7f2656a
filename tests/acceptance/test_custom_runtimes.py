"""`provided` runtimes: any executable bootstrap, including AWS's own runtime interface client."""

from __future__ import annotations

import time

from tests.conftest import (
    FUNCTIONS,
    create_function,
    invoke_json,
    make_zip,
    ric_package,
    ric_python,
    zip_dir,
)


def test_bash_and_curl_runtime(lam, fname):
    create_function(
        lam,
        fname,
        zip_dir(FUNCTIONS / "shell"),
        handler="whatever.handler",
        runtime="provided.al2023",
    )
    response, body = invoke_json(lam, fname, {"n": 1}, LogType="Tail")
    assert body == {"echo": {"n": 1}, "handler": "whatever.handler"}
    assert "FunctionError" not in response
    response, body = invoke_json(lam, fname, {"fail": True})
    assert response["FunctionError"] == "Unhandled"
    assert body == {"errorMessage": "asked to fail", "errorType": "Custom.Failure"}
    assert invoke_json(lam, fname, {"n": 2})[1]["echo"] == {"n": 2}


def test_awslambdaric_runs_unmodified(lam, fname):
    create_function(
        lam,
        fname,
        ric_package(),
        handler="app.handler",
        runtime="provided.al2023",
        Environment={"Variables": {"RIC_PYTHON": ric_python()}},
    )
    response, body = invoke_json(lam, fname, {"ric": True}, LogType="Tail")
    assert body["event"] == {"ric": True}
    assert body["request_id"] == response["ResponseMetadata"]["RequestId"]
    assert body["function_name"] == fname
    assert 0 < body["remaining_ms"] <= 3000
    warm, warm_body = invoke_json(lam, fname, {"again": 1})
    assert warm_body["event"] == {"again": 1}


def test_awslambdaric_errors(lam, fname):
    create_function(
        lam,
        fname,
        ric_package(),
        handler="app.fail",
        runtime="provided.al2",
        Environment={"Variables": {"RIC_PYTHON": ric_python()}},
    )
    response, body = invoke_json(lam, fname)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "KeyError"
    assert "missing thing" in body["errorMessage"]
    lam.update_function_configuration(FunctionName=fname, Handler="nomodule.handler")
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    response, body = invoke_json(lam, fname)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"


def test_missing_and_not_executable_bootstrap(lam, fname):
    create_function(lam, fname, make_zip({"app.py": "x = 1\n"}), runtime="provided.al2023")
    response, body = invoke_json(lam, fname)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.InvalidEntrypoint"
    assert "Couldn't find valid bootstrap(s)" in body["errorMessage"]
    other = fname + "-x"
    create_function(
        lam,
        other,
        make_zip({"bootstrap": "#!/bin/sh\nexit 0\n"}, {"bootstrap": 0o644}),
        runtime="provided.al2023",
    )
    response, body = invoke_json(lam, other)
    assert body["errorType"] == "Runtime.InvalidEntrypoint"
    assert "permission denied" in body["errorMessage"].lower()


def test_bootstrap_exiting_during_init(lam, fname):
    create_function(
        lam,
        fname,
        make_zip({"bootstrap": "#!/bin/sh\necho dying\nexit 7\n"}, {"bootstrap": 0o755}),
        runtime="provided.al2023",
    )
    response, body = invoke_json(lam, fname, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    request_id = response["ResponseMetadata"]["RequestId"]
    assert body == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status 7",
    }


def test_runtime_that_never_calls_the_runtime_api(lam, fname):
    """Init may last 10 s; then Lambda starts it again within the function's timeout."""
    create_function(
        lam,
        fname,
        make_zip({"bootstrap": "#!/bin/sh\nexec sleep 600\n"}, {"bootstrap": 0o755}),
        runtime="provided.al2023",
        Timeout=1,
    )
    started = time.monotonic()
    response, body = invoke_json(lam, fname)
    elapsed = time.monotonic() - started
    assert 10.5 <= elapsed < 14, elapsed
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in body["errorMessage"]
