"""The control plane: create, read, update, list and delete functions (spec §1, §2).

Functions are kept in memory (loaded from the store at start) so that resolving a function
for an invocation costs no I/O; every change is written to the store before it is answered.

State (spec §1.2): a new function answers `Pending` and becomes `Active` (with
`LastUpdateStatus: Successful`) as soon as the answer is sent; an update answers
`LastUpdateStatus: InProgress` and becomes `Successful` the same way. A second update of a
function while one is in progress gets 409. As on AWS, each of these transitions gives
`$LATEST` a new RevisionId, and so do TagResource and UntagResource; environments follow the
`deployment_id`, which only a change of code or settings renews. With `settle_time`
(`--settle-time`) the change settles that many seconds later instead, as AWS's take time:
meanwhile the function answers `Pending` / `InProgress` and a second update gets 409.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lamina.domain import arns, capacity, errors, limits
from lamina.domain.code import HOT_RELOAD_BUCKET, HOT_RELOAD_SHA256, CodeSource
from lamina.domain.layers import LayerRef
from lamina.domain.model import LATEST, FunctionConfig, Package
from lamina.domain.settings import (
    FunctionSettings,
    check_levels,
    check_tags,
    logging_levels,
    validate,
)
from lamina.service.catalog import FunctionCatalog
from lamina.service.catalog import FunctionEntry as FunctionEntry  # (re-exported)
from lamina.service.concurrency import ConcurrencyLimiter
from lamina.service.ports import CodeFetcher, EnvironmentPool, Network, Packages, Store


def timestamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03d+0000" % (now % 1 * 1000)


@dataclass(frozen=True)
class CreateFunction:
    """A decoded CreateFunction request."""

    name: str
    settings: FunctionSettings
    code: CodeSource
    tags: dict[str, str] = field(default_factory=dict)
    code_signing_config_arn: str | None = None
    account: str = ""  # the caller's account when not the engine's own


@dataclass(frozen=True)
class Code:
    """A package ready to run: unpacked and stored (`key`), or a hot-reload folder (`path`)."""

    sha256: str
    size: int
    key: str = ""
    path: str | None = None

    def changes(self) -> dict[str, Any]:
        return {"code_sha256": self.sha256, "code_size": self.size, "code_path": self.path}


class FunctionService(FunctionCatalog):
    """Functions and their versions (see the module docstring); reading them is the
    catalog's part (`service.catalog`)."""

    def __init__(
        self,
        store: Store,
        code: Packages,
        pool: EnvironmentPool,
        limiter: ConcurrencyLimiter,
        region: str,
        account: str,
        s3: CodeFetcher | None = None,
        hot_reload_bucket: str = HOT_RELOAD_BUCKET,
    ) -> None:
        super().__init__(region, account)
        self.store = store
        self.s3 = s3
        self.hot_reload_bucket = hot_reload_bucket
        # told the folders functions run from whenever they change (the hot-reload watcher)
        self.on_folders: Callable[[set[str]], None] = lambda folders: None
        # each hot-reload folder and whether it is watched now (set by the watcher's owner)
        self.folder_status: Callable[[], dict[str, bool]] = dict
        self.code = code
        self.pool = pool
        self.limiter = limiter
        # seconds a change stays Pending / InProgress before it settles (0: once answered)
        self.settle_time = 0.0
        # name → tags AWS itself puts on the function it is about to create (a deploy's
        # `aws:cloudformation:*`): written with the function, in the same store write
        self._system_tags_next: dict[str, dict[str, str]] = {}
        # Held by each control-plane change (the API) and by a reload of what another engine
        # changed, so that a reload never replaces entries a change is working on.
        self.changes = asyncio.Lock()
        self.on_delete: list[Callable[[str], None]] = []
        # (function, qualifier) of a deleted version or alias
        self.on_delete_qualifier: list[Callable[[str, str], None]] = []
        self.provisioned_total: Callable[[str], int] = lambda name: 0
        # the layer versions a `Layers` list names (set by service.layers.LayerService)
        # (for a function of the given account: another account's need its permission)
        self.resolve_layers: Callable[[tuple[str, ...], str], tuple[LayerRef, ...]] = _no_layers
        # the VPC of a VpcConfig's subnets and security groups (set by the app: EC2)
        self.network: Network | None = None
        # a deployment to a function with this code signing configuration (or None) may go
        # ahead, or raises AWS's error (set by service.code_signing.CodeSigningService)
        self.check_code_signing: Callable[[str, str | None], None] = _no_code_signing
        # a given CapacityProviderConfig checked and settled for (runtime, memory size)
        # (set by service.capacity.CapacityProviderService)
        self.resolve_capacity_provider: Callable[
            [dict[str, Any], str | None, int], dict[str, Any]
        ] = _no_capacity_providers

    async def load(self) -> None:
        """Read every function from the store: at start, and when another engine sharing the
        store changed one (environments of a changed configuration are retired)."""
        reserved = await self.store.list_reserved_concurrency()
        for name in set(self.limiter.reserved) | set(reserved):
            self.limiter.set_reserved(name, reserved.get(name))
        tags = await self.store.list_function_tags()
        loaded: dict[str, FunctionEntry] = {}
        for config in await self.store.list_versions():
            config = settled(config)
            entry = loaded.setdefault(config.name, FunctionEntry(config, tags.get(config.name, {})))
            if config.version == LATEST:
                entry.latest = config
            else:
                entry.versions[config.version] = config
        for alias in await self.store.list_aliases():
            if alias.function in loaded:
                loaded[alias.function].aliases[alias.name] = alias
        for name, entry in self._functions.items():
            fresh = loaded.get(name)
            if fresh is None:
                self.pool.retire(name)
            elif fresh.latest.deployment_id != entry.latest.deployment_id:
                self.pool.retire(name, LATEST)
            if fresh is not None:
                fresh.updating = entry.updating
        self._functions = loaded
        self.folders_changed()

    def folders_changed(self) -> None:
        """Tell the watcher the folders that functions and their layers run from now."""
        folders: set[str] = set()
        for entry in self._functions.values():
            for config in (entry.latest, *entry.versions.values()):
                folders.update(code_folders(config))
        self.on_folders(folders)

    async def package_bytes(self, key: str) -> bytes | None:
        """A stored deployment package, for GetFunction's Code.Location."""
        return await self.store.get_package(key)

    # changing --------------------------------------------------------------------------
    def expect_system_tags(self, name: str, tags: dict[str, str] | None) -> None:
        """The next CreateFunction of `name` also carries `tags`, which callers may not set
        (`aws:` keys); None forgets them."""
        if tags is None:
            self._system_tags_next.pop(name, None)
        else:
            self._system_tags_next[name] = dict(tags)

    async def create(self, request: CreateFunction) -> FunctionConfig:
        settings = request.settings
        validate(settings)
        check_tags(request.tags, len(request.tags))
        system = self._system_tags_next.pop(request.name, {})
        if system:
            tags = {**request.tags, **system}
            if len(tags) > limits.TAGS_PER_FUNCTION:
                raise errors.InvalidParameterValue("Number of tags exceeds resource tag limit.")
            request = dataclasses.replace(request, tags=tags)
        if settings.role is None:
            raise errors.ValidationError.field(None, "role", "Member must not be null")
        if request.name in self._functions:
            raise errors.ResourceConflict(
                f"Function already exist: {arns.plain_name(request.name)}"
            )
        values: dict[str, Any] = {
            "runtime": None,
            "handler": None,
            **await self._given_with_vpc(settings, request.account or self.account),
        }
        self._managed(values, None)
        check_levels(values.get("log_format") or "Text", settings)
        self.check_code_signing(request.name, request.code_signing_config_arn)
        values["code_signing_config_arn"] = request.code_signing_config_arn
        code = await self.resolve_code(request.code)
        await self._check_unzipped(code.key, values.get("layers", ()))
        now = time.time()
        config = _with_logging(
            FunctionConfig(
                name=request.name,
                **code.changes(),
                revision_id=_revision(),
                last_modified=timestamp(now),
                deployment_id=_revision(),
                account=_foreign(request.account, self.account),
                **values,
            )
        )
        if request.name in self._functions:  # created while the package was being unpacked
            raise errors.ResourceConflict(
                f"Function already exist: {arns.plain_name(request.name)}"
            )
        active = settled(config).replace(revision_id=_revision())
        await self.store.create_function(active, request.tags, now)
        self._functions[request.name] = FunctionEntry(config, dict(request.tags))
        self.after_settle_time(self._settle, request.name, config, active)
        if config.code_path is not None or any(r.path for r in config.layers):
            self.folders_changed()
        return config

    async def update_code(
        self, name: str, source: CodeSource, revision_id: str | None, dry_run: bool = False
    ) -> FunctionConfig:
        async with self._updating(name, revision_id) as entry:
            self.check_code_signing(name, entry.latest.code_signing_config_arn)
            code = await self.resolve_code(source)
            await self._check_unzipped(code.key, entry.latest.layers)
            changes = code.changes()
            if dry_run:
                return entry.latest.replace(**changes)
            return await self._apply(entry, changes)

    async def update_configuration(
        self, name: str, settings: FunctionSettings, revision_id: str | None
    ) -> FunctionConfig:
        validate(settings)
        async with self._updating(name, revision_id) as entry:
            changes = await self._given_with_vpc(settings, entry.latest.account or self.account)
            changes.pop("tenant_isolation", None)  # set at creation only, as on AWS
            check_levels(changes.get("log_format") or entry.latest.log_format, settings)
            self._managed(changes, entry.latest)
            if "durable_config" in changes and entry.latest.durable_config is None:
                raise errors.InvalidParameterValue(  # message unconfirmed
                    "Durable execution can only be enabled when a function is created."
                )
            if "layers" in changes:
                await self._check_unzipped(package_key(entry.latest), changes["layers"])
            return await self._apply(entry, changes)

    async def delete(self, name: str, qualifier: str | None) -> None:
        """DeleteFunction, in AWS's order: `$LATEST` and alias qualifiers are refused before
        the function is looked up; a version that does not exist is deleted already."""
        if qualifier == LATEST:
            raise errors.InvalidParameterValue(
                "$LATEST version cannot be deleted without deleting the function."
            )
        if qualifier is not None and arns.ALIAS_RE.fullmatch(qualifier):
            raise errors.InvalidParameterValue("Deletion of aliases is not currently supported.")
        entry = self.entry(name)
        if qualifier is not None:
            await self._delete_version(entry, qualifier)
            return
        if entry.updating:
            raise errors.ResourceConflict(
                "The operation cannot be performed at this time. An update is in progress "
                f"for resource: {self.arn(name)}"
            )
        await self.store.delete_function(name)
        del self._functions[name]
        self.limiter.set_reserved(name, None)
        self.pool.retire(name)
        self.folders_changed()
        for callback in self.on_delete:
            callback(name)

    async def _delete_version(self, entry: FunctionEntry, version: str) -> None:
        if version not in entry.versions:
            return  # AWS answers 204: deleting a version is idempotent
        users = sorted(
            a.name
            for a in entry.aliases.values()
            if version in (a.function_version, a.additional_version)
        )
        if users:
            raise errors.ResourceConflict(
                f"Unable to delete version because the following aliases reference it: {users}"
            )
        await self.store.delete_version(entry.latest.name, version)
        del entry.versions[version]
        self.pool.retire(entry.latest.name, version)
        self.deleted_qualifier(entry.latest.name, version)

    def deleted_qualifier(self, name: str, qualifier: str) -> None:
        """A version or alias is gone: what was kept for it goes too."""
        for callback in self.on_delete_qualifier:
            callback(name, qualifier)

    # tags and settings outside deployments ----------------------------------------------
    async def set_tags(self, name: str, tags: dict[str, str]) -> None:
        """Tags change the function's RevisionId (as on AWS), not its deployment."""
        latest = self.entry(name).latest.replace(revision_id=_revision())
        await self.store.set_function_tags(name, tags, latest)
        entry = self.entry(name)  # the entry now: a reload may have replaced it
        entry.tags = tags
        if entry.latest.deployment_id == latest.deployment_id:
            # as it is now: it may have settled (Pending → Active) while the store wrote
            entry.latest = entry.latest.replace(revision_id=latest.revision_id)

    async def set_system_tags(self, name: str, tags: dict[str, str]) -> None:
        """Tags AWS itself puts on a function (CloudFormation's `aws:cloudformation:*`),
        which callers may not: no `aws:` check, the count still applies."""
        merged = {**self.entry(name).tags, **tags}
        if len(merged) > limits.TAGS_PER_FUNCTION:
            raise errors.InvalidParameterValue("Number of tags exceeds resource tag limit.")
        await self.set_tags(name, merged)

    async def configure(self, name: str, qualifier: str | None, **changes: Any) -> FunctionConfig:
        """Change settings of a version that are not part of a deployment (runtime updates,
        recursion): the RevisionId stays, and so do the version's environments."""
        async with self._updating(name, None):
            await self.store.put_version(self.resolve(name, qualifier).replace(**changes))
            # the configuration and entry now: they may have settled, or been reloaded
            config = self.resolve(name, qualifier).replace(**changes)
            entry = self.entry(name)
            if config.version == LATEST:
                entry.latest = config
            else:
                entry.versions[config.version] = config
            return config

    # reserved concurrency (spec §8.1) -------------------------------------------------
    def check_unqualified(self, qualifier: str | None) -> None:
        if qualifier is not None:
            raise errors.InvalidParameterValue(
                "This operation is permitted on Lambda functions only. Aliases and versions do "
                "not support this operation. Please specify either a function name or an "
                "unqualified function ARN."
            )

    async def put_concurrency(self, name: str, reserved: int) -> int:
        self.entry(name, LATEST)
        self.limiter.check_reservation(name, reserved)
        provisioned = self.provisioned_total(name)
        if reserved < provisioned:
            raise errors.InvalidParameterValue(
                f" ReservedConcurrentExecutions  {reserved} should not be lower than function's "
                f"total provisioned concurrency [{provisioned}].",
                typed=False,
            )
        await self.store.set_reserved_concurrency(name, reserved)
        self.limiter.set_reserved(name, reserved)
        return reserved

    def get_concurrency(self, name: str) -> int | None:
        self.entry(name)
        return self.limiter.reserved.get(name)

    async def delete_concurrency(self, name: str) -> None:
        self.entry(name)
        await self.store.set_reserved_concurrency(name, None)
        self.limiter.set_reserved(name, None)

    # helpers ---------------------------------------------------------------------------
    def _given(self, settings: FunctionSettings, account: str) -> dict[str, Any]:
        """The configuration changes `settings` make (`Layers` resolved to the versions)."""
        changes = {k: v for k, v in settings.given().items() if k != "package_type"}
        if settings.layers is not None:
            changes["layers"] = self.resolve_layers(settings.layers, account)
        if settings.environment is not None:
            changes["has_environment"] = True
        if settings.durable_config is not None:
            changes["durable_config"] = {"RetentionPeriodInDays": 14, **settings.durable_config}
        return changes

    async def _given_with_vpc(self, settings: FunctionSettings, account: str) -> dict[str, Any]:
        """`_given`, with the VPC of a VpcConfig looked up (AWS fails the request when EC2
        does not know a security group or subnet); an emptied VpcConfig detaches it."""
        changes = self._given(settings, account)
        vpc = settings.vpc
        if vpc is not None and (vpc.subnet_ids or vpc.security_group_ids):
            vpc_id = (
                ""
                if self.network is None
                else await self.network.vpc_of(vpc.subnet_ids, vpc.security_group_ids)
            )
            changes["vpc"] = dataclasses.replace(vpc, vpc_id=vpc_id)
        return changes

    def _managed(self, values: dict[str, Any], current: FunctionConfig | None) -> None:
        """Managed Instances rules for a create (`current` None) or configuration update:
        a CapacityProviderConfig is settled (provider found, defaults filled in), a function
        on a provider keeps a runtime that supports it and at least 2 GB."""
        given = values.get("capacity_provider")
        if given is not None and current is not None and current.capacity_provider is None:
            raise errors.InvalidParameterValue(
                "CapacityProviderConfig isn't supported for Lambda Default functions."
            )
        if given is None and (current is None or current.capacity_provider is None):
            return
        if current is None and "memory_size" not in values:
            values["memory_size"] = capacity.MIN_MEMORY
        runtime = values.get("runtime", current.runtime if current else None)
        memory = values.get("memory_size", current.memory_size if current else 0)
        capacity.check_runtime(runtime)
        capacity.check_memory(memory)
        if given is not None:
            values["capacity_provider"] = self.resolve_capacity_provider(given, runtime, memory)

    async def _check_unzipped(self, code_key: str, layers: tuple[LayerRef, ...]) -> None:
        """Lambda's 250 MB counts the function's unzipped code and its layers' together."""
        keys = [key for key in (code_key, *(r.key for r in layers if r.path is None)) if key]
        if not layers or not keys:  # hot-reload folders are not counted (nor copied)
            return
        total = await asyncio.get_running_loop().run_in_executor(
            None, lambda: sum(self.code.unzipped_size(key) for key in keys)
        )
        if total > limits.UNZIPPED_CODE:
            raise errors.InvalidParameterValue(
                "Function code combined with layers exceeds the maximum allowed size of "
                f"{limits.UNZIPPED_CODE} bytes. The actual size is {total} bytes."
            )

    async def resolve_code(self, source: CodeSource) -> Code:
        """The package a request names, ready to run: a hot-reload folder as it is, an S3
        object fetched (Lambda takes packages over 50 MB only from S3), or the zip given."""
        folder = source.hot_reload_folder(self.hot_reload_bucket)
        if folder is not None:
            return Code(HOT_RELOAD_SHA256, 0, path=folder)
        if source.s3 is not None:
            if self.s3 is None:
                raise errors.ServiceError("Lamina has no S3 endpoint to fetch packages from.")
            data = await self.s3.fetch(source.s3)
            package = await self.store_package(data, direct=False)
        else:
            assert source.zip_file is not None
            package = await self.store_package(source.zip_file)
        return Code(package.sha256, package.size, package.key)

    async def store_package(self, zip_file: bytes, direct: bool = True) -> Package:
        """Check, unpack and store a deployment package (a function's or a layer's);
        `direct`: uploaded in the request (50 MB zipped at most), else from S3."""
        package = await asyncio.get_running_loop().run_in_executor(
            None, self.code.put, zip_file, direct
        )
        await self.store.put_package(package.key, zip_file)
        return package

    def after_settle_time(self, callback: Callable[..., None], *args: Any) -> None:
        """Run `callback` when a change answered now is in effect: right after the answer,
        or `settle_time` seconds later."""
        loop = asyncio.get_running_loop()
        if self.settle_time > 0:
            loop.call_later(self.settle_time, callback, *args)
        else:
            loop.call_soon(callback, *args)

    def _updating(self, name: str, revision_id: str | None) -> _UpdateGuard:
        entry = self.entry(name)
        if self.settle_time > 0 and entry.latest.state == "Pending":
            raise errors.ResourceConflict(
                "The operation cannot be performed at this time. The function is currently "
                "in the following state: Pending"
            )
        if entry.updating or (
            self.settle_time > 0 and entry.latest.last_update_status == "InProgress"
        ):
            raise errors.ResourceConflict(
                "The operation cannot be performed at this time. An update is in progress "
                f"for resource: {self.arn(name)}"
            )
        if revision_id is not None and revision_id != entry.latest.revision_id:
            raise errors.PreconditionFailed(
                "The Revision Id provided does not match the latest Revision Id. Call the "
                "GetFunction/GetAlias API to retrieve the latest Revision Id"
            )
        return _UpdateGuard(self, name)

    async def _apply(self, entry: FunctionEntry, changes: dict[str, Any]) -> FunctionConfig:
        now = time.time()
        config = _with_logging(
            entry.latest.replace(
                **changes,
                revision_id=_revision(),
                last_modified=timestamp(now),
                deployment_id=_revision(),
                last_update_status="InProgress",
                last_update_status_reason="The function is being created.",
                last_update_status_reason_code="Creating",
            )
        )
        done = settled(config).replace(revision_id=_revision())
        await self.store.put_version(done)
        before = entry.latest
        entry.latest = config
        self.pool.retire(config.name, LATEST)
        self.after_settle_time(self._settle, config.name, config, done)
        if code_folders(before) != code_folders(config):
            self.folders_changed()
        return config

    def _settle(self, name: str, answered: FunctionConfig, done: FunctionConfig) -> None:
        """The change is in effect (Pending → Active, InProgress → Successful), under the
        RevisionId the store already holds; unless something changed `$LATEST` since."""
        entry = self._functions.get(name)
        if entry is None:
            return
        if entry.latest is answered:
            entry.latest = done
        elif entry.latest.deployment_id == answered.deployment_id and (
            entry.latest.state,
            entry.latest.last_update_status,
        ) != (done.state, done.last_update_status):
            # a change that keeps the deployment (tags) came first: settle it as it stands,
            # under the RevisionId that change stored
            entry.latest = settled(entry.latest)


def package_key(config: FunctionConfig) -> str:
    """The stored package a version runs ("" for a hot-reload folder)."""
    return "" if config.code_path is not None else base64.b64decode(config.code_sha256).hex()


def code_folders(config: FunctionConfig) -> set[str]:
    """The hot-reload folders a version runs from (its code's, its layers')."""
    folders = {layer.path for layer in config.layers if layer.path is not None}
    if config.code_path is not None:
        folders.add(config.code_path)
    return folders


def _no_layers(arns: tuple[str, ...], account: str) -> tuple[LayerRef, ...]:
    if arns:
        raise errors.InvalidParameterValue(f"Layer version {arns[0]} does not exist.")
    return ()


def _no_code_signing(function: str, arn: str | None) -> None:
    if arn is not None:
        raise errors.CodeSigningConfigNotFound(f"Code signing configuration not found: {arn}")


def _no_capacity_providers(
    given: dict[str, Any], runtime: str | None, memory: int
) -> dict[str, Any]:
    raise errors.ResourceNotFound(f"Capacity provider not found: {given['CapacityProviderArn']}")


def settled(config: FunctionConfig) -> FunctionConfig:
    """A configuration whose creation or update is complete (and one read back from the
    store): Active, with `LastUpdateStatus: Successful` as AWS shows it after a create."""
    return config.replace(
        state="Active",
        state_reason=None,
        state_reason_code=None,
        last_update_status="Successful",
        last_update_status_reason=None,
        last_update_status_reason_code=None,
    )


def _with_logging(config: FunctionConfig) -> FunctionConfig:
    return config.replace(
        **logging_levels(config.log_format, config.application_log_level, config.system_log_level)
    )


def _revision() -> str:
    return str(uuid.uuid4())


class _UpdateGuard:
    """Marks a function as being updated for the length of an `async with` block. The mark is
    cleared on the entry current at the end: a reload (another engine's change, or this
    one's own, heard back from PostgreSQL) may have replaced the entry meanwhile."""

    def __init__(self, functions: FunctionService, name: str) -> None:
        self.functions = functions
        self.name = name

    async def __aenter__(self) -> FunctionEntry:
        entry = self.functions.entry(self.name)
        entry.updating = True
        return entry

    async def __aexit__(self, *exc: object) -> None:
        entry = self.functions._functions.get(self.name)
        if entry is not None:
            entry.updating = False


def _foreign(account: str, engine_account: str) -> str:
    """How a function records its owner: "" for the engine's own account."""
    return "" if account in ("", engine_account) else account
