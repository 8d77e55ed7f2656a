"""`lamina deploy` of what the other tools make: a CDK cloud assembly synthesized by the real
aws-cdk CLI from a real aws-cdk-lib app (tests/cdk), and a Serverless Framework v3 package
made by the real `serverless package` (tests/serverless), each deployed to a real
`lamina serve` whose AWS endpoint is moto's server, called over HTTP, updated and destroyed;
checked with boto3 against Lamina and moto."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.acceptance.test_deploy import dlam, engine, invoke, lamina, resource, wait_for
from tests.conftest import ROOT, client

__all__ = ["dlam", "engine"]  # fixtures shared with test_deploy

CDK = ROOT / "tests" / "cdk"
CDK_CLI = CDK / "node_modules" / ".bin" / "cdk"
SLS = ROOT / "tests" / "serverless"
SLS_CLI = SLS / "node_modules" / ".bin" / "serverless"
# no AWS account, no profile, no network: what the tools get
OFFLINE = {
    "CDK_DISABLE_VERSION_CHECK": "1",
    "SLS_TELEMETRY_DISABLED": "1",
    "SLS_NOTIFICATIONS_MODE": "off",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _tool_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**env, **OFFLINE, "HOME": str(home), **extra}


def synth(app: Path, out: Path, tmp_path: Path, *context: str) -> Path:
    """`cdk synth` of the app at `app` into `out` (no AWS account: nothing is looked up)."""
    args = [str(CDK_CLI), "synth", "--quiet", "--no-notices", "--output", str(out)]
    for item in context:
        args += ["--context", item]
    done = subprocess.run(
        args,
        cwd=app,
        capture_output=True,
        text=True,
        timeout=180,
        env=_tool_env(tmp_path, NODE_PATH=str(CDK / "node_modules")),
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert (out / "manifest.json").is_file()
    return out


def deploy_json(path: Path, endpoint: str, *extra: str) -> dict:
    done = lamina("deploy", str(path), "--json", *extra, endpoint=endpoint)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def outputs(stack: dict) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.loads(answer.read())


def api_url(stack: dict, logical_prefix: str) -> str:
    (api,) = [a for a in stack["HttpApis"] if a["LogicalResourceId"].startswith(logical_prefix)]
    return api["FallbackUrl"]


needs_cdk = pytest.mark.skipif(
    shutil.which("node") is None or not CDK_CLI.exists(),
    reason="needs node and the aws-cdk CLI in tests/cdk/node_modules (scripts/setup --test)",
)
needs_sls = pytest.mark.skipif(
    shutil.which("node") is None or not SLS_CLI.exists(),
    reason="needs node and serverless@3 in tests/serverless/node_modules (scripts/setup --test)",
)


@needs_cdk
@pytest.mark.timeout(600)  # three `cdk synth` runs: minutes of CPU on a loaded 2-core machine
def test_cdk_app_synthesized_deployed_updated_destroyed(engine, dlam, moto, tmp_path):
    app = tmp_path / "shop"
    shutil.copytree(CDK / "app", app)
    out = synth(app, app / "cdk.out", tmp_path)

    # both stacks, the data stack first (the service stack imports its queue's ARN)
    found = deploy_json(app, engine.endpoint)
    data, service = found["Stacks"]
    assert (data["StackName"], service["StackName"]) == ("ShopData", "ShopService")
    assert data["StackStatus"] == service["StackStatus"] == "CREATE_COMPLETE"
    kinds = {r["ResourceType"] for r in service["Resources"]}
    assert {
        "AWS::CDK::Metadata",
        "AWS::IAM::Policy",
        "AWS::Lambda::Permission",
        "AWS::ApiGatewayV2::Integration",
        "AWS::ApiGatewayV2::Route",
        "AWS::ApiGateway::Method",
        "AWS::ApiGateway::Resource",
        "AWS::Lambda::EventSourceMapping",
        "AWS::Events::Rule",
    } <= kinds
    names = outputs(service)
    worker, web = names["WorkerName"], names["WebName"]
    queue_url = resource(data, "OrdersA9B65338")["PhysicalResourceId"]
    sqs = moto.client("sqs")
    assert queue_url in sqs.list_queues()["QueueUrls"]

    # the functions, as boto3 sees them: CDK's asset code, CloudFormation's tags
    config = dlam.get_function(FunctionName=web)
    assert config["Configuration"]["Runtime"] == "nodejs20.x"
    assert config["Tags"]["aws:cloudformation:stack-name"] == "ShopService"
    _, body = invoke(dlam, web, {"pathParameters": {"name": "direct"}})
    assert json.loads(body["body"]) == {
        "from": "node",
        "version": "v1",
        "queue": queue_url,
        "name": "direct",
    }
    _, body = invoke(dlam, worker, {"path": "/x"})
    assert json.loads(body["body"])["greeting"] == "hello"

    # the HTTP API route (HttpApi + HttpLambdaIntegration) and the REST API (LambdaRestApi)
    served = get_json(f"{api_url(service, 'Http')}/hello/ann")
    assert served["name"] == "ann" and served["routeKey"] == "GET /hello/{name}"
    rest = get_json(f"{api_url(service, 'Rest')}/any/path")
    assert rest["from"] == "python" and rest["path"] == "/any/path"
    assert get_json(f"{api_url(service, 'Rest')}/")["path"] == "/"

    # the SQS event source: a message sent to moto's queue reaches the Python function
    logs = client(engine.endpoint, "logs")
    sqs.send_message(QueueUrl=queue_url, MessageBody="order-1")
    wait_for(
        lambda: any(
            "order-1" in e["message"]
            for e in logs.filter_log_events(logGroupName=f"/aws/lambda/{worker}").get("events", [])
        ),
        timeout=60,
        what="the queue's message in the worker's log",
    )
    # the schedule: a rule the engine runs, with the target's Input
    (nightly,) = [
        s for s in engine.get("/_lamina/schedules")["Schedules"] if s.get("Stack") == "ShopService"
    ]
    assert nightly["ScheduleExpression"] == "rate(1 day)"
    assert nightly["TargetArn"].endswith(f":function:{worker}")
    assert json.loads(nightly["Input"]) == {"source": "nightly"}

    # CDK's LogRetention custom resource: refused, naming it, with nothing created
    with_custom = synth(app, tmp_path / "custom.out", tmp_path, "logRetention=1")
    before = len(dlam.list_functions()["Functions"])
    refused = lamina(
        "deploy", str(with_custom), "--stack-name", "ShopService", endpoint=engine.endpoint
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "Custom::LogRetention" in refused.stderr and "logGroup" in refused.stderr
    assert len(dlam.list_functions()["Functions"]) == before
    assert engine.get("/_lamina/stacks/ShopService")["StackStatus"] == "CREATE_COMPLETE"

    # an update: new Node code and a context value in the Python function's environment;
    # --stack-name picks one stack of the assembly
    source = app / "functions" / "node" / "index.js"
    source.write_text(source.read_text().replace("'v1'", "'v2'"))
    shutil.rmtree(out)
    synth(app, out, tmp_path, "greeting=hey")
    only = deploy_json(out, engine.endpoint, "--stack-name", "ShopService")
    assert only["StackName"] == "ShopService" and only["StackStatus"] == "UPDATE_COMPLETE"
    assert outputs(only)["WebName"] == web and outputs(only)["WorkerName"] == worker
    assert get_json(f"{api_url(only, 'Http')}/hello/bo") == {
        "from": "node",
        "version": "v2",
        "queue": queue_url,
        "name": "bo",
        "routeKey": "GET /hello/{name}",
    }
    _, body = invoke(dlam, worker, {})
    assert json.loads(body["body"])["greeting"] == "hey"
    again = lamina("deploy", str(out), endpoint=engine.endpoint)
    assert again.returncode == 0 and again.stdout.count("No changes to deploy") == 2

    # destroy: the service, then the data stack; nothing is left in Lamina or moto
    for name in ("ShopService", "ShopData"):
        done = lamina("destroy", name, endpoint=engine.endpoint)
        assert done.returncode == 0, done.stderr + done.stdout
    left = [f["FunctionName"] for f in dlam.list_functions()["Functions"]]
    assert worker not in left and web not in left
    assert queue_url not in sqs.list_queues().get("QueueUrls", [])
    assert not [
        s for s in engine.get("/_lamina/schedules")["Schedules"] if s.get("Stack") == "ShopService"
    ]
    assert not [
        a
        for a in engine.get("/_lamina/apis")["Apis"]
        if a.get("Stack") in ("ShopService", "ShopData")
    ]


def sls_package(service: Path, tmp_path: Path) -> Path:
    """`serverless package` with no AWS credentials or configuration at all."""
    done = subprocess.run(
        [str(SLS_CLI), "package"],
        cwd=service,
        capture_output=True,
        text=True,
        timeout=300,
        env=_tool_env(tmp_path),
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return service / ".serverless"


@needs_sls
@pytest.mark.timeout(600)  # `serverless package` may take its own 300 s under load
def test_serverless_package_deployed_called_updated_destroyed(engine, dlam, tmp_path):
    service = tmp_path / "greeter"
    shutil.copytree(SLS / "service", service)
    package = sls_package(service, tmp_path)
    assert (package / "cloudformation-template-update-stack.json").is_file()

    stack = deploy_json(service, engine.endpoint)
    assert stack["StackName"] == "greeter-dev" and stack["StackStatus"] == "CREATE_COMPLETE"
    # the deployment bucket only held the artifacts, which the engine holds now
    kinds = {r["LogicalResourceId"]: r["ResourceType"] for r in stack["Resources"]}
    assert "ServerlessDeploymentBucket" not in kinds
    assert kinds["HelloLambdaFunction"] == "AWS::Lambda::Function"
    # the framework's own name, version (its CodeSha256 matched) and log group
    config = dlam.get_function(FunctionName="greeter-dev-hello")["Configuration"]
    assert config["Timeout"] == 6 and config["Handler"] == "handler.hello"
    versions = dlam.list_versions_by_function(FunctionName="greeter-dev-hello")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1"]
    assert outputs(stack)["HelloLambdaFunctionQualifiedArn"].endswith(":greeter-dev-hello:1")

    # the httpApi event (Route + Integration resources) served, and the schedule
    served = get_json(f"{api_url(stack, 'HttpApi')}/hello/ann")
    assert served == {"message": "hello ann", "version": "v1"}
    # the http event (RestApi + Resource + Method, the Deployment's stage dev), payload 1.0
    rest = get_json(f"{api_url(stack, 'ApiGatewayRestApi')}/greet/cy")
    assert rest == {"message": "hello cy", "version": "v1"}
    assert api_url(stack, "ApiGatewayRestApi").endswith("/dev")
    (rule,) = [
        s for s in engine.get("/_lamina/schedules")["Schedules"] if s.get("Stack") == "greeter-dev"
    ]
    assert rule["ScheduleExpression"] == "rate(1 hour)"
    assert rule["TargetArn"].endswith(":function:greeter-dev-hello")
    _, body = invoke(dlam, "greeter-dev-hello", {"pathParameters": {"name": "x"}})
    assert json.loads(body["body"])["message"] == "hello x"

    # an update: new code, packaged again; the function is updated in place
    source = service / "handler.py"
    source.write_text(source.read_text().replace('"v1"', '"v2"'))
    shutil.rmtree(package)
    sls_package(service, tmp_path)
    updated = deploy_json(service, engine.endpoint)
    assert updated["StackStatus"] == "UPDATE_COMPLETE"
    assert get_json(f"{api_url(updated, 'HttpApi')}/hello/bo") == {
        "message": "hello bo",
        "version": "v2",
    }
    assert [
        v["Version"]
        for v in dlam.list_versions_by_function(FunctionName="greeter-dev-hello")["Versions"]
    ] == ["$LATEST", "1", "2"]

    done = lamina("destroy", "greeter-dev", endpoint=engine.endpoint)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "greeter-dev-hello" not in [
        f["FunctionName"] for f in dlam.list_functions()["Functions"]
    ]
    assert not [
        s for s in engine.get("/_lamina/schedules")["Schedules"] if s.get("Stack") == "greeter-dev"
    ]
