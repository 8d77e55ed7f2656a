"""Resources of other AWS services, made through the AWS endpoint the engine is given
(`AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_<SERVICE>`: moto's server, a LocalStack-compatible
service, or AWS itself) with aiobotocore, as CloudFormation would call those services.
`Ref` and `Fn::GetAtt` give what the endpoint answered (a queue's URL, a table's StreamArn).
IAM roles and policies are simulated (ARNs made up, nothing called) when no IAM endpoint is
given: Lamina does no IAM."""

from __future__ import annotations

import json
import random
import string
from typing import Any

from lamina.domain.stacks import StackResource
from lamina.service.providers.base import Made, Provider, ProviderError, tag_map

_GONE = (
    "NonExistentQueue",
    "AWS.SimpleQueueService.NonExistentQueue",
    "NotFound",
    "ResourceNotFoundException",
    "NoSuchEntity",
    "NoSuchBucket",
    "ParameterNotFound",
    "NotFoundException",
    "QueueDoesNotExist",
)


async def call(
    ctx_aws: Any, service: str, operation: str, missing_ok: bool = False, **arguments: Any
) -> dict[str, Any]:
    """One call through the AWS endpoint; a failure becomes a one-line ProviderError."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = await ctx_aws.client(service)
    try:
        return await getattr(client, operation)(**arguments)  # type: ignore[no-any-return]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if missing_ok and error.get("Code") in _GONE:
            return {}
        raise ProviderError(
            f"{service} {operation}: {error.get('Code')}: {error.get('Message')}"
        ) from None
    except (BotoCoreError, OSError) as exc:
        raise ProviderError(f"{service} {operation}: {exc}") from None


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Queue(Provider):
    type = "AWS::SQS::Queue"
    attributes = ("Arn", "QueueName", "QueueUrl")
    name_property = "QueueName"
    max_name = 80
    replace_on = ("QueueName", "FifoQueue")

    def name(self, logical_id: str, properties: dict[str, Any]) -> str | None:
        name = super().name(logical_id, properties)
        if properties.get("FifoQueue") in (True, "true") and name and not name.endswith(".fifo"):
            name = name[:75] + ".fifo"
        return name

    def _attributes(self, properties: dict[str, Any]) -> dict[str, str]:
        return {k: _text(v) for k, v in properties.items() if k not in ("QueueName", "Tags")}

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        made = await call(
            self.ctx.aws,
            "sqs",
            "create_queue",
            QueueName=name,
            Attributes=self._attributes(properties),
            tags=tag_map(properties.get("Tags")),
        )
        return await self._made(made["QueueUrl"], name or "")

    async def _made(self, url: str, name: str) -> Made:
        found = await call(
            self.ctx.aws, "sqs", "get_queue_attributes", QueueUrl=url, AttributeNames=["QueueArn"]
        )
        return Made(
            url, {"Arn": found["Attributes"]["QueueArn"], "QueueName": name, "QueueUrl": url}
        )

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        url = resource.physical_id or ""
        await call(
            self.ctx.aws,
            "sqs",
            "set_queue_attributes",
            QueueUrl=url,
            Attributes=self._attributes(properties),
        )
        return Made(url, resource.attributes)

    async def delete(self, resource: StackResource) -> None:
        url = resource.physical_id
        if url and "/" not in url:  # a name: the create did not answer its URL
            url = (
                await call(self.ctx.aws, "sqs", "get_queue_url", missing_ok=True, QueueName=url)
            ).get("QueueUrl")
        if url:
            await call(self.ctx.aws, "sqs", "delete_queue", missing_ok=True, QueueUrl=url)


class Topic(Provider):
    type = "AWS::SNS::Topic"
    attributes = ("TopicArn", "TopicName")
    name_property = "TopicName"
    max_name = 256
    replace_on = ("TopicName", "FifoTopic")

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        attributes = {
            k: _text(v)
            for k, v in properties.items()
            if k
            in ("DisplayName", "FifoTopic", "ContentBasedDeduplication", "KmsMasterKeyId", "Policy")
        }
        arguments: dict[str, Any] = {"Name": name, "Attributes": attributes}
        tags = tag_map(properties.get("Tags"))
        if tags:
            arguments["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        made = await call(self.ctx.aws, "sns", "create_topic", **arguments)
        for subscription in properties.get("Subscription") or []:
            await _subscribe(self.ctx, logical_id, made["TopicArn"], subscription)
        return Made(made["TopicArn"], {"TopicArn": made["TopicArn"], "TopicName": name})

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        if properties.get("DisplayName") != resource.properties.get("DisplayName"):
            await call(
                self.ctx.aws,
                "sns",
                "set_topic_attributes",
                TopicArn=resource.physical_id,
                AttributeName="DisplayName",
                AttributeValue=str(properties.get("DisplayName", "")),
            )
        return Made(resource.physical_id or "", resource.attributes)

    async def delete(self, resource: StackResource) -> None:
        if resource.physical_id:
            await call(
                self.ctx.aws, "sns", "delete_topic", missing_ok=True, TopicArn=resource.physical_id
            )


async def _subscribe(
    ctx: Any, logical_id: str, topic: str, subscription: dict[str, Any]
) -> str | None:
    if subscription.get("Protocol") == "lambda":
        ctx.notice(
            f"{logical_id}: SNS delivers to functions only on AWS: Lamina does not "
            f"run SNS, so {subscription.get('Endpoint')} will not be called by {topic}"
        )
        return None
    made = await call(
        ctx.aws,
        "sns",
        "subscribe",
        TopicArn=topic,
        Protocol=subscription.get("Protocol"),
        Endpoint=subscription.get("Endpoint"),
        ReturnSubscriptionArn=True,
    )
    return str(made.get("SubscriptionArn"))


class Subscription(Provider):
    type = "AWS::SNS::Subscription"

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        arn = await _subscribe(self.ctx, logical_id, properties.get("TopicArn", ""), properties)
        return Made(
            arn or f"{properties.get('TopicArn')}:{_random(36).lower()}", {"simulated": arn is None}
        )

    async def delete(self, resource: StackResource) -> None:
        if resource.physical_id and not resource.attributes.get("simulated"):
            await call(
                self.ctx.aws,
                "sns",
                "unsubscribe",
                missing_ok=True,
                SubscriptionArn=resource.physical_id,
            )


class Table(Provider):
    type = "AWS::DynamoDB::Table"
    attributes = ("Arn", "StreamArn")
    name_property = "TableName"
    max_name = 255
    replace_on = ("TableName", "KeySchema")
    integers = (
        "ProvisionedThroughput.ReadCapacityUnits",
        "ProvisionedThroughput.WriteCapacityUnits",
    )
    _SENT = (
        "AttributeDefinitions",
        "KeySchema",
        "BillingMode",
        "ProvisionedThroughput",
        "StreamSpecification",
        "GlobalSecondaryIndexes",
        "LocalSecondaryIndexes",
        "SSESpecification",
        "TableClass",
    )

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        arguments = {k: v for k, v in properties.items() if k in self._SENT}
        if "StreamSpecification" in arguments:
            arguments["StreamSpecification"] = {
                "StreamEnabled": True,
                **arguments["StreamSpecification"],
            }
        if arguments.get("BillingMode") != "PAY_PER_REQUEST":
            arguments.setdefault(
                "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            )
        tags = tag_map(properties.get("Tags"))
        if tags:
            arguments["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        made = await call(self.ctx.aws, "dynamodb", "create_table", TableName=name, **arguments)
        return self._made(made["TableDescription"])

    @staticmethod
    def _made(table: dict[str, Any]) -> Made:
        attributes = {"Arn": table["TableArn"]}
        if table.get("LatestStreamArn"):
            attributes["StreamArn"] = table["LatestStreamArn"]
        return Made(table["TableName"], attributes)

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        old, new = (
            resource.properties.get("StreamSpecification"),
            properties.get("StreamSpecification"),
        )
        arguments: dict[str, Any] = {}
        if old != new:
            arguments["StreamSpecification"] = (
                {"StreamEnabled": True, **new} if new else {"StreamEnabled": False}
            )
        if properties.get("BillingMode") != resource.properties.get("BillingMode"):
            arguments["BillingMode"] = properties.get("BillingMode", "PROVISIONED")
        if not arguments:
            return Made(resource.physical_id or "", resource.attributes)
        made = await call(
            self.ctx.aws, "dynamodb", "update_table", TableName=resource.physical_id, **arguments
        )
        return self._made(made["TableDescription"])

    async def delete(self, resource: StackResource) -> None:
        if resource.physical_id:
            await call(
                self.ctx.aws,
                "dynamodb",
                "delete_table",
                missing_ok=True,
                TableName=resource.physical_id,
            )


class Stream(Provider):
    type = "AWS::Kinesis::Stream"
    attributes = ("Arn",)
    name_property = "Name"
    max_name = 128
    replace_on = ("Name",)
    integers = ("ShardCount", "RetentionPeriodHours")

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        arguments: dict[str, Any] = {"StreamName": name}
        if (properties.get("StreamModeDetails") or {}).get("StreamMode") == "ON_DEMAND":
            arguments["StreamModeDetails"] = {"StreamMode": "ON_DEMAND"}
        else:
            arguments["ShardCount"] = int(properties.get("ShardCount", 1))
        await call(self.ctx.aws, "kinesis", "create_stream", **arguments)
        found = await call(self.ctx.aws, "kinesis", "describe_stream_summary", StreamName=name)
        return Made(name or "", {"Arn": found["StreamDescriptionSummary"]["StreamARN"]})

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        count = properties.get("ShardCount")
        if count is not None and count != resource.properties.get("ShardCount"):
            await call(
                self.ctx.aws,
                "kinesis",
                "update_shard_count",
                StreamName=resource.physical_id,
                TargetShardCount=int(count),
                ScalingType="UNIFORM_SCALING",
            )
        return Made(resource.physical_id or "", resource.attributes)

    async def delete(self, resource: StackResource) -> None:
        if resource.physical_id:
            await call(
                self.ctx.aws,
                "kinesis",
                "delete_stream",
                missing_ok=True,
                StreamName=resource.physical_id,
                EnforceConsumerDeletion=True,
            )


class Bucket(Provider):
    type = "AWS::S3::Bucket"
    attributes = ("Arn", "DomainName", "RegionalDomainName", "WebsiteURL", "DualStackDomainName")
    name_property = "BucketName"
    max_name = 63
    lower_name = True
    replace_on = ("BucketName",)

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        arguments: dict[str, Any] = {"Bucket": name}
        if self.ctx.region != "us-east-1":
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": self.ctx.region}
        await call(self.ctx.aws, "s3", "create_bucket", **arguments)
        self._notify(logical_id, properties)
        region = self.ctx.region
        return Made(
            name or "",
            {
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
                "DualStackDomainName": f"{name}.s3.dualstack.{region}.amazonaws.com",
                "WebsiteURL": f"http://{name}.s3-website-{region}.amazonaws.com",
            },
        )

    def _notify(self, logical_id: str, properties: dict[str, Any]) -> None:
        for config in (properties.get("NotificationConfiguration") or {}).get(
            "LambdaConfigurations"
        ) or []:
            self.ctx.notice(
                f"{logical_id}: S3 notifies functions only on AWS: Lamina does not "
                f"run S3 events, so {config.get('Function')} will not be called "
                f"on {config.get('Event')}"
            )

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        self._notify(resource.logical_id, properties)
        return Made(resource.physical_id or "", resource.attributes)

    async def delete(self, resource: StackResource) -> None:
        if resource.physical_id:
            await call(
                self.ctx.aws, "s3", "delete_bucket", missing_ok=True, Bucket=resource.physical_id
            )


class LogGroup(Provider):
    type = "AWS::Logs::LogGroup"
    attributes = ("Arn",)
    name_property = "LogGroupName"
    max_name = 512
    replace_on = ("LogGroupName",)
    integers = ("RetentionInDays",)

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        await call(self.ctx.aws, "logs", "create_log_group", logGroupName=name)
        await self.update(StackResource(logical_id, self.type, name), properties)
        return Made(name or "", {"Arn": self.ctx.arn("logs", f"log-group:{name}:*")})

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        days = properties.get("RetentionInDays")
        if days is not None:
            await call(
                self.ctx.aws,
                "logs",
                "put_retention_policy",
                logGroupName=resource.physical_id,
                retentionInDays=int(days),
            )
        elif resource.properties.get("RetentionInDays") is not None:
            await call(
                self.ctx.aws, "logs", "delete_retention_policy", logGroupName=resource.physical_id
            )
        return Made(
            resource.physical_id or "",
            {"Arn": self.ctx.arn("logs", f"log-group:{resource.physical_id}:*")},
        )

    async def delete(self, resource: StackResource) -> None:
        if resource.physical_id:
            await call(
                self.ctx.aws,
                "logs",
                "delete_log_group",
                missing_ok=True,
                logGroupName=resource.physical_id,
            )


class Parameter(Provider):
    type = "AWS::SSM::Parameter"
    attributes = ("Type", "Value")
    name_property = "Name"
    max_name = 2048
    replace_on = ("Name",)

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        return await self._put(name or "", properties, overwrite=False)

    async def _put(self, name: str, properties: dict[str, Any], overwrite: bool) -> Made:
        kind = properties.get("Type", "String")
        value = properties.get("Value")
        if isinstance(value, list):
            value = ",".join(map(str, value))
        arguments = {
            k: properties[k]
            for k in ("Description", "AllowedPattern", "Tier", "DataType")
            if k in properties
        }
        await call(
            self.ctx.aws,
            "ssm",
            "put_parameter",
            Name=name,
            Type=kind,
            Value=str(value),
            Overwrite=overwrite,
            **arguments,
        )
        return Made(name, {"Type": kind, "Value": str(value)})

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        return await self._put(resource.physical_id or "", properties, overwrite=True)

    async def delete(self, resource: StackResource) -> None:
        if resource.physical_id:
            await call(
                self.ctx.aws, "ssm", "delete_parameter", missing_ok=True, Name=resource.physical_id
            )


def _random(length: int) -> str:
    return "".join(random.choices(string.ascii_uppercase + string.digits, k=length))


PROVIDERS = (Queue, Topic, Subscription, Table, Stream, Bucket, LogGroup, Parameter)
