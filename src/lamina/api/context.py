"""What every Lambda API handler may use: the services and the engine's identity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lamina.domain import arns, errors, policies
from lamina.http.server import Request
from lamina.observability.metrics import Metrics
from lamina.service.apis import ApiService
from lamina.service.async_invoke import AsyncInvokeService
from lamina.service.capacity import CapacityProviderService
from lamina.service.cluster import Cluster
from lamina.service.code_signing import CodeSigningService
from lamina.service.debug import DebugService
from lamina.service.event_configs import EventConfigService
from lamina.service.faults import FaultService
from lamina.service.functions import FunctionService
from lamina.service.invoke import InvokeService
from lamina.service.layers import LayerService
from lamina.service.log_groups import LogGroupService
from lamina.service.mappings import MappingService
from lamina.service.observe import ObserveService
from lamina.service.overview import OverviewService
from lamina.service.permissions import PermissionService
from lamina.service.ports import Clock
from lamina.service.provisioned import ProvisionedService
from lamina.service.schedules import ScheduleService
from lamina.service.urls import UrlService
from lamina.service.versions import VersionService


@dataclass
class ApiContext:
    functions: FunctionService
    invoke: InvokeService
    observe: ObserveService
    async_invoke: AsyncInvokeService
    event_configs: EventConfigService
    versions: VersionService
    provisioned: ProvisionedService
    faults: FaultService
    permissions: PermissionService
    clock: Clock
    region: str
    account: str
    account_limit: int
    heartbeat_interval: float = 0.0
    overview: OverviewService | None = None
    metrics: Metrics | None = None
    mappings: MappingService = field(kw_only=True)
    layers: LayerService = field(kw_only=True)
    urls: UrlService = field(kw_only=True)
    stacks: Any = None  # service.stacks.StackService
    schedules: ScheduleService | None = None
    apis: ApiService | None = None
    persist_clock: Any = None  # async () -> None: keep a virtual clock's new time
    cluster: Cluster | None = None
    code_signing: CodeSigningService = field(kw_only=True)
    capacity: CapacityProviderService | None = None
    durable: Any = None  # service.durable.DurableService
    debug: DebugService | None = None
    log_groups: LogGroupService | None = None
    sandbox: dict[str, Any] | None = None  # how environments are isolated (--sandbox)
    gate: Any = None  # api.auth.Gate with --auth sigv4, else None (nothing is checked)
    strict: bool = False  # --parity strict: AWS's checks that a local engine could waive
    # What a plain name (no ARN, no Qualifier, no credentials) resolves to: the same every
    # time, so the Invoke hot path parses it once (`qualified_ref`); bounded.
    _plain_refs: dict[str, arns.FunctionRef] = field(default_factory=dict, repr=False)

    def caller_account(self, request: Request) -> str:
        """The account a request acts as: its verified caller's, else the engine's own."""
        caller = request.caller
        return caller.account if caller is not None else self.account

    def key(self, account: str, name: str) -> str:
        """The key of function `name` of `account` (domain.arns: the plain name for the
        engine's own account)."""
        return self.functions.key(account, name)

    def own_key(self, request: Request, name: str) -> str:
        """The key of the caller's own function `name` (a name with ':' is no name: it
        would otherwise spell another account's key)."""
        if ":" in name:
            raise errors.ResourceNotFound(f"Function not found: {name}")
        return self.key(self.caller_account(request), name)

    def function_ref(
        self, request: Request, value: str, action: str | None = None
    ) -> arns.FunctionRef:
        """The function a FunctionName path value names, if the caller may reach it for
        `action` (see `reachable`)."""
        ref = arns.parse_function_name(value, self.region, None)
        return self.reachable(request, ref, action)

    def qualified(
        self, request: Request, value: str, action: str | None = None
    ) -> tuple[str, str | None]:
        """(name, qualifier) of a FunctionName path value and the `Qualifier` parameter."""
        ref = self.qualified_ref(request, value, action)
        return ref.name, ref.qualifier

    def qualified_ref(
        self, request: Request, value: str, action: str | None = None
    ) -> arns.FunctionRef:
        """The function a path value and the `Qualifier` parameter name, checked together."""
        plain = request.caller is None and not request.query and ":" not in value
        if plain and (known := self._plain_refs.get(value)) is not None:
            return known
        qualifier = request.query_params().get("Qualifier")
        ref = arns.parse_function_name(value, self.region, None, qualifier=qualifier)
        ref = arns.FunctionRef(ref.name, arns.merge_qualifier(ref, qualifier), ref.account)
        found = self.reachable(request, ref, action)
        if plain:
            if len(self._plain_refs) >= 1024:
                self._plain_refs.clear()
            self._plain_refs[value] = found
        return found

    def reachable(
        self, request: Request, ref: arns.FunctionRef, action: str | None
    ) -> arns.FunctionRef:
        """`ref` with its name turned into the function's key (domain.arns) when the caller
        may use it: a function of its own account, or one of another account named by ARN
        whose resource policy allows the caller `action` (None: an operation no policy can
        grant). A plain name is always the caller's own function (names are unique per
        account); another account's function named by ARN without a policy allowing it is
        AccessDenied."""
        account = self.caller_account(request)
        if ref.account is None or ref.account == account:
            return arns.FunctionRef(self.key(account, ref.name), ref.qualifier, ref.account)
        key = self.key(ref.account, ref.name)
        if (
            self.functions.find(key) is not None
            and action is not None
            and self.permissions.allows(key, ref.qualifier, action, self.principal(request))
        ):
            return arns.FunctionRef(key, ref.qualifier, ref.account)
        raise errors.AccessDenied(
            policies.denied(
                self.principal(request),
                action,
                arns.function_arn(self.region, ref.account, ref.name, ref.qualifier),
            )
        )

    def principal(self, request: Request) -> policies.Principal:
        """The caller as a resource policy sees it."""
        caller = request.caller
        if caller is None:
            return policies.Principal(self.account, f"arn:aws:iam::{self.account}:root")
        return policies.Principal(caller.account, caller.arn)
