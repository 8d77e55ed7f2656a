"""`simple_head`, the HTTP server's parser for the common request, against httptools: whatever
it takes, httptools parses the same way; what it leaves (None) goes to httptools."""

from __future__ import annotations

import os

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lamina.http.server import simple_head

EXAMPLES = int(os.environ.get("LAMINA_FUZZ_EXAMPLES") or 200)


class Reference:
    """What httptools makes of a request, headers gathered as the server gathers them."""

    def __init__(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body = b""
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        previous = self.headers.get(key)
        self.headers[key] = text if previous is None else previous + "," + text

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


def agree(head: bytes, body: bytes = b"") -> bool:
    """simple_head(head) either leaves the request to httptools (False) or parses it as
    httptools does (True)."""
    parsed = simple_head(head)
    if parsed is None:
        return False
    method, target, headers, length = parsed
    reference = Reference()
    parser = httptools.HttpRequestParser(reference)
    whole = length <= 4096  # (a larger body is not made up: its head is checked)
    parser.feed_data(head + b"\r\n\r\n" + (body[:length].ljust(length, b"x") if whole else b""))
    assert reference.complete == whole
    assert parser.get_method().decode() == method
    assert reference.url.decode("latin-1") == target
    assert reference.headers == headers
    assert len(reference.body) == (length if whole else 0)
    assert parser.should_keep_alive() and parser.get_http_version() == "1.1"
    return True


INVOKE = (
    b"POST /2015-03-31/functions/my-function/invocations?Qualifier=live HTTP/1.1\r\n"
    b"Host: 127.0.0.1:9000\r\nAccept-Encoding: identity\r\nUser-Agent: Boto3/1.34.0 md/x\r\n"
    b"X-Amz-Invocation-Type: RequestResponse\r\nX-Amz-Log-Type: None\r\n"
    b"X-Amz-Date: 20260101T000000Z\r\nX-Amz-Content-SHA256: abc\r\n"
    b"Authorization: AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/lambda/aws4_request, "
    b"SignedHeaders=host;x-amz-date, Signature=0f\r\namz-sdk-invocation-id: 1-2-3\r\n"
    b"amz-sdk-request: attempt=1; max=3\r\nContent-Type: application/json\r\n"
    b"Connection: keep-alive\r\nContent-Length: 13"
)
COMMON = [
    INVOKE,
    b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: runtime",
    b"POST /2018-06-01/runtime/invocation/8f5e/response HTTP/1.1\r\nHost: r\r\nContent-Length: 4",
    b"GET /2015-03-31/functions/ HTTP/1.1",
    b"GET /a HTTP/1.1\r\nX:  spaced  \r\nY:\r\nZ: \t\xe9t\xe9\t",  # values as httptools keeps them
]
LEFT_TO_HTTPTOOLS = [
    b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked",
    b"POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2",
    b"GET /a HTTP/1.1\r\nConnection: close",
    b"GET /a HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c",
    b"GET /a HTTP/1.0",
    b"GET /a HTTP/1.1\r\nX: 1\r\nx: 2",  # repeated: httptools joins them
    b"GET /a HTTP/1.1\r\nX: 1\r\n folded",
    b"GET /a HTTP/1.1\r\nX: a\x01b",
    b"GET /a HTTP/1.1\r\nX : b",
    b"GET /a HTTP/1.1\r\nno colon",
    b"GET http://host/a HTTP/1.1",
    b"get /a HTTP/1.1",
    b"\r\nGET /a HTTP/1.1",
    b"GET /a HTTP/1.1\nX: b",
    b"GET /a HTTP/1.1\r\nX: b\n",
    b"GET /a  HTTP/1.1",
    b"GET /\xe9 HTTP/1.1",
    b"POST /a HTTP/1.1\r\nContent-Length: 1 ",
    b"POST /a HTTP/1.1\r\nContent-Length: +1",
    b"POST /a HTTP/1.1\r\nContent-Length: \xb2",  # a digit to str.isdigit, not to HTTP
    b"POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1",
]


@pytest.mark.parametrize("head", COMMON)
def test_common_requests_are_parsed_as_httptools_does(head: bytes):
    assert agree(head, b"x" * 13)


@pytest.mark.parametrize("head", LEFT_TO_HTTPTOOLS)
def test_the_rest_is_left_to_httptools(head: bytes):
    assert simple_head(head) is None


TCHAR = st.sampled_from(list(b"!#$%&'*+-.^_`|~09azAZ") + [ord(":"), ord(" "), ord("("), 0xE9])
VCHAR = st.sampled_from(list(b' \t!~azAZ09:;,"') + [0x7F, 0x80, 0xFF, 0x00, 0x0A, 0x0D])
NAMES = st.sampled_from(
    [
        b"Host",
        b"Content-Length",
        b"content-length",
        b"Connection",
        b"Transfer-Encoding",
        b"Expect",
        b"Upgrade",
        b"X-Amz-Invocation-Type",
    ]
)
VALUES = st.sampled_from([b"keep-alive", b"close", b"0", b"12", b"007", b"chunked", b" 3", b""])


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    """Request heads near the common case: valid ones and ones one step off it."""
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"GeT", b"FOO"]))
    target = draw(
        st.one_of(
            st.binary(max_size=20).map(lambda b: b"/" + b),
            st.sampled_from([b"/a?b=c&d", b"/a%20b#frag", b"*", b"http://x/y"]),
        )
    )
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0"]))
    lines = [method + b" " + target + b" " + version]
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.one_of(NAMES, st.lists(TCHAR, min_size=0, max_size=8).map(bytes)))
        value = draw(st.one_of(VALUES, st.lists(VCHAR, max_size=12).map(bytes)))
        separator = draw(st.sampled_from([b": ", b":", b":\t ", b" : ", b"\r\n "]))
        lines.append(name + separator + value)
    return b"\r\n".join(lines)


@pytest.mark.fuzz
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(heads(), st.binary(max_size=120)))
def test_whatever_simple_head_takes_httptools_parses_the_same(head: bytes):
    """Random and near-valid heads: simple_head never raises, and what it takes agrees with
    httptools (a head httptools refuses is never taken)."""
    try:
        agree(head)
    except httptools.HttpParserError as error:
        pytest.fail(f"simple_head took a head httptools refuses: {head!r} ({error})")
