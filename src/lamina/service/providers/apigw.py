"""API Gateway APIs written as separate resources, as CDK (HttpApi, LambdaRestApi) and the
Serverless Framework write them, rather than as one OpenAPI body:

  HTTP APIs   AWS::ApiGatewayV2::Api + Integration (a Lambda proxy) + Route ("GET /x/{id}",
              Target "integrations/<id>") + Stage
  REST APIs   AWS::ApiGateway::RestApi + Resource (a path part under its parent) + Method
              (an HTTP method of a resource, with its Lambda proxy Integration) + Deployment
              + Stage (+ Account, which only names API Gateway's logging role)

A Route or Method adds its route to the API the engine serves (events.py's `_Api`); an
Integration or Resource is a record the route reads (through `ctx.resources()`). What is
not a Lambda proxy (an HTTP or mock integration, a WebSocket API) is recorded with a notice
and not served.
"""

from __future__ import annotations

import dataclasses
import random
import string
from typing import Any

from lamina.domain import errors
from lamina.domain.stacks import StackResource
from lamina.service.providers.base import Made, Provider, ProviderError, known, refuse
from lamina.service.providers.events import _INVOCATIONS, _lambda_target

_ID = string.ascii_lowercase + string.digits


def _new_id(size: int = 7) -> str:
    return "".join(random.choices(_ID, k=size))


def _function_arn(uri: Any) -> str | None:
    """The function an integration URI invokes (a function ARN, or API Gateway's
    `arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<arn>/invocations`)."""
    if not isinstance(uri, str):
        return None
    found = _INVOCATIONS.fullmatch(uri)
    if found is not None:
        return found.group(1)
    return uri if _lambda_target(uri) else None


class _Routes(Provider):
    """A resource that is one route of an API the engine serves."""

    api_property = "ApiId"

    def _service(self) -> Any:
        return self.ctx.services.get("apis")

    async def _change(self, api_id: Any, remove: str | None, add: Any) -> None:
        """Take route key `remove` out of the API and put route `add` in (either may be
        None), as one change of the stored API."""
        service = self._service()
        if service is None:
            self.ctx.notice("this engine does not serve HTTP APIs: routes not created")
            return
        async with self.ctx.changes:
            api = service.get(api_id)
            if api is None:
                if add is None:
                    return  # the API went first: nothing left to take the route out of
                raise ProviderError(f"API {api_id} does not exist")
            routes = [
                r for r in api.routes if r.key != remove and (add is None or r.key != add.key)
            ]
            if add is not None:
                routes.append(add)
            try:
                await service.put(dataclasses.replace(api, routes=tuple(routes)))
            except errors.LaminaError as exc:
                raise ProviderError(exc.message or str(exc)) from None

    async def _make(self, logical_id: str, properties: dict[str, Any]) -> Any:
        raise NotImplementedError

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        route = await self._make(logical_id, properties)
        api_id = properties.get(self.api_property)
        if route is not None:
            await self._change(api_id, None, route)
        return Made(_new_id(), {"api": api_id, "key": route.key if route else None})

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        route = await self._make(resource.logical_id, properties)
        await self._change(properties.get(self.api_property), resource.attributes.get("key"), route)
        return Made(
            resource.physical_id or _new_id(),
            {"api": properties.get(self.api_property), "key": route.key if route else None},
        )

    async def delete(self, resource: StackResource) -> None:
        if resource.attributes.get("key"):
            await self._change(resource.attributes.get("api"), resource.attributes["key"], None)


# HTTP APIs (API Gateway v2) -----------------------------------------------------------
class Integration(Provider):
    type = "AWS::ApiGatewayV2::Integration"
    replace_on = ("ApiId",)
    integers = ("TimeoutInMillis",)

    def _attributes(self, properties: dict[str, Any]) -> dict[str, Any]:
        target = _function_arn(properties.get("IntegrationUri"))
        proxy = str(properties.get("IntegrationType", "")).upper() == "AWS_PROXY"
        return {
            "target": target if proxy else None,
            "payload": str(properties.get("PayloadFormatVersion", "2.0")),
            "timeout": properties.get("TimeoutInMillis", 30000),
        }

    async def check(self, logical_id: str, properties: dict[str, Any]) -> None:
        if "IntegrationType" not in properties:
            raise refuse(logical_id, "IntegrationType", "required")
        version = properties.get("PayloadFormatVersion", "2.0")
        if known(version) and str(version) not in ("1.0", "2.0"):
            raise refuse(logical_id, "PayloadFormatVersion", "1.0 or 2.0")

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        attributes = self._attributes(properties)
        if attributes["target"] is None:
            self.ctx.notice(
                f"{logical_id}: Lamina serves Lambda proxy integrations only "
                f"({properties.get('IntegrationType')} "
                f"{properties.get('IntegrationUri')}): its routes are not served"
            )
        return Made(_new_id(), attributes)

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        made = await self.create(resource.logical_id, properties, None)
        made = Made(resource.physical_id or made.physical_id, made.attributes)
        # the routes that use this integration follow it (a function replaced, ...)
        target = f"integrations/{made.physical_id}"
        for other in list(self.ctx.resources().values()):
            if other.type == Route.type and other.properties.get("Target") == target:
                route = Route(self.ctx)
                await route._change(
                    other.properties.get("ApiId"),
                    other.attributes.get("key"),
                    route._route(other.properties, made.attributes),
                )
        return made

    async def delete(self, resource: StackResource) -> None:
        return None


class Route(_Routes):
    type = "AWS::ApiGatewayV2::Route"
    replace_on = ("ApiId",)

    def _route(self, properties: dict[str, Any], integration: dict[str, Any]) -> Any:
        from lamina.domain.apis import DEFAULT_ROUTE
        from lamina.domain.apis import Route as ApiRoute

        if integration.get("target") is None:
            return None
        key = str(properties.get("RouteKey", ""))
        if key == DEFAULT_ROUTE:
            method, path = "ANY", DEFAULT_ROUTE
        else:
            method, _, path = key.partition(" ")
        return ApiRoute(
            method=method.upper(),
            path=path,
            target_arn=integration["target"],
            payload_format=integration.get("payload", "2.0"),
            timeout_ms=int(integration.get("timeout", 30000)),
        )

    async def check(self, logical_id: str, properties: dict[str, Any]) -> None:
        key = properties.get("RouteKey")
        if key is None:
            raise refuse(logical_id, "RouteKey", "required")
        if known(key) and key != "$default" and " " not in str(key):
            raise refuse(logical_id, "RouteKey", f"{key!r} is not 'METHOD /path' or $default")
        if properties.get("AuthorizationType", "NONE") not in ("NONE", None) and known(
            properties.get("AuthorizationType")
        ):
            self.ctx.notice(
                f"{logical_id}: authorization {properties['AuthorizationType']} "
                "is not enforced by Lamina"
            )

    def _integration(self, properties: dict[str, Any]) -> dict[str, Any] | None:
        target = properties.get("Target")
        if not isinstance(target, str) or not target.startswith("integrations/"):
            return None
        wanted = target.split("/", 1)[1]
        for resource in self.ctx.resources().values():
            if resource.type == Integration.type and resource.physical_id == wanted:
                return resource.attributes
        raise ProviderError(
            f"Integration {wanted} of route {properties.get('RouteKey')} does not exist"
        )

    async def _make(self, logical_id: str, properties: dict[str, Any]) -> Any:
        integration = self._integration(properties)
        if integration is None:
            self.ctx.notice(
                f"{logical_id}: route {properties.get('RouteKey')} has no "
                "integration target: not served"
            )
            return None
        return self._route(properties, integration)


# REST APIs (API Gateway v1) ------------------------------------------------------------
def _rest_path(ctx: Any, api_id: Any, resource_id: Any) -> str:
    """The full path of a REST API resource id (the API's root resource id is its own)."""
    if resource_id == api_id:
        return "/"
    for resource in ctx.resources().values():
        if resource.type == RestResource.type and resource.physical_id == resource_id:
            return str(resource.attributes["path"])
    raise ProviderError(f"Resource {resource_id} of REST API {api_id} does not exist")


class RestResource(Provider):
    type = "AWS::ApiGateway::Resource"
    attributes = ("ResourceId",)

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        parent = _rest_path(self.ctx, properties.get("RestApiId"), properties.get("ParentId"))
        path = f"{parent.rstrip('/')}/{properties.get('PathPart')}"
        resource_id = _new_id(6)
        return Made(resource_id, {"ResourceId": resource_id, "path": path})

    async def delete(self, resource: StackResource) -> None:
        return None


class Method(_Routes):
    type = "AWS::ApiGateway::Method"
    api_property = "RestApiId"
    replace_on = ("RestApiId", "ResourceId", "HttpMethod")
    integers = ("Integration.TimeoutInMillis",)

    async def check(self, logical_id: str, properties: dict[str, Any]) -> None:
        method = properties.get("HttpMethod")
        if method is None:
            raise refuse(logical_id, "HttpMethod", "required")

    async def _make(self, logical_id: str, properties: dict[str, Any]) -> Any:
        from lamina.domain.apis import Route as ApiRoute

        integration = properties.get("Integration") or {}
        kind = str(integration.get("Type", "")).upper()
        target = _function_arn(integration.get("Uri")) if kind == "AWS_PROXY" else None
        if target is None:
            self.ctx.notice(
                f"{logical_id}: {properties.get('HttpMethod')} is a "
                f"{kind or 'missing'} integration: Lamina serves Lambda proxy "
                "integrations (AWS_PROXY) only; not served"
            )
            return None
        path = _rest_path(self.ctx, properties.get("RestApiId"), properties.get("ResourceId"))
        return ApiRoute(
            method=str(properties["HttpMethod"]).upper(),
            path=path,
            target_arn=target,
            payload_format="1.0",
            timeout_ms=int(integration.get("TimeoutInMillis", 29000)),
        )


class Account(Provider):
    """API Gateway's account settings (the role it logs to CloudWatch with): nothing for
    Lamina to do; recorded so that the stack is whole."""

    type = "AWS::ApiGateway::Account"

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        return Made(f"{self.ctx.stack}-{logical_id}-{_new_id(12)}")

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        return Made(resource.physical_id or "")

    async def delete(self, resource: StackResource) -> None:
        return None


class CdkMetadata(Provider):
    """CDK's analytics record (`AWS::CDK::Metadata`): CloudFormation makes it and does
    nothing with it; so does Lamina."""

    type = "AWS::CDK::Metadata"

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        return Made(f"{self.ctx.stack}-{logical_id}-{_new_id(12)}")

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        return Made(resource.physical_id or "")

    async def delete(self, resource: StackResource) -> None:
        return None


PROVIDERS = (Integration, Route, RestResource, Method, Account, CdkMetadata)
