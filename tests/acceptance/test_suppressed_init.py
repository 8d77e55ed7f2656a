"""An Init over Lambda's 10 s limit, for real: a Python function that sleeps 11 s at import.

Lambda does not fail the call: it retries Init inside the first invocation ("suppressed
init"), bounded by the function's timeout. The call succeeds; the log shows INIT_REPORT with
`Status: timeout`, then START, the retried Init's output, and a REPORT whose Duration covers
the retried Init and has no Init Duration. The engine's time scale does not shorten a
function's own limits, so this is the suite's one test that waits 21 s: marked slow (the same
path runs in tests/unit/test_environment.py with a 0.05 s limit).
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.conftest import create_function, make_zip

pytestmark = pytest.mark.slow

SLOW_IMPORT = """import time
print("importing")
time.sleep(11)

def handler(event, context):
    return {"remaining_ms": context.get_remaining_time_in_millis()}
"""


def test_init_over_ten_seconds_is_retried_inside_the_first_invocation(lam, fname):
    create_function(lam, fname, make_zip({"index.py": SLOW_IMPORT}), Timeout=30)
    started = time.monotonic()
    response = lam.invoke(FunctionName=fname, LogType="Tail")
    elapsed = time.monotonic() - started
    body = response["Payload"].read()
    assert "FunctionError" not in response, body
    log = base64.b64decode(response["LogResult"]).decode()
    assert 20 < elapsed < 30, log
    lines = log.splitlines()
    init_report = next(line for line in lines if line.startswith("INIT_REPORT"))
    assert "Phase: init\tStatus: timeout" in init_report
    assert lines.index(init_report) < next(
        i for i, line in enumerate(lines) if line.startswith("START RequestId")
    )
    assert log.count("importing") == 2  # once in Init, once retried inside the invocation
    report = next(line for line in lines if line.startswith("REPORT"))
    assert "Init Duration" not in report
    duration_ms = float(report.split("Duration: ")[1].split(" ms")[0])
    assert duration_ms > 11000, report
    # the function's 30 s timeout covered the retried Init too
    assert json.loads(body)["remaining_ms"] < 19500
    # the environment is warm now: the next call has no Init at all
    again = lam.invoke(FunctionName=fname, LogType="Tail")
    assert "FunctionError" not in again
    assert "importing" not in base64.b64decode(again["LogResult"]).decode()
