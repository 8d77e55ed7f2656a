"""Lambda API wire format (restJson1), without I/O: decode requests, encode responses.

Field names, shapes and header bindings follow the Lambda API model in botocore
(`botocore/data/lambda/2015-03-31/service-2.json`); spec §2, §4.
"""

from __future__ import annotations

import base64
import binascii
import json
import json.scanner
import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any, cast

from lamina.domain import arns, capacity, errors, limits, runtimes
from lamina.domain.code import CodeSource, s3_object
from lamina.domain.layers import LayerVersion
from lamina.domain.model import Alias, FunctionConfig, InvocationSummary, VpcConfig
from lamina.domain.settings import FunctionSettings
from lamina.http.server import HeadResponse, Response

JSON = "application/json"


# responses ---------------------------------------------------------------------------------
def json_response(status: int, body: Any, request_id: str) -> Response:
    data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    return Response(status, [("x-amzn-RequestId", request_id), ("Content-Type", JSON)], data)


def empty_response(status: int, request_id: str) -> Response:
    return Response(status, [("x-amzn-RequestId", request_id)], b"")


def error_response(error: errors.LaminaError, request_id: str) -> Response:
    """The one place an error becomes HTTP: status, x-amzn-ErrorType, AWS-shaped body."""
    headers = [
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", error.error_type),
        ("Content-Type", JSON),
        *error.headers(),
    ]
    return Response(error.status, headers, json.dumps(error.body()).encode())


def function_configuration(
    config: FunctionConfig, arn: str, listed: bool = False
) -> dict[str, Any]:
    """The FunctionConfiguration shape (GetFunctionConfiguration and friends). `listed`: as
    ListFunctions and ListVersionsByFunction show it, without the state fields and the
    runtime version (as AWS lists them)."""
    body: dict[str, Any] = {
        "FunctionName": config.plain_name,
        "FunctionArn": arn,
        "Runtime": config.runtime,
        "Role": config.role,
        "Handler": config.handler,
        "CodeSize": config.code_size,
        "Description": config.description,
        "Timeout": config.timeout,
        "MemorySize": config.memory_size,
        "LastModified": config.last_modified,
        "CodeSha256": config.code_sha256,
        "Version": config.version,
    }
    if config.runtime is None:
        del body["Runtime"]
    if config.handler is None:
        del body["Handler"]
    if config.environment or config.has_environment:
        body["Environment"] = {"Variables": dict(config.environment)}
    if config.dead_letter_target:
        body["DeadLetterConfig"] = {"TargetArn": config.dead_letter_target}
    if config.vpc is not None:
        body["VpcConfig"] = {
            "SubnetIds": list(config.vpc.subnet_ids),
            "SecurityGroupIds": list(config.vpc.security_group_ids),
            "VpcId": config.vpc.vpc_id,
            "Ipv6AllowedForDualStack": config.vpc.ipv6_dual_stack,
        }
    body["TracingConfig"] = {"Mode": config.tracing_mode}
    body["RevisionId"] = config.revision_id
    if not listed:
        body.update(_state(config))
    if config.layers:
        body["Layers"] = [
            {"Arn": layer.arn, "CodeSize": layer.code_size} for layer in config.layers
        ]
    body["PackageType"] = config.package_type
    body["Architectures"] = list(config.architectures)
    body["EphemeralStorage"] = {"Size": config.ephemeral_storage}
    body["SnapStart"] = {"ApplyOn": "None", "OptimizationStatus": "Off"}
    if config.runtime is not None and not listed:
        body["RuntimeVersionConfig"] = {
            "RuntimeVersionArn": config.runtime_version_arn
            or runtimes.version_arn(arn.split(":")[3], config.runtime)
        }
    body["LoggingConfig"] = logging_config(config)
    if config.tenant_isolation:
        body["TenancyConfig"] = {"TenantIsolationMode": config.tenant_isolation}
    if config.capacity_provider is not None:
        body["CapacityProviderConfig"] = {
            "LambdaManagedInstancesCapacityProviderConfig": dict(config.capacity_provider)
        }
    if config.durable_config:
        body["DurableConfig"] = dict(config.durable_config)
    return body


def _state(config: FunctionConfig) -> dict[str, str]:
    fields = {
        "State": config.state,
        "StateReason": config.state_reason,
        "StateReasonCode": config.state_reason_code,
        "LastUpdateStatus": config.last_update_status,
        "LastUpdateStatusReason": config.last_update_status_reason,
        "LastUpdateStatusReasonCode": config.last_update_status_reason_code,
    }
    return {key: value for key, value in fields.items() if value is not None}


def logging_config(config: FunctionConfig) -> dict[str, str]:
    """LoggingConfig as AWS shows it: the levels only with the JSON format."""
    body = {
        "LogFormat": config.log_format,
        "LogGroup": config.log_group_name,
    }
    if config.application_log_level is not None:
        body["ApplicationLogLevel"] = config.application_log_level
    if config.system_log_level is not None:
        body["SystemLogLevel"] = config.system_log_level
    return body


def layer_version(layer: LayerVersion, location: str | None = None) -> dict[str, Any]:
    """A layer version as PublishLayerVersion and GetLayerVersion answer it (with the
    archive's `location`), or as a LayerVersionsListItem (without)."""
    body: dict[str, Any] = {
        "LayerVersionArn": layer.version_arn,
        "Version": layer.version,
        "Description": layer.description,
        "CreatedDate": layer.created_date,
    }
    if layer.compatible_runtimes is not None:  # shown when given, even empty (as AWS does)
        body["CompatibleRuntimes"] = list(layer.compatible_runtimes)
    if layer.compatible_architectures is not None:
        body["CompatibleArchitectures"] = list(layer.compatible_architectures)
    if layer.license_info is not None:
        body["LicenseInfo"] = layer.license_info
    if location is not None:
        body = {
            "Content": {
                "Location": location,
                "CodeSha256": layer.code_sha256,
                "CodeSize": layer.code_size,
            },
            "LayerArn": layer.arn,
            **body,
        }
    return body


def invocation_summary(summary: InvocationSummary) -> dict[str, Any]:
    return {
        "RequestId": summary.request_id,
        "FunctionName": arns.plain_name(summary.function),
        "Qualifier": summary.qualifier,
        "InvocationType": summary.invocation_type,
        "AcceptedAt": summary.accepted_at,
        "Status": summary.status,
        "FinishedAt": summary.finished_at,
        "Attempts": summary.attempts,
        "ErrorType": summary.error_type,
        "DurationMs": summary.duration_ms,
    }


# requests ----------------------------------------------------------------------------------
def compact_json(value: Any) -> str:
    """JSON inside a JSON member (a policy, a statement), as Lambda writes it."""
    return json.dumps(value, separators=(",", ":"))


def json_body(body: bytes) -> dict[str, Any]:
    """A control-plane request body as a JSON object, or the error AWS gives."""
    if not body:
        return {}
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested deep
        raise errors.InvalidRequestContent("Could not parse request body into json") from None
    if not isinstance(document, dict):
        raise errors.InvalidRequestContent("Could not parse request body into json")
    return document


def _typed(document: dict[str, Any], key: str, kind: type | tuple[type, ...], field: str) -> Any:
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise errors.ValidationError.field(value, field, f"Member must be of type {_name(kind)}")
    return value


def _name(kind: type | tuple[type, ...]) -> str:
    names = {int: "integer", str: "string", dict: "structure", list: "list", bool: "boolean"}
    return names.get(kind, "value") if isinstance(kind, type) else "value"


def function_settings(document: dict[str, Any]) -> FunctionSettings:
    """The configuration fields of CreateFunction / UpdateFunctionConfiguration."""
    environment = _typed(document, "Environment", dict, "environment")
    variables = None
    if environment is not None:
        variables = _typed(environment, "Variables", dict, "environment.variables") or {}
        variables = {
            str(k): v if isinstance(v, str) else json.dumps(v) for k, v in variables.items()
        }
    ephemeral = _typed(document, "EphemeralStorage", dict, "ephemeralStorage")
    dead_letter = _typed(document, "DeadLetterConfig", dict, "deadLetterConfig")
    tracing = _typed(document, "TracingConfig", dict, "tracingConfig")
    logging_config = _typed(document, "LoggingConfig", dict, "loggingConfig") or {}
    tenancy = _typed(document, "TenancyConfig", dict, "tenancyConfig")
    architectures = _typed(document, "Architectures", list, "architectures")
    layers = _typed(document, "Layers", list, "layers")
    snap_start = _typed(document, "SnapStart", dict, "snapStart")
    if snap_start is not None and snap_start.get("ApplyOn") not in ("PublishedVersions", "None"):
        raise errors.ValidationError.field(  # checked, not acted on: Lamina has no SnapStart
            snap_start.get("ApplyOn"),
            "snapStart.applyOn",
            "Member must satisfy enum value set: [PublishedVersions, None]",
        )
    return FunctionSettings(
        runtime=_typed(document, "Runtime", str, "runtime"),
        handler=_typed(document, "Handler", str, "handler"),
        role=_typed(document, "Role", str, "role"),
        description=_typed(document, "Description", str, "description"),
        timeout=_typed(document, "Timeout", int, "timeout"),
        memory_size=_typed(document, "MemorySize", int, "memorySize"),
        environment=variables,
        architectures=tuple(architectures) if architectures is not None else None,
        ephemeral_storage=_typed(ephemeral, "Size", int, "ephemeralStorage.size")
        if ephemeral
        else None,
        dead_letter_target=(dead_letter or {}).get("TargetArn")
        if dead_letter is not None
        else None,
        tracing_mode=_typed(tracing, "Mode", str, "tracingConfig.mode") if tracing else None,
        layers=tuple(layers) if layers is not None else None,
        log_format=_typed(logging_config, "LogFormat", str, "loggingConfig.logFormat")
        if logging_config
        else None,
        application_log_level=_typed(
            logging_config, "ApplicationLogLevel", str, "loggingConfig.applicationLogLevel"
        )
        if logging_config
        else None,
        system_log_level=_typed(
            logging_config, "SystemLogLevel", str, "loggingConfig.systemLogLevel"
        )
        if logging_config
        else None,
        log_group=_typed(logging_config, "LogGroup", str, "loggingConfig.logGroup")
        if logging_config
        else None,
        vpc=vpc_config(_typed(document, "VpcConfig", dict, "vpcConfig")),
        tenant_isolation=_tenancy(tenancy),
        package_type=_typed(document, "PackageType", str, "packageType"),
        capacity_provider=capacity.function_config(document["CapacityProviderConfig"])
        if "CapacityProviderConfig" in document
        else None,
        durable_config=_typed(document, "DurableConfig", dict, "durableConfig"),
    )


def vpc_config(document: dict[str, Any] | None) -> VpcConfig | None:
    """A VpcConfig member (lists of ids; the VPC is looked up from them)."""
    if document is None:
        return None
    subnets = _typed(document, "SubnetIds", list, "vpcConfig.subnetIds") or []
    groups = _typed(document, "SecurityGroupIds", list, "vpcConfig.securityGroupIds") or []
    ipv6 = _typed(document, "Ipv6AllowedForDualStack", bool, "vpcConfig.ipv6AllowedForDualStack")
    return VpcConfig(tuple(map(str, subnets)), tuple(map(str, groups)), ipv6_dual_stack=bool(ipv6))


def _tenancy(tenancy: dict[str, Any] | None) -> str | None:
    if tenancy is None:
        return None
    mode = _typed(tenancy, "TenantIsolationMode", str, "tenancyConfig.tenantIsolationMode")
    if mode is None:
        raise errors.ValidationError.field(
            "null", "tenancyConfig.tenantIsolationMode", "Member must not be null"
        )
    return str(mode)


def code_source(code: dict[str, Any] | None, prefix: str = "code.") -> CodeSource:
    """The package a `Code` member (CreateFunction), an UpdateFunctionCode request or a
    layer's `Content` names: `ZipFile` (base64), else `S3Bucket`/`S3Key`/`S3ObjectVersion`."""
    if not isinstance(code, dict) or not code:
        raise errors.InvalidParameterValue("Please provide a source for function code.")
    encoded = code.get("ZipFile")
    if encoded is None and code.get("S3Bucket") is not None:
        return CodeSource(
            s3=s3_object(
                code.get("S3Bucket"), code.get("S3Key"), code.get("S3ObjectVersion"), prefix
            )
        )
    if code.get("ImageUri"):
        raise errors.InvalidParameterValue(
            "Lamina accepts deployment packages as ZipFile or S3 objects only (container "
            "images are not supported yet)."
        )
    if not isinstance(encoded, str) or not encoded:
        raise errors.InvalidParameterValue("Please provide a source for function code.")
    try:
        return CodeSource(zip_file=base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        raise errors.InvalidParameterValue(
            "Could not unzip uploaded file. Please check your file, then try to upload again."
        ) from None


def code_location(host: str | None, key: str, folder: str | None = None) -> str:
    """Where a package can be downloaded (GetFunction's Code.Location, a layer's Content);
    a hot-reloaded one's folder as a `file://` URL, as LocalStack answers."""
    if folder is not None:
        return PurePosixPath(folder).as_uri()
    return f"http://{host or '127.0.0.1'}/_lamina/code/{key}.zip"


def paginate(items: list[Any], params: dict[str, str]) -> tuple[list[Any], str | None]:
    """A page of `items` after the `Marker` parameter, at most `MaxItems`; the next marker."""
    limit = max_items(params.get("MaxItems"))
    marker = params.get("Marker") or "0"
    if not marker.isdigit():
        raise errors.InvalidParameterValue("Invalid Marker value.")
    start = int(marker)
    return items[start : start + limit], (
        str(start + limit) if start + limit < len(items) else None
    )


def alias_configuration(alias: Alias, arn: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "AliasArn": arn,
        "Name": alias.name,
        "FunctionVersion": alias.function_version,
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    }
    if alias.additional_version:
        body["RoutingConfig"] = {
            "AdditionalVersionWeights": {alias.additional_version: alias.additional_weight}
        }
    return body


def routing(document: dict[str, Any]) -> dict[str, float] | None:
    config = document.get("RoutingConfig")
    if config is None:
        return None
    weights = config.get("AdditionalVersionWeights") if isinstance(config, dict) else None
    if weights is None:
        return {}
    if not isinstance(weights, dict):
        raise errors.ValidationError.field(
            weights, "routingConfig.additionalVersionWeights", "Member must be a map"
        )
    return {str(k): v for k, v in weights.items()}


def function_version(value: str | None) -> bool:
    """ListFunctions' `FunctionVersion`: True for ALL (every version), False if not given."""
    if value is None:
        return False
    if value != "ALL":
        raise errors.ValidationError.field(
            value, "functionVersion", "Member must satisfy enum value set: [ALL]"
        )
    return True


def max_items(value: str | None) -> int:
    if value is None:
        return 50
    if not value.isdigit() or not 1 <= int(value) <= 10_000:
        raise errors.ValidationError.field(
            value, "maxItems", "Member must have value between 1 and 10000"
        )
    return int(value)


# invoke ------------------------------------------------------------------------------------
INVOCATION_TYPES = ("Event", "RequestResponse", "DryRun")


def invocation_type(header: str | None, streaming: bool = False) -> str:
    if header is None or header == "":
        return "RequestResponse"
    allowed = ("RequestResponse", "DryRun") if streaming else INVOCATION_TYPES
    if header not in allowed:
        raise errors.ValidationError.field(
            header,
            "invocationType",
            "Member must satisfy enum value set: [" + ", ".join(sorted(allowed)) + "]",
        )
    return header


def log_type(header: str | None) -> bool:
    if header is None or header == "" or header == "None":
        return False
    if header != "Tail":
        raise errors.ValidationError.field(
            header, "logType", "Member must satisfy enum value set: [None, Tail]"
        )
    return True


def client_context(header: str | None) -> str | None:
    """The decoded JSON text of X-Amz-Client-Context (the runtime gets it decoded)."""
    if not header:
        return None
    if len(header) > limits.CLIENT_CONTEXT:
        raise errors.InvalidRequestContent(
            f"Client context must be smaller than {limits.CLIENT_CONTEXT} bytes."
        )
    try:
        text = base64.b64decode(header, validate=True).decode()
        if not isinstance(json.loads(text), dict):
            raise ValueError
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise errors.InvalidRequestContent(
            "Client context must be a valid Base64-encoded JSON object."
        ) from None
    return text


_SCAN = json.scanner.make_scanner(cast(Any, json.JSONDecoder()))  # json's C scanner
# json.decoder.WHITESPACE (it always matches: typed so, a `Match` and not an Optional)
_SPACE: Callable[[str, int], Any] = re.compile(r"[ \t\n\r]*").match


def _check_json(text: str) -> None:
    """`json.loads(text)` for a text that does not start with a BOM (the same errors), without
    its three Python frames (`loads`, `decode`, `raw_decode`): one check per Invoke."""
    try:
        end = _SCAN(text, _SPACE(text, 0).end())[1]
    except StopIteration as err:
        raise json.JSONDecodeError("Expecting value", text, err.value) from None
    end = _SPACE(text, end).end()
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)


def payload(body: bytes, invocation: str) -> bytes:
    """Check an Invoke payload: size for the invocation type, then JSON (spec §4.2)."""
    limit = limits.ASYNC_PAYLOAD if invocation == "Event" else limits.SYNC_PAYLOAD
    if len(body) > limit:
        raise too_large_payload(len(body), invocation)
    if not body:
        return b"{}"
    try:
        # UTF-8 without a BOM, as nearly every payload is, skips json's encoding detection;
        # anything else goes to it as bytes (it takes the BOMs, UTF-16 and UTF-32)
        if body[:1] != b"\xef":
            try:
                text = body.decode()
            except UnicodeDecodeError:
                json.loads(body)
            else:
                _check_json(text)
        else:
            json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # Recursion: nested deep
        raise errors.InvalidRequestContent(
            f"Could not parse request body into json: Could not parse payload into json: {exc}"
        ) from None
    return body


def too_large_payload(size: int, invocation: str) -> errors.RequestTooLarge:
    if invocation == "Event":
        return errors.RequestTooLarge(
            f"{size} byte payload is too large for the Event "
            f"invocation type (limit {limits.ASYNC_PAYLOAD} bytes)"
        )
    return errors.RequestTooLarge(
        f"Request must be smaller than {limits.SYNC_PAYLOAD} bytes for the InvokeFunction operation"
    )


def invoke_response(
    request_id: str,
    version: str,
    body: bytes,
    content_type: str,
    function_error: bool,
    log_tail: bytes | None,
) -> Response:
    head = "x-amzn-RequestId: %s\r\nX-Amz-Executed-Version: %s\r\nContent-Type: %s\r\n" % (
        request_id,
        version,
        content_type,
    )
    if function_error:
        head += "X-Amz-Function-Error: Unhandled\r\n"
    if log_tail is not None:
        head += f"X-Amz-Log-Result: {base64.b64encode(log_tail).decode()}\r\n"
    return HeadResponse(200, head, body)  # every synchronous call's: one formatting
