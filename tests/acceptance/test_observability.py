"""The observability API and CLI of a real engine: filtered invocation lists, attempt logs,
the overview, `lamina status` and `lamina trace --logs`, JSON engine logs."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.conftest import FUNCTIONS, ROOT, create_function, invoke_json, start_server, zip_dir

PACKAGE = zip_dir(FUNCTIONS / "python")


def lamina(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "lamina", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_lists_filter_by_type_outcome_and_time(server, lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.sleep")
    good, _ = invoke_json(lam, fname, {"seconds": 0})
    bad, _ = invoke_json(lam, fname, {"seconds": "soon"})
    assert (
        lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b'{"seconds": 0}')[
            "StatusCode"
        ]
        == 202
    )

    def ids(query: str) -> list[str]:
        return [
            i["RequestId"]
            for i in server.get(f"/_lamina/invocations?function={fname}&" + query)["Invocations"]
        ]

    sync = ids("type=sync")
    assert sync == [bad["ResponseMetadata"]["RequestId"], good["ResponseMetadata"]["RequestId"]]
    assert len(ids("type=async")) == 1
    assert ids("status=error") == sync[:1]
    assert ids("since=10m") and ids("since=1.0") and not ids("before=1.0")
    assert ids("type=sync&limit=1") == sync[:1]
    with pytest.raises(urllib.error.HTTPError) as caught:
        server.get("/_lamina/invocations?type=bogus")
    caught.value.close()  # its unread body holds the connection's socket
    assert caught.value.code == 400
    listed = json.loads(
        lamina(
            "invocations",
            fname,
            "--type",
            "sync",
            "--status",
            "error",
            "--endpoint",
            server.endpoint,
            "--json",
        )
    )
    assert [i["RequestId"] for i in listed] == sync[:1]


def test_attempt_logs_trace_and_status(server, lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.log_lines")
    response = lam.invoke(FunctionName=fname)
    request_id = response["ResponseMetadata"]["RequestId"]
    logs = server.get(f"/_lamina/invocations/{request_id}/logs")
    assert logs["FunctionName"] == fname and len(logs["Attempts"]) == 1
    lines = [line["Message"] for line in logs["Attempts"][0]["Lines"]]
    assert lines[0].startswith("INIT_START") and f"START RequestId: {request_id}" in lines[1]
    assert lines[-1].startswith(f"REPORT RequestId: {request_id}")

    text = lamina("trace", request_id, "--logs", "--endpoint", server.endpoint)
    assert text.splitlines()[0].split()[:2] == [request_id, fname]
    assert "attempt 1 cold" in text and f"END RequestId: {request_id}" in text
    traced = json.loads(
        lamina("trace", request_id, "--logs", "--json", "--endpoint", server.endpoint)
    )
    assert traced["Logs"][0]["Attempt"] == 1

    overview = json.loads(lamina("status", fname, "--json", "--endpoint", server.endpoint))
    (function,) = overview["Functions"]
    assert function["FunctionName"] == fname and overview["Mappings"] == []
    assert [env["State"] for env in function["Environments"]] in (["frozen"], ["warm"])
    assert function["Environments"][0]["LogStream"].endswith(function["Environments"][0]["Id"])
    assert fname in lamina("status", "--endpoint", server.endpoint)
    detail = server.get(f"/_lamina/functions/{fname}")
    assert detail["Configuration"]["Handler"] == "index.log_lines"
    assert server.get("/_lamina/mappings") == {"Mappings": []}
    assert all(q["Depth"] >= 0 for q in server.get("/_lamina/queues")["Queues"])


def test_console_files_are_served_from_the_package(server):
    with urllib.request.urlopen(server.endpoint + "/_lamina/") as page:
        assert page.headers["Content-Type"].startswith("text/html")
        html = page.read().decode()
    assert "/_lamina/static/console.js" in html and "http" not in html.split("<body>")[0]
    with urllib.request.urlopen(server.endpoint + "/_lamina/static/console.js") as script:
        assert script.headers["Content-Type"].startswith("text/javascript")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(server.endpoint + "/_lamina/static/..%2Fapp.py")
    caught.value.close()
    assert caught.value.code == 404


def test_engine_logs_as_json_lines(tmp_path):
    engine = start_server(tmp_path / "data", "--log-format", "json")
    engine.stop()
    records = [json.loads(line) for line in engine.log().splitlines() if line.startswith("{")]
    assert any(r["message"].startswith("Lamina is serving") for r in records)
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
