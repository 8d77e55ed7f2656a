"""Code signing configurations: which signing profiles a function's code must come from, and
what Lambda does with code that fails the checks (`Warn` or `Enforce`).

Lambda verifies a package's AWS Signer signature when it is deployed (integrity, expiry,
signing profile, revocation). Lamina has no AWS Signer, so it can verify none of these: every
package deployed to a function that has a configuration counts as one whose checks failed.
Under `Enforce` the deployment is refused with AWS's `CodeVerificationFailedException`; under
`Warn` it is accepted and the engine logs a warning. Shapes, messages and limits follow the
API model and responses recorded against AWS (LocalStack's `TestCodeSigningConfig`
snapshots); https://docs.aws.amazon.com/lambda/latest/dg/configuration-codesigning.html
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from lamina.domain import errors

ARN_RE = re.compile(
    r"arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-"
    r"[a-z]+-\d{1}:\d{12}:code-signing-config:csc-[a-z0-9]{17}"
)
PROFILE_ARN_RE = re.compile(
    r"arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}"
    r"((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)"
)
POLICIES = ("Warn", "Enforce")
MAX_PROFILES = 20
MAX_DESCRIPTION = 256


@dataclass(frozen=True, slots=True)
class CodeSigningConfig:
    """One code signing configuration (CodeSigningConfig in the API model)."""

    arn: str
    profiles: tuple[str, ...]
    policy: str = "Warn"
    description: str = ""
    last_modified: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.arn.rsplit(":", 1)[1]

    def replace(self, **changes: Any) -> CodeSigningConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["profiles"] = list(self.profiles)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodeSigningConfig:
        return cls(**{**data, "profiles": tuple(data["profiles"])})


def new_arn(region: str, account: str) -> str:
    """A fresh configuration ARN: `csc-` and 17 lower-case hex digits, as AWS makes them."""
    return f"arn:aws:lambda:{region}:{account}:code-signing-config:csc-{secrets.token_hex(9)[:17]}"


def check_arn(value: object, field_name: str = "codeSigningConfigArn") -> str:
    if not isinstance(value, str):
        raise errors.ValidationError.field(None, field_name, "Member must not be null")
    if len(value) > 200:
        raise errors.ValidationError.field(
            value, field_name, "Member must have length less than or equal to 200"
        )
    if not ARN_RE.fullmatch(value):
        raise errors.ValidationError.field(
            value, field_name, "Member must satisfy regular expression pattern: " + ARN_RE.pattern
        )
    return value


def profiles(publishers: object, required: bool) -> tuple[str, ...] | None:
    """The signing profile version ARNs of an `AllowedPublishers` member."""
    if publishers is None:
        if required:
            raise errors.ValidationError.field(None, "allowedPublishers", "Member must not be null")
        return None
    arns = publishers.get("SigningProfileVersionArns") if isinstance(publishers, dict) else None
    if not isinstance(arns, list):
        raise errors.ValidationError.field(
            None, "allowedPublishers.signingProfileVersionArns", "Member must not be null"
        )
    if not 1 <= len(arns) <= MAX_PROFILES:
        raise errors.ValidationError.field(
            arns,
            "allowedPublishers.signingProfileVersionArns",
            f"Member must have length less than or equal to {MAX_PROFILES}, Member must have "
            "length greater than or equal to 1",
        )
    for arn in arns:
        if not isinstance(arn, str) or not PROFILE_ARN_RE.fullmatch(arn):
            raise errors.ValidationError.field(
                arn,
                "allowedPublishers.signingProfileVersionArns.member",
                "Member must satisfy regular expression pattern: " + PROFILE_ARN_RE.pattern,
            )
    return tuple(arns)


def policy(policies: object) -> str | None:
    """The `UntrustedArtifactOnDeployment` of a `CodeSigningPolicies` member."""
    if policies is None:
        return None
    value = policies.get("UntrustedArtifactOnDeployment") if isinstance(policies, dict) else None
    if value is None:
        return None
    if value not in POLICIES:
        raise errors.ValidationError.field(
            value,
            "codeSigningPolicies.untrustedArtifactOnDeployment",
            "Member must satisfy enum value set: [Warn, Enforce]",
        )
    return str(value)


def description(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise errors.ValidationError.field(
            value, "description", f"Member must have length less than or equal to {MAX_DESCRIPTION}"
        )
    return value


def not_found(arn: str) -> errors.ResourceNotFound:
    """What the configuration operations answer for an ARN that names no configuration."""
    return errors.ResourceNotFound(  # AWS's body has no Type here
        f"The Lambda code signing configuration {arn} can not be found.", typed=False
    )


def not_found_for_function(arn: str) -> errors.CodeSigningConfigNotFound:
    """What attaching a configuration that does not exist answers."""
    return errors.CodeSigningConfigNotFound(
        "The code signing configuration cannot be found. Check that the provided configuration "
        f"is not deleted: {arn}."
    )


def unverified(function: str) -> errors.CodeVerificationFailed:
    """AWS's answer to a deployment an `Enforce` policy refuses."""
    return errors.CodeVerificationFailed(
        "Lambda cannot deploy the function. The function or layer might be signed using a "
        "signature that the client is not configured to accept. Check the provided signature "
        f"for {function}."
    )


def in_use(arn: str) -> errors.ResourceConflict:  # message unconfirmed
    return errors.ResourceConflict(
        f"The code signing configuration {arn} cannot be deleted because it is used by one or "
        "more functions."
    )
