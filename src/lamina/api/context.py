"""What every Lambda API handler may use: the services and the engine's identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lamina.domain import arns
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
    clock: Any
    region: str
    account: str
    account_limit: int
    heartbeat_interval: float = 0.0
    overview: OverviewService | None = None
    metrics: Metrics | None = None
    mappings: MappingService | None = None
    layers: LayerService | None = None
    urls: UrlService | None = None
    stacks: Any = None  # service.stacks.StackService
    schedules: ScheduleService | None = None
    apis: ApiService | None = None
    persist_clock: Any = None     # async () -> None: keep a virtual clock's new time
    cluster: Cluster | None = None
    code_signing: CodeSigningService = None  # type: ignore[assignment]
    capacity: CapacityProviderService | None = None
    durable: Any = None   # service.durable.DurableService
    debug: DebugService | None = None
    log_groups: LogGroupService | None = None
    sandbox: dict[str, Any] | None = None  # how environments are isolated (--sandbox)
    gate: Any = None  # api.auth.Gate with --auth sigv4, else None (nothing is checked)

    def caller_account(self, request: Request) -> str:
        """The account a request acts as: its verified caller's, else the engine's own."""
        caller = request.caller
        return caller.account if caller is not None else self.account

    def function_ref(self, request: Request, value: str) -> arns.FunctionRef:
        return arns.parse_function_name(value, self.region, self.account)

    def qualified(self, request: Request, value: str) -> tuple[str, str | None]:
        """(name, qualifier) of a FunctionName path value and the `Qualifier` parameter."""
        ref = self.qualified_ref(request, value)
        return ref.name, ref.qualifier

    def qualified_ref(self, request: Request, value: str) -> arns.FunctionRef:
        """The function a path value and the `Qualifier` parameter name, checked together."""
        qualifier = request.query_params().get("Qualifier")
        ref = arns.parse_function_name(value, self.region, self.account, qualifier=qualifier)
        return arns.FunctionRef(ref.name, arns.merge_qualifier(ref, qualifier))
