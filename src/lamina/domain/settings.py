"""The settings a caller gives a function, and the rules they must satisfy (spec §1.3, §2.4).

`FunctionSettings` holds what CreateFunction or UpdateFunctionConfiguration carried; a field
left as None was not given. `validate` raises the error AWS answers for the first rule broken.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from typing import Any

from lamina.domain import errors, layers, limits, runtimes
from lamina.domain.model import VpcConfig

ROLE_RE = re.compile(r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
ENV_KEY_RE = re.compile(r"[a-zA-Z]([a-zA-Z0-9_])+")
HANDLER_RE = re.compile(r"[^\s]+")
DLQ_RE = re.compile(r"arn:aws[a-zA-Z-]*:(sqs|sns):[a-z0-9-]+:\d{12}:[\w.-]+")
RUNTIME_VERSION_ARN_RE = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+::runtime:.+"
    r"|arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:runtime/[A-Za-z0-9_.-]{1,128}"
    r"/version/[A-Za-z0-9_.-]{1,128}"
)
UPDATE_RUNTIME_ON = ("Auto", "Manual", "FunctionUpdate")
RECURSIVE_LOOP = ("Terminate", "Allow")

RESERVED_ENV = frozenset(
    (
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "TZ",
    )
)


@dataclass(frozen=True, slots=True)
class FunctionSettings:
    """Configuration fields as given by a caller; None means "not given"."""

    runtime: str | None = None
    handler: str | None = None
    role: str | None = None
    description: str | None = None
    timeout: int | None = None
    memory_size: int | None = None
    environment: dict[str, str] | None = None
    architectures: tuple[str, ...] | None = None
    ephemeral_storage: int | None = None
    dead_letter_target: str | None = None
    tracing_mode: str | None = None
    layers: tuple[str, ...] | None = None
    log_format: str | None = None
    application_log_level: str | None = None
    system_log_level: str | None = None
    log_group: str | None = None
    vpc: VpcConfig | None = None  # its vpc_id is looked up when the function is changed
    tenant_isolation: str | None = None  # CreateFunction only
    package_type: str | None = None
    capacity_provider: dict[str, object] | None = None  # as given; settled by the service
    durable_config: dict[str, Any] | None = None

    def given(self) -> dict[str, object]:
        """The fields that were given, by name (for applying onto a FunctionConfig)."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


def _check_range(value: int | None, field: str, bounds: tuple[int, int]) -> None:
    if value is None:
        return
    low, high = bounds
    if value < low:
        raise errors.ValidationError.field(
            value, field, f"Member must have value greater than or equal to {low}"
        )
    if value > high:
        raise errors.ValidationError.field(
            value, field, f"Member must have value less than or equal to {high}"
        )


def check_environment(variables: dict[str, str]) -> None:
    for key in variables:
        if not ENV_KEY_RE.fullmatch(key):
            # AWS leaves the value out: environment variables are sensitive.
            raise errors.ValidationError(
                "1 validation error detected: Value at 'environment.variables' failed to "
                "satisfy constraint: Map keys must satisfy constraint: [Member must satisfy "
                "regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]"
            )
    reserved = sorted(k for k in variables if k in RESERVED_ENV)
    if reserved:
        raise errors.InvalidParameterValue(
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided contains reserved keys that are currently not "
            "supported for modification. Reserved keys used in this request: " + ",".join(reserved)
        )
    measured = json.dumps(variables, separators=(",", ":"))
    if len(measured.encode()) > limits.ENV_VARS:
        raise errors.InvalidParameterValue(
            "Lambda was unable to configure your environment variables because the environment "
            "variables you have provided exceeded the 4KB limit. String measured: " + measured
        )


def check_tags(given: dict[str, str], total: int) -> None:
    """Tags a request adds (`total`: how many the function would then carry). Source:
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-tags.html"""
    for key, value in given.items():
        if not 1 <= len(key) <= limits.TAG_KEY_MAX:
            raise errors.ValidationError.field(
                key,
                "tags",
                "Map keys must satisfy constraint: [Member must have length less "
                f"than or equal to {limits.TAG_KEY_MAX}, Member must have length greater than "
                "or equal to 1]",
            )
        if len(value) > limits.TAG_VALUE_MAX:
            raise errors.ValidationError.field(
                value,
                "tags",
                "Map value must satisfy constraint: [Member must have length "
                f"less than or equal to {limits.TAG_VALUE_MAX}]",
            )
        if key.lower().startswith("aws:"):  # message unconfirmed
            raise errors.InvalidParameterValue(
                f"Invalid tag key {key}: tag keys starting with 'aws:' are reserved for AWS use."
            )
    if total > limits.TAGS_PER_FUNCTION:
        raise errors.InvalidParameterValue("Number of tags exceeds resource tag limit.")


def check_choice(value: object, field: str, allowed: tuple[str, ...]) -> None:
    """A required member with an enum of values (UpdateRuntimeOn, RecursiveLoop)."""
    if value is None:
        raise errors.ValidationError.field(None, field, "Member must not be null")
    if value not in allowed:
        raise errors.ValidationError.field(
            value, field, f"Member must satisfy enum value set: [{', '.join(allowed)}]"
        )


def check_runtime_management(update_on: object, version_arn: object) -> None:
    """PutRuntimeManagementConfig: Manual needs a runtime version (the others ignore it)."""
    check_choice(update_on, "updateRuntimeOn", UPDATE_RUNTIME_ON)
    if version_arn is not None and (
        not isinstance(version_arn, str) or not RUNTIME_VERSION_ARN_RE.fullmatch(version_arn)
    ):
        raise errors.ValidationError.field(
            version_arn,
            "runtimeVersionArn",
            "Member must satisfy regular expression pattern: " + RUNTIME_VERSION_ARN_RE.pattern,
        )
    if update_on == "Manual" and version_arn is None:  # message unconfirmed
        raise errors.InvalidParameterValue(
            "RuntimeVersionArn is required when UpdateRuntimeOn is Manual."
        )


def validate(settings: FunctionSettings) -> None:
    """Raise the AWS error for the first broken rule; return if every given field is valid."""
    _check_texts(settings)
    _check_range(settings.timeout, "timeout", limits.TIMEOUT_RANGE)
    _check_range(settings.memory_size, "memorySize", limits.MEMORY_RANGE)
    _check_range(settings.ephemeral_storage, "ephemeralStorage.size", limits.EPHEMERAL_RANGE)
    if settings.environment is not None:
        check_environment(settings.environment)
    if settings.architectures is not None:
        _check_architectures(settings.architectures)
    _check_package(settings)
    if settings.dead_letter_target and not DLQ_RE.fullmatch(settings.dead_letter_target):
        raise errors.InvalidParameterValue(
            "The provided target arn is invalid: " + settings.dead_letter_target
        )
    if settings.tracing_mode is not None and settings.tracing_mode not in ("Active", "PassThrough"):
        raise errors.ValidationError.field(
            settings.tracing_mode,
            "tracingConfig.mode",
            "Member must satisfy enum value set: [Active, PassThrough]",
        )
    if settings.log_format is not None and settings.log_format not in ("Text", "JSON"):
        raise errors.ValidationError.field(
            settings.log_format,
            "loggingConfig.logFormat",
            "Member must satisfy enum value set: [JSON, Text]",
        )
    _check_logging(settings)
    if settings.vpc is not None:
        _check_vpc(settings.vpc)
    if settings.tenant_isolation is not None and settings.tenant_isolation != "PER_TENANT":
        raise errors.ValidationError.field(
            settings.tenant_isolation,
            "tenancyConfig.tenantIsolationMode",
            "Member must satisfy enum value set: [PER_TENANT]",
        )
    if settings.layers is not None:
        layers.check_references(settings.layers)
    if settings.durable_config is not None:
        check_durable_config(settings.durable_config)


def _check_texts(settings: FunctionSettings) -> None:
    """Role, Handler and Description: their patterns and lengths."""
    if settings.role is not None and not ROLE_RE.fullmatch(settings.role):
        raise errors.ValidationError.field(
            settings.role,
            "role",
            "Member must satisfy regular expression pattern: " + ROLE_RE.pattern,
        )
    if settings.handler is not None and (
        len(settings.handler) > limits.HANDLER_MAX or not HANDLER_RE.fullmatch(settings.handler)
    ):
        raise errors.ValidationError.field(
            settings.handler,
            "handler",
            "Member must satisfy regular expression pattern: [^\\s]+"
            if len(settings.handler) <= limits.HANDLER_MAX
            else "Member must have length less than or equal to 128",
        )
    if settings.description is not None and len(settings.description) > limits.DESCRIPTION_MAX:
        raise errors.ValidationError.field(
            settings.description, "description", "Member must have length less than or equal to 256"
        )


def _check_package(settings: FunctionSettings) -> None:
    """PackageType (Zip only here) and the Runtime it allows."""
    if settings.package_type is not None and settings.package_type not in ("Zip", "Image"):
        raise errors.ValidationError.field(
            settings.package_type, "packageType", "Member must satisfy enum value set: [Zip, Image]"
        )
    if settings.package_type == "Image":
        raise errors.InvalidParameterValue(
            "Lamina runs Zip functions only: container images need a container engine."
        )
    if settings.runtime is not None:
        runtimes.check(settings.runtime, settings.package_type or "Zip")


def check_durable_config(config: dict[str, Any]) -> None:
    """DurableConfig: ExecutionTimeout is required (1 s to 366 days), RetentionPeriodInDays
    1-90 (AWS's default: 14). Source: AWS::Lambda::Function DurableConfig."""
    from lamina.domain import durable  # durable imports errors only; kept local and light

    unknown = sorted(set(config) - {"ExecutionTimeout", "RetentionPeriodInDays", "KMSKeyArn"})
    if unknown:
        raise errors.InvalidParameterValue(f"Unknown DurableConfig member: {unknown[0]}")
    if config.get("ExecutionTimeout") is None:  # message unconfirmed
        raise errors.InvalidParameterValue("DurableConfig.ExecutionTimeout is required.")
    durable.check_config(config.get("ExecutionTimeout"), config.get("RetentionPeriodInDays"))


def _check_architectures(given: tuple[str, ...]) -> None:
    """Exactly one of x86_64 and arm64 (AWS shows the list as Java prints it)."""
    shown = "[" + ", ".join(map(str, given)) + "]"
    if len(given) > 1:
        raise errors.ValidationError.field(
            shown, "architectures", "Member must have length less than or equal to 1"
        )
    if len(given) < 1:
        raise errors.ValidationError.field(
            shown, "architectures", "Member must have length greater than or equal to 1"
        )
    if given[0] not in ("x86_64", "arm64"):
        raise errors.ValidationError.field(
            shown,
            "architectures",
            "Member must satisfy constraint: [Member must satisfy enum "
            "value set: [x86_64, arm64], Member must not be null]",
        )


_VPC_LISTS = (
    ("security_group_ids", "securityGroupIds", 5, "sg-[0-9a-zA-Z]*"),
    ("subnet_ids", "subnetIds", 16, "subnet-[0-9a-z]*"),
)


def _check_vpc(vpc: VpcConfig) -> None:
    """VpcConfig's lists, as AWS's model constrains them (all problems in one error)."""
    problems: list[tuple[object, str, str]] = []
    for attribute, field, longest, pattern in _VPC_LISTS:
        values = getattr(vpc, attribute)
        shown = "[" + ", ".join(values) + "]"
        if len(values) > longest:
            problems.append(
                (
                    shown,
                    f"vpcConfig.{field}",
                    f"Member must have length less than or equal to {longest}",
                )
            )
        elif any(len(v) > 1024 or not re.fullmatch(pattern, v) for v in values):
            constraint = (
                "Member must satisfy constraint: [Member must have length less "
                "than or equal to 1024, Member must have length greater than or "
                f"equal to 0, Member must satisfy regular expression pattern: {pattern}]"
            )
            problems.append((shown, f"vpcConfig.{field}", constraint))
    if problems:
        raise errors.ValidationError.fields(problems)


APPLICATION_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
SYSTEM_LOG_LEVELS = ("DEBUG", "INFO", "WARN")
LOG_GROUP_RE = re.compile(r"[\.\-_/#A-Za-z0-9]+")


def _check_logging(settings: FunctionSettings) -> None:
    for value, field, allowed in (
        (settings.application_log_level, "applicationLogLevel", APPLICATION_LOG_LEVELS),
        (settings.system_log_level, "systemLogLevel", SYSTEM_LOG_LEVELS),
    ):
        if value is not None and value not in allowed:
            raise errors.ValidationError.field(
                value,
                f"loggingConfig.{field}",
                f"Member must satisfy enum value set: [{', '.join(allowed)}]",
            )
    group = settings.log_group
    if group is not None and not (1 <= len(group) <= 512 and LOG_GROUP_RE.fullmatch(group)):
        raise errors.ValidationError.field(
            group,
            "loggingConfig.logGroup",
            "Member must satisfy regular expression pattern: " + LOG_GROUP_RE.pattern,
        )


def check_levels(log_format: str, given: FunctionSettings) -> None:
    """Log levels need the JSON format: given with Text (given now or kept), AWS refuses
    them (its message, as CloudFormation reports it)."""
    if log_format != "JSON" and (
        given.application_log_level is not None or given.system_log_level is not None
    ):
        raise errors.InvalidParameterValue(
            'LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from '
            'your request or change the LogFormat to "Json" and try again.'
        )


def logging_levels(
    log_format: str, application: str | None, system: str | None
) -> dict[str, str | None]:
    """The levels a configuration keeps: AWS sets both (INFO unless given) with the JSON
    format and drops them with Text."""
    if log_format != "JSON":
        return {"application_log_level": None, "system_log_level": None}
    return {"application_log_level": application or "INFO", "system_log_level": system or "INFO"}
