"""Named hostile inputs against a real `lamina serve` through boto3 and raw sockets: zip slip,
links out of the package, zip bombs, 10,000 files, deeply nested JSON, headers past the
limit, slow clients. Each gets a 4xx in AWS's shape or a clean close, quickly; never a
traceback in the engine's log."""

from __future__ import annotations

import json
import socket
import time
import zipfile

import botocore.exceptions
import pytest

from tests.acceptance.conftest import module_client, module_engine
from tests.conftest import PY_RUNTIME, ROLE, Server, make_zip
from tests.unit.test_code import package as raw_zip

HANDLER = "def handler(event, context):\n    return {'ok': True}\n"


engine = module_engine("hostile", "--sandbox", "none", "--header-timeout", "1")
lam = module_client()


def refused(lam, package: bytes, name: str) -> dict:
    started = time.monotonic()
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        lam.create_function(
            FunctionName=name,
            Runtime=PY_RUNTIME,
            Role=ROLE,
            Handler="index.handler",
            Code={"ZipFile": package},
        )
    assert time.monotonic() - started < 30
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"].startswith(
        "InvalidParameterValueException"
    )
    return response["Error"]


@pytest.mark.parametrize(
    "entries",
    [
        [("index.py", HANDLER.encode(), 0o100644), ("../../evil.py", b"x", 0o100644)],
        [("index.py", HANDLER.encode(), 0o100644), ("/tmp/evil.py", b"x", 0o100644)],
        [("index.py", HANDLER.encode(), 0o100644), ("lib\\..\\..\\evil.py", b"x", 0o100644)],
    ],
    ids=["dot-dot", "absolute", "backslashes"],
)
def test_zip_slip_is_refused(lam, entries):
    error = refused(lam, raw_zip(entries), "slip")
    assert "unsafe path" in error["Message"]


@pytest.mark.parametrize(
    "link", [b"/etc/passwd", b"../../../etc", b"loop"], ids=["absolute", "relative", "loop"]
)
def test_links_out_of_the_package_are_refused(lam, link):
    package = raw_zip([("index.py", HANDLER.encode(), 0o100644), ("loop", link, 0o120777)])
    error = refused(lam, package, "links")
    assert "Symbolic link 'loop'" in error["Message"]


def test_zip_bomb_past_250_mb_unzipped_is_refused_as_lambda_words_it(lam):
    """280 entries of 1 MiB of zeros (1 KB each zipped): Lambda's 250 MB unzipped limit."""
    entries = [(f"pad/{i}.bin", bytes(1 << 20), 0o100644) for i in range(280)]
    error = refused(lam, raw_zip([("index.py", HANDLER.encode(), 0o100644), *entries]), "bomb")
    assert error["Message"] == "Unzipped size must be smaller than 262144000 bytes"


def test_one_entry_expanding_thousands_of_times_is_refused(lam):
    package = raw_zip(
        [("index.py", HANDLER.encode(), 0o100644), ("z", bytes(30 << 20), 0o100644)],
        zipfile.ZIP_BZIP2,
    )
    assert "zip bomb" in refused(lam, package, "bomb2")["Message"]


def test_ten_thousand_files_work(lam):
    files: dict[str, str | bytes] = {f"data/{i // 100}/{i}.txt": str(i) for i in range(10_000)}
    files["index.py"] = (
        "import os\ndef handler(event, context):\n"
        "    return sum(len(f) for _, _, f in os.walk('data'))\n"
    )
    started = time.monotonic()
    lam.create_function(
        FunctionName="ten-thousand",
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="index.handler",
        Code={"ZipFile": make_zip(files)},
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName="ten-thousand", WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
    )
    assert time.monotonic() - started < 30
    answer = lam.invoke(FunctionName="ten-thousand")
    assert json.load(answer["Payload"]) == 10_000


def test_deeply_nested_json_is_a_400_in_every_body(engine: Server, lam):
    lam.create_function(
        FunctionName="nested",
        Runtime=PY_RUNTIME,
        Role=ROLE,
        Handler="index.handler",
        Code={"ZipFile": make_zip({"index.py": HANDLER})},
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName="nested", WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
    )
    deep = b"[" * 100_000 + b"]" * 100_000
    for method, path in [
        ("POST", "/2015-03-31/functions/nested/invocations"),
        ("POST", "/2015-03-31/functions"),
        ("PUT", "/2015-03-31/functions/nested/configuration"),
        ("POST", "/2015-03-31/event-source-mappings"),
    ]:
        status, headers, body = http(engine.port, method, path, deep)
        assert status == 400, (path, body)
        assert headers["x-amzn-errortype"] == "InvalidRequestContentException"
        assert json.loads(body)["message"].startswith("Could not parse request body into json")
    nested_member = b'{"Environment": {"Variables": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}"
    status, headers, _ = http(
        engine.port, "PUT", "/2015-03-31/functions/nested/configuration", nested_member
    )
    assert status == 400 and headers["x-amzn-errortype"] == "InvalidRequestContentException"


def http(
    port: int, method: str, path: str, body: bytes = b"", extra: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n"
            b"%s\r\n%s" % (method.encode(), path.encode(), len(body), extra, body)
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, payload


def test_headers_past_the_limits(engine: Server, lam):
    status, _, _ = http(
        engine.port, "GET", "/2015-03-31/functions/", extra=b"X-Big: " + b"a" * 70_000 + b"\r\n"
    )
    assert status == 431
    context = b"X-Amz-Client-Context: " + b"e30=" * 1000 + b"\r\n"  # over Lambda's 3,583
    status, headers, body = http(
        engine.port, "POST", "/2015-03-31/functions/nested/invocations", b"{}", extra=context
    )
    assert status == 400 and headers["x-amzn-errortype"], body
    assert lam.list_functions()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_slow_clients_are_disconnected_while_others_are_served(engine: Server, lam):
    slow = socket.create_connection(("127.0.0.1", engine.port))
    silent = socket.create_connection(("127.0.0.1", engine.port))
    slow.sendall(b"GET /2015-03-31/functions/ HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    for _ in range(5):
        slow.sendall(b"X-Drip: 1\r\n")
        assert lam.list_functions()["ResponseMetadata"]["HTTPStatusCode"] == 200
        time.sleep(0.2)
    for sock in (slow, silent):
        sock.settimeout(5)
        try:
            assert sock.recv(4096) == b""  # closed, with no answer
        except ConnectionResetError:
            pass
        sock.close()
    assert time.monotonic() - started < 4.5
