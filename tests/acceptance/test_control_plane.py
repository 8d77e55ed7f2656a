"""Control-plane operations with boto3: shapes, state, pagination, validation, conflicts."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import zipfile

import pytest
from botocore.exceptions import ClientError

from tests.conftest import (
    FUNCTIONS,
    PY_RUNTIME,
    ROLE,
    create_function,
    invoke_json,
    make_zip,
    zip_dir,
)

PACKAGE = zip_dir(FUNCTIONS / "python")


def error_of(call, *args, **kwargs) -> dict:
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    response = raised.value.response
    return {
        "code": response["Error"]["Code"],
        "message": response["Error"].get("Message", ""),
        "status": response["ResponseMetadata"]["HTTPStatusCode"],
        "raw": response,
    }


def test_create_answers_pending_then_becomes_active(lam, fname):
    response = lam.create_function(
        FunctionName=fname,
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="index.echo",
        Code={"ZipFile": PACKAGE},
        Description="d",
        Timeout=7,
        MemorySize=512,
        Environment={"Variables": {"AA": "1"}},
        Tags={"team": "x"},
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert response["State"] == "Pending"
    assert response["StateReasonCode"] == "Creating"
    assert response["FunctionArn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{fname}"
    assert response["CodeSha256"] == base64.b64encode(hashlib.sha256(PACKAGE).digest()).decode()
    assert response["CodeSize"] == len(PACKAGE)
    assert (response["Timeout"], response["MemorySize"], response["Description"]) == (7, 512, "d")
    assert response["Environment"] == {"Variables": {"AA": "1"}}
    assert response["Version"] == "$LATEST"
    assert response["PackageType"] == "Zip" and response["Architectures"] == ["x86_64"]
    lam.get_waiter("function_active_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    got = lam.get_function(FunctionName=fname)
    assert got["Configuration"]["State"] == "Active"
    assert got["Tags"] == {"team": "x"}
    assert got["Code"]["RepositoryType"] == "S3"
    import urllib.request

    with urllib.request.urlopen(got["Code"]["Location"]) as downloaded:
        assert downloaded.read() == PACKAGE
    config = lam.get_function_configuration(FunctionName=fname)
    assert config["RevisionId"] == got["Configuration"]["RevisionId"]
    assert lam.list_tags(Resource=response["FunctionArn"])["Tags"] == {"team": "x"}


def test_list_functions_paginates(lam, fname):
    names = [f"{fname}-{i}" for i in range(3)]
    for name in names:
        create_function(lam, name, PACKAGE, handler="index.echo")
    seen, marker = [], None
    while True:
        page = lam.list_functions(MaxItems=2, **({"Marker": marker} if marker else {}))
        assert len(page["Functions"]) <= 2
        seen += [f["FunctionName"] for f in page["Functions"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert [n for n in seen if n.startswith(fname)] == names
    paginated = [
        f["FunctionName"]
        for p in lam.get_paginator("list_functions").paginate()
        for f in p["Functions"]
    ]
    assert set(names) <= set(paginated)


def test_update_code_and_configuration(lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    before = lam.get_function_configuration(FunctionName=fname)
    new_code = make_zip({"index.py": "def echo(event, context):\n    return 'v2'\n"})
    updated = lam.update_function_code(FunctionName=fname, ZipFile=new_code)
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["CodeSha256"] != before["CodeSha256"]
    assert updated["RevisionId"] != before["RevisionId"]
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    assert invoke_json(lam, fname)[1] == "v2"
    lam.update_function_configuration(
        FunctionName=fname,
        Timeout=9,
        MemorySize=256,
        Environment={"Variables": {"BB": "2"}},
        Handler="index.describe",
    )
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    lam.update_function_code(FunctionName=fname, ZipFile=PACKAGE)
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=fname, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    config = lam.get_function_configuration(FunctionName=fname)
    assert (config["Timeout"], config["MemorySize"], config["LastUpdateStatus"]) == (
        9,
        256,
        "Successful",
    )
    body = invoke_json(lam, fname)[1]
    assert body["env"]["BB"] == "2" and "AA" not in body["env"]
    assert body["memory_limit_in_mb"] == "256"


def test_revision_id_and_concurrent_updates(lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    error = error_of(
        lam.update_function_configuration,
        FunctionName=fname,
        Timeout=5,
        RevisionId="00000000-0000-0000-0000-000000000000",
    )
    assert (error["code"], error["status"]) == ("PreconditionFailedException", 412)
    big = make_zip({f"f{i}.bin": bytes(range(256)) * 4000 for i in range(30)})
    outcomes = []

    def update() -> None:
        try:
            lam.update_function_code(FunctionName=fname, ZipFile=big)
            outcomes.append("ok")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])

    threads = [threading.Thread(target=update) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert "ok" in outcomes
    assert set(outcomes) <= {"ok", "ResourceConflictException"}


def test_delete(lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    error = error_of(lam.delete_function, FunctionName=fname, Qualifier="$LATEST")
    assert (error["code"], error["status"]) == ("InvalidParameterValueException", 400)
    response = lam.delete_function(FunctionName=fname)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    for call in (lam.get_function, lam.get_function_configuration, lam.delete_function):
        error = error_of(call, FunctionName=fname)
        assert (error["code"], error["status"]) == ("ResourceNotFoundException", 404)
        assert (
            error["raw"]["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"]
            == "ResourceNotFoundException"
        )
    assert error["message"] == (
        f"Function not found: arn:aws:lambda:us-east-1:123456789012:function:{fname}"
    )


def test_duplicate_and_name_errors(lam, raw_lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    error = error_of(
        lam.create_function,
        FunctionName=fname,
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="index.echo",
        Code={"ZipFile": PACKAGE},
    )
    assert (error["code"], error["status"]) == ("ResourceConflictException", 409)
    # AWS refuses a name over 64 characters when creating; elsewhere it is just not found
    error = error_of(
        raw_lam.create_function,
        FunctionName="a" * 65,
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="index.echo",
        Code={"ZipFile": PACKAGE},
    )
    assert (error["code"], error["status"]) == ("InvalidParameterValueException", 400)
    assert "Member must have length less than or equal to 64" in error["message"]
    error = error_of(raw_lam.get_function, FunctionName="a" * 65)
    assert (error["code"], error["status"]) == ("ResourceNotFoundException", 404)
    error = error_of(raw_lam.get_function, FunctionName="bad name!")
    assert (error["code"], error["status"]) == ("ValidationException", 400)
    error = error_of(lam.get_function, FunctionName=f"{fname}:live", Qualifier="other")
    assert error["code"] == "InvalidParameterValueException"
    assert error["message"] == (
        "The derived qualifier from the function name does not match the specified qualifier."
    )
    error = error_of(
        lam.get_function, FunctionName=f"arn:aws:lambda:eu-west-1:123456789012:function:{fname}"
    )
    assert (error["code"], error["status"]) == ("ResourceNotFoundException", 404)
    assert "not reachable in this region" in error["message"]


@pytest.mark.parametrize(
    "settings, code, fragment",
    [
        ({"Timeout": 0}, "ValidationException", "greater than or equal to 1"),
        ({"Timeout": 901}, "ValidationException", "less than or equal to 900"),
        ({"MemorySize": 127}, "ValidationException", "greater than or equal to 128"),
        ({"MemorySize": 10241}, "ValidationException", "less than or equal to 10240"),
        # AWS answers an unknown runtime with InvalidParameterValueException (not the model's
        # ValidationException), listing the runtimes it accepts
        (
            {"Runtime": "cobol85"},
            "InvalidParameterValueException",
            "Value cobol85 at 'runtime' failed to satisfy constraint: Member must satisfy enum value "
            "set: [nodejs20.x, python3.14, provided.al2023,",
        ),
        ({"Runtime": "PYTHON3.12"}, "InvalidParameterValueException", "] or be a valid ARN"),
        ({"Runtime": "python2.7"}, "InvalidParameterValueException", "no longer supported"),
        (
            {"Runtime": "provided"},
            "InvalidParameterValueException",
            "The runtime parameter of provided is no longer supported",
        ),
        (
            {"Architectures": ["x86_64", "arm64"]},
            "ValidationException",
            "Value '[x86_64, arm64]' at 'architectures' failed to satisfy constraint: Member must have "
            "length less than or equal to 1",
        ),
        (
            {"Architectures": ["X86_64"]},
            "ValidationException",
            "Value '[X86_64]' at 'architectures' failed to satisfy constraint: Member must satisfy "
            "constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be "
            "null]",
        ),
        ({"Runtime": "java21"}, "InvalidParameterValueException", "Lamina cannot run"),
        ({"Handler": "has space"}, "ValidationException", "regular expression"),
        ({"Role": "not-a-role"}, "ValidationException", "regular expression"),
        (
            {"Environment": {"Variables": {"BIG": "x" * 5000}}},
            "InvalidParameterValueException",
            "exceeded the 4KB limit",
        ),
        (
            {"Environment": {"Variables": {"AWS_REGION": "x"}}},
            "InvalidParameterValueException",
            "reserved keys",
        ),
        (
            {"Environment": {"Variables": {"1BAD": "x"}}},
            "ValidationException",
            "regular expression",
        ),
    ],
)
def test_invalid_settings_are_refused(raw_lam, fname, settings, code, fragment):
    arguments = {
        "FunctionName": fname,
        "Runtime": PY_RUNTIME,
        "Role": ROLE,
        "Handler": "index.echo",
        "Code": {"ZipFile": PACKAGE},
        **settings,
    }
    error = error_of(raw_lam.create_function, **arguments)
    assert (error["code"], error["status"]) == (code, 400), error
    assert fragment in error["message"]
    assert error_of(raw_lam.get_function, FunctionName=fname)["status"] == 404


def _zip_with(entries: list[tuple[str, bytes, int]], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _big_zip(total: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("zeros.bin", "w", force_zip64=True) as entry:
            block = bytes(1 << 20)
            for _ in range(total >> 20):
                entry.write(block)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "package, fragment",
    [
        (b"this is not a zip", "Could not unzip uploaded file"),
        (_zip_with([("../escape.py", b"x", 0o100644)]), "unsafe path"),
        (_zip_with([("/abs.py", b"x", 0o100644)]), "unsafe path"),
        (_zip_with([("link", b"../../../../etc/passwd", 0o120777)]), "points outside"),
        (_zip_with([("zeros", bytes(20 << 20), 0o100644)], zipfile.ZIP_BZIP2), "zip bomb"),
    ],
)
def test_unsafe_packages_are_refused(lam, fname, package, fragment):
    error = error_of(
        lam.create_function,
        FunctionName=fname,
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="index.echo",
        Code={"ZipFile": package},
    )
    assert (error["code"], error["status"]) == ("InvalidParameterValueException", 400)
    assert fragment in error["message"]


def test_unzipped_size_limit(lam, fname):
    error = error_of(
        lam.create_function,
        FunctionName=fname,
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="index.echo",
        Code={"ZipFile": _big_zip(251 << 20)},
    )
    assert (error["code"], error["status"]) == ("InvalidParameterValueException", 400)
    assert error["message"] == "Unzipped size must be smaller than 262144000 bytes"


def test_account_settings(lam):
    settings = lam.get_account_settings()
    assert settings["AccountLimit"]["ConcurrentExecutions"] == 1000
    # other tests on this engine hold reservations; the pool never drops under 100
    assert 100 <= settings["AccountLimit"]["UnreservedConcurrentExecutions"] <= 1000
    assert settings["AccountLimit"]["CodeSizeZipped"] == 52428800
    assert settings["AccountUsage"]["FunctionCount"] >= 0
