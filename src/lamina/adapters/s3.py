"""Deployment packages read from S3 (CreateFunction, UpdateFunctionCode and
PublishLayerVersion with S3Bucket/S3Key/S3ObjectVersion).

S3 is reached as the other services are (adapters.aws): at `AWS_ENDPOINT_URL_S3` or
`AWS_ENDPOINT_URL` when the engine's environment sets one (moto, a LocalStack-compatible
service, MinIO), else real AWS with the engine's own credentials. What S3 answers with an
error becomes Lambda's InvalidParameterValueException with S3's code and message, word for
word, as Lambda words it.
"""

from __future__ import annotations

from typing import Any

from lamina.adapters.aws import AwsClients
from lamina.domain import errors, limits
from lamina.domain.code import S3Object, get_object_error

UNZIPPED = f"Unzipped size must be smaller than {limits.UNZIPPED_CODE} bytes"


class S3Packages:
    """Fetches package objects (implements service.ports.CodeFetcher)."""

    def __init__(self, clients: AwsClients) -> None:
        self.clients = clients

    async def fetch(self, location: S3Object) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        arguments: dict[str, Any] = {"Bucket": location.bucket, "Key": location.key}
        if location.version is not None:
            arguments["VersionId"] = location.version
        try:
            client = await self.clients.client("s3")
            response = await client.get_object(**arguments)
            # A zip larger than Lambda's unzipped limit cannot unzip within it.
            if int(response.get("ContentLength") or 0) > limits.UNZIPPED_CODE:
                response["Body"].close()
                raise errors.InvalidParameterValue(UNZIPPED)
            async with response["Body"] as body:
                return bytes(await body.read())
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise get_object_error(
                str(error.get("Code", "")), str(error.get("Message", ""))
            ) from None
        except (BotoCoreError, OSError) as exc:
            raise errors.ServiceError(
                f"Lamina could not read s3://{location.bucket}/{location.key} from S3: {exc}"
            ) from None
