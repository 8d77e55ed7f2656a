"""AWS::Lambda::* resources, made through Lamina's own Lambda API (in-process), the calls
CloudFormation makes to Lambda: CreateFunction, UpdateFunctionConfiguration/Code,
PublishVersion, CreateAlias, PublishLayerVersion, AddPermission, CreateFunctionUrlConfig,
PutFunctionEventInvokeConfig, CreateEventSourceMapping."""

from __future__ import annotations

import asyncio
import io
import zipfile
from typing import Any
from urllib.parse import quote

from lamina.domain import errors, runtimes
from lamina.domain.settings import FunctionSettings, validate
from lamina.domain.stacks import StackResource, physical_name
from lamina.service.providers.base import (
    PACKAGE_BUCKET,
    Made,
    Provider,
    b64,
    known,
    refuse,
    tag_map,
)

F = "/2015-03-31/functions"

# CloudFormation property → the FunctionSettings field it checks
_CHECKED = (
    ("Timeout", "timeout"),
    ("MemorySize", "memory_size"),
    ("Handler", "handler"),
    ("Role", "role"),
    ("Description", "description"),
    ("Runtime", "runtime"),
    ("Architectures", "architectures"),
    ("PackageType", "package_type"),
)
# configuration properties and the value a property left out of the template returns to
_DEFAULTS: dict[str, Any] = {
    "Description": "",
    "Timeout": 3,
    "MemorySize": 128,
    "Environment": {"Variables": {}},
    "Layers": [],
    "DeadLetterConfig": {},
    "TracingConfig": {"Mode": "PassThrough"},
    "EphemeralStorage": {"Size": 512},
    "LoggingConfig": {"LogFormat": "Text"},
}
_CONFIG = ("Runtime", "Handler", "Role", *_DEFAULTS)
_NOT_SENT = (
    "Tags",
    "Code",
    "ReservedConcurrentExecutions",
    "FunctionName",
    "RecursiveLoop",
    "RuntimeManagementConfig",
)


def _q(name: str) -> str:
    return quote(str(name), safe=":$")


def inline_package(code: str, runtime: str | None) -> bytes:
    """CloudFormation writes an inline ZipFile to index.js (Node.js) or index.py."""
    name = "index.js" if (runtime or "").startswith("nodejs") else "index.py"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16
        archive.writestr(info, code)
    return buffer.getvalue()


class CodeSource:
    """Where a Code / Content property takes its package from."""

    def __init__(self, provider: Provider) -> None:
        self.ctx = provider.ctx

    async def check(self, logical_id: str, prop: str, code: Any) -> None:
        if not isinstance(code, dict) or not known(code):
            return
        if code.get("ImageUri"):
            raise refuse(
                logical_id,
                f"{prop}.ImageUri",
                "Lamina runs Zip packages only: container images need a container engine",
            )
        if code.get("S3Bucket") == PACKAGE_BUCKET:
            if await self.ctx.package(str(code.get("S3Key"))) is None:
                raise refuse(
                    logical_id,
                    prop,
                    f"package {code.get('S3Key')} was not uploaded "
                    "to the engine (run lamina deploy again)",
                )
        elif not (code.get("ZipFile") or (code.get("S3Bucket") and code.get("S3Key"))):
            raise refuse(logical_id, prop, "give ZipFile, or S3Bucket and S3Key")

    async def api_code(self, code: dict[str, Any], runtime: str | None) -> dict[str, Any]:
        """The Code member of CreateFunction / the body of UpdateFunctionCode."""
        if "ZipFile" in code:
            return {"ZipFile": b64(inline_package(str(code["ZipFile"]), runtime))}
        if code.get("S3Bucket") == PACKAGE_BUCKET:
            data = await self.ctx.package(str(code["S3Key"]))
            if data is None:
                raise errors.TemplateError(f"package {code['S3Key']} is not in the engine")
            return {"ZipFile": b64(data)}
        return {k: v for k, v in code.items() if k in ("S3Bucket", "S3Key", "S3ObjectVersion")}


class Function(Provider):
    type = "AWS::Lambda::Function"
    attributes = ("Arn", "SnapStartResponse.ApplyOn", "SnapStartResponse.OptimizationStatus")
    name_property = "FunctionName"
    replace_on = ("FunctionName", "PackageType")
    integers = ("Timeout", "MemorySize", "ReservedConcurrentExecutions", "EphemeralStorage.Size")

    async def check(self, logical_id: str, properties: dict[str, Any]) -> None:
        for prop in ("Code", "Role"):
            if prop not in properties:
                raise refuse(logical_id, prop, "required")
        await CodeSource(self).check(logical_id, "Code", properties["Code"])
        if (properties.get("PackageType") or "Zip") == "Zip" and (
            "Runtime" not in properties or "Handler" not in properties
        ):
            raise refuse(
                logical_id,
                "Runtime" if "Runtime" not in properties else "Handler",
                "required for a Zip package",
            )
        for prop, field in _CHECKED:
            value: Any = properties.get(prop)
            if value is None or not known(value):
                continue
            if prop == "Architectures" and isinstance(value, list):
                value = tuple(value)
            try:
                if prop == "Runtime":
                    runtimes.check(value, "Zip")
                validate(FunctionSettings(**{field: value}))
            except errors.LaminaError as exc:
                raise refuse(logical_id, prop, exc.message) from None
        variables = (properties.get("Environment") or {}).get("Variables")
        if isinstance(variables, dict) and known(variables):
            try:
                validate(FunctionSettings(environment={k: str(v) for k, v in variables.items()}))
            except errors.LaminaError as exc:
                raise refuse(logical_id, "Environment", exc.message) from None

    def _body(self, properties: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in properties.items() if k not in _NOT_SENT}

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        assert name is not None
        code = await CodeSource(self).api_code(properties["Code"], properties.get("Runtime"))
        body = {
            **self._body(properties),
            "FunctionName": name,
            "Code": code,
            "Tags": tag_map(properties.get("Tags")),
        }
        # CloudFormation's aws: tags go with the create (callers cannot set them)
        await self.ctx.system_tags(name, self.cfn_tags(logical_id))
        try:
            found = await self.ctx.lambda_api.call("POST", F, body)
        finally:
            await self.ctx.system_tags(name, None)
        await asyncio.sleep(0)  # Pending → Active
        await self._concurrency(name, None, properties.get("ReservedConcurrentExecutions"))
        return Made(name, {"Arn": found["FunctionArn"]})

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        name = resource.physical_id or ""
        old = resource.properties
        api = self.ctx.lambda_api
        config = {
            k: properties.get(k, _DEFAULTS.get(k))
            for k in _CONFIG
            if properties.get(k, _DEFAULTS.get(k)) is not None
        }
        if any(old.get(k) != properties.get(k) for k in _CONFIG) or {
            k: v for k, v in self._body(old).items() if k not in _CONFIG
        } != {k: v for k, v in self._body(properties).items() if k not in _CONFIG}:
            extra = {k: v for k, v in self._body(properties).items() if k not in _CONFIG}
            await api.call("PUT", f"{F}/{_q(name)}/configuration", {**extra, **config})
            await asyncio.sleep(0)  # InProgress → Successful
        if old.get("Code") != properties.get("Code"):
            code = await CodeSource(self).api_code(properties["Code"], properties.get("Runtime"))
            await api.call("PUT", f"{F}/{_q(name)}/code", code)
            await asyncio.sleep(0)
        await self._retag(name, tag_map(old.get("Tags")), tag_map(properties.get("Tags")))
        await self._concurrency(
            name,
            old.get("ReservedConcurrentExecutions"),
            properties.get("ReservedConcurrentExecutions"),
        )
        return Made(name, {"Arn": self.ctx.arn("lambda", f"function:{name}")})

    async def _retag(self, name: str, old: dict[str, str], new: dict[str, str]) -> None:
        arn = quote(self.ctx.arn("lambda", f"function:{name}"), safe="")
        gone = [k for k in old if k not in new]
        if gone:
            await self.ctx.lambda_api.call(
                "DELETE",
                f"/2017-03-31/tags/{arn}",
                query="&".join(f"tagKeys={quote(k)}" for k in gone),
            )
        changed = {k: v for k, v in new.items() if old.get(k) != v}
        if changed:
            await self.ctx.lambda_api.call("POST", f"/2017-03-31/tags/{arn}", {"Tags": changed})

    async def _concurrency(self, name: str, old: Any, new: Any) -> None:
        if old == new:
            return
        path = f"/2017-10-31/functions/{_q(name)}/concurrency"
        if new is None:
            await self.ctx.lambda_api.call("DELETE", path)
        else:
            await self.ctx.lambda_api.call("PUT", path, {"ReservedConcurrentExecutions": new})

    async def delete(self, resource: StackResource) -> None:
        if resource.physical_id:
            await self.ctx.lambda_api.call(
                "DELETE", f"{F}/{_q(resource.physical_id)}", missing_ok=True
            )


class Version(Provider):
    type = "AWS::Lambda::Version"
    attributes = ("Version", "FunctionArn")
    replace_on = ("FunctionName", "CodeSha256", "Description")

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        body = {k: properties[k] for k in ("CodeSha256", "Description") if k in properties}
        found = await self.ctx.lambda_api.call(
            "POST", f"{F}/{_q(properties['FunctionName'])}/versions", body
        )
        return Made(
            found["FunctionArn"], {"Version": found["Version"], "FunctionArn": found["FunctionArn"]}
        )

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        return Made(resource.physical_id or "", resource.attributes)

    async def delete(self, resource: StackResource) -> None:
        function, _, version = (resource.physical_id or "").rpartition(":")
        if function:
            await self.ctx.lambda_api.call(
                "DELETE", f"{F}/{_q(function)}", query=f"Qualifier={version}", missing_ok=True
            )


class Alias(Provider):
    type = "AWS::Lambda::Alias"
    attributes = ("AliasArn",)
    replace_on = ("Name", "FunctionName")

    def _body(self, properties: dict[str, Any]) -> dict[str, Any]:
        return {
            "FunctionVersion": properties.get("FunctionVersion"),
            "Description": properties.get("Description", ""),
            "RoutingConfig": properties.get("RoutingConfig") or {},
        }

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        found = await self.ctx.lambda_api.call(
            "POST",
            f"{F}/{_q(properties['FunctionName'])}/aliases",
            {"Name": properties.get("Name"), **self._body(properties)},
        )
        return Made(found["AliasArn"], {"AliasArn": found["AliasArn"]})

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        found = await self.ctx.lambda_api.call(
            "PUT",
            f"{F}/{_q(properties['FunctionName'])}/aliases/{_q(properties['Name'])}",
            self._body(properties),
        )
        return Made(found["AliasArn"], {"AliasArn": found["AliasArn"]})

    async def delete(self, resource: StackResource) -> None:
        function, _, alias = (resource.physical_id or "").rpartition(":")
        if function:
            await self.ctx.lambda_api.call(
                "DELETE", f"{F}/{_q(function)}/aliases/{alias}", missing_ok=True
            )


class LayerVersion(Provider):
    type = "AWS::Lambda::LayerVersion"
    attributes = ("LayerVersionArn",)

    async def check(self, logical_id: str, properties: dict[str, Any]) -> None:
        if "Content" not in properties:
            raise refuse(logical_id, "Content", "required")
        await CodeSource(self).check(logical_id, "Content", properties["Content"])

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        layer = properties.get("LayerName") or physical_name(self.ctx.stack, logical_id, 64)
        content = await CodeSource(self).api_code(properties["Content"], None)
        body = {k: v for k, v in properties.items() if k not in ("LayerName", "Content")}
        found = await self.ctx.lambda_api.call(
            "POST", f"/2018-10-31/layers/{_q(layer)}/versions", {**body, "Content": content}
        )
        return Made(found["LayerVersionArn"], {"LayerVersionArn": found["LayerVersionArn"]})

    async def delete(self, resource: StackResource) -> None:
        parts = (resource.physical_id or "").split(":")
        if len(parts) == 8:
            await self.ctx.lambda_api.call(
                "DELETE", f"/2018-10-31/layers/{parts[6]}/versions/{parts[7]}", missing_ok=True
            )


class Permission(Provider):
    type = "AWS::Lambda::Permission"

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        statement = physical_name(self.ctx.stack, logical_id, 100)
        body = {k: v for k, v in properties.items() if k != "FunctionName"}
        await self.ctx.lambda_api.call(
            "POST",
            f"{F}/{_q(properties['FunctionName'])}/policy",
            {**body, "StatementId": statement},
        )
        return Made(statement, {"FunctionName": properties["FunctionName"]})

    async def delete(self, resource: StackResource) -> None:
        function = resource.attributes.get("FunctionName")
        if function and resource.physical_id:
            await self.ctx.lambda_api.call(
                "DELETE", f"{F}/{_q(function)}/policy/{resource.physical_id}", missing_ok=True
            )


def _qualified(arn: str, qualifier: str | None) -> tuple[str, str]:
    """(function, query) of TargetFunctionArn / FunctionName and a Qualifier property."""
    parts = str(arn).split(":")
    if len(parts) == 8 and qualifier is None:
        return ":".join(parts[:7]), f"Qualifier={parts[7]}"
    return str(arn), (f"Qualifier={qualifier}" if qualifier else "")


class Url(Provider):
    type = "AWS::Lambda::Url"
    attributes = ("FunctionArn", "FunctionUrl")
    replace_on = ("TargetFunctionArn", "Qualifier")

    def _body(self, properties: dict[str, Any]) -> dict[str, Any]:
        return {k: properties[k] for k in ("AuthType", "Cors", "InvokeMode") if k in properties}

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        function, query = _qualified(properties["TargetFunctionArn"], properties.get("Qualifier"))
        found = await self.ctx.lambda_api.call(
            "POST", f"/2021-10-31/functions/{_q(function)}/url", self._body(properties), query=query
        )
        return Made(
            found["FunctionArn"],
            {"FunctionArn": found["FunctionArn"], "FunctionUrl": found["FunctionUrl"]},
        )

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        function, query = _qualified(properties["TargetFunctionArn"], properties.get("Qualifier"))
        found = await self.ctx.lambda_api.call(
            "PUT", f"/2021-10-31/functions/{_q(function)}/url", self._body(properties), query=query
        )
        return Made(
            found["FunctionArn"],
            {"FunctionArn": found["FunctionArn"], "FunctionUrl": found["FunctionUrl"]},
        )

    async def delete(self, resource: StackResource) -> None:
        function, query = _qualified(
            resource.properties["TargetFunctionArn"], resource.properties.get("Qualifier")
        )
        await self.ctx.lambda_api.call(
            "DELETE", f"/2021-10-31/functions/{_q(function)}/url", query=query, missing_ok=True
        )


class EventInvokeConfig(Provider):
    type = "AWS::Lambda::EventInvokeConfig"
    replace_on = ("FunctionName", "Qualifier")
    integers = ("MaximumRetryAttempts", "MaximumEventAgeInSeconds")

    def _path(self, properties: dict[str, Any]) -> tuple[str, str]:
        function, query = _qualified(properties["FunctionName"], properties.get("Qualifier"))
        return f"/2019-09-25/functions/{_q(function)}/event-invoke-config", query

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        path, query = self._path(properties)
        body = {
            k: properties[k]
            for k in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")
            if k in properties
        }
        await self.ctx.lambda_api.call("PUT", path, body, query=query)
        return Made(physical_name(self.ctx.stack, logical_id, 64))

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        await self.create(resource.logical_id, properties, None)
        return Made(resource.physical_id or "")

    async def delete(self, resource: StackResource) -> None:
        path, query = self._path(resource.properties)
        await self.ctx.lambda_api.call("DELETE", path, query=query, missing_ok=True)


class EventSourceMapping(Provider):
    type = "AWS::Lambda::EventSourceMapping"
    attributes = ("Id", "EventSourceMappingArn")
    replace_on = (
        "EventSourceArn",
        "StartingPosition",
        "StartingPositionTimestamp",
        "SelfManagedEventSource",
        "Topics",
        "Queues",
        "AmazonManagedKafkaEventSourceConfig",
        "SelfManagedKafkaEventSourceConfig",
    )
    _P = "/2015-03-31/event-source-mappings"
    integers = (
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "MaximumRecordAgeInSeconds",
        "MaximumRetryAttempts",
        "ParallelizationFactor",
        "TumblingWindowInSeconds",
        "ScalingConfig.MaximumConcurrency",
    )
    booleans = ("Enabled", "BisectBatchOnFunctionError")

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        found = await self.ctx.lambda_api.call("POST", self._P, dict(properties))
        return Made(
            found["UUID"],
            {"Id": found["UUID"], "EventSourceMappingArn": found.get("EventSourceMappingArn")},
        )

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        body = {k: v for k, v in properties.items() if k not in self.replace_on}
        body.setdefault("Enabled", True)
        await self.ctx.lambda_api.call("PUT", f"{self._P}/{resource.physical_id}", body)
        return Made(resource.physical_id or "", resource.attributes)

    async def delete(self, resource: StackResource) -> None:
        if resource.physical_id:
            await self.ctx.lambda_api.call(
                "DELETE", f"{self._P}/{resource.physical_id}", missing_ok=True
            )


PROVIDERS = (
    Function,
    Version,
    Alias,
    LayerVersion,
    Permission,
    Url,
    EventInvokeConfig,
    EventSourceMapping,
)
