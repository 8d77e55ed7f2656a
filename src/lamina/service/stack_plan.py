"""Everything a deploy checks before it creates anything: the template's shape, parameters,
the SAM transform, conditions, resource types, the dependency graph, references, every
attribute `Fn::GetAtt` asks for, each provider's own checks of its properties, and outputs.
A `Plan` is what passes; a TemplateError names what does not, and nothing was made."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from lamina.domain import errors
from lamina.domain.cfn import graph, intrinsics, parameters, rules, template
from lamina.domain.cfn.intrinsics import Pending, Scope
from lamina.service import sam
from lamina.service.providers import REGISTRY
from lamina.service.providers.base import DeployContext


@dataclass
class Plan:
    original: dict[str, Any]  # the template as sent (packages already uploaded)
    processed: dict[str, Any]  # after the SAM transform
    given: dict[str, str]  # parameter overrides as sent
    values: dict[str, Any]  # every parameter's value
    conditions: dict[str, bool]
    resources: dict[str, dict[str, Any]]  # those whose condition holds
    graph: dict[str, set[str]]
    skipped: dict[str, str] = field(default_factory=dict)  # logical id → type
    exports: dict[str, str] = field(default_factory=dict)  # other stacks' exports

    def pseudo(self, ctx: DeployContext) -> dict[str, Any]:
        return pseudo_parameters(ctx)


def pseudo_parameters(ctx: DeployContext) -> dict[str, Any]:
    return {
        "AWS::Region": ctx.region,
        "AWS::AccountId": ctx.account,
        "AWS::StackName": ctx.stack,
        "AWS::StackId": ctx.stack_id,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NotificationARNs": [],
    }


def _shape(document: dict[str, Any]) -> None:
    resources = document.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise errors.TemplateError(
            "Template format error: At least one Resources member must be defined."
        )
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            raise errors.TemplateError(
                f"Template format error: [/Resources/{logical_id}] "
                "Every Resources object must contain a Type member."
            )
        if not str(logical_id).isalnum():
            raise errors.TemplateError(
                f"Template format error: Resource name {logical_id} is non alphanumeric."
            )
        properties = resource.get("Properties", {})
        if not isinstance(properties, dict):
            raise errors.TemplateError(f"Resource {logical_id}: Properties must be a mapping")


async def prepare(
    document: dict[str, Any],
    given: dict[str, str],
    ctx: DeployContext,
    exports: dict[str, str],
    skip_unsupported: bool,
    ssm: dict[str, str],
) -> Plan:
    _shape(document)
    definitions = document.get("Parameters") or {}
    values = parameters.resolve_parameters(definitions, given, ssm=lambda name: _ssm(ssm, name))
    processed = copy.deepcopy(document)
    if template.is_sam(document):
        processed = await asyncio.get_running_loop().run_in_executor(
            None, sam.transform, document, values, ctx.region
        )
        _shape(processed)
    names = {**values, **pseudo_parameters(ctx)}
    base = Scope(
        names,
        _no_resource,
        _no_attribute,
        mappings=processed.get("Mappings") or {},
        exports=exports,
        region=ctx.region,
    )
    conditions = intrinsics.conditions(processed.get("Conditions") or {}, base)
    rules.check(
        document.get("Rules"), dataclasses.replace(base, conditions=conditions), definitions
    )
    resources = _active(processed["Resources"], conditions)
    plan = Plan(
        document,
        processed,
        dict(given),
        values,
        conditions,
        resources,
        graph.dependencies(resources, names, conditions),
        exports=exports,
    )
    _types(plan, skip_unsupported)
    await _check_resources(plan, ctx)
    return plan


def _ssm(found: dict[str, str], name: str) -> str:
    if name not in found:
        raise errors.TemplateError(
            f"Parameter store has no parameter {name} (an "
            "AWS::SSM::Parameter::Value parameter names it)"
        )
    return found[name]


def _no_resource(logical_id: str) -> Any:
    raise errors.TemplateError(f"Template error: {logical_id} cannot be used here")


def _no_attribute(logical_id: str, attribute: str) -> Any:
    raise errors.TemplateError(f"Template error: {logical_id}.{attribute} cannot be used here")


def _active(resources: dict[str, Any], conditions: dict[str, bool]) -> dict[str, Any]:
    out = {}
    for logical_id, resource in resources.items():
        condition = resource.get("Condition")
        if condition is not None and condition not in conditions:
            raise errors.TemplateError(
                f"Template format error: Unresolved dependencies "
                f"[{condition}]. Cannot reference resources in the "
                f"Conditions block of the template ({logical_id})"
            )
        if condition is None or conditions[condition]:
            out[logical_id] = resource
    return out


def _types(plan: Plan, skip_unsupported: bool) -> None:
    unsupported = {lid: r["Type"] for lid, r in plan.resources.items() if r["Type"] not in REGISTRY}
    if unsupported and not skip_unsupported:
        listed = ", ".join(f"{lid} ({kind})" for lid, kind in sorted(unsupported.items()))
        hints = "".join(sorted({_custom_hint(kind) for kind in unsupported.values()} - {""}))
        raise errors.TemplateError(
            f"Lamina cannot create these resources: {listed}. Nothing was "
            "created (lamina deploy --skip-unsupported deploys the "
            f"rest).{hints}"
        )
    plan.skipped = unsupported
    for logical_id, needs in plan.graph.items():
        for dependency in sorted(needs & set(unsupported)):
            if logical_id not in unsupported:
                raise errors.TemplateError(
                    f"Resource {logical_id} refers to {dependency} ({unsupported[dependency]}), "
                    "which Lamina cannot create: nothing was created"
                )


# CDK's own custom resources, and what to write instead
_CUSTOM_HINTS = {
    "Custom::LogRetention": "CDK's logRetention: give the function a logGroup "
    "(an AWS::Logs::LogGroup with RetentionInDays) instead",
    "Custom::CDKBucketDeployment": "CDK's BucketDeployment: copy the files with "
    "`aws s3 sync` to the S3 endpoint instead",
    "Custom::S3AutoDeleteObjects": "CDK's autoDeleteObjects: leave it off (lamina destroy "
    "fails on a bucket that is not empty, as CloudFormation does)",
    "Custom::AWS": "CDK's AwsCustomResource: make the call after the deploy instead",
}


def _custom_hint(kind: str) -> str:
    """Why a custom resource is refused, and what the user can do."""
    if not (kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource"):
        return ""
    hint = _CUSTOM_HINTS.get(kind)
    return (
        f" {kind} is a custom resource: CloudFormation runs its provider function with a "
        "signed response URL, which Lamina does not do" + (f" ({hint})." if hint else ".")
    )


def validation_scope(plan: Plan, ctx: DeployContext) -> Scope:
    """Resources resolve to Pending values; GetAtt names are checked against the provider's."""

    def ref(logical_id: str) -> Any:
        return Pending(f"{{{logical_id}}}")

    def getatt(logical_id: str, attribute: str) -> Any:
        kind = plan.resources[logical_id]["Type"]
        provider = REGISTRY.get(kind)
        if provider is not None and attribute not in provider.attributes:
            raise errors.TemplateError(
                f"Template error: resource {logical_id} does not support attribute type "
                f"{attribute} in Fn::GetAtt"
            )
        return Pending(f"{{{logical_id}.{attribute}}}")

    return Scope(
        {**plan.values, **pseudo_parameters(ctx)},
        ref,
        getatt,
        plan.conditions,
        plan.processed.get("Mappings") or {},
        plan.exports,
        ctx.region,
        frozenset(plan.resources),
    )


async def _check_resources(plan: Plan, ctx: DeployContext) -> None:
    scope = validation_scope(plan, ctx)
    for logical_id, resource in plan.resources.items():
        if logical_id in plan.skipped:
            continue
        policy = resource.get("DeletionPolicy", "Delete")
        if policy not in ("Delete", "Retain", "RetainExceptOnCreate", "Snapshot"):
            raise errors.TemplateError(f"Resource {logical_id}: unknown DeletionPolicy {policy}")
        provider = REGISTRY[resource["Type"]]
        properties = provider.coerce(
            intrinsics.resolve(
                resource.get("Properties") or {}, scope, f"Resources.{logical_id}.Properties"
            )
        )
        await provider(ctx).check(logical_id, properties)
    outputs(plan, scope)


def outputs(plan: Plan, scope: Scope) -> list[dict[str, Any]]:
    """The stack's outputs (those whose condition holds), resolved in `scope`."""
    found = []
    definitions = plan.processed.get("Outputs") or {}
    if not isinstance(definitions, dict):
        raise errors.TemplateError("Template format error: Outputs must be a mapping")
    for key, output in definitions.items():
        if not isinstance(output, dict) or "Value" not in output:
            raise errors.TemplateError(
                f"Template format error: Output {key} is malformed: "
                "every Outputs member must contain a Value"
            )
        condition = output.get("Condition")
        if condition is not None and not plan.conditions.get(condition, False):
            if condition not in plan.conditions:
                raise errors.TemplateError(f"Output {key}: unknown condition {condition}")
            continue
        value = intrinsics.resolve(output["Value"], scope, f"Outputs.{key}.Value")
        item: dict[str, Any] = {"OutputKey": key, "OutputValue": _output_text(value)}
        if "Description" in output:
            item["Description"] = output["Description"]
        export = (output.get("Export") or {}).get("Name")
        if export is not None:
            item["ExportName"] = intrinsics.resolve(export, scope, f"Outputs.{key}.Export")
        found.append(item)
    return found


def _output_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
