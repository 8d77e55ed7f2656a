"""The web console in a real browser: Playwright driving Debian's Chromium.

An engine with time scaled 60× runs a function that always fails, with an SQS dead-letter
queue in moto. One Event invoke is retried twice, given up and dead-lettered; the test then
finds the function in the console, opens that invocation's timeline and checks what it shows.
A screenshot of the timeline is kept (pytest's tmp dir and test-artifacts/).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.acceptance.conftest import module_client, module_engine
from tests.conftest import FUNCTIONS, ROOT, client, create_function, zip_dir

CHROMIUM = os.environ.get("LAMINA_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - scripts/setup --test installs it
    sync_playwright = None

pytestmark = pytest.mark.skipif(
    sync_playwright is None or not Path(CHROMIUM).exists(),
    reason=f"needs the playwright package and Chromium at {CHROMIUM} "
    "(scripts/setup --test installs both; apt-get install chromium)",
)


engine = module_engine(
    "console", "--sandbox", "none", "--time-scale", "60", moto_env="AWS_ENDPOINT_URL"
)
clam = module_client()


@pytest.fixture(scope="module")
def page():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 1000})
        yield context.new_page()
        context.close()
        browser.close()


@pytest.fixture(scope="module")
def dead_lettered(engine, clam, moto, tmp_path_factory):
    """(function, request id, DLQ arn) of an event that failed three times and was
    dead-lettered."""
    sqs = moto.client("sqs")
    name = f"console-{int(time.time() * 1000) % 10**8}"
    url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    runs = tmp_path_factory.mktemp("runs")
    create_function(
        clam,
        name,
        zip_dir(FUNCTIONS / "async"),
        handler="index.fail",
        Environment={"Variables": {"RUNS_DIR": str(runs)}},
        DeadLetterConfig={"TargetArn": arn},
    )
    response = clam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"order": 7}')
    request_id = response["ResponseMetadata"]["RequestId"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        kinds = [e["Kind"] for e in engine.get(f"/_lamina/invocations/{request_id}")["Timeline"]]
        if "destination_delivered" in kinds:
            break
        time.sleep(0.2)
    assert kinds.count("attempt") == 3 and "discarded" in kinds, kinds
    message = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"][0]
    assert json.loads(message["Body"]) == {"order": 7}
    return name, request_id, arn


def test_the_timeline_of_a_dead_lettered_event(engine, page, dead_lettered, tmp_path):
    name, request_id, dlq = dead_lettered
    page.goto(f"{engine.endpoint}/_lamina/")
    page.fill("#function-search", name)
    rows = page.locator("#functions-table tbody tr")
    expect(rows).to_have_count(1)
    rows.locator("a.fn-link", has_text=name).click()
    expect(page.locator("h1")).to_contain_text(name)
    expect(page.locator("dd", has_text=dlq).first).to_be_visible()
    page.locator(f'a.trace-link:text-is("{request_id}")').click()

    timeline = page.locator("#timeline")
    expect(timeline.locator('.tl-row[data-kind="destination_delivered"]')).to_have_count(1)
    expect(timeline.locator('.tl-row[data-kind="attempt"]')).to_have_count(3)
    expect(timeline.locator('.tl-row[data-kind="attempt"].error')).to_have_count(3)
    expect(timeline.locator('.tl-row[data-kind="attempt"]').first).to_contain_text("cold start")
    retries = timeline.locator('.tl-row[data-kind="retry_scheduled"]')
    expect(retries).to_have_count(2)
    expect(retries.nth(0)).to_contain_text("function error")
    expect(retries.nth(0)).to_contain_text(re.compile(r"in (59|60)\.\d s"))
    expect(retries.nth(1)).to_contain_text(re.compile(r"in (119|120)\.\d s|in 2\.0 min"))
    expect(timeline.locator('.tl-row[data-kind="discarded"]')).to_contain_text(
        "RetriesExhausted after 3 invocation(s)"
    )
    delivered = timeline.locator(
        '.tl-row[data-kind="destination_delivered"][data-destination="dlq"]'
    )
    expect(delivered).to_contain_text("DLQ delivered")
    expect(delivered).to_contain_text(dlq)
    expect(page.locator("#trace-summary")).to_contain_text("failed")
    expect(page.locator("#trace-summary")).to_contain_text("3 ran · 2 retries scheduled")

    logs = page.locator("#attempt-logs section")
    expect(logs).to_have_count(3)
    for n in range(3):
        expect(logs.nth(n)).to_contain_text(f"START RequestId: {request_id}")
        expect(logs.nth(n)).to_contain_text("intentional failure")
    timeline.locator('.tl-row[data-attempt="2"]').click()
    expect(page.locator('#attempt-logs section[data-attempt="2"]')).to_have_class("selected")

    shot = tmp_path / "console-timeline.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / shot.name)


def test_the_invocation_list_filters_and_updates_without_reloading(
    engine, clam, page, dead_lettered
):
    name, request_id, _ = dead_lettered
    page.goto(f"{engine.endpoint}/_lamina/#/invocations?function={name}")
    rows = page.locator("#invocations-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("failed")
    page.evaluate("window.__sameDocument = true")
    clam.invoke(FunctionName=name, Payload=b"{}")
    expect(rows).to_have_count(2, timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True
    expect(rows.first).to_contain_text("sync")
    page.select_option("#filter-type", "async")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(request_id)
    page.select_option("#filter-type", "")
    page.select_option("#filter-status", "error")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("sync")
    page.select_option("#filter-status", "success")
    expect(page.locator("#view .empty")).to_contain_text("No invocations recorded")


def test_environments_queues_and_mappings_are_shown(engine, page, dead_lettered):
    name, _, _ = dead_lettered
    page.goto(f"{engine.endpoint}/_lamina/#/functions/{name}")
    expect(page.locator("#view table").filter(has_text="Log stream")).to_contain_text("frozen")
    page.goto(f"{engine.endpoint}/_lamina/#/queues")
    expect(page.locator(f'#queues-table tr[data-function="{name}"]')).to_contain_text("0")
    page.goto(f"{engine.endpoint}/_lamina/#/mappings")
    expect(page.locator("#no-mappings")).to_contain_text("No event source mappings")


def test_schedules_and_http_apis_are_shown(engine, clam, page):
    """The console lists each schedule with its next due time and each HTTP API with its URL
    and routes."""
    import urllib.request

    create_function(clam, "console-sched", zip_dir(FUNCTIONS / "events"), handler="index.echo")
    arn = "arn:aws:lambda:us-east-1:123456789012:function:console-sched"

    def put(path: str, body: dict) -> None:
        request = urllib.request.Request(
            engine.endpoint + path, method="PUT", data=json.dumps(body).encode()
        )
        urllib.request.urlopen(request, timeout=30).read()

    put(
        "/_lamina/schedules/console-nightly",
        {"ScheduleExpression": "cron(0 3 * * ? *)", "TargetArn": arn},
    )
    put(
        "/_lamina/apis/consoleapi",
        {
            "Name": "console-api",
            "ProtocolType": "HTTP",
            "Routes": [{"Method": "GET", "Path": "/hello/{name}", "TargetArn": arn}],
        },
    )
    page.goto(f"{engine.endpoint}/_lamina/#/schedules")
    row = page.locator('[data-schedule="console-nightly"]')
    expect(row).to_contain_text("cron(0 3 * * ? *)")
    expect(row).to_contain_text("03:00:00Z")
    page.goto(f"{engine.endpoint}/_lamina/#/apis")
    panel = page.locator('[data-api="consoleapi"]')
    expect(panel).to_contain_text(f"http://consoleapi.execute-api.localhost:{engine.port}")
    expect(panel).to_contain_text("GET /hello/{name}")


def test_stacks_are_shown(engine, clam, page):
    """A stack `lamina deploy` made: its status, resources (functions linked) and outputs."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    app = Path(__file__).resolve().parent.parent / "apps" / "cfn-inline"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lamina",
            "deploy",
            str(app),
            "--stack-name",
            "console-stack",
            "--endpoint-url",
            engine.endpoint,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    page.goto(f"{engine.endpoint}/_lamina/#/stacks")
    panel = page.locator('[data-stack="console-stack"]')
    expect(panel).to_contain_text("CREATE_COMPLETE")
    expect(panel).to_contain_text("AWS::Lambda::Function")
    expect(panel).to_contain_text("EchoName")
    expect(panel.locator("a", has_text="console-stack-Echo-")).to_have_count(1)


def test_the_invocations_in_flight_in_a_managed_instances_environment(engine, clam, page):
    """A Managed Instances environment runs several invocations at once: the function's page
    shows how many of its PerExecutionEnvironmentMaxConcurrency are taken, and which."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.acceptance.test_capacity_providers import new_provider, on_provider
    from tests.acceptance.test_managed_instances import PYTHON

    name = f"managed-{int(time.time() * 1000) % 10**8}"
    arn = new_provider(clam)["CapacityProviderArn"]
    create_function(
        clam,
        name,
        PYTHON,
        runtime="python3.13",
        Timeout=30,
        CapacityProviderConfig=on_provider(arn, PerExecutionEnvironmentMaxConcurrency=3),
    )
    with ThreadPoolExecutor(2) as pool:
        calls = [
            pool.submit(
                lambda: json.load(
                    client(engine.endpoint).invoke(FunctionName=name, Payload=b'{"sleep": 4}')[
                        "Payload"
                    ]
                )
            )
            for _ in range(2)
        ]
        page.goto(f"{engine.endpoint}/_lamina/#/functions/{name}")
        cell = page.locator('#view td[data-in-flight="2"]')
        expect(cell).to_contain_text("2 / 3", timeout=15_000)
        shown = cell.locator("a.in-flight").evaluate_all("links => links.map(a => a.title)")
        ids = [body["request_id"] for body in (call.result() for call in calls)]
    assert sorted(shown) == sorted(ids)
    expect(page.locator('#view td[data-in-flight="0"]')).to_contain_text("0 / 3", timeout=15_000)
