"""`lamina serve --store postgresql://…`: one engine, two engines sharing the work, restarts."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import (
    FUNCTIONS,
    client,
    create_function,
    invoke_json,
    start_unsandboxed,
    zip_dir,
)

PACKAGE = zip_dir(FUNCTIONS / "async")


def runs(runs_dir: Path, request_id: str) -> list[dict]:
    path = runs_dir / request_id
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def send(lam, name: str, payload: dict) -> str:
    response = lam.invoke(
        FunctionName=name, InvocationType="Event", Payload=json.dumps(payload).encode()
    )
    assert response["StatusCode"] == 202
    return response["ResponseMetadata"]["RequestId"]


def test_one_engine_on_postgres_survives_a_restart(postgres, tmp_path):
    url = postgres.new_database()
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    first = start_unsandboxed(tmp_path / "a", "--store", url, "--time-scale", "60")
    lam = client(first.endpoint)
    create_function(
        lam,
        "pg-fail",
        PACKAGE,
        handler="index.fail",
        Environment={"Variables": {"RUNS_DIR": str(runs_dir)}},
    )
    lam.put_function_event_invoke_config(FunctionName="pg-fail", MaximumRetryAttempts=1)
    request_id = send(lam, "pg-fail", {"n": 1})
    wait_for(lambda: len(runs(runs_dir, request_id)) == 2)
    sha = lam.get_function(FunctionName="pg-fail")["Configuration"]["CodeSha256"]
    first.stop()
    lam.close()
    second = start_unsandboxed(
        tmp_path / "b", "--store", url
    )  # another data dir: code from the store
    try:
        lam = client(second.endpoint)
        assert lam.get_function(FunctionName="pg-fail")["Configuration"]["CodeSha256"] == sha
        response, body = invoke_json(lam, "pg-fail")
        assert body["errorMessage"] == "intentional failure"
        summary = second.get(f"/_lamina/invocations/{request_id}")["Invocation"]
        assert (summary["Status"], summary["Attempts"]) == ("failed", 2)
        lam.close()
    finally:
        second.stop()


def test_two_engines_share_functions_and_the_queue(postgres, tmp_path):
    url = postgres.new_database(migrated=True)
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    engines = [start_unsandboxed(tmp_path / name, "--store", url) for name in ("a", "b")]
    try:
        a, b = (client(e.endpoint) for e in engines)
        create_function(
            a,
            "shared",
            PACKAGE,
            handler="index.slow",
            Timeout=10,
            Environment={"Variables": {"RUNS_DIR": str(runs_dir)}},
        )
        wait_for(lambda: _known(b, "shared"), timeout=5)
        assert invoke_json(b, "shared", {"seconds": 0})[1] == "slept"
        accepted = [send(a if n % 2 else b, "shared", {"seconds": 0.2, "n": n}) for n in range(30)]
        wait_for(lambda: all(len(runs(runs_dir, r)) == 2 for r in accepted), timeout=60)
        engine_pids = {
            json.loads((runs_dir / r).read_text().splitlines()[0])["engine"] for r in accepted
        }
        assert engine_pids == {e.process.pid for e in engines}, "both engines took events"
        for request_id in accepted:
            assert [r["outcome"] for r in runs(runs_dir, request_id)] == ["start", "end"]
    finally:
        for engine in engines:
            engine.stop()


def test_an_engine_does_not_reload_its_own_changes_under_a_request(postgres, tmp_path):
    """An engine hears its own changes back from PostgreSQL. Reloading them would replace
    function entries that requests in flight hold: create → publish → alias then failed
    about once in 20 functions ("update in progress", or an alias to an unknown version)."""
    engine = start_unsandboxed(tmp_path / "data", "--store", postgres.new_database(migrated=True))
    lam = client(engine.endpoint)
    try:
        for n in range(30):
            name = f"quick-{n}"
            create_function(lam, name, PACKAGE, handler="index.slow", Tags={"n": str(n)})
            assert lam.publish_version(FunctionName=name)["Version"] == "1"
            lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
            lam.tag_resource(
                Resource=lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"],
                Tags={"more": "yes"},
            )
            assert lam.get_alias(FunctionName=name, Name="live")["FunctionVersion"] == "1"
            assert lam.get_function(FunctionName=name)["Tags"] == {"n": str(n), "more": "yes"}
    finally:
        lam.close()
        engine.stop()
    assert "Traceback" not in engine.log()


def test_layers_and_function_urls_made_on_one_engine_work_on_another(postgres, tmp_path):
    import http.client

    from tests.conftest import make_zip

    url = postgres.new_database(migrated=True)
    engines = [start_unsandboxed(tmp_path / name, "--store", url) for name in ("a", "b")]
    try:
        a, b = (client(e.endpoint) for e in engines)
        layer = a.publish_layer_version(
            LayerName="shared",
            Content={"ZipFile": make_zip({"python/shared_word.py": "WORD = 'from a layer'\n"})},
        )
        create_function(
            a,
            "urls",
            make_zip(
                {
                    "index.py": "from shared_word import WORD\n\n\n"
                    "def layered(event, context):\n"
                    "    return WORD\n"
                }
            ),
            handler="index.layered",
            Layers=[layer["LayerVersionArn"]],
        )
        function_url = a.create_function_url_config(FunctionName="urls", AuthType="NONE")[
            "FunctionUrl"
        ]
        wait_for(lambda: _known(b, "urls"), timeout=5)
        host = function_url.split("//", 1)[1].rstrip("/").rsplit(":", 1)[0]

        def served_by_b() -> bool:
            conn = http.client.HTTPConnection("127.0.0.1", engines[1].port, timeout=10)
            conn.request("GET", "/", headers={"Host": f"{host}:{engines[1].port}"})
            response = conn.getresponse()
            body = response.read()
            conn.close()
            return response.status == 200 and body == b"from a layer"  # a string: the body

        wait_for(served_by_b, timeout=5)
        assert b.get_layer_version(LayerName="shared", VersionNumber=1)["Version"] == 1
    finally:
        for engine in engines:
            engine.stop()


def _known(lam, name: str) -> bool:
    try:
        lam.get_function(FunctionName=name)
        return True
    except ClientError:
        return False


def test_postgres_restart_loses_nothing_acknowledged(postgres, tmp_path):
    url = postgres.new_database(migrated=True)
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    engine = start_unsandboxed(tmp_path / "data", "--store", url)
    try:
        lam = client(engine.endpoint)
        create_function(
            lam,
            "pg-ok",
            PACKAGE,
            handler="index.succeed",
            Environment={"Variables": {"RUNS_DIR": str(runs_dir)}},
        )
        before = send(lam, "pg-ok", {"before": True})
        postgres.ctl("-m", "fast", "stop")
        try:
            with pytest.raises(ClientError) as error:
                lam.invoke(FunctionName="pg-ok", InvocationType="Event", Payload=b"{}")
            assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
            assert error.value.response["Error"]["Code"] == "ServiceException"
        finally:
            postgres.ctl(
                "-o",
                f"-p {postgres.port} -k {postgres.socket_dir} "
                "-c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
                "-l",
                str(postgres.socket_dir / "log"),
                "start",
            )
        deadline = time.monotonic() + 20
        while True:
            try:
                after = send(lam, "pg-ok", {"after": True})
                break
            except ClientError:
                assert time.monotonic() < deadline, "the engine did not recover"
                time.sleep(0.2)
        wait_for(lambda: runs(runs_dir, before) and runs(runs_dir, after))
        assert [r["event"] for r in runs(runs_dir, before)] == [{"before": True}]
        assert "Traceback" not in engine.log()
        lam.close()
    finally:
        engine.stop()


def test_one_engine_runs_the_pollers_and_another_takes_over_when_it_dies(postgres, moto, tmp_path):
    """Mappings are shared through the store; one engine at a time runs their pollers."""
    from tests.acceptance.test_mappings import PACKAGE as ESM
    from tests.acceptance.test_mappings import batches, queue

    url = postgres.new_database(migrated=True)
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    env = {"AWS_ENDPOINT_URL": moto.endpoint}
    first = start_unsandboxed(tmp_path / "a", "--store", url, env=env)
    second = start_unsandboxed(tmp_path / "b", "--store", url, env=env)
    sqs = moto.client("sqs")
    # messages a killed engine had received come back after the visibility timeout
    queue_url, arn = queue(sqs, "pg-esm", VisibilityTimeout=4)
    try:
        a, b = client(first.endpoint), client(second.endpoint)
        create_function(
            a,
            "pg-esm",
            ESM,
            handler="index.sqs",
            Environment={"Variables": {"RUNS_DIR": str(runs_dir)}},
        )
        wait_for(lambda: _known(b, "pg-esm"), timeout=5)
        mapping = b.create_event_source_mapping(FunctionName="pg-esm", EventSourceArn=arn)
        wait_for(
            lambda: (
                [m["UUID"] for m in a.list_event_source_mappings()["EventSourceMappings"]]
                == [mapping["UUID"]]
            ),
            timeout=5,
        )
        for n in range(5):
            sqs.send_message(QueueUrl=queue_url, MessageBody=f"first-{n}")
        wait_for(lambda: sum(len(x["Records"]) for x in batches(runs_dir)) == 5, timeout=30)
        assert "this engine runs the event source mapping pollers" in first.log()
        assert "this engine runs the event source mapping pollers" not in second.log()
        wait_for(
            lambda: (
                b.get_event_source_mapping(UUID=mapping["UUID"]).get("LastProcessingResult") == "OK"
            ),
            timeout=5,
        )  # the leader's result, seen from b

        b.update_event_source_mapping(UUID=mapping["UUID"], BatchSize=3)
        wait_for(
            lambda: a.get_event_source_mapping(UUID=mapping["UUID"])["BatchSize"] == 3, timeout=5
        )
        first.stop(signal.SIGKILL)
        a.close()
        for n in range(4):
            sqs.send_message(QueueUrl=queue_url, MessageBody=f"second-{n}")
        wait_for(lambda: sum(len(x["Records"]) for x in batches(runs_dir)) == 9, timeout=30)
        assert "this engine runs the event source mapping pollers" in second.log()
        assert all(len(x["Records"]) <= 3 for x in batches(runs_dir)[-2:])
        bodies = sorted(r["body"] for x in batches(runs_dir) for r in x["Records"])
        assert bodies == sorted(
            [f"first-{n}" for n in range(5)] + [f"second-{n}" for n in range(4)]
        ), "each message once"

        b.delete_event_source_mapping(UUID=mapping["UUID"])
        wait_for(lambda: not b.list_event_source_mappings()["EventSourceMappings"], timeout=10)
        b.close()
    finally:
        first.stop()
        second.stop()


def test_signing_and_capacity_providers_made_on_one_engine_hold_on_another(postgres, tmp_path):
    """A code signing configuration (Enforce) and a capacity provider created on engine a are
    known to engine b: b refuses an unsigned deployment and finds the provider."""
    from tests.conftest import make_zip

    url = postgres.new_database(migrated=True)
    engines = [start_unsandboxed(tmp_path / name, "--store", url) for name in ("a", "b")]
    try:
        a, b = (client(e.endpoint) for e in engines)
        package = make_zip({"index.py": "def handler(event, context):\n    return event\n"})
        create_function(a, "signed", package, handler="index.handler")
        signing = a.create_code_signing_config(
            AllowedPublishers={
                "SigningProfileVersionArns": [
                    "arn:aws:signer:us-east-1:123456789012:/signing-profiles/p/x"
                ]
            },
            CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Enforce"},
        )["CodeSigningConfig"]["CodeSigningConfigArn"]
        a.put_function_code_signing_config(FunctionName="signed", CodeSigningConfigArn=signing)
        provider = a.create_capacity_provider(
            CapacityProviderName="shared",
            VpcConfig={"SubnetIds": ["subnet-1"], "SecurityGroupIds": []},
            PermissionsConfig={
                "CapacityProviderOperatorRoleArn": "arn:aws:iam::123456789012:role/operator"
            },
        )

        # b hears of the attachment (an update made on b before that would write b's older
        # $LATEST over it: engines sharing a store keep the last write of a function)
        def attached_on_b() -> bool:
            try:
                found = b.get_function_code_signing_config(FunctionName="signed")
            except ClientError:
                return False
            return found.get("CodeSigningConfigArn") == signing

        wait_for(attached_on_b, timeout=5)

        def refused_by_b() -> bool:
            try:
                b.update_function_code(FunctionName="signed", ZipFile=package)
            except ClientError as error:
                return error.response["Error"]["Code"] == "CodeVerificationFailedException"
            return False

        def provider_on_b() -> bool:
            try:
                found = b.get_capacity_provider(CapacityProviderName="shared")
            except ClientError:
                return False
            return (
                found["CapacityProvider"]["CapacityProviderArn"]
                == provider["CapacityProvider"]["CapacityProviderArn"]
            )

        wait_for(refused_by_b, timeout=5)
        wait_for(provider_on_b, timeout=5)
    finally:
        for engine in engines:
            engine.stop()
    for engine in engines:
        assert "Traceback" not in engine.log()
