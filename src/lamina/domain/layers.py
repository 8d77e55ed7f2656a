"""Layers: names, ARNs, the versions PublishLayerVersion makes, and the rules a function's
`Layers` list must satisfy (spec §1.3; shapes and patterns from botocore's Lambda model).

A layer version is immutable once published; deleting one only hides it (its number is
never given again, and functions that use it keep a copy, as on AWS: `LayerRef` carries
everything an environment needs, the package key included).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from lamina.domain import errors, limits, policies
from lamina.domain import runtimes as runtimes_module

NAME_RE = re.compile(r"[a-zA-Z0-9-_]+")
NAME_MAX = 140
LAYER_ARN_RE = re.compile(
    r"arn:(?:aws[a-zA-Z-]*)?:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):layer:"
    r"(?P<name>[a-zA-Z0-9-_]+)"
)
VERSION_ARN_RE = re.compile(LAYER_ARN_RE.pattern + r":(?P<version>[0-9]+)")
NAME_PATTERN = (
    "(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-"
    "\\d{1}:\\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+"
)
VERSION_ARN_PATTERN = (  # as AWS quotes it (recorded 2025-11-25)
    "(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:"
    "\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
)
# The runtimes ListLayers and ListLayerVersions accept as CompatibleRuntime, in AWS's order
LISTABLE_RUNTIMES = (
    "ruby3.5",
    "ruby2.6",
    "dotnetcore1.0",
    "python3.7",
    "nodejs8.10",
    "nasa",
    "ruby2.7",
    "python2.7-greengrass",
    "dotnetcore2.0",
    "python3.8",
    "java21",
    "dotnet6",
    "dotnetcore2.1",
    "python3.9",
    "java11",
    "nodejs6.10",
    "provided",
    "dotnetcore3.1",
    "dotnet8",
    "java25",
    "java17",
    "nodejs",
    "nodejs4.3",
    "java8.al2",
    "go1.x",
    "dotnet10",
    "nodejs20.x",
    "go1.9",
    "byol",
    "nodejs10.x",
    "provided.al2023",
    "nodejs22.x",
    "python3.10",
    "java8",
    "nodejs12.x",
    "python3.11",
    "nodejs24.x",
    "nodejs8.x",
    "python3.12",
    "nodejs14.x",
    "nodejs8.9",
    "nodejs26.x",
    "python3.13",
    "python3.14",
    "nodejs16.x",
    "python3.15",
    "provided.al2",
    "nodejs4.3-edge",
    "nodejs18.x",
    "ruby3.2",
    "python3.4",
    "ruby3.3",
    "ruby3.4",
    "ruby2.5",
    "python3.6",
    "python2.7",
)
ARCHITECTURES = ("x86_64", "arm64")
NOT_FOUND = "The resource you requested does not exist."
LAYER_RACE = "Another request published this layer version first; try again."  # unconfirmed


@dataclass(frozen=True, slots=True)
class LayerVersion:
    """One published version of a layer."""

    name: str
    version: int
    arn: str  # the layer's ARN (without the version)
    code_sha256: str
    code_size: int
    key: str  # the package's hex digest (storage.code)
    created_date: str
    description: str = ""
    compatible_runtimes: tuple[str, ...] | None = None  # None: not given (AWS omits it)
    compatible_architectures: tuple[str, ...] | None = None
    license_info: str | None = None
    deleted: bool = False
    # AddLayerVersionPermission's statements, and the RevisionId of that policy
    statements: tuple[dict[str, Any], ...] = ()
    policy_revision: str | None = None
    path: str | None = None  # hot reload: the folder the layer is (domain.code)

    @property
    def version_arn(self) -> str:
        return f"{self.arn}:{self.version}"

    def ref(self) -> LayerRef:
        return LayerRef(self.version_arn, self.code_size, self.key, self.path)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerVersion:
        def listed(key: str) -> tuple[str, ...] | None:
            value = data.get(key)
            return None if value is None else tuple(value)

        return cls(
            **{
                **data,
                "compatible_runtimes": listed("compatible_runtimes"),
                "compatible_architectures": listed("compatible_architectures"),
                "statements": tuple(data.get("statements", ())),
            }
        )

    def policy(self) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Id": "default", "Statement": list(self.statements)}


@dataclass(frozen=True, slots=True)
class LayerPermission:
    """An AddLayerVersionPermission request (None: not given)."""

    statement_id: str | None
    action: str | None
    principal: str | None
    organization_id: str | None = None


_PERMISSION = (
    ("statement_id", "statementId", r"([a-zA-Z0-9-_]+)", 100),
    ("action", "action", r"lambda:GetLayerVersion", 22),
    ("principal", "principal", r"\d{12}|\*|arn:(aws[a-zA-Z-]*):iam::\d{12}:root", 10_000),
    ("organization_id", "organizationId", r"o-[a-z0-9]{10,32}", 34),
)


def layer_statement(permission: LayerPermission, resource: str) -> dict[str, Any]:
    """The statement AddLayerVersionPermission adds (AWS's ValidationException first)."""
    policies.check_members(permission, _PERMISSION, ("statement_id", "action", "principal"))
    principal = permission.principal or ""
    statement: dict[str, Any] = {
        "Sid": permission.statement_id,
        "Effect": "Allow",
        "Principal": "*"
        if principal == "*"
        else {
            "AWS": principal if principal.startswith("arn:") else f"arn:aws:iam::{principal}:root"
        },
        "Action": permission.action,
        "Resource": resource,
    }
    if permission.organization_id is not None:
        statement["Condition"] = {
            "StringEquals": {"aws:PrincipalOrgID": permission.organization_id}
        }
    return statement


@dataclass(frozen=True, slots=True)
class LayerRef:
    """A layer version as a function version keeps it (FunctionConfiguration.Layers)."""

    arn: str
    code_size: int
    key: str
    path: str | None = None  # hot reload: the layer's folder, used as it is


def layer_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:layer:{name}"


def parse_name(value: str, region: str) -> tuple[str, str | None]:
    """A LayerName path value (a name or a layer ARN) as a bare name and the account an ARN
    names (None: a bare name); AWS's 400 if invalid."""
    arn = LAYER_ARN_RE.fullmatch(value)
    if len(value) > NAME_MAX or (arn is None and not NAME_RE.fullmatch(value)):
        raise errors.ValidationError.field(
            value, "layerName", "Member must satisfy regular expression pattern: " + NAME_PATTERN
        )
    if arn is None:
        return value, None
    if arn["region"] != region:
        raise errors.ResourceNotFound(NOT_FOUND)
    return arn["name"], arn["account"]


def parse_version_arn(value: str, field: str = "arn") -> tuple[str, str, str, int]:
    """(region, account, name, version) of a layer version ARN; AWS's 400 if invalid."""
    match = VERSION_ARN_RE.fullmatch(value)
    if match is None:
        raise errors.ValidationError.field(
            value, field, "Member must satisfy regular expression pattern: " + VERSION_ARN_PATTERN
        )
    return match["region"], match["account"], match["name"], int(match["version"])


def check_filters(runtime: str | None, architecture: str | None) -> None:
    """ListLayers' and ListLayerVersions' CompatibleRuntime and CompatibleArchitecture."""
    if runtime is not None and runtime not in LISTABLE_RUNTIMES:
        raise errors.ValidationError.field(
            runtime,
            "compatibleRuntime",
            f"Member must satisfy enum value set: [{', '.join(LISTABLE_RUNTIMES)}]",
        )
    if architecture is not None and architecture not in ARCHITECTURES:
        raise errors.ValidationError.field(
            architecture,
            "compatibleArchitecture",
            "Member must satisfy enum value set: [x86_64, arm64]",
        )


def check_publish(
    description: object, runtimes: object, architectures: object, license_info: object
) -> None:
    """The optional members of PublishLayerVersion (AWS reports the lists' problems
    together)."""
    if description is not None and (
        not isinstance(description, str) or len(description) > limits.DESCRIPTION_MAX
    ):
        raise errors.ValidationError.field(
            description,
            "description",
            f"Member must have length less than or equal to {limits.DESCRIPTION_MAX}",
        )
    # any runtime of the model is accepted (deprecated ones too); AWS's message lists the
    # ones it still supports
    problems = _list_problems(
        runtimes,
        "compatibleRuntimes",
        15,
        runtimes_module.KNOWN,
        "Member must satisfy enum value set: [{}]",
        runtimes_module.AWS_LISTED,
    )
    problems += _list_problems(
        architectures,
        "compatibleArchitectures",
        2,
        ARCHITECTURES,
        "Member must satisfy constraint: [Member must satisfy enum "
        "value set: [{}], Member must not be null]",
        ARCHITECTURES,
    )
    if problems:
        raise errors.ValidationError.fields(problems)
    if license_info is not None and (not isinstance(license_info, str) or len(license_info) > 512):
        raise errors.ValidationError.field(
            license_info, "licenseInfo", "Member must have length less than or equal to 512"
        )


def _list_problems(
    values: object,
    field: str,
    longest: int,
    allowed: tuple[str, ...],
    constraint: str,
    listed: tuple[str, ...],
) -> list[tuple[object, str, str]]:
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        return [(values, field, "Member must be a list of strings")]
    shown = "[" + ", ".join(values) + "]"
    if len(values) > longest:
        return [(shown, field, f"Member must have length less than or equal to {longest}")]
    if any(v not in allowed for v in values):
        return [(shown, field, constraint.format(", ".join(listed)))]
    return []


def check_references(arns: tuple[str, ...]) -> None:
    """A function's `Layers`: at most five version ARNs, at most one version of a layer.
    (Whether each exists is for the service to say.)"""
    for arn in arns:
        if not isinstance(arn, str) or VERSION_ARN_RE.fullmatch(arn) is None or len(arn) > 2048:
            raise errors.ValidationError.field(
                f"[{arn}]",
                "layers",
                "Member must satisfy constraint: [Member must have length "
                "less than or equal to 2048, Member must have length greater than or equal to 1, "
                f"Member must satisfy regular expression pattern: {VERSION_ARN_PATTERN}, Member "
                "must not be null]",
            )
    if len(arns) > limits.LAYERS_PER_FUNCTION:
        raise errors.InvalidParameterValue(
            f"Cannot reference more than {limits.LAYERS_PER_FUNCTION} layers."
        )
    seen: dict[str, str] = {}
    for arn in arns:
        layer = arn.rsplit(":", 1)[0]
        if layer in seen:
            raise errors.InvalidParameterValue(
                "Two different versions of the same layer are not allowed to be referenced in "
                f"the same function. {seen[layer]} and {arn} are versions of the same layer."
            )
        seen[layer] = arn
