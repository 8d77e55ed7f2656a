"""Tenant isolation (TenancyConfig PER_TENANT, Invoke's TenantId) and LoggingConfig (JSON
application and system logs, log levels, LogGroup) with boto3."""

from __future__ import annotations

import base64
import json

import pytest
from botocore.exceptions import ClientError

from tests.acceptance.test_async import timeline
from tests.conftest import create_function, have_node, invoke_json, make_zip

COUNTER = """
import os
calls = 0
def handler(event, context):
    global calls
    calls += 1
    return {"calls": calls, "tenant": context.tenant_id, "pid": os.getpid(),
            "stream": context.log_stream_name}
"""


def _error(call) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def test_per_tenant_environments(lam, fname):
    create_function(
        lam,
        fname,
        make_zip({"index.py": COUNTER}),
        TenancyConfig={"TenantIsolationMode": "PER_TENANT"},
    )
    config = lam.get_function_configuration(FunctionName=fname)
    assert config["TenancyConfig"] == {"TenantIsolationMode": "PER_TENANT"}
    status, code, message = _error(lambda: lam.invoke(FunctionName=fname, Payload=b"{}"))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "Tenant ID" in message
    blue = [invoke_json(lam, fname, TenantId="blue")[1] for _ in range(2)]
    green = invoke_json(lam, fname, TenantId="green")[1]
    assert [b["calls"] for b in blue] == [1, 2] and blue[0]["stream"] == blue[1]["stream"]
    assert {b["tenant"] for b in blue} == {"blue"}
    assert green["calls"] == 1 and green["tenant"] == "green"
    assert green["stream"] != blue[0]["stream"]  # its own environment
    assert invoke_json(lam, fname, TenantId="blue")[1]["calls"] == 3  # blue's warm one again


def test_tenancy_is_set_at_creation_only(lam, fname):
    create_function(lam, fname, make_zip({"index.py": COUNTER}))
    status, code, _ = _error(lambda: lam.invoke(FunctionName=fname, Payload=b"{}", TenantId="blue"))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "TenancyConfig" not in lam.get_function_configuration(FunctionName=fname)
    response, body = invoke_json(lam, fname)
    assert body["tenant"] is None


def test_tenant_with_an_asynchronous_invoke(lam, fname, server):
    create_function(
        lam,
        fname,
        make_zip({"index.py": COUNTER}),
        TenancyConfig={"TenantIsolationMode": "PER_TENANT"},
    )
    accepted = lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b"{}", TenantId="red")
    assert accepted["StatusCode"] == 202
    status, code, _ = _error(
        lambda: lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b"{}")
    )
    assert (status, code) == (400, "InvalidParameterValueException")
    # the event ran in red's environment: the next red call is its second
    entries = timeline(server, accepted["ResponseMetadata"]["RequestId"], until_kind="attempt")
    assert [e["outcome"] for e in entries if e["Kind"] == "attempt"] == ["success"]
    assert invoke_json(lam, fname, TenantId="red")[1]["calls"] == 2


LOGGING_PY = """
import logging
logger = logging.getLogger("app")
def handler(event, context):
    print("plain print line")
    logger.debug("debug detail")
    logger.info("info line")
    logger.warning("warning line", extra={"orderId": 7})
    try:
        raise ValueError("bad value")
    except ValueError:
        logger.exception("caught it")
    return {"ok": True}
"""


def _tail(response) -> list[str]:
    return base64.b64decode(response["LogResult"]).decode().splitlines()


def _json_lines(lines: list[str]) -> list[dict]:
    out = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def test_json_logs_from_python(lam, fname):
    create_function(
        lam,
        fname,
        make_zip({"index.py": LOGGING_PY}),
        LoggingConfig={
            "LogFormat": "JSON",
            "ApplicationLogLevel": "INFO",
            "SystemLogLevel": "INFO",
            "LogGroup": "/custom/orders",
        },
    )
    config = lam.get_function_configuration(FunctionName=fname)["LoggingConfig"]
    assert config == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "INFO",
        "LogGroup": "/custom/orders",
    }
    response = lam.invoke(FunctionName=fname, Payload=b"{}", LogType="Tail")
    request_id = response["ResponseMetadata"]["RequestId"]
    lines = _tail(response)
    assert "plain print line" in lines  # print stays text, as on AWS
    records = _json_lines(lines)
    app = [r for r in records if "level" in r]
    assert [r["message"] for r in app] == ["info line", "warning line", "caught it"]
    info = app[0]
    assert info["level"] == "INFO" and info["requestId"] == request_id
    assert info["logger"] == "app" and info["timestamp"].endswith("Z")
    assert app[1]["orderId"] == 7 and app[1]["level"] == "WARNING"
    assert app[2]["errorType"] == "ValueError" and app[2]["errorMessage"] == "bad value"
    platform = {r["type"]: r["record"] for r in records if "type" in r}
    assert platform["platform.start"] == {"requestId": request_id, "version": "$LATEST"}
    report = platform["platform.report"]
    assert report["requestId"] == request_id and report["status"] == "success"
    assert set(report["metrics"]) >= {
        "durationMs",
        "billedDurationMs",
        "memorySizeMB",
        "maxMemoryUsedMB",
        "initDurationMs",
    }
    assert "platform.initStart" in platform
    assert not any(line.startswith(("START ", "REPORT ", "END ")) for line in lines)


def test_log_levels_filter(lam, fname):
    create_function(
        lam,
        fname,
        make_zip({"index.py": LOGGING_PY}),
        LoggingConfig={
            "LogFormat": "JSON",
            "ApplicationLogLevel": "ERROR",
            "SystemLogLevel": "WARN",
        },
    )
    records = _json_lines(_tail(lam.invoke(FunctionName=fname, Payload=b"{}", LogType="Tail")))
    assert [r["message"] for r in records if "level" in r] == ["caught it"]
    assert not [r for r in records if "type" in r]  # start and report are INFO
    lam.update_function_configuration(
        FunctionName=fname,
        LoggingConfig={"ApplicationLogLevel": "DEBUG", "SystemLogLevel": "DEBUG"},
    )
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    records = _json_lines(_tail(lam.invoke(FunctionName=fname, Payload=b"{}", LogType="Tail")))
    assert "debug detail" in [r["message"] for r in records if "level" in r]
    assert "platform.runtimeDone" in [r.get("type") for r in records]


def test_logging_config_rules(lam, fname):
    create_function(
        lam, fname, make_zip({"index.py": LOGGING_PY}), LoggingConfig={"LogFormat": "JSON"}
    )
    config = lam.get_function_configuration(FunctionName=fname)["LoggingConfig"]
    assert config == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "INFO",
        "LogGroup": f"/aws/lambda/{fname}",
    }
    lam.update_function_configuration(FunctionName=fname, LoggingConfig={"LogFormat": "Text"})
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    assert lam.get_function_configuration(FunctionName=fname)["LoggingConfig"] == {
        "LogFormat": "Text",
        "LogGroup": f"/aws/lambda/{fname}",
    }
    status, code, _ = _error(
        lambda: lam.update_function_configuration(
            FunctionName=fname, LoggingConfig={"ApplicationLogLevel": "DEBUG"}
        )
    )
    assert (status, code) == (400, "InvalidParameterValueException")
    lines = _tail(lam.invoke(FunctionName=fname, Payload=b"{}", LogType="Tail"))
    assert any(line.startswith("REPORT RequestId:") for line in lines)
    # Text, no level: the root logger stays at WARNING, as on AWS
    assert any(line.startswith("[WARNING]") and "warning line" in line for line in lines)
    assert not any("info line" in line for line in lines)


LOGGING_JS = """
exports.handler = async (event, context) => {
  process.stdout.write("plain stdout line\\n");
  console.debug("debug detail");
  console.info("info line");
  console.warn("warning line");
  console.error(new Error("bad value"));
  return { ok: true };
};
"""


@pytest.mark.skipif(not have_node(), reason="node is not installed")
def test_json_logs_from_nodejs(lam, fname):
    create_function(
        lam,
        fname,
        make_zip({"index.js": LOGGING_JS}),
        runtime="nodejs20.x",
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "INFO"},
    )
    response = lam.invoke(FunctionName=fname, Payload=b"{}", LogType="Tail")
    request_id = response["ResponseMetadata"]["RequestId"]
    lines = _tail(response)
    assert "plain stdout line" in lines
    app = [r for r in _json_lines(lines) if "level" in r]
    assert [r["level"] for r in app] == ["INFO", "WARN", "ERROR"]
    assert app[0]["message"] == "info line" and app[0]["requestId"] == request_id
    # one Error argument: the message is the error, as AWS's Node.js runtime writes it
    assert app[2]["message"]["errorType"] == "Error"
    assert app[2]["message"]["errorMessage"] == "bad value"
