"""Published versions and aliases (spec §1.1, §2.4).

A version is an immutable snapshot of `$LATEST` with the next number (numbers are never
reused). Publishing returns the newest version instead of a new one when `$LATEST` has not
been deployed since (same `deployment_id`): as on AWS, any UpdateFunctionCode or
UpdateFunctionConfiguration counts, even one that only changed the description, while the
publish's own `Description` does not. Publishing gives `$LATEST` a new RevisionId.
An alias names a version and may send a weighted share of calls to one additional version
(`FunctionService.route` does the choosing). Source:
https://docs.aws.amazon.com/lambda/latest/dg/configuration-versions.html
"""

from __future__ import annotations

import dataclasses
import time
import uuid

from lamina.domain import arns, errors
from lamina.domain.model import LATEST, Alias, FunctionConfig
from lamina.service.functions import FunctionEntry, FunctionService, settled, timestamp


class VersionService:
    """PublishVersion, ListVersionsByFunction and the alias operations."""

    def __init__(self, functions: FunctionService) -> None:
        self.functions = functions
        self.store = functions.store

    # versions --------------------------------------------------------------------------
    async def publish(
        self,
        name: str,
        code_sha256: str | None = None,
        description: str | None = None,
        revision_id: str | None = None,
        renew_latest: bool = True,
        with_change: bool = False,
    ) -> FunctionConfig:
        """Publish `$LATEST` (or return the newest version, unchanged since). `renew_latest`
        False: part of CreateFunction, whose `$LATEST` keeps the RevisionId it got active.
        `with_change`: the `Publish` of a create or code update, which may publish a change
        still settling (`--settle-time`): the version is `Pending` until the change settles."""
        entry = self.functions.entry(name)
        latest = entry.latest
        settling = with_change and (
            latest.state == "Pending" or latest.last_update_status == "InProgress"
        )
        if revision_id is not None and revision_id != latest.revision_id:
            raise errors.PreconditionFailed(
                "The Revision Id provided does not match the latest Revision Id. Call the "
                "GetFunction/GetAlias API to retrieve the latest Revision Id"
            )
        # hot-reloaded code has no hash to match (tools that hash the code first, such as
        # the Serverless Framework, would never match it): not checked, as LocalStack does
        if (
            code_sha256 is not None
            and code_sha256 != latest.code_sha256
            and latest.code_path is None
        ):
            raise errors.InvalidParameterValue(
                f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in $LATEST "
                f"({latest.code_sha256}). Please try again with the CodeSHA256 in $LATEST."
            )
        if entry.updating or (latest.last_update_status == "InProgress" and not settling):
            raise errors.ResourceConflict(
                "The operation cannot be performed at this time. An update is in progress "
                f"for resource: {self.functions.arn(name)}"
            )
        newest = max(entry.versions.values(), key=lambda c: int(c.version), default=None)
        if newest is not None and newest.deployment_id == latest.deployment_id:
            return newest
        snapshot = latest.replace(
            revision_id=str(uuid.uuid4()),
            last_modified=timestamp(time.time()),
            state="Active",
            state_reason=None,
            state_reason_code=None,
            last_update_status="Successful",
            last_update_status_reason=None,
            last_update_status_reason_code=None,
            scaling=None,
            description=latest.description if description is None else description,
        )
        if settling:
            snapshot = snapshot.replace(
                state="Pending",
                last_update_status=None,
                state_reason="The function is being created.",
                state_reason_code="Creating",
            )
        published = await self.store.publish_version(snapshot)
        entry.versions[published.version] = published
        if settling:
            self.functions.after_settle_time(self._settle_version, entry, published)
        if renew_latest:
            renewed = latest.replace(revision_id=str(uuid.uuid4()))
            await self.store.put_version(renewed)
            self.functions.entry(name).latest = renewed
        return published

    @staticmethod
    def _settle_version(entry: FunctionEntry, published: FunctionConfig) -> None:
        if entry.versions.get(published.version) is published:
            entry.versions[published.version] = settled(published)

    def list_versions(self, name: str) -> list[FunctionConfig]:
        entry = self.functions.entry(name)
        return [entry.latest] + sorted(entry.versions.values(), key=lambda c: int(c.version))

    def list_all(self) -> list[FunctionConfig]:
        """Every version of every function, by name ($LATEST first): ListFunctions(ALL)."""
        return [
            config for latest in self.functions.list() for config in self.list_versions(latest.name)
        ]

    # aliases ---------------------------------------------------------------------------
    def alias_arn(self, function: str, name: str) -> str:
        return self.functions.arn(function, name)

    def get_alias(self, function: str, name: str, missing: str = "Cannot find alias arn") -> Alias:
        alias = self.functions.entry(function).aliases.get(name)
        if alias is None:
            raise errors.ResourceNotFound(f"{missing}: {self.alias_arn(function, name)}")
        return alias

    def list_aliases(self, function: str, version: str | None = None) -> list[Alias]:
        entry = self.functions.entry(function)
        return [
            a
            for _, a in sorted(entry.aliases.items())
            if version is None or a.function_version == version
        ]

    async def create_alias(
        self,
        function: str,
        name: str,
        version: str,
        description: str,
        routing: dict[str, float] | None,
    ) -> Alias:
        entry = self.functions.entry(function, version)
        _check_alias_name(name)
        if name in entry.aliases:
            raise errors.ResourceConflict(f"Alias already exists: {self.alias_arn(function, name)}")
        alias = self._checked(
            entry, Alias(function, name, version, str(uuid.uuid4()), description), routing
        )
        await self.store.create_alias(alias)
        entry.aliases[name] = alias
        return alias

    async def update_alias(
        self,
        function: str,
        name: str,
        version: str | None,
        description: str | None,
        routing: dict[str, float] | None,
        revision_id: str | None,
    ) -> Alias:
        entry = self.functions.entry(function)
        current = self.get_alias(function, name, missing="Alias not found")
        if revision_id is not None and revision_id != current.revision_id:
            raise errors.PreconditionFailed(
                "The Revision Id provided does not match the latest Revision Id. Call the "
                "GetFunction/GetAlias API to retrieve the latest Revision Id"
            )
        changed = dataclasses.replace(
            current,
            function_version=version or current.function_version,
            description=current.description if description is None else description,
            revision_id=str(uuid.uuid4()),
        )
        if routing is None:
            routing = (
                {current.additional_version: current.additional_weight}
                if current.additional_version
                else {}
            )
        alias = self._checked(entry, changed, routing)
        await self.store.put_alias(alias)
        entry.aliases[name] = alias
        return alias

    async def delete_alias(self, function: str, name: str) -> None:
        entry = self.functions.entry(function)
        if name in entry.aliases:
            await self.store.delete_alias(function, name)
            del entry.aliases[name]
            self.functions.deleted_qualifier(function, name)

    def _checked(
        self, entry: FunctionEntry, alias: Alias, routing: dict[str, float] | None
    ) -> Alias:
        self._check_version(entry, alias.function_version)
        if not routing:
            return dataclasses.replace(alias, additional_version=None, additional_weight=0.0)
        if len(routing) > 1:
            raise errors.InvalidParameterValue(
                "Number of items in AdditionalVersionWeights cannot be greater than 1"
            )
        ((extra, weight),) = routing.items()
        shown = "{" + f"{extra}={float(weight) if _is_number(weight) else weight}" + "}"
        if not _is_number(weight) or not 0.0 <= weight <= 1.0:
            raise errors.ValidationError.field(
                shown,
                "routingConfig.additionalVersionWeights",
                "Map value must satisfy constraint: [Member must have value less than or equal "
                "to 1.0, Member must have value greater than or equal to 0.0, Member must not "
                "be null]",
            )
        if not arns.VERSION_RE.fullmatch(extra) or len(extra) > 1024:
            raise errors.ValidationError.field(
                shown,
                "routingConfig.additionalVersionWeights",
                "Map keys must satisfy constraint: [Member must have length less than or equal "
                "to 1024, Member must have length greater than or equal to 1, Member must "
                "satisfy regular expression pattern: [0-9]+]",
            )
        if alias.function_version == LATEST:
            raise errors.InvalidParameterValue(
                "$LATEST is not supported for an alias pointing to more than 1 version", typed=False
            )
        if extra == alias.function_version:
            raise errors.InvalidParameterValue(
                f"Invalid function version {extra}. Function version "
                f"{extra} is already included in routing configuration."
            )
        self._check_version(entry, extra)
        return dataclasses.replace(alias, additional_version=extra, additional_weight=float(weight))

    def _check_version(self, entry: FunctionEntry, version: str) -> None:
        if version != LATEST and version not in entry.versions:
            raise errors.ResourceNotFound(
                f"Function not found: {self.functions.arn(entry.latest.name, version)}"
            )


def _check_alias_name(name: str) -> None:
    if not (1 <= len(name) <= 128) or not arns.ALIAS_RE.fullmatch(name):
        raise errors.ValidationError.field(
            name,
            "name",
            "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)",
        )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
