"""Schedules and HTTP APIs, which the engine runs itself (CONTRACT-events.md): EventBridge
rules with a schedule, EventBridge Scheduler schedules, API Gateway HTTP APIs and REST APIs
whose routes are Lambda proxy integrations (from an OpenAPI `Body`, as SAM writes them, or
quick-create `Target`). What needs a source Lamina does not run (an EventBridge event pattern,
a target that is not a function) is recorded with a notice and not created."""

from __future__ import annotations

import dataclasses
import random
import re
import string
from typing import Any, TypeGuard

from lamina.domain import errors
from lamina.domain.stacks import StackResource
from lamina.service.providers.base import Made, Provider, known, refuse

_INVOCATIONS = re.compile(
    r"arn:[^:]+:apigateway:[^:]*:lambda:path/[^/]+/functions/(.+)/invocations"
)
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _lambda_target(arn: Any) -> TypeGuard[str]:
    return isinstance(arn, str) and ":lambda:" in arn and ":function:" in arn


class _Scheduled(Provider):
    """What rules and schedules share: the engine's ScheduleService, or a notice."""

    def _service(self) -> Any:
        return self.ctx.services.get("schedules")

    def _schedule(
        self,
        name: str,
        expression: Any,
        target: Any,
        source: str,
        input_text: Any = None,
        enabled: bool = True,
        timezone: Any = None,
    ) -> Any:
        from lamina.domain.schedules import Schedule

        return Schedule(
            name=name,
            expression=str(expression),
            target_arn=target,
            input=input_text if isinstance(input_text, str) else None,
            source=source,
            enabled=enabled,
            timezone=timezone if isinstance(timezone, str) else None,
            stack=self.ctx.stack,
        )

    def _validate(self, logical_id: str, prop: str, schedule: Any) -> None:
        from lamina.domain import schedules

        try:
            schedules.validate(schedule)
        except errors.LaminaError as exc:
            raise refuse(logical_id, prop, exc.message) from None

    async def _put(self, logical_id: str, made: list[Any]) -> None:
        service = self._service()
        if service is None:
            self.ctx.notice(f"{logical_id}: this engine does not run schedules: not created")
            return
        for schedule in made:
            await service.put(schedule)

    async def _delete(self, names: list[str]) -> None:
        service = self._service()
        for name in names if service is not None else []:
            if service.get(name) is not None:
                await service.delete(name)


class Rule(_Scheduled):
    type = "AWS::Events::Rule"
    attributes = ("Arn",)
    name_property = "Name"

    def _made(self, name: str, properties: dict[str, Any]) -> list[Any]:
        targets = [t for t in properties.get("Targets") or [] if _lambda_target(t.get("Arn"))]
        enabled = properties.get("State", "ENABLED") == "ENABLED"
        return [
            self._schedule(
                name if len(targets) == 1 else f"{name}-{t.get('Id')}",
                properties["ScheduleExpression"],
                t["Arn"],
                "events",
                t.get("Input"),
                enabled,
            )
            for t in targets
        ]

    async def check(self, logical_id: str, properties: dict[str, Any]) -> None:
        expression = properties.get("ScheduleExpression")
        if expression is not None and known(expression):
            self._validate(
                logical_id,
                "ScheduleExpression",
                self._schedule(
                    logical_id,
                    expression,
                    "arn:aws:lambda:us-east-1:123456789012:function:x",
                    "events",
                ),
            )

    def _notices(self, logical_id: str, properties: dict[str, Any]) -> None:
        if "EventPattern" in properties:
            self.ctx.notice(
                f"{logical_id}: an EventBridge event pattern needs events Lamina "
                "does not run: the rule is recorded, not created"
            )
        for target in properties.get("Targets") or []:
            if not _lambda_target(target.get("Arn")):
                self.ctx.notice(
                    f"{logical_id}: target {target.get('Id')} is not a Lambda "
                    "function: Lamina only runs function targets"
                )
            elif "InputTransformer" in target or "InputPath" in target:
                self.ctx.notice(
                    f"{logical_id}: target {target.get('Id')}: InputPath and "
                    "InputTransformer are not applied (the full event is sent)"
                )

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        assert name is not None
        self._notices(logical_id, properties)
        made = self._made(name, properties) if "ScheduleExpression" in properties else []
        await self._put(logical_id, made)
        return Made(
            name,
            {"Arn": self.ctx.arn("events", f"rule/{name}"), "schedules": [s.name for s in made]},
        )

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        await self._delete(resource.attributes.get("schedules", []))
        return await self.create(resource.logical_id, properties, resource.physical_id)

    async def delete(self, resource: StackResource) -> None:
        await self._delete(resource.attributes.get("schedules", []))


class Schedule(_Scheduled):
    type = "AWS::Scheduler::Schedule"
    attributes = ("Arn",)
    name_property = "Name"
    replace_on = ("Name", "GroupName")

    def _made(self, name: str, properties: dict[str, Any]) -> Any:
        target = properties.get("Target") or {}
        return self._schedule(
            name,
            properties.get("ScheduleExpression"),
            target.get("Arn"),
            "scheduler",
            target.get("Input"),
            properties.get("State", "ENABLED") == "ENABLED",
            properties.get("ScheduleExpressionTimezone"),
        )

    async def check(self, logical_id: str, properties: dict[str, Any]) -> None:
        if known(properties.get("ScheduleExpression")) and known(
            properties.get("ScheduleExpressionTimezone")
        ):
            schedule = self._made(logical_id, properties)
            self._validate(
                logical_id,
                "ScheduleExpression",
                dataclasses.replace(
                    schedule, target_arn="arn:aws:lambda:us-east-1:123456789012:function:x"
                ),
            )

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        assert name is not None
        target = (properties.get("Target") or {}).get("Arn")
        made = []
        if _lambda_target(target):
            made = [self._made(name, properties)]
        else:
            self.ctx.notice(
                f"{logical_id}: target {target} is not a Lambda function: "
                "Lamina only runs function targets"
            )
        await self._put(logical_id, made)
        group = properties.get("GroupName", "default")
        return Made(
            name,
            {
                "Arn": self.ctx.arn("scheduler", f"schedule/{group}/{name}"),
                "schedules": [s.name for s in made],
            },
        )

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        await self._delete(resource.attributes.get("schedules", []))
        return await self.create(resource.logical_id, properties, resource.physical_id)

    async def delete(self, resource: StackResource) -> None:
        await self._delete(resource.attributes.get("schedules", []))


# HTTP APIs -----------------------------------------------------------------------------
def routes_of(body: dict[str, Any], payload_default: str, where: str) -> list[Any]:
    """The Lambda proxy routes of an OpenAPI / Swagger body (x-amazon-apigateway-integration)."""
    from lamina.domain.apis import Route

    out = []
    for path, methods in (body.get("paths") or {}).items():
        for method, operation in (methods or {}).items():
            if method == "x-amazon-apigateway-any-method":
                verb = "ANY"
            elif method in _METHODS:
                verb = method.upper()
            else:
                continue
            integration = (operation or {}).get("x-amazon-apigateway-integration") or {}
            uri = integration.get("uri")
            found = _INVOCATIONS.fullmatch(uri) if isinstance(uri, str) else None
            if found is None or integration.get("type", "aws_proxy") != "aws_proxy":
                raise errors.TemplateError(
                    f"{where}: route {verb} {path}: Lamina serves Lambda proxy integrations "
                    "(type aws_proxy) only"
                )
            out.append(
                Route(
                    method=verb,
                    path="$default" if path == "$default" else path,
                    target_arn=found.group(1),
                    payload_format=str(integration.get("payloadFormatVersion", payload_default)),
                    timeout_ms=int(
                        integration.get(
                            "timeoutInMillis", 29000 if payload_default == "1.0" else 30000
                        )
                    ),
                )
            )
    return out


def api_id() -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=10))


class _Api(Provider):
    protocol = "HTTP"
    payload = "2.0"
    stage = "$default"

    def _service(self) -> Any:
        return self.ctx.services.get("apis")

    def _api(self, api_id_: str, logical_id: str, properties: dict[str, Any]) -> Any:
        from lamina.domain.apis import HttpApi, Route

        body = properties.get("Body")
        routes = routes_of(body, self.payload, logical_id) if isinstance(body, dict) else []
        target = properties.get("Target")
        if _lambda_target(target):
            routes.append(Route("ANY", "$default", target, self.payload))
        name = properties.get("Name") or (body or {}).get("info", {}).get("title") or logical_id
        return HttpApi(
            api_id=api_id_,
            name=str(name),
            protocol=self.protocol,
            stage=self.stage,
            routes=tuple(routes),
            cors=properties.get("CorsConfiguration"),
            stack=self.ctx.stack,
        )

    async def check(self, logical_id: str, properties: dict[str, Any]) -> None:
        body = properties.get("Body")
        if (
            self.protocol == "HTTP"
            and known(properties.get("ProtocolType", "HTTP"))
            and properties.get("ProtocolType", "HTTP") != "HTTP"
        ):
            raise refuse(
                logical_id,
                "ProtocolType",
                f"Lamina serves HTTP APIs only, not {properties['ProtocolType']}",
            )
        if "BodyS3Location" in properties:
            raise refuse(logical_id, "BodyS3Location", "give the definition inline (Body)")
        if isinstance(body, dict) and known(body):
            from lamina.domain import apis

            try:
                apis.validate(self._api("a" * 10, logical_id, properties))
            except errors.InvalidParameterValue as exc:
                raise refuse(logical_id, "Body", exc.message) from None

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        made = self._api(api_id(), logical_id, properties)
        return await self._put(logical_id, made)

    async def _put(self, logical_id: str, made: Any) -> Made:
        service = self._service()
        if service is None:
            self.ctx.notice(f"{logical_id}: this engine does not serve HTTP APIs: not created")
            return Made(made.api_id, self._attributes(made, None))
        put = await service.put(made)
        return Made(put.api_id, self._attributes(put, service.url(put), service.fallback_url(put)))

    def _attributes(self, api: Any, url: str | None, fallback: str | None = None) -> dict[str, Any]:
        endpoint = url[: -len(api.stage) - 1] if url and api.stage != "$default" else url
        return {
            "ApiId": api.api_id,
            "RestApiId": api.api_id,
            "ApiEndpoint": endpoint,
            "RootResourceId": api.api_id,
            "Url": url,
            "FallbackUrl": fallback,
        }

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        service = self._service()
        current = service.get(resource.physical_id) if service else None
        async with self.ctx.changes:
            made = self._api(resource.physical_id or api_id(), resource.logical_id, properties)
            if current is not None:
                # routes that Route / Method resources added stay (only the body's change)
                before = {
                    r.key
                    for r in self._api(made.api_id, resource.logical_id, resource.properties).routes
                }
                mine = {r.key for r in made.routes}
                kept = tuple(r for r in current.routes if r.key not in before | mine)
                made = dataclasses.replace(
                    made,
                    stage=current.stage,
                    stage_variables=current.stage_variables,
                    routes=made.routes + kept,
                )
            return await self._put(resource.logical_id, made)

    async def delete(self, resource: StackResource) -> None:
        service = self._service()
        if service is not None and resource.physical_id and service.get(resource.physical_id):
            await service.delete(resource.physical_id)


class HttpApi(_Api):
    type = "AWS::ApiGatewayV2::Api"
    attributes = ("ApiEndpoint", "ApiId")


class RestApi(_Api):
    type = "AWS::ApiGateway::RestApi"
    attributes = ("RestApiId", "RootResourceId")
    protocol = "REST"
    payload = "1.0"
    stage = "Prod"


class _Stage(Provider):
    """A stage names the API's stage (its URL's path prefix) and its variables."""

    api_property = "ApiId"
    variables_property = "StageVariables"

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        stage = str(properties.get("StageName", "$default"))
        service: Any = self.ctx.services.get("apis")
        async with self.ctx.changes:
            api = service.get(properties.get(self.api_property)) if service else None
            if api is not None:
                variables = properties.get(self.variables_property) or properties.get("Variables")
                api = dataclasses.replace(
                    api,
                    stage=stage,
                    stage_variables={str(k): str(v) for k, v in (variables or {}).items()},
                )
                api = await service.put(api)
        if api is None:
            return Made(stage, {})
        return Made(stage, {"Url": service.url(api), "FallbackUrl": service.fallback_url(api)})

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        return await self.create(resource.logical_id, properties, resource.physical_id)

    async def delete(self, resource: StackResource) -> None:
        return None


class HttpStage(_Stage):
    type = "AWS::ApiGatewayV2::Stage"
    replace_on = ("ApiId", "StageName")


class RestStage(_Stage):
    type = "AWS::ApiGateway::Stage"
    api_property = "RestApiId"
    variables_property = "Variables"
    replace_on = ("RestApiId", "StageName")


class Deployment(Provider):
    """A REST API deployment: the engine serves an API's routes as soon as it has them. A
    `StageName` makes that stage (as the Serverless Framework writes it), with
    `StageDescription.Variables`."""

    type = "AWS::ApiGateway::Deployment"

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        if properties.get("StageName"):
            stage = {
                "RestApiId": properties.get("RestApiId"),
                "StageName": properties["StageName"],
                "Variables": (properties.get("StageDescription") or {}).get("Variables"),
            }
            made = await RestStage(self.ctx).create(logical_id, stage, None)
            return Made(api_id(), made.attributes)
        return Made(api_id())

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        return Made(resource.physical_id or api_id())

    async def delete(self, resource: StackResource) -> None:
        return None


PROVIDERS = (Rule, Schedule, HttpApi, RestApi, HttpStage, RestStage, Deployment)
