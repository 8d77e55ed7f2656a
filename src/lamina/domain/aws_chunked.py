"""`Content-Encoding: aws-chunked` bodies decoded, each chunk's signature and the trailing
checksum verified (no I/O).

A client streaming a body it has not hashed beforehand sends it framed in chunks, with
`x-amz-content-sha256` saying how (https://docs.aws.amazon.com/AmazonS3/latest/API/
sigv4-streaming.html and sigv4-streaming-trailers.html):

* `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: `SIZE;chunk-signature=SIG\\r\\nDATA\\r\\n` per chunk,
  a last chunk of size 0; each SIG signs the chunk's SHA-256 and the previous signature, the
  first one the request's own (the seed), so chunks can be neither changed nor reordered;
* `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: the same, then trailing headers (a checksum)
  and `x-amz-trailer-signature`, chained from the last chunk's;
* `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: `SIZE\\r\\nDATA\\r\\n` chunks and trailing headers
  (what botocore's `AwsChunkedWrapper` sends with a flexible checksum).

botocore and the SDKs only produce this framing, none reads it: the parsing is written here,
the HMACs are botocore's (the `sign` given by `domain.sigv4`) and the checksums botocore's
flexible-checksum classes (crc32c and the others where awscrt is installed).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from botocore import httpchecksum

from lamina.domain import errors

SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_HEX = "0123456789abcdefABCDEF"
_MAX_LINE = 4096  # a chunk header or a trailer line; anything longer is not framing
_MIN_SIGNED_CHUNK = 8192  # AWS: every signed chunk but the last has at least 8 KB
_MAX_CHUNKS = 100_000  # an unsigned body in tiny chunks costs a loop turn each
_CHECKSUMS: dict[str, Callable[[], object]] = {
    "crc32": httpchecksum.Crc32Checksum,
    "sha1": httpchecksum.Sha1Checksum,
    "sha256": httpchecksum.Sha256Checksum,
    "sha512": httpchecksum.Sha512Checksum,
}
if httpchecksum.HAS_CRT:  # crc32c, crc64nvme, ... need awscrt
    _CHECKSUMS["crc32c"] = httpchecksum.CrtCrc32cChecksum
    _CHECKSUMS["crc64nvme"] = httpchecksum.CrtCrc64NvmeChecksum

# sign(string_to_sign) -> hex signature, with the request's signing key (None: not checked)
Signer = Callable[[str], str] | None


def wanted(headers: dict[str, str]) -> bool:
    """Whether a request's body is aws-chunked (one header test on the normal path)."""
    return headers.get("x-amz-content-sha256", "").startswith("STREAMING-") or (
        "aws-chunked" in headers.get("content-encoding", "")
    )


def _bad(message: str) -> errors.InvalidRequestContent:
    return errors.InvalidRequestContent(f"Could not decode the aws-chunked body: {message}")


class _Reader:
    """The framing of one body, read line by line and chunk by chunk."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.at = 0

    def line(self) -> str:
        end = self.body.find(b"\r\n", self.at, self.at + _MAX_LINE)
        if end < 0:
            raise _bad("a chunk header or trailer line is not ended by CRLF")
        text = self.body[self.at : end]
        self.at = end + 2
        try:
            return text.decode("ascii")
        except UnicodeDecodeError:
            raise _bad("a chunk header or trailer line is not ASCII") from None

    def data(self, size: int) -> bytes:
        end = self.at + size
        if end + 2 > len(self.body) or self.body[end : end + 2] != b"\r\n":
            raise _bad("a chunk is shorter than its size or not followed by CRLF")
        data = self.body[self.at : end]
        self.at = end + 2
        return data


def _chunk_header(line: str, signed: bool) -> tuple[int, str]:
    size_text, _, extension = line.partition(";")
    if not 0 < len(size_text) <= 16 or size_text.strip(_HEX):
        raise _bad(f"'{size_text[:20]}' is not a hexadecimal chunk size")
    size = int(size_text, 16)
    name, _, signature = extension.partition("=")
    if signed and (name != "chunk-signature" or len(signature) != 64):
        raise errors.IncompleteSignature(
            f"The chunk is missing its chunk-signature; every chunk of a {SIGNED} body is signed."
        )
    return size, signature


def _check(sign: Signer, string_to_sign: str, given: str) -> None:
    if sign is not None and not hmac.compare_digest(sign(string_to_sign), given):
        raise errors.InvalidSignature(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details."
        )


def decode(
    body: bytes,
    headers: dict[str, str],
    seed: str = "",
    scope: str = "",
    timestamp: str = "",
    sign: Signer = None,
) -> bytes:
    """The decoded body of an aws-chunked request; with `sign`, every chunk signature (and
    the trailer's) checked against the chain from `seed`, the request's own signature."""
    mode = headers.get("x-amz-content-sha256", "")
    signed = mode in (SIGNED, SIGNED_TRAILER)
    reader = _Reader(body)
    previous = seed
    parts: list[bytes] = []
    while True:
        size, signature = _chunk_header(reader.line(), signed)
        if signed and size and parts and len(parts[-1]) < _MIN_SIGNED_CHUNK:
            raise _bad(
                f"only the last chunk may be smaller than {_MIN_SIGNED_CHUNK} bytes; one of "
                f"{len(parts[-1])} bytes came before another"
            )
        if len(parts) >= _MAX_CHUNKS:
            raise _bad(f"more than {_MAX_CHUNKS} chunks")
        data = reader.data(size) if size else b""
        if signed:
            _check(
                sign,
                f"AWS4-HMAC-SHA256-PAYLOAD\n{timestamp}\n{scope}\n{previous}\n"
                f"{_EMPTY_SHA256}\n{hashlib.sha256(data).hexdigest()}",
                signature,
            )
            previous = signature
        if not size:
            break
        parts.append(data)
    decoded = b"".join(parts)
    trailers = _trailers(reader, mode, headers)
    if mode == SIGNED_TRAILER:
        given = trailers.pop("x-amz-trailer-signature", "")
        canonical = "".join(f"{name}:{value}\n" for name, value in trailers.items())
        _check(
            sign,
            f"AWS4-HMAC-SHA256-TRAILER\n{timestamp}\n{scope}\n{previous}\n"
            f"{hashlib.sha256(canonical.encode()).hexdigest()}",
            given,
        )
    if reader.at != len(body):
        raise _bad("bytes follow the last chunk")
    _check_length(decoded, headers)
    _check_sums(decoded, trailers)
    return decoded


def _trailers(reader: _Reader, mode: str, headers: dict[str, str]) -> dict[str, str]:
    """The trailing headers after the last chunk, up to the empty line that ends the body."""
    trailers: dict[str, str] = {}
    if reader.at == len(reader.body) and mode == SIGNED:  # some senders stop after "0;...\r\n"
        return trailers
    while (line := reader.line()) != "":
        name, colon, value = line.partition(":")
        if not colon:
            raise _bad(f"the trailer line '{line[:40]}' has no ':'")
        trailers[name.strip().lower()] = value.strip()
        if len(trailers) > 16:
            raise _bad("too many trailing headers")
    announced = {n.strip().lower() for n in headers.get("x-amz-trailer", "").split(",")}
    missing = sorted(announced - set(trailers) - {""})
    if missing:
        raise _bad(f"the trailer {missing[0]} announced in x-amz-trailer was not sent")
    return trailers


def _check_length(decoded: bytes, headers: dict[str, str]) -> None:
    declared = headers.get("x-amz-decoded-content-length")
    if declared is not None and declared.strip() != str(len(decoded)):
        raise _bad(
            f"x-amz-decoded-content-length says {declared.strip()[:20]} bytes, the chunks "
            f"carry {len(decoded)}"
        )


def _check_sums(decoded: bytes, trailers: dict[str, str]) -> None:
    for name, value in trailers.items():
        if not name.startswith("x-amz-checksum-"):
            continue
        algorithm = name[len("x-amz-checksum-") :]
        make = _CHECKSUMS.get(algorithm)
        if make is None:
            raise errors.InvalidRequestContent(
                f"Checksum algorithm {algorithm.upper()} is not supported here; use one of "
                f"{', '.join(a.upper() for a in sorted(_CHECKSUMS))}."
            )
        checksum = make()
        checksum.update(decoded)  # type: ignore[attr-defined]
        if not hmac.compare_digest(checksum.b64digest(), value):  # type: ignore[attr-defined]
            raise errors.InvalidRequestContent(
                f"The {algorithm.upper()} you specified did not match the calculated checksum."
            )
