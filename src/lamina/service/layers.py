"""Layers: PublishLayerVersion, GetLayerVersion(ByArn), ListLayerVersions, ListLayers,
DeleteLayerVersion, and the layer versions a function's `Layers` name (spec §1.3).

A layer belongs to the account that publishes it (its ARN carries it); names are unique per
account: a layer is kept under a key made as a function's is (`domain.arns.function_key`:
the plain name for the engine's own account, `<account>:<name>` for another), which only
its ARN and the wire's plain `LayerName` show. Another account reaches a version only by
ARN, for GetLayerVersion(ByArn) and a function's `Layers`, where the version's policy
(AddLayerVersionPermission) grants it `lambda:GetLayerVersion`.

Versions are numbered 1, 2, … per layer name and never reused: a deleted version keeps its
(hidden) record. Its package is never deleted either (packages are content-addressed), so
a function version that uses a deleted layer version keeps working, as on AWS, which keeps
a copy. Kept in memory (loaded at start) like policies; every change is stored first.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

from lamina.domain import arns, errors, layers, policies
from lamina.domain.code import CodeSource
from lamina.domain.layers import LayerPermission, LayerRef, LayerVersion
from lamina.service.functions import FunctionService, timestamp
from lamina.service.ports import Store

GET = "lambda:GetLayerVersion"  # what a policy grants another account (get it, use it)
_STALE = (
    "The Revision Id provided does not match the latest Revision Id. Call the "
    "GetLayerPolicy API to retrieve the latest Revision Id"
)  # AWS's words


class LayerService:
    """The layer operations (see the module docstring)."""

    def __init__(self, store: Store, functions: FunctionService) -> None:
        self.store = store
        self.functions = functions
        self.region = functions.region
        self.account = functions.account
        self._versions: dict[tuple[str, int], LayerVersion] = {}
        functions.resolve_layers = self.refs

    async def load(self) -> None:
        """Read every layer version from the store (at start, and after another engine's
        change)."""
        self._versions = {(v.name, v.version): v for v in await self.store.list_layer_versions()}

    def key(self, account: str, name: str) -> str:
        """The key of layer `name` of `account` (see the module docstring)."""
        return self.functions.key(account, name)

    def name(self, value: str, who: policies.Principal, version: int | None = None) -> str:
        """A LayerName path value (a name or a layer ARN) as the layer's key, for a caller of
        `who.account`: a plain name is the caller's own layer; another account's named by ARN
        is denied unless `version` is given (GetLayerVersion) and its policy lets the caller
        get it."""
        name, named = layers.parse_name(value, self.region)
        account = who.account or self.account
        if named is None or named == account:
            return self.key(account, name)
        key = self.key(named, name)
        if version is not None and self.allows(key, version, who):
            return key
        raise errors.AccessDenied(
            policies.denied(
                who, GET, f"{layers.layer_arn(self.region, named, name)}:{version or 1}"
            )
        )

    def allows(self, name: str, version: int, who: policies.Principal) -> bool:
        """Whether a version's policy lets `who` get (and use) it."""
        layer = self._versions.get((name, version))
        return layer is not None and policies.allows(layer.statements, GET, who)

    async def publish(
        self,
        name: str,
        source: CodeSource,
        description: str | None,
        runtimes: list[str] | None,
        architectures: list[str] | None,
        license_info: str | None,
        account: str | None = None,
    ) -> LayerVersion:
        """A new version from a zip, an S3 object, or a hot-reload folder (used as it is by
        every function that names the version)."""
        layers.check_publish(description, runtimes, architectures, license_info)
        code = await self.functions.resolve_code(source)
        version = 1 + max((v for n, v in self._versions if n == name), default=0)
        layer = LayerVersion(
            name,
            version,
            layers.layer_arn(self.region, account or self.account, arns.plain_name(name)),
            code.sha256,
            code.size,
            code.key,
            timestamp(time.time()),
            description or "",
            None if runtimes is None else tuple(runtimes),
            None if architectures is None else tuple(architectures),
            license_info,
            path=code.path,
        )
        await self.store.insert_layer_version(layer)
        self._versions[(name, version)] = layer
        return layer

    def get(self, name: str, version: int) -> LayerVersion:
        layer = self._versions.get((name, version))
        if layer is None or layer.deleted:
            raise errors.ResourceNotFound(layers.NOT_FOUND)
        return layer

    def get_by_arn(self, arn: str, who: policies.Principal) -> LayerVersion:
        region, account, name, version = layers.parse_version_arn(arn)
        if region != self.region:
            raise errors.ResourceNotFound(layers.NOT_FOUND)
        key = self.key(account, name)
        layer = self.get(key, version)
        if account != (who.account or self.account) and not self.allows(key, version, who):
            raise errors.AccessDenied(policies.denied(who, GET, arn))
        return layer

    def versions(
        self,
        name: str | None,
        runtime: str | None,
        architecture: str | None,
        account: str | None = None,
    ) -> list[LayerVersion]:
        """Live versions (of one layer, or all of `account`'s), newest first, that suit the
        filters."""
        layers.check_filters(runtime, architecture)
        arn = f":{account or self.account}:layer:"
        return sorted(
            (
                v
                for v in self._versions.values()
                if not v.deleted
                and name in (None, v.name)
                and arn in v.arn
                and (runtime is None or runtime in (v.compatible_runtimes or ()))
                and (architecture is None or architecture in (v.compatible_architectures or ()))
            ),
            key=lambda v: (v.name, -v.version),
        )

    def latest(
        self, runtime: str | None, architecture: str | None, account: str | None = None
    ) -> list[LayerVersion]:
        """ListLayers: the newest matching version of each of an account's layers, by name."""
        newest: dict[str, LayerVersion] = {}
        for layer in self.versions(None, runtime, architecture, account):
            newest.setdefault(layer.name, layer)
        return [newest[name] for name in sorted(newest)]

    async def delete(self, name: str, version: int) -> None:
        """Hide a version (idempotent: deleting a missing one succeeds, as on AWS)."""
        layer = self._versions.get((name, version))
        if layer is None or layer.deleted:
            return
        gone = dataclasses.replace(layer, deleted=True)
        await self.store.put_layer_version(gone)
        self._versions[(name, version)] = gone

    # layer version permissions (AddLayerVersionPermission …): enforced for other accounts
    def total_code_size(self) -> int:
        """What the layer versions that exist count in the account's TotalCodeSize."""
        return sum(v.code_size for v in self._versions.values() if not v.deleted)

    def _for_policy(self, name: str, version: int) -> LayerVersion:
        """The version a policy operation names; AWS words its 404 its own way here."""
        layer = self._versions.get((name, version))
        if layer is None or layer.deleted:
            owner = arns.key_owner(name) or self.account
            arn = layers.layer_arn(self.region, owner, arns.plain_name(name))
            raise errors.ResourceNotFound(f"Layer version {arn}:{version} does not exist.")
        return layer

    def policy(self, name: str, version: int) -> LayerVersion:
        layer = self._for_policy(name, version)
        if not layer.statements:
            raise errors.ResourceNotFound("No policy is associated with the given resource.")
        return layer

    async def add_permission(
        self, name: str, version: int, permission: LayerPermission, revision_id: str | None
    ) -> LayerVersion:
        layer = self._for_policy(name, version)
        statement = layers.layer_statement(permission, layer.version_arn)
        policies.check_addition(
            layer.statements, permission.statement_id, layer.policy_revision, revision_id, _STALE
        )
        return await self._set_policy(layer, (*layer.statements, statement))

    async def remove_permission(
        self, name: str, version: int, statement_id: str, revision_id: str | None
    ) -> None:
        layer = self.policy(name, version)
        await self._set_policy(
            layer,
            policies.without(
                layer.statements, statement_id, layer.policy_revision, revision_id, _STALE
            ),
        )

    async def _set_policy(
        self, layer: LayerVersion, statements: tuple[dict[str, Any], ...]
    ) -> LayerVersion:
        changed = dataclasses.replace(
            layer, statements=statements, policy_revision=str(uuid.uuid4()) if statements else None
        )
        await self.store.put_layer_version(changed)
        self._versions[(layer.name, layer.version)] = changed
        return changed

    def refs(self, arns: tuple[str, ...], account: str) -> tuple[LayerRef, ...]:
        """The layer versions a function of `account` names in its `Layers` (already checked
        by `domain.layers.check_references`); AWS's 400 for one that does not exist, 403 for
        another account's that its policy does not let `account` use."""
        found = []
        for arn in arns:
            region, owner, name, version = layers.parse_version_arn(arn, "layers")
            key = self.key(owner, name)
            layer = self._versions.get((key, version))
            if region != self.region or layer is None or layer.deleted:
                raise errors.InvalidParameterValue(f"Layer version {arn} does not exist.")
            who = policies.Principal(account, f"arn:aws:iam::{account}:root")
            if owner != account and not self.allows(key, version, who):
                raise errors.AccessDenied(policies.denied(who, GET, arn))
            found.append(layer.ref())
        return tuple(found)
