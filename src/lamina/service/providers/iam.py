"""AWS::IAM::Role, Policy and ManagedPolicy: through the IAM endpoint the engine is given, or
simulated (an ARN made up, nothing called) when there is none. Lamina enforces no IAM either
way: a function's Role is recorded and given to it, never checked."""

from __future__ import annotations

import json
from typing import Any

from lamina.domain.stacks import StackResource
from lamina.service.providers.aws import _random, call
from lamina.service.providers.base import Made, Provider, ProviderError, tag_map


def _document(value: Any) -> str:
    """A policy document as IAM takes it. IAM reads one without a Version as 2008-10-17;
    moto refuses those, so Lamina writes the current version (nothing is enforced anyway)."""
    if isinstance(value, dict) and "Version" not in value:
        value = {"Version": "2012-10-17", **value}
    return value if isinstance(value, str) else json.dumps(value)


class Role(Provider):
    type = "AWS::IAM::Role"
    attributes = ("Arn", "RoleId")
    name_property = "RoleName"
    replace_on = ("RoleName", "Path")

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        path = properties.get("Path", "/")
        arn = f"arn:aws:iam::{self.ctx.account}:role{path}{name}"
        if not self.ctx.iam_endpoint:
            return Made(name or "", {"Arn": arn, "RoleId": "AROA" + _random(17)})
        arguments: dict[str, Any] = {
            "RoleName": name,
            "Path": path,
            "AssumeRolePolicyDocument": _document(properties.get("AssumeRolePolicyDocument", {})),
        }
        for key in ("Description", "MaxSessionDuration", "PermissionsBoundary"):
            if key in properties:
                arguments[key] = properties[key]
        tags = tag_map(properties.get("Tags"))
        if tags:
            arguments["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        made = await call(self.ctx.aws, "iam", "create_role", **arguments)
        await self._policies(name or "", {}, properties)
        return Made(name or "", {"Arn": made["Role"]["Arn"], "RoleId": made["Role"]["RoleId"]})

    async def _policies(self, name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        before, after = (
            set(old.get("ManagedPolicyArns") or []),
            set(new.get("ManagedPolicyArns") or []),
        )
        for arn in sorted(after - before):
            await self._attach(name, arn)
        for arn in sorted(before - after):
            await call(
                self.ctx.aws,
                "iam",
                "detach_role_policy",
                missing_ok=True,
                RoleName=name,
                PolicyArn=arn,
            )
        inline_old = {p["PolicyName"]: p for p in old.get("Policies") or []}
        inline_new = {p["PolicyName"]: p for p in new.get("Policies") or []}
        for policy_name, policy in inline_new.items():
            if inline_old.get(policy_name) != policy:
                await call(
                    self.ctx.aws,
                    "iam",
                    "put_role_policy",
                    RoleName=name,
                    PolicyName=policy_name,
                    PolicyDocument=_document(policy["PolicyDocument"]),
                )
        for policy_name in inline_old.keys() - inline_new.keys():
            await call(
                self.ctx.aws,
                "iam",
                "delete_role_policy",
                missing_ok=True,
                RoleName=name,
                PolicyName=policy_name,
            )

    async def _attach(self, role: str, arn: str) -> None:
        """Attach a managed policy. An IAM endpoint that lacks an AWS managed policy (moto
        has none unless MOTO_IAM_LOAD_MANAGED_POLICIES=true) gets a notice, not a failure:
        Lamina enforces no IAM."""
        try:
            await call(self.ctx.aws, "iam", "attach_role_policy", RoleName=role, PolicyArn=arn)
        except ProviderError as exc:
            if ":iam::aws:policy/" not in arn or "NoSuchEntity" not in str(exc):
                raise
            self.ctx.notice(
                f"the IAM endpoint has no AWS managed policy {arn}: role {role} "
                "goes without it (Lamina enforces no IAM)"
            )

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        name = resource.physical_id or ""
        if self.ctx.iam_endpoint:
            if properties.get("AssumeRolePolicyDocument") != resource.properties.get(
                "AssumeRolePolicyDocument"
            ):
                await call(
                    self.ctx.aws,
                    "iam",
                    "update_assume_role_policy",
                    RoleName=name,
                    PolicyDocument=_document(properties.get("AssumeRolePolicyDocument")),
                )
            await self._policies(name, resource.properties, properties)
        return Made(name, resource.attributes)

    async def delete(self, resource: StackResource) -> None:
        if not self.ctx.iam_endpoint or not resource.physical_id:
            return
        await self._policies(resource.physical_id, resource.properties, {})
        await call(
            self.ctx.aws, "iam", "delete_role", missing_ok=True, RoleName=resource.physical_id
        )


class Policy(Provider):
    type = "AWS::IAM::Policy"
    replace_on = ("PolicyName",)

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        await self._put(properties)
        return Made(f"{self.ctx.stack}-{logical_id}-{_random(12)}")

    async def _put(self, properties: dict[str, Any]) -> None:
        if not self.ctx.iam_endpoint:
            return
        for role in properties.get("Roles") or []:
            await call(
                self.ctx.aws,
                "iam",
                "put_role_policy",
                RoleName=role,
                PolicyName=properties["PolicyName"],
                PolicyDocument=_document(properties.get("PolicyDocument")),
            )

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        await self._remove(resource.properties, keep=set(properties.get("Roles") or []))
        await self._put(properties)
        return Made(resource.physical_id or "")

    async def _remove(self, properties: dict[str, Any], keep: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        if not self.ctx.iam_endpoint:
            return
        for role in properties.get("Roles") or []:
            if role not in keep:
                await call(
                    self.ctx.aws,
                    "iam",
                    "delete_role_policy",
                    missing_ok=True,
                    RoleName=role,
                    PolicyName=properties.get("PolicyName"),
                )

    async def delete(self, resource: StackResource) -> None:
        await self._remove(resource.properties)


class ManagedPolicy(Provider):
    type = "AWS::IAM::ManagedPolicy"
    attributes = ("PolicyArn",)
    name_property = "ManagedPolicyName"
    max_name = 128
    replace_on = ("ManagedPolicyName", "Path")

    async def create(self, logical_id: str, properties: dict[str, Any], name: str | None) -> Made:
        path = properties.get("Path", "/")
        arn = f"arn:aws:iam::{self.ctx.account}:policy{path}{name}"
        if self.ctx.iam_endpoint:
            made = await call(
                self.ctx.aws,
                "iam",
                "create_policy",
                PolicyName=name,
                Path=path,
                PolicyDocument=_document(properties.get("PolicyDocument")),
            )
            arn = made["Policy"]["Arn"]
            for role in properties.get("Roles") or []:
                await call(self.ctx.aws, "iam", "attach_role_policy", RoleName=role, PolicyArn=arn)
        return Made(arn, {"PolicyArn": arn})

    async def update(self, resource: StackResource, properties: dict[str, Any]) -> Made:
        if self.ctx.iam_endpoint and properties.get("PolicyDocument") != resource.properties.get(
            "PolicyDocument"
        ):
            await call(
                self.ctx.aws,
                "iam",
                "create_policy_version",
                PolicyArn=resource.physical_id,
                SetAsDefault=True,
                PolicyDocument=_document(properties.get("PolicyDocument")),
            )
        return Made(resource.physical_id or "", resource.attributes)

    async def delete(self, resource: StackResource) -> None:
        if not self.ctx.iam_endpoint or not resource.physical_id:
            return
        for role in resource.properties.get("Roles") or []:
            await call(
                self.ctx.aws,
                "iam",
                "detach_role_policy",
                missing_ok=True,
                RoleName=role,
                PolicyArn=resource.physical_id,
            )
        await call(
            self.ctx.aws, "iam", "delete_policy", missing_ok=True, PolicyArn=resource.physical_id
        )


PROVIDERS = (Role, Policy, ManagedPolicy)
