"""Capacity providers (Lambda Managed Instances) and what a function says about them.

A capacity provider names the compute a Managed Instances function runs on (on AWS: EC2
instances in the caller's VPC). Lamina runs every function on this machine, so a provider is
a record: its VPC, role, instance and scaling settings are checked against the API model,
kept and returned, never acted on. A function joins one with `CapacityProviderConfig`; its
`PerExecutionEnvironmentMaxConcurrency` is how many invocations one environment takes at
once. Per-version `FunctionScalingConfig` (minimum and maximum environments) is kept too.

Sources: the API model (botocore), https://docs.aws.amazon.com/lambda/latest/dg/
lambda-managed-instances.html and its runtime pages (Python: 16 concurrent requests per vCPU
by default, Node.js: 64; at least 2 GB of memory; memory is 2 to 8 GiB per vCPU).
Defaults AWS does not document (the instance architecture, the scaling mode) are marked.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from lamina.domain import errors, runtimes

NAME_RE = re.compile(r"[a-zA-Z0-9-_]+")
ARN_RE = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-"
    r"\d{1}:\d{12}:capacity-provider:[a-zA-Z0-9-_]+"
)
NAME_PATTERN = (
    r"(arn:aws[a-zA-Z-]*:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-"
    r"\d{1}:\d{12}:capacity-provider:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+"
)
ROLE_RE = re.compile(r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
SUBNET_RE = re.compile(r"subnet-[0-9a-z]*")
GROUP_RE = re.compile(r"sg-[0-9a-zA-Z]*")
INSTANCE_TYPE_RE = re.compile(r"[a-zA-Z0-9\.\*\-]+")
KMS_RE = re.compile(r"arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*")
LOG_GROUP_RE = re.compile(r"[\.\-_/#A-Za-z0-9]+")
STATES = ("Pending", "Active", "Failed", "Deleting")
MIN_MEMORY = 2048  # MB: a Managed Instances function has at least 2 GB
DEFAULT_MIN_ENVIRONMENTS = 3  # environments started for a published version (AZ resiliency)
# Invocations per vCPU an environment takes when PerExecutionEnvironmentMaxConcurrency is not
# given (runtime pages); other runtimes get Python's figure (not documented: unconfirmed).
PER_VCPU = {"python": 16, "nodejs": 64}
# The runtimes Managed Instances support (dg/lambda-managed-instances-runtimes).
_SUPPORTED = re.compile(
    r"python3\.(1[3-9]|[2-9]\d)|nodejs(2[2-9]|[3-9]\d)\.x|java(2[1-9]|"
    r"[3-9]\d)|dotnet([8-9]|\d\d)|provided\.al2023"
)


@dataclass(frozen=True, slots=True)
class CapacityProvider:
    """One capacity provider, as CreateCapacityProvider described it (wire-shaped members)."""

    name: str
    arn: str
    vpc: dict[str, Any]
    operator_role: str
    state: str = "Pending"
    instance_requirements: dict[str, Any] = field(default_factory=dict)
    scaling: dict[str, Any] = field(default_factory=dict)
    kms_key_arn: str | None = None
    propagate_tags: dict[str, Any] | None = None
    telemetry: dict[str, Any] | None = None
    last_modified: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def replace(self, **changes: Any) -> CapacityProvider:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CapacityProvider:
        return cls(**data)

    def wire(self) -> dict[str, Any]:
        """The CapacityProvider shape."""
        body: dict[str, Any] = {
            "CapacityProviderArn": self.arn,
            "State": self.state,
            "VpcConfig": self.vpc,
            "PermissionsConfig": {"CapacityProviderOperatorRoleArn": self.operator_role},
            "InstanceRequirements": self.instance_requirements,
            "CapacityProviderScalingConfig": self.scaling,
            "LastModified": self.last_modified,
        }
        for key, value in (
            ("KmsKeyArn", self.kms_key_arn),
            ("PropagateTags", self.propagate_tags),
            ("TelemetryConfig", self.telemetry),
        ):
            if value is not None:
                body[key] = value
        return body


def arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:capacity-provider:{name}"


def name_of(value: object, field_name: str = "capacityProviderName") -> str:
    """The provider a CapacityProviderName (a name or an ARN) names."""
    if not isinstance(value, str) or not value:
        raise errors.ValidationError.field(None, field_name, "Member must not be null")
    if len(value) > 140 or not (NAME_RE.fullmatch(value) or ARN_RE.fullmatch(value)):
        raise errors.ValidationError.field(
            value, field_name, "Member must satisfy regular expression pattern: " + NAME_PATTERN
        )
    return value.rsplit(":", 1)[-1]


def not_found(provider_arn: str) -> errors.ResourceNotFound:
    return errors.ResourceNotFound(f"Capacity provider not found: {provider_arn}")


def exists(provider_arn: str) -> errors.ResourceConflict:  # message unconfirmed
    return errors.ResourceConflict(f"Capacity provider already exists: {provider_arn}")


def in_use(provider_arn: str) -> errors.ResourceConflict:  # message unconfirmed
    return errors.ResourceConflict(
        f"Capacity provider {provider_arn} cannot be deleted because function versions still "
        "use it."
    )


# request members -------------------------------------------------------------------------
def _list(
    value: object, field_name: str, pattern: re.Pattern[str], low: int, high: int
) -> list[str]:
    if not isinstance(value, list):
        raise errors.ValidationError.field(None, field_name, "Member must not be null")
    if not low <= len(value) <= high:
        raise errors.ValidationError.field(
            value,
            field_name,
            f"Member must have length less than or equal to {high}, Member "
            f"must have length greater than or equal to {low}",
        )
    for item in value:
        if not isinstance(item, str) or not pattern.fullmatch(item):
            raise errors.ValidationError.field(
                item,
                field_name + ".member",
                "Member must satisfy regular expression pattern: " + pattern.pattern,
            )
    return list(value)


def _struct(value: object, field_name: str, required: bool = False) -> dict[str, Any] | None:
    if value is None:
        if required:
            raise errors.ValidationError.field(None, field_name, "Member must not be null")
        return None
    if not isinstance(value, dict):
        raise errors.ValidationError.field(value, field_name, "Member must be a structure")
    return value


def _enum(value: object, field_name: str, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        raise errors.ValidationError.field(
            value, field_name, f"Member must satisfy enum value set: [{', '.join(allowed)}]"
        )
    return str(value)


def _number(value: object, field_name: str, low: float, high: float, kind: type = int) -> Any:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (kind is int and not isinstance(value, int))
    ):
        raise errors.ValidationError.field(value, field_name, "Member must be a number")
    if value < low:
        raise errors.ValidationError.field(
            value, field_name, f"Member must have value greater than or equal to {low}"
        )
    if value > high:
        raise errors.ValidationError.field(
            value, field_name, f"Member must have value less than or equal to {high}"
        )
    return value


def vpc_config(value: object) -> dict[str, Any]:
    vpc = _struct(value, "vpcConfig", required=True)
    assert vpc is not None
    return {
        "SubnetIds": _list(vpc.get("SubnetIds"), "vpcConfig.subnetIds", SUBNET_RE, 1, 16),
        "SecurityGroupIds": _list(
            vpc.get("SecurityGroupIds"), "vpcConfig.securityGroupIds", GROUP_RE, 0, 5
        ),
    }


def operator_role(value: object) -> str:
    permissions = _struct(value, "permissionsConfig", required=True)
    assert permissions is not None
    role = permissions.get("CapacityProviderOperatorRoleArn")
    field_name = "permissionsConfig.capacityProviderOperatorRoleArn"
    if not isinstance(role, str):
        raise errors.ValidationError.field(None, field_name, "Member must not be null")
    if not ROLE_RE.fullmatch(role):
        raise errors.ValidationError.field(
            role, field_name, "Member must satisfy regular expression pattern: " + ROLE_RE.pattern
        )
    return role


def instance_requirements(value: object) -> dict[str, Any]:
    given = _struct(value, "instanceRequirements") or {}
    # x86_64 when none is given: the default of functions (unconfirmed for providers)
    result: dict[str, Any] = {"Architectures": ["x86_64"]}
    architectures = given.get("Architectures")
    if architectures is not None:
        if (
            not isinstance(architectures, list)
            or len(architectures) != 1
            or architectures[0] not in ("x86_64", "arm64")
        ):
            raise errors.ValidationError.field(
                architectures,
                "instanceRequirements.architectures",
                "Member must have length less than or equal to 1, Member must satisfy enum "
                "value set: [x86_64, arm64]",
            )
        result["Architectures"] = list(architectures)
    for key, field_name in (
        ("AllowedInstanceTypes", "instanceRequirements.allowedInstanceTypes"),
        ("ExcludedInstanceTypes", "instanceRequirements.excludedInstanceTypes"),
    ):
        if given.get(key) is not None:
            result[key] = _list(given[key], field_name, INSTANCE_TYPE_RE, 0, 400)
    if result.get("AllowedInstanceTypes") and result.get("ExcludedInstanceTypes"):
        raise errors.InvalidParameterValue(  # message unconfirmed
            "AllowedInstanceTypes and ExcludedInstanceTypes cannot both be specified."
        )
    return result


def scaling_config(value: object, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """CapacityProviderScalingConfig merged over `current` (Auto when never given:
    unconfirmed)."""
    given = _struct(value, "capacityProviderScalingConfig") or {}
    result = dict(current or {"ScalingMode": "Auto"})
    count = _number(
        given.get("MaxVCpuCount"), "capacityProviderScalingConfig.maxVCpuCount", 2, 15_000
    )
    if count is not None:
        result["MaxVCpuCount"] = count
    mode = _enum(
        given.get("ScalingMode"), "capacityProviderScalingConfig.scalingMode", ("Auto", "Manual")
    )
    if mode is not None:
        result["ScalingMode"] = mode
    policies = given.get("ScalingPolicies")
    if policies is not None:
        result["ScalingPolicies"] = _policies(policies)
    return result


def _policies(value: object) -> list[dict[str, Any]]:
    field_name = "capacityProviderScalingConfig.scalingPolicies"
    if not isinstance(value, list) or not 1 <= len(value) <= 10:
        raise errors.ValidationError.field(
            value,
            field_name,
            "Member must have length less than or equal to 10, Member must "
            "have length greater than or equal to 1",
        )
    checked = []
    for policy in value:
        policy = _struct(policy, field_name + ".member", required=True) or {}
        metric = policy.get("PredefinedMetricType")
        if metric is None:
            raise errors.ValidationError.field(
                None, field_name + ".member.predefinedMetricType", "Member must not be null"
            )
        _enum(
            metric,
            field_name + ".member.predefinedMetricType",
            ("LambdaCapacityProviderAverageCPUUtilization",),
        )
        target = _number(
            policy.get("TargetValue"), field_name + ".member.targetValue", 0, 100, float
        )
        if target is None:
            raise errors.ValidationError.field(
                None, field_name + ".member.targetValue", "Member must not be null"
            )
        checked.append({"PredefinedMetricType": metric, "TargetValue": target})
    return checked


def kms_key_arn(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not KMS_RE.fullmatch(value):
        raise errors.ValidationError.field(
            value, "kmsKeyArn", "Member must satisfy regular expression pattern: " + KMS_RE.pattern
        )
    return value


def propagate_tags(value: object) -> dict[str, Any] | None:
    given = _struct(value, "propagateTags")
    if given is None:
        return None
    result: dict[str, Any] = {}
    mode = _enum(given.get("Mode"), "propagateTags.mode", ("None", "Explicit"))
    if mode is not None:
        result["Mode"] = mode
    tags = given.get("ExplicitTags")
    if tags is not None:
        if not isinstance(tags, dict) or len(tags) > 40:
            raise errors.ValidationError.field(
                tags,
                "propagateTags.explicitTags",
                "Member must have length less than or equal to 40",
            )
        result["ExplicitTags"] = {str(k): str(v) for k, v in tags.items()}
    return result


def telemetry(value: object) -> dict[str, Any] | None:
    given = _struct(value, "telemetryConfig")
    if given is None:
        return None
    logging = _struct(given.get("LoggingConfig"), "telemetryConfig.loggingConfig")
    if logging is None:
        return {}
    result: dict[str, Any] = {}
    level = _enum(
        logging.get("SystemLogLevel"),
        "telemetryConfig.loggingConfig.systemLogLevel",
        ("DEBUG", "INFO", "WARN"),
    )
    if level is not None:
        result["SystemLogLevel"] = level
    group = logging.get("LogGroup")
    if group is not None:
        if (
            not isinstance(group, str)
            or not 1 <= len(group) <= 512
            or not LOG_GROUP_RE.fullmatch(group)
        ):
            raise errors.ValidationError.field(
                group,
                "telemetryConfig.loggingConfig.logGroup",
                "Member must satisfy regular expression pattern: " + LOG_GROUP_RE.pattern,
            )
        result["LogGroup"] = group
    return {"LoggingConfig": result}


# functions on a capacity provider -----------------------------------------------------------
def function_config(value: object) -> dict[str, Any]:
    """A function's CapacityProviderConfig as given (members checked; defaults come later,
    with `settle`)."""
    config = _struct(value, "capacityProviderConfig", required=True) or {}
    inner = (
        _struct(
            config.get("LambdaManagedInstancesCapacityProviderConfig"),
            "capacityProviderConfig.lambdaManagedInstancesCapacityProviderConfig",
            required=True,
        )
        or {}
    )
    prefix = "capacityProviderConfig.lambdaManagedInstancesCapacityProviderConfig."
    provider = inner.get("CapacityProviderArn")
    if not isinstance(provider, str):
        raise errors.ValidationError.field(
            None, prefix + "capacityProviderArn", "Member must not be null"
        )
    if not ARN_RE.fullmatch(provider):
        raise errors.ValidationError.field(
            provider,
            prefix + "capacityProviderArn",
            "Member must satisfy regular expression pattern: " + ARN_RE.pattern,
        )
    result: dict[str, Any] = {"CapacityProviderArn": provider}
    concurrency = _number(
        inner.get("PerExecutionEnvironmentMaxConcurrency"),
        prefix + "perExecutionEnvironmentMaxConcurrency",
        1,
        1600,
    )
    if concurrency is not None:
        result["PerExecutionEnvironmentMaxConcurrency"] = concurrency
    ratio = _number(
        inner.get("ExecutionEnvironmentMemoryGiBPerVCpu"),
        prefix + "executionEnvironmentMemoryGiBPerVCpu",
        2,
        8,
        float,
    )
    if ratio is not None:
        result["ExecutionEnvironmentMemoryGiBPerVCpu"] = float(ratio)
    return result


def check_runtime(runtime: str | None) -> None:
    if runtime is not None and not _SUPPORTED.fullmatch(runtime):
        raise errors.InvalidParameterValue(
            f"Runtime Enum {runtime} does not support specified feature: Lambda Managed Instances"
        )


def check_memory(memory_size: int) -> None:
    if memory_size < MIN_MEMORY:  # message unconfirmed
        raise errors.InvalidParameterValue(
            f"MemorySize {memory_size} is below the minimum of {MIN_MEMORY} MB for functions on "
            "a capacity provider."
        )


def vcpus(memory_size: int, config: dict[str, Any]) -> int:
    """An environment's vCPUs: its memory over ExecutionEnvironmentMemoryGiBPerVCpu (2 GiB by
    default), at least one."""
    ratio = float(config.get("ExecutionEnvironmentMemoryGiBPerVCpu", 2.0))
    return max(1, int(memory_size / 1024 / ratio))


def settle(config: dict[str, Any], runtime: str | None, memory_size: int) -> dict[str, Any]:
    """The configuration with AWS's defaults filled in: 2 GiB per vCPU, and the runtime's
    invocations per vCPU times the environment's vCPUs."""
    ratio = float(config.get("ExecutionEnvironmentMemoryGiBPerVCpu", 2.0))
    cpus = vcpus(memory_size, config)
    family = runtimes.family(runtime) if runtime else "provided"
    concurrency = config.get(
        "PerExecutionEnvironmentMaxConcurrency",
        min(1600, PER_VCPU.get(family, PER_VCPU["python"]) * cpus),
    )
    return {
        "CapacityProviderArn": config["CapacityProviderArn"],
        "PerExecutionEnvironmentMaxConcurrency": concurrency,
        "ExecutionEnvironmentMemoryGiBPerVCpu": ratio,
    }


def scaling_request(value: object) -> dict[str, int]:
    """A FunctionScalingConfig (PutFunctionScalingConfig)."""
    given = _struct(value, "functionScalingConfig") or {}
    result = {}
    for key, field_name in (
        ("MinExecutionEnvironments", "functionScalingConfig.minExecutionEnvironments"),
        ("MaxExecutionEnvironments", "functionScalingConfig.maxExecutionEnvironments"),
    ):
        number = _number(given.get(key), field_name, 0, 15_000)
        if number is not None:
            result[key] = number
    low, high = result.get("MinExecutionEnvironments"), result.get("MaxExecutionEnvironments")
    if low is not None and high is not None and low > high:  # message unconfirmed
        raise errors.InvalidParameterValue(
            "MinExecutionEnvironments cannot be greater than MaxExecutionEnvironments."
        )
    return result


def applied_scaling(requested: dict[str, int] | None) -> dict[str, int]:
    """The scaling configuration in effect: the requested one, else three environments."""
    applied = {"MinExecutionEnvironments": DEFAULT_MIN_ENVIRONMENTS}
    applied.update(requested or {})
    return applied
