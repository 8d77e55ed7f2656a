"""Runtime identifiers: which ones Lambda knows, which Lamina runs, and their families.

Lamina runs three families: `python3.x` and `nodejs*` with its own bootstraps, and `provided*`
with the function's own executable `bootstrap`. The identifiers are the enum of the Lambda API
model; ones AWS no longer accepts for new functions are refused the same way.
"""

from __future__ import annotations

import hashlib
import re

from lamina.domain import errors

KNOWN = (
    "nodejs",
    "nodejs4.3",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "nodejs18.x",
    "nodejs20.x",
    "nodejs22.x",
    "nodejs24.x",
    "nodejs26.x",
    "java8",
    "java8.al2",
    "java11",
    "java17",
    "java21",
    "java25",
    "java8.al2023",
    "java11.al2023",
    "java17.al2023",
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "python3.9",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
    "python3.14",
    "python3.15",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "dotnet6",
    "dotnet8",
    "dotnet10",
    "nodejs4.3-edge",
    "go1.x",
    "ruby2.5",
    "ruby2.7",
    "ruby3.2",
    "ruby3.3",
    "ruby3.4",
    "ruby4.0",
    "provided",
    "provided.al2",
    "provided.al2023",
)

# Identifiers AWS refuses for new functions ("no longer supported for creating or updating").
DEPRECATED = frozenset(
    (
        "nodejs",
        "nodejs4.3",
        "nodejs4.3-edge",
        "nodejs6.10",
        "nodejs8.10",
        "nodejs10.x",
        "nodejs12.x",
        "nodejs14.x",
        "python2.7",
        "python3.6",
        "python3.7",
        "dotnetcore1.0",
        "dotnetcore2.0",
        "dotnetcore2.1",
        "dotnetcore3.1",
        "ruby2.5",
        "ruby2.7",
        "go1.x",
        "java8",
        "provided",
    )
)

# The runtimes AWS lists, in its order, when it refuses an unknown one (recorded 2025-11-25).
AWS_LISTED = (
    "nodejs20.x",
    "python3.14",
    "provided.al2023",
    "python3.12",
    "python3.13",
    "nodejs24.x",
    "nodejs22.x",
    "java25",
    "python3.10",
    "python3.11",
    "java21",
    "ruby3.3",
    "ruby3.4",
    "ruby3.2",
    "python3.8",
    "python3.9",
    "java17",
    "nodejs16.x",
    "dotnet10",
    "dotnet8",
    "java11",
    "dotnet6",
    "nodejs18.x",
    "provided.al2",
    "java8.al2",
)

_VERSION = re.compile(r"(python|nodejs)(\d+)(?:\.(\d+)|\.x)?")


def family(runtime: str) -> str:
    """'python', 'nodejs' or 'provided'; anything else Lamina cannot run."""
    for name in ("python", "nodejs", "provided"):
        if runtime.startswith(name):
            return name
    return "other"


def version_of(runtime: str) -> tuple[int, int] | None:
    """(3, 12) for python3.12, (20, 0) for nodejs20.x; None for provided."""
    match = _VERSION.fullmatch(runtime)
    if match is None:
        return None
    return int(match[2]), int(match[3] or 0)


def check(runtime: str | None, package_type: str) -> None:
    """Raise the error AWS gives for a runtime it would not accept, or Lamina cannot run."""
    if package_type == "Image":
        return
    if runtime is None:
        raise errors.InvalidParameterValue(
            "Runtime and Handler are mandatory parameters for "
            "functions created with deployment packages."
        )
    if runtime not in KNOWN:
        raise errors.InvalidParameterValue(
            f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy "
            f"enum value set: [{', '.join(AWS_LISTED)}] or be a valid ARN"
        )
    if runtime in DEPRECATED:
        raise errors.InvalidParameterValue(
            f"The runtime parameter of {runtime} is no longer supported for creating or updating "
            "AWS Lambda functions. We recommend you use a supported runtime while creating or "
            "updating functions."
        )
    if family(runtime) == "other":
        raise errors.InvalidParameterValue(
            f"Lamina cannot run the runtime {runtime}: it runs python3.x, nodejs* and provided.* "
            "(any executable bootstrap, such as a runtime interface client)."
        )


def execution_env(runtime: str) -> str | None:
    """AWS_EXECUTION_ENV for a runtime; custom runtimes get none (spec §9.5)."""
    return None if family(runtime) == "provided" else f"AWS_Lambda_{runtime}"


def version_arn(region: str, runtime: str) -> str:
    """The RuntimeVersionArn a function on `runtime` reports (RuntimeVersionConfig). AWS names
    the runtime build a function runs (`arn:aws:lambda:<region>::runtime:<64 hex>`); Lamina
    runs whatever interpreter it finds, so the ARN is one stable value per runtime, changing
    when the runtime does, as AWS's does."""
    digest = hashlib.sha256(f"lamina-runtime:{runtime}".encode()).hexdigest()
    return f"arn:aws:lambda:{region}::runtime:{digest}"
