"""domain.aws_chunked and sigv4.verify_body: AWS's own published examples of chunk-signed
uploads (sigv4-streaming, sigv4-streaming-trailers) verified signature by signature, bodies
framed by botocore's AwsChunkedWrapper decoded, and each tampering or bad framing refused."""

from __future__ import annotations

import datetime
import io

import pytest
from botocore import httpchecksum
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from lamina.domain import aws_chunked, errors, sigv4

# https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html (Example: PUT Object)
AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
RING = sigv4.Keyring([sigv4.Key(AK, SK, "111122223333")])
STAMP = "20130524T000000Z"
SCOPE = "20130524/us-east-1/s3/aws4_request"
AT = datetime.datetime(2013, 5, 24, tzinfo=datetime.UTC).timestamp()
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
CHUNK_SIGNATURES = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)
# https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html
TRAILER_SEED = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
TRAILER_CHUNK_SIGNATURES = (
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
)
TRAILER = (
    "x-amz-checksum-crc32c:sOO8/Q==\r\n"
    "x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n"
)
DATA = b"a" * 66560


def framed(signatures, trailer: str = "") -> bytes:
    return (
        f"10000;chunk-signature={signatures[0]}\r\n".encode()
        + DATA[:65536]
        + f"\r\n400;chunk-signature={signatures[1]}\r\n".encode()
        + DATA[65536:]
        + f"\r\n0;chunk-signature={signatures[2]}\r\n{trailer}\r\n".encode()
    )


def doc_headers(signature=SEED) -> dict[str, str]:
    signed = (
        "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class"
    )
    return {
        "host": "s3.amazonaws.com",
        "x-amz-date": STAMP,
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "authorization": f"AWS4-HMAC-SHA256 Credential={AK}/{SCOPE},SignedHeaders={signed},"
        f"Signature={signature}",
        "x-amz-content-sha256": aws_chunked.SIGNED,
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "content-length": "66824",
    }


def verify(body: bytes, headers: dict[str, str]) -> tuple:
    return sigv4.verify_body(
        RING, "PUT", "/examplebucket/chunkObject.txt", "", headers, body, ("s3",), now=AT
    )


def doc_sign(string_to_sign: str) -> str:
    """The example's signing key, as botocore derives it."""
    request = AWSRequest(method="PUT", url="http://s3.amazonaws.com/")
    request.context["timestamp"] = STAMP
    return str(SigV4Auth(Credentials(AK, SK), "s3", "us-east-1").signature(string_to_sign, request))


def test_awss_published_chunk_signed_upload_verifies_and_decodes():
    body = framed(CHUNK_SIGNATURES)
    assert len(body) == 66824  # the example's Content-Length
    caller, decoded = verify(body, doc_headers())
    assert caller.account == "111122223333" and decoded == DATA


def test_each_changed_chunk_or_signature_is_refused():
    body = framed(CHUNK_SIGNATURES)
    cases = {
        "a byte of data": body.replace(b"\r\naaaa", b"\r\nbaaa", 1),
        "chunks reordered": framed((CHUNK_SIGNATURES[1], CHUNK_SIGNATURES[0], CHUNK_SIGNATURES[2])),
        "the last signature": framed((*CHUNK_SIGNATURES[:2], "0" * 64)),
    }
    for what, changed in cases.items():
        with pytest.raises(errors.InvalidSignature) as caught:
            verify(changed, doc_headers())
        assert caught.value.message.startswith("The request signature we calculated"), what
    with pytest.raises(errors.InvalidSignature):  # another seed: the chain breaks at once
        verify(body, doc_headers(signature="1" * 64))


def test_awss_published_trailer_signature_chains_from_the_last_chunk():
    headers = {"x-amz-content-sha256": aws_chunked.SIGNED_TRAILER}
    body = framed(TRAILER_CHUNK_SIGNATURES, TRAILER)
    args = (TRAILER_SEED, SCOPE, STAMP, doc_sign)
    if httpchecksum.HAS_CRT:
        assert aws_chunked.decode(body, headers, *args) == DATA
    else:  # every signature verified; then the crc32c needs awscrt, which is not installed
        with pytest.raises(errors.InvalidRequestContent, match="CRC32C is not supported"):
            aws_chunked.decode(body, headers, *args)
    forged = body.replace(b"x-amz-trailer-signature:d81f", b"x-amz-trailer-signature:0000")
    with pytest.raises(errors.InvalidSignature):
        aws_chunked.decode(forged, headers, *args)
    changed = body.replace(b"sOO8/Q==", b"AAAAAA==")  # the checksum is what the trailer signs
    with pytest.raises(errors.InvalidSignature):
        aws_chunked.decode(changed, headers, *args)


def wrapped(data: bytes, algorithm: str | None = "crc32", chunk_size: int = 1000) -> bytes:
    """A body framed by botocore's own AwsChunkedWrapper (S3's flexible checksums)."""
    checksum_cls = httpchecksum.Crc32Checksum if algorithm == "crc32" else None
    if algorithm == "sha256":
        checksum_cls = httpchecksum.Sha256Checksum
    wrapper = httpchecksum.AwsChunkedWrapper(
        io.BytesIO(data),
        checksum_cls=checksum_cls,
        checksum_name=f"x-amz-checksum-{algorithm}",
        chunk_size=chunk_size,
    )
    return wrapper.read()


UNSIGNED_MODE = aws_chunked.UNSIGNED_TRAILER
UNSIGNED = {
    "x-amz-content-sha256": aws_chunked.UNSIGNED_TRAILER,
    "content-encoding": "aws-chunked",
    "x-amz-trailer": "x-amz-checksum-crc32",
}


@pytest.mark.parametrize("algorithm", ["crc32", "sha256"])
def test_botocores_unsigned_trailer_bodies_decode_and_their_checksum_is_checked(algorithm):
    data = b'{"payload": "' + b"x" * 5000 + b'"}'
    headers = {
        **UNSIGNED,
        "x-amz-trailer": f"x-amz-checksum-{algorithm}",
        "x-amz-decoded-content-length": str(len(data)),
    }
    body = wrapped(data, algorithm)
    assert body.count(b"\r\n") > 10  # several chunks
    assert aws_chunked.decode(body, headers) == data
    changed = body.replace(b"xxxx", b"xyxx", 1)
    with pytest.raises(errors.InvalidRequestContent, match="did not match the calculated"):
        aws_chunked.decode(changed, headers)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "not ended by CRLF"),
        (b"zz\r\nab\r\n0\r\n\r\n", "hexadecimal chunk size"),
        (b"+2\r\nab\r\n0\r\n\r\n", "hexadecimal chunk size"),
        (b"10\r\nab\r\n0\r\n\r\n", "shorter than its size"),
        (b"fffffffffffffff\r\nab\r\n", "shorter than its size"),
        (b"2\r\nab\r\n0\r\n\r\nextra", "bytes follow the last chunk"),
        (b"2\r\nab\r\n0\r\nno-colon\r\n\r\n", "has no ':'"),
        (b"2\r\nab\r\n0\r\n\r\n", "x-amz-checksum-crc32 announced"),
        (b"2\r\nab\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", "did not match"),
        (b"2\r\nab\r\n0\r\nx-amz-checksum-md7:AAAAAA==\r\n\r\n", "MD7 is not supported"),
        (b"2" + b"0" * 5000 + b"\r\n", "not ended by CRLF"),
        (b"3\r\nab\xff\r\n0\r\n\r\n", "x-amz-decoded-content-length says 2"),
    ],
)
def test_bad_framing_is_a_400_in_aws_shape(body, words):
    headers = {**UNSIGNED, "x-amz-decoded-content-length": "2"}
    if "announced" not in words:
        headers.pop("x-amz-trailer")
    with pytest.raises(errors.InvalidRequestContent, match=words) as caught:
        aws_chunked.decode(body, headers)
    assert caught.value.status == 400
    assert caught.value.body()["Type"] == "User"


def test_signed_chunks_but_the_last_have_8_kb():
    sig = ";chunk-signature=" + "0" * 64 + "\r\n"
    small = (
        f"64{sig}".encode()
        + DATA[:100]
        + f"\r\n{66460:x}{sig}".encode()
        + DATA[100:]
        + f"\r\n0{sig}\r\n".encode()
    )
    with pytest.raises(errors.InvalidRequestContent, match="only the last chunk"):
        aws_chunked.decode(small, doc_headers(), SEED, SCOPE, STAMP, None)
    many = b"1\r\na\r\n" * 100_001 + b"0\r\n\r\n"
    with pytest.raises(errors.InvalidRequestContent, match="more than 100000 chunks"):
        aws_chunked.decode(many, {"content-encoding": "aws-chunked"})


def test_a_signed_body_without_chunk_signatures_is_refused():
    with pytest.raises(errors.IncompleteSignature):
        aws_chunked.decode(b"2\r\nab\r\n0\r\n\r\n", {"x-amz-content-sha256": aws_chunked.SIGNED})


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=5000), chunk_size=st.integers(1, 6000))
def test_any_body_botocore_frames_decodes_to_itself(data, chunk_size):
    headers = {**UNSIGNED, "x-amz-decoded-content-length": str(len(data))}
    assert aws_chunked.decode(wrapped(data, "crc32", chunk_size), headers) == data


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300), mode=st.sampled_from([aws_chunked.SIGNED, UNSIGNED_MODE]))
def test_any_bytes_are_decoded_or_refused_in_aws_shape(body, mode):
    try:
        aws_chunked.decode(body, {"x-amz-content-sha256": mode}, "0" * 64, SCOPE, STAMP, doc_sign)
    except (errors.InvalidRequestContent, errors.Unauthenticated) as refused:
        assert refused.status in (400, 403)
