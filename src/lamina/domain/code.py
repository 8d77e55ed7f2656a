"""Where a deployment package comes from: a zip in the request, an S3 object, or a folder on
this machine that is run as it is and reloaded as it changes (hot reload).

Hot reload is LocalStack's convention, which Terraform, CDK, SAM and Serverless users already
use: `Code={"S3Bucket": "hot-reload", "S3Key": "/absolute/folder"}` (the bucket name is the
engine's `--hot-reload-bucket`). The key may name environment variables (`$HOME/app`), which
are expanded with the engine's environment. Such code reports LocalStack's CodeSha256
`hot-reloading-hash-not-available` and a CodeSize of 0, and GetFunction's Code.Location is a
`file://` URL of the folder (the AWS Toolkit for VS Code recognises hot-reloaded functions by
that hash's prefix).

Pure: no I/O (the folder's existence is checked where it is used).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from lamina.domain import errors

HOT_RELOAD_BUCKET = "hot-reload"
HOT_RELOAD_SHA256 = "hot-reloading-hash-not-available"

# botocore's Lambda model: S3Bucket, S3Key, S3ObjectVersion
_BUCKET_RE = re.compile(r"[0-9A-Za-z.\-_]*(?<!\.)")
_BUCKET_PATTERN = "^[0-9A-Za-z\\.\\-_]*(?<!\\.)$"


@dataclass(frozen=True, slots=True)
class S3Object:
    """An object in S3 that holds a deployment package."""

    bucket: str
    key: str
    version: str | None = None


@dataclass(frozen=True, slots=True)
class CodeSource:
    """What a CreateFunction `Code`, an UpdateFunctionCode request or a PublishLayerVersion
    `Content` names: exactly one of a zip (decoded) or an S3 object."""

    zip_file: bytes | None = None
    s3: S3Object | None = None

    def hot_reload_folder(self, bucket: str) -> str | None:
        """The folder to run from, if this names the hot-reload bucket (else None)."""
        if self.s3 is None or self.s3.bucket != bucket:
            return None
        return hot_reload_path(self.s3.key)


def s3_object(bucket: object, key: object, version: object, prefix: str) -> S3Object:
    """An S3Bucket / S3Key / S3ObjectVersion triple, checked as the API model says
    (`prefix`: `code.` for CreateFunction, empty for UpdateFunctionCode)."""
    if (
        not isinstance(bucket, str)
        or not 3 <= len(bucket) <= 63
        or _BUCKET_RE.fullmatch(bucket) is None
    ):
        raise errors.ValidationError.field(
            bucket,
            f"{prefix}s3Bucket",
            "Member must satisfy regular expression pattern: "
            f"{_BUCKET_PATTERN}; Member must have length less than or equal to 63; Member must "
            "have length greater than or equal to 3",
        )
    if not isinstance(key, str) or not key:
        raise errors.InvalidParameterValue("Please provide a source for function code.")
    if len(key) > 1024:
        raise errors.ValidationError.field(
            key, f"{prefix}s3Key", "Member must have length less than or equal to 1024"
        )
    if version is not None and (not isinstance(version, str) or not 1 <= len(version) <= 1024):
        raise errors.ValidationError.field(
            version,
            f"{prefix}s3ObjectVersion",
            "Member must have length less than or equal to 1024",
        )
    return S3Object(bucket, key, version)


def hot_reload_path(key: str) -> str:
    """The folder an S3Key of the hot-reload bucket names: environment variables expanded,
    absolute (LocalStack's message otherwise), normalised (no trailing slash)."""
    expanded = os.path.expandvars(key)
    if not PurePosixPath(expanded).is_absolute():
        raise errors.InvalidParameterValue(
            "When using hot reloading, the archive key has to be an absolute path! Your "
            f"archive key: {key}"
        )
    return os.path.normpath(expanded)


def get_object_error(code: str, message: str) -> errors.InvalidParameterValue:
    """Lambda's answer when it cannot read the package from S3 (recorded against AWS)."""
    return errors.InvalidParameterValue(
        f"Error occurred while GetObject. S3 Error Code: {code}. S3 Error Message: {message}"
    )


def contains(folder: str, path: str) -> bool:
    """Whether `path` is `folder` or lies under it."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")
