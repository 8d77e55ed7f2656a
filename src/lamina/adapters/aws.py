"""Outbound calls to AWS-compatible services through aiobotocore (ARCHITECTURE.md decision 7).

Each service is reached at the endpoint botocore resolves for it, so
`AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_SNS`, `AWS_ENDPOINT_URL_EVENTS` (or one
`AWS_ENDPOINT_URL`) point destinations at moto, LocalStack or any compatible service, and
with none set they reach real AWS with the engine's own credentials. Without credentials in
the environment the calls are signed with placeholder ones (local services accept them).
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from lamina.domain import destinations, errors
from lamina.domain.model import Delivery

# connections of the long-poll clients: one per poller waiting at once (aiobotocore's default
# pool is 10, which ten SQS pollers would fill for 20 s at a time)
LONG_POLL_CONNECTIONS = 500


class AwsClients:
    """One aiobotocore client per service, created on first use and shared."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._session: Any = None
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._queue_urls: dict[str, str] = {}

    async def client(self, service: str, quick: bool = False, long_poll: bool = False) -> Any:
        """The service's client; `quick`: one that gives up within seconds (for a check a
        control-plane request waits on); `long_poll`: one for calls that hold a connection
        for up to 20 s (SQS ReceiveMessage), with a pool of its own, so that they never
        leave the other calls (a deploy's, a destination's) waiting for a connection."""
        key = f"{service}:quick" if quick else f"{service}:poll" if long_poll else service
        if key not in self._clients:
            if self._session is None:  # imported on first use: it costs ~170 ms at start
                from aiobotocore.session import get_session

                self._session = get_session()
            options: dict[str, Any] = {}
            if not os.environ.get("AWS_ACCESS_KEY_ID") and not os.environ.get("AWS_PROFILE"):
                options = {"aws_access_key_id": "lamina", "aws_secret_access_key": "lamina"}
            if quick:
                from aiobotocore.config import AioConfig

                options["config"] = AioConfig(
                    connect_timeout=3, read_timeout=10, retries={"max_attempts": 1}
                )
            elif long_poll:
                from aiobotocore.config import AioConfig

                options["config"] = AioConfig(max_pool_connections=LONG_POLL_CONNECTIONS)
            self._clients[key] = await self._stack.enter_async_context(
                self._session.create_client(service, region_name=self.region, **options)
            )
        return self._clients[key]

    async def queue_url(self, arn: str) -> str:
        """The URL of an SQS queue named by its ARN."""
        if arn not in self._queue_urls:
            parts = arn.split(":")
            response = await (await self.client("sqs")).get_queue_url(
                QueueName=parts[5], QueueOwnerAWSAccountId=parts[4]
            )
            self._queue_urls[arn] = response["QueueUrl"]
        return self._queue_urls[arn]

    async def close(self) -> None:
        await self._stack.aclose()
        self._clients.clear()


# How long the credentials of a function's role last (--assume-role): AssumeRole's default
# and the longest session a role allows unless its MaxSessionDuration is raised
ROLE_SESSION_S = 3600


def role_session_name(function_name: str) -> str:
    """The session Lambda names when it assumes a function's role: the function's name, or
    `<name>@lambda_function` for a one-character name (a session name has at least two)."""
    return function_name if len(function_name) > 1 else f"{function_name}@lambda_function"


async def assume_role(clients: AwsClients, role_arn: str, function_name: str) -> dict[str, str]:
    """Credentials of `role_arn` for an execution environment of `function_name`, as Lambda
    gives them (`--assume-role`): STS AssumeRole at the endpoint botocore resolves for STS
    (`AWS_ENDPOINT_URL_STS` or `AWS_ENDPOINT_URL`), signed with the engine's credentials.
    Refused or unreachable, it raises `errors.ServiceError` naming the role and the cause."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sts = await clients.client("sts", quick=True)
        answer = await sts.assume_role(
            RoleArn=role_arn,
            RoleSessionName=role_session_name(function_name),
            DurationSeconds=ROLE_SESSION_S,
        )
    except ClientError as exc:  # STS refused
        error = exc.response.get("Error", {})
        cause = f"{error.get('Code')}: {error.get('Message')}"
    except (BotoCoreError, OSError) as exc:  # unreachable, or a role ARN botocore refuses
        cause = str(exc) or type(exc).__name__
    else:
        credentials = answer["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }
    raise errors.ServiceError(
        f"Lamina could not assume the execution role {role_arn} (--assume-role): {cause}"
    )


class AwsSender:
    """Sends destination and dead-letter records to SQS, SNS and EventBridge."""

    def __init__(self, clients: AwsClients) -> None:
        self.clients = clients

    async def close(self) -> None:
        await self.clients.close()

    async def send(self, delivery: Delivery) -> None:
        kind = destinations.kind_of(delivery.target)
        if kind == "sqs":
            await self._send_sqs(delivery)
        elif kind == "sns":
            await self._send_sns(delivery)
        elif kind == "events":
            await self._send_events(delivery)
        else:
            raise ValueError(f"Lamina cannot deliver to {delivery.target} yet")

    async def _send_sqs(self, delivery: Delivery) -> None:
        client = await self.clients.client("sqs")
        arguments: dict[str, Any] = {
            "QueueUrl": await self.clients.queue_url(delivery.target),
            "MessageBody": delivery.body.decode("utf-8", "replace"),
        }
        if delivery.kind == "dlq":
            arguments["MessageAttributes"] = delivery.attributes
        elif delivery.attributes.get("trace_id"):  # as AWS sends a destination record
            arguments["MessageSystemAttributes"] = {
                "AWSTraceHeader": {
                    "DataType": "String",
                    "StringValue": str(delivery.attributes["trace_id"]),
                }
            }
        await client.send_message(**arguments)

    async def _send_sns(self, delivery: Delivery) -> None:
        client = await self.clients.client("sns")
        arguments: dict[str, Any] = {
            "TopicArn": delivery.target,
            "Message": delivery.body.decode("utf-8", "replace"),
        }
        if delivery.kind == "dlq":
            arguments["MessageAttributes"] = delivery.attributes
        await client.publish(**arguments)

    async def _send_events(self, delivery: Delivery) -> None:
        client = await self.clients.client("events")
        entry = destinations.eventbridge_entry(
            delivery.body,
            delivery.target,
            str(delivery.attributes.get("function_arn", "")),
            bool(delivery.attributes.get("success")),
        )
        response = await client.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            raise RuntimeError(
                "EventBridge refused the event: " + json.dumps(response.get("Entries", []))
            )


async def _check_security_groups(ec2: Any, ids: tuple[str, ...]) -> None:
    """Every group exists, else EC2's own error for the first missing one. Asked by a
    `group-id` filter, which lists what exists, so that the message names the group as EC2
    words it whatever EC2-compatible service answers (moto quotes a Python set)."""
    from botocore.exceptions import ClientError

    found = await ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": list(ids)}])
    existing = {group.get("GroupId") for group in found.get("SecurityGroups", [])}
    for group_id in ids:
        if group_id not in existing:
            raise ClientError(
                {
                    "Error": {
                        "Code": "InvalidGroup.NotFound",
                        "Message": f"The security group '{group_id}' does not exist",
                    }
                },
                "DescribeSecurityGroups",
            )


class AwsNetwork:
    """Checks a function's VpcConfig against EC2 (DescribeSecurityGroups, then DescribeSubnets,
    AWS's order) and answers the VPC its subnets are in. Lamina places no environment in a
    VPC: the configuration is recorded and shown, as AWS shows it."""

    def __init__(self, clients: AwsClients) -> None:
        self.clients = clients

    async def vpc_of(self, subnet_ids: tuple[str, ...], security_group_ids: tuple[str, ...]) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        ec2 = await self.clients.client("ec2", quick=True)
        operation = "DescribeSecurityGroups"
        try:
            if security_group_ids:
                await _check_security_groups(ec2, security_group_ids)
            vpc_id = ""
            if subnet_ids:
                operation = "DescribeSubnets"
                subnets = (await ec2.describe_subnets(SubnetIds=list(subnet_ids)))["Subnets"]
                vpc_id = subnets[0]["VpcId"] if subnets else ""
            return vpc_id
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise errors.InvalidParameterValue(
                f"Error occurred while {operation}. EC2 Error Code: {error.get('Code')}. "
                f"EC2 Error Message: {error.get('Message')}"
            ) from None
        except BotoCoreError as exc:  # no EC2 to ask (unreachable, no credentials)
            raise errors.InvalidParameterValue(
                f"Lamina could not check the VpcConfig with EC2 ({operation}): {exc}. Set "
                "AWS_ENDPOINT_URL_EC2 (or AWS_ENDPOINT_URL) to an EC2-compatible service, or "
                "leave VpcConfig out: Lamina does not run functions in a VPC."
            ) from None
