"""Resource-based policies: AddPermission, RemovePermission, GetPolicy (spec §2.3, §2.4).

A function has one policy per qualifier: the unqualified function (kept under `$LATEST`),
a version, or an alias. Policies are stored and returned as Lambda builds them, and enforced
for callers of another account (`allows`, `domain.policies`). Each change gives the policy a
new RevisionId; before a policy's first statement, a RevisionId is checked against the
function's, version's or alias's own, as on AWS, where the two are one. Policies go with
their function, version or alias. Kept in memory (loaded at start) like event invoke configs.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from lamina.domain import arns, errors, policies
from lamina.domain.model import LATEST, ResourcePolicy
from lamina.service.functions import FunctionService
from lamina.service.ports import Store
from lamina.service.versions import VersionService

_STALE_RESOURCE = (
    "The Revision Id provided does not match the latest Revision Id. Call the "
    "GetResourcePolicy API to retrieve the latest Revision Id"
)
_STALE = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy "
    "API to retrieve the latest Revision Id"
)


class PermissionService:
    """The policy operations (see the module docstring)."""

    def __init__(self, store: Store, functions: FunctionService, versions: VersionService) -> None:
        self.store = store
        self.functions = functions
        self.versions = versions
        self._policies: dict[tuple[str, str], ResourcePolicy] = {}
        functions.on_delete.append(self.forget)
        functions.on_delete_qualifier.append(self.forget_qualifier)

    async def load(self) -> None:
        """Read every policy from the store (at start, and after another engine's change)."""
        self._policies = {(p.function, p.qualifier): p for p in await self.store.list_policies()}

    def get(self, function: str, qualifier: str | None) -> ResourcePolicy:
        """A qualifier's policy; a missing function is answered as a missing policy (AWS)."""
        policy = self._policies.get((function, qualifier or LATEST))
        if policy is None:
            raise errors.ResourceNotFound("The resource you requested does not exist.")
        return policy

    def allows(
        self, function: str, qualifier: str | None, action: str, who: policies.Principal
    ) -> bool:
        """Whether the policy of the qualifier called lets `who` do `action` (a version's or
        alias's policy alone grants calls to it, as on AWS)."""
        policy = self._policies.get((function, qualifier or LATEST))
        return policy is not None and policies.allows(policy.statements, action, who)

    def may_invoke(self, target: arns.FunctionRef, account: str) -> bool:
        """Whether a function of `account` may invoke `target` (a destination): one of its
        own account, or one whose policy allows the account's root principal (the engine
        acts with the function's account identity)."""
        owner = target.account or account
        key = self.functions.key(owner, target.name)
        if owner == account or self.functions.find(key) is None:
            return owner == account  # the call itself answers 404 for a missing function
        return self.allows(
            key,
            target.qualifier,
            "lambda:InvokeFunction",
            policies.Principal(account, f"arn:aws:iam::{account}:root"),
        )

    async def add(
        self,
        function: str,
        qualifier: str | None,
        permission: policies.Permission,
        revision_id: str | None,
    ) -> dict[str, Any]:
        """Add a statement; return it."""
        policies.check(permission)
        if qualifier == LATEST:
            raise errors.InvalidParameterValue(
                "We currently do not support adding policies for $LATEST."
            )
        own_revision = self._resource_revision(function, qualifier)
        key = (function, qualifier or LATEST)
        current = self._policies.get(key) or ResourcePolicy(function, key[1], own_revision)
        policies.check_addition(
            current.statements, permission.statement_id, current.revision_id, revision_id, _STALE
        )
        statement = policies.statement(permission, self.functions.arn(function, qualifier))
        await self._save(
            replace(
                current, revision_id=str(uuid.uuid4()), statements=(*current.statements, statement)
            )
        )
        return statement

    async def remove(
        self, function: str, qualifier: str | None, statement_id: str, revision_id: str | None
    ) -> None:
        try:
            self.functions.entry(function)
        except errors.ResourceNotFound:
            raise errors.ResourceNotFound(
                f"No policy found for: {self.functions.arn(function)}"
            ) from None
        self._resource_revision(function, qualifier)
        current = self._policies.get((function, qualifier or LATEST))
        if current is None:
            raise errors.ResourceNotFound("No policy is associated with the given resource.")
        kept = policies.without(
            current.statements, statement_id, current.revision_id, revision_id, _STALE
        )
        await self._save(replace(current, revision_id=str(uuid.uuid4()), statements=kept))

    # PutResourcePolicy and friends: the same policy, set or dropped as a whole ------------
    async def put_document(
        self, function: str, qualifier: str | None, text: object, revision_id: str | None
    ) -> ResourcePolicy:
        """Replace the policy (AddPermission's statements too) with the given document."""
        version, policy_id, statements = policies.parse_document(text)
        self._current(function, qualifier, revision_id)
        policy = ResourcePolicy(
            function, qualifier or LATEST, str(uuid.uuid4()), statements, version, policy_id
        )
        await self._save(policy)
        return policy

    async def delete_document(
        self, function: str, qualifier: str | None, revision_id: str | None
    ) -> None:
        self.get(function, qualifier)
        self._current(function, qualifier, revision_id)
        await self.store.delete_policy(function, qualifier or LATEST)
        self._policies.pop((function, qualifier or LATEST), None)

    def _current(
        self, function: str, qualifier: str | None, revision_id: str | None
    ) -> ResourcePolicy | None:
        """The policy now (None: none yet), after the checks of a change to it."""
        if qualifier == LATEST:
            raise errors.InvalidParameterValue(
                "We currently do not support adding policies for $LATEST."
            )
        own_revision = self._resource_revision(function, qualifier)
        current = self._policies.get((function, qualifier or LATEST))
        expected = current.revision_id if current is not None else own_revision
        if revision_id is not None and revision_id != expected:
            raise errors.PreconditionFailed(_STALE_RESOURCE)
        return current

    def forget(self, function: str) -> None:
        """Drop the policies of a deleted function (the store deleted them with it)."""
        for key in [k for k in self._policies if k[0] == function]:
            del self._policies[key]

    def forget_qualifier(self, function: str, qualifier: str) -> None:
        """Drop the policy of a deleted version or alias (the store deleted it with it)."""
        self._policies.pop((function, qualifier), None)

    async def _save(self, policy: ResourcePolicy) -> None:
        """Store a changed policy; one left without statements is deleted, as on AWS."""
        key = (policy.function, policy.qualifier)
        if policy.statements:
            await self.store.put_policy(policy)
            self._policies[key] = policy
        else:
            await self.store.delete_policy(policy.function, policy.qualifier)
            self._policies.pop(key, None)

    def _resource_revision(self, function: str, qualifier: str | None) -> str:
        """The RevisionId of the function, alias or version a policy is for; the 404 AWS
        answers when there is none."""
        if qualifier is not None and arns.ALIAS_RE.fullmatch(qualifier):
            return self.versions.get_alias(function, qualifier).revision_id
        return self.functions.resolve(function, qualifier).revision_id
