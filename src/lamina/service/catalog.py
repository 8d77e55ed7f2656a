"""The functions as invocations read them: resolve a name and qualifier, route an alias,
answer their ARNs (spec §4.3).

The catalog is the read side of `service.functions.FunctionService`, which changes it (and
the store) and inherits these methods: every function in memory, so resolving one for an
invocation costs no I/O. A service that only reads functions (the invocation paths, the
async queue, the pollers' batches, destinations) depends on this class.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from lamina.domain import arns, errors
from lamina.domain.model import LATEST, Alias, FunctionConfig


@dataclass
class FunctionEntry:
    """A function as the control plane holds it."""

    latest: FunctionConfig
    tags: dict[str, str] = field(default_factory=dict)
    versions: dict[str, FunctionConfig] = field(default_factory=dict)
    aliases: dict[str, Alias] = field(default_factory=dict)
    updating: bool = False


class FunctionCatalog:
    """Every function in memory, read (see the module docstring)."""

    def __init__(self, region: str, account: str) -> None:
        self.region = region
        self.account = account
        self._functions: dict[str, FunctionEntry] = {}

    def key(self, account: str, name: str) -> str:
        """The key of function `name` of `account` (domain.arns: names are unique per
        account; the engine's own account's functions are keyed by their plain name)."""
        return arns.function_key("" if account == self.account else account, name)

    def arn(self, name: str, qualifier: str | None = None) -> str:
        """The ARN of the function a key names, in the account that owns it."""
        return arns.function_arn(self.region, self.account, name, qualifier)

    def owner(self, name: str) -> str | None:
        """The account that owns the function; None when there is no such function."""
        entry = self._functions.get(name)
        if entry is None:
            return None
        return entry.latest.account or self.account

    def entry(self, name: str, qualifier: str | None = None) -> FunctionEntry:
        entry = self._functions.get(name)
        if entry is None:
            raise errors.ResourceNotFound(f"Function not found: {self.arn(name, qualifier)}")
        return entry

    def find(self, name: str) -> FunctionEntry | None:
        """The function, or None (for operations that word their own 404)."""
        return self._functions.get(name)

    def resolve(self, name: str, qualifier: str | None) -> FunctionConfig:
        """The version a name and qualifier select (an alias's primary version); 404 if none."""
        entry = self.entry(name, qualifier)
        if qualifier is None or qualifier == LATEST:
            return entry.latest
        alias = entry.aliases.get(qualifier)
        version = alias.function_version if alias is not None else qualifier
        if version == LATEST:
            return entry.latest
        config = entry.versions.get(version)
        if config is None:
            raise errors.ResourceNotFound(f"Function not found: {self.arn(name, qualifier)}")
        return config

    def invoked(self, name: str, qualifier: str | None) -> FunctionConfig:
        """`resolve` for an invocation: an unqualified one that finds nothing names
        `$LATEST` in its 404, as AWS's does."""
        try:
            return self.resolve(name, qualifier)
        except errors.ResourceNotFound:
            if qualifier is not None:
                raise
            raise errors.ResourceNotFound(f"Function not found: {self.arn(name, LATEST)}") from None

    def route(self, name: str, qualifier: str | None) -> FunctionConfig:
        """The version an invocation runs: an alias with a routing configuration sends its
        weight of calls to the additional version (spec §4.3)."""
        if qualifier is None:  # $LATEST, which no alias routes: most calls, in one lookup
            entry = self._functions.get(name)
            if entry is not None:
                return entry.latest
        config = self.invoked(name, qualifier)
        alias = self._functions[name].aliases.get(qualifier or "")
        if (
            alias is not None
            and alias.additional_version
            and random.random() < alias.additional_weight
        ):
            return self.resolve(name, alias.additional_version)
        return config

    def check_invocable(self, config: FunctionConfig) -> None:
        """409 while the function is not Active yet (spec §1.2)."""
        if config.state != "Active":
            raise errors.ResourceConflict(
                "The operation cannot be performed at this time. The function is currently in "
                f"the following state: {config.state}"
            )

    def list(self, account: str | None = None) -> list[FunctionConfig]:
        """Every function, or those `account` owns."""
        configs = [self._functions[name].latest for name in sorted(self._functions)]
        if account is None:
            return configs
        return [c for c in configs if (c.account or self.account) == account]

    def tags(self, name: str) -> dict[str, str]:
        return dict(self.entry(name).tags)

    def total_code_size(self) -> int:
        return sum(
            e.latest.code_size + sum(v.code_size for v in e.versions.values())
            for e in self._functions.values()
        )
