"""The dependency graph of a template's resources, as CloudFormation builds it.

A resource depends on every resource its properties name (Ref, Fn::GetAtt, Fn::Sub, taking
only the branch of an Fn::If its condition selects) and on those in its DependsOn. Creates
and updates follow the graph; deletes go the other way. A reference to a name that is neither
a parameter, a pseudo parameter nor a resource, and a cycle, are template errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lamina.domain import errors
from lamina.domain.cfn import intrinsics

PSEUDO = (
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
)


def depends_on(resource: dict[str, Any]) -> list[str]:
    value = resource.get("DependsOn", [])
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise errors.TemplateError(
            "Template format error: DependsOn must be a resource name or a list of them"
        )
    return names


def dependencies(
    resources: dict[str, dict[str, Any]], parameters: Iterable[str], conditions: dict[str, bool]
) -> dict[str, set[str]]:
    """{logical id: the resources it depends on}; a TemplateError for an unknown name."""
    known = set(parameters) | set(PSEUDO)
    graph: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        named = intrinsics.references(resource.get("Properties", {}), conditions)
        unknown = sorted(n for n in named if n not in resources and n not in known)
        explicit = depends_on(resource)
        unknown += sorted(n for n in explicit if n not in resources)
        if unknown:
            raise errors.TemplateError(
                f"Template format error: Unresolved resource dependencies [{', '.join(unknown)}]"
                f" in the Resources block of the template (resource {logical_id})"
            )
        graph[logical_id] = {n for n in named if n in resources} | set(explicit)
    for logical_id, needs in graph.items():
        if logical_id in needs:
            raise errors.TemplateError(f"Circular dependency between resources: [{logical_id}]")
    _check_cycles(graph)
    return graph


def order(graph: dict[str, set[str]]) -> list[str]:
    """The resources in an order that creates each after what it depends on (stable: among
    resources free at the same time, template order)."""
    _check_cycles(graph)
    placed: list[str] = []
    done: set[str] = set()
    remaining = list(graph)
    while remaining:
        ready = [n for n in remaining if graph[n] <= done]
        placed.extend(ready)
        done.update(ready)
        remaining = [n for n in remaining if n not in done]
    return placed


def _check_cycles(graph: dict[str, set[str]]) -> None:
    """Kahn's algorithm: whatever is left once no resource is free is on or behind a cycle."""
    needs = {n: set(d) for n, d in graph.items()}
    free = [n for n, d in needs.items() if not d]
    users: dict[str, list[str]] = {n: [] for n in graph}
    for name, deps in graph.items():
        for dep in deps:
            users.setdefault(dep, []).append(name)
    while free:
        name = free.pop()
        for user in users.get(name, []):
            needs[user].discard(name)
            if not needs[user]:
                free.append(user)
    stuck = sorted(n for n, d in needs.items() if d)
    if stuck:
        raise errors.TemplateError(f"Circular dependency between resources: [{', '.join(stuck)}]")


def dependents(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """{logical id: the resources that depend on it} (the graph reversed, for deletes)."""
    out: dict[str, set[str]] = {n: set() for n in graph}
    for name, deps in graph.items():
        for dep in deps:
            out.setdefault(dep, set()).add(name)
    return out
