"""Lamina's domain objects: functions, versions, invocations and their outcomes.

Frozen dataclasses with no I/O. A `FunctionConfig` is one version of a function (`$LATEST` or a
published number): everything an execution environment is built from. Changing the code or
settings of `$LATEST` makes a new `FunctionConfig` with a new `deployment_id`; environments
built from the old one are retired. The `revision_id` is what the API reports: AWS renews it
more often (state changes, tags, publishing), which must not cost warm environments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamina.domain.layers import LayerRef

LATEST = "$LATEST"


@dataclass(frozen=True, slots=True)
class Package:
    """A stored deployment package."""

    sha256: str  # base64, as Lambda reports CodeSha256
    size: int  # zipped bytes, as Lambda reports CodeSize
    key: str  # hex digest naming the files on disk
    root: Path  # the unpacked tree (LAMBDA_TASK_ROOT)


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """One version of a function: code, runtime settings and control-plane state (spec §1)."""

    name: str
    runtime: str | None
    handler: str | None
    role: str
    code_sha256: str
    code_size: int
    revision_id: str
    last_modified: str
    version: str = LATEST
    description: str = ""
    timeout: int = 3
    memory_size: int = 128
    environment: dict[str, str] = field(default_factory=dict)
    has_environment: bool = False  # an `Environment` was given: echoed even when empty
    architectures: tuple[str, ...] = ("x86_64",)
    ephemeral_storage: int = 512
    package_type: str = "Zip"
    dead_letter_target: str | None = None
    tracing_mode: str = "PassThrough"
    layers: tuple[LayerRef, ...] = ()
    vpc: VpcConfig | None = None  # recorded and shown, not acted on
    # hot reload (domain.code): the folder the function runs from, as it is; None for a
    # package Lamina unpacked
    code_path: str | None = None
    log_format: str = "Text"
    application_log_level: str | None = None  # LoggingConfig (JSON format only)
    system_log_level: str | None = None
    log_group: str | None = None  # None: /aws/lambda/<name>
    tenant_isolation: str | None = None  # TenancyConfig.TenantIsolationMode (PER_TENANT)
    runtime_update_on: str = "Auto"  # PutRuntimeManagementConfig
    runtime_version_arn: str | None = None  # given with runtime_update_on "Manual"
    recursive_loop: str = "Terminate"  # PutFunctionRecursionConfig (kept on $LATEST)
    code_signing_config_arn: str | None = None  # Put/DeleteFunctionCodeSigningConfig ($LATEST)
    # CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig (domain.capacity)
    capacity_provider: dict[str, Any] | None = None
    scaling: dict[str, int] | None = None  # PutFunctionScalingConfig (published versions)
    durable_config: dict[str, Any] | None = None  # DurableConfig: a durable function (durable.md)
    state: str = "Pending"
    state_reason: str | None = "The function is being created."
    state_reason_code: str | None = "Creating"
    last_update_status: str | None = None
    last_update_status_reason: str | None = None
    last_update_status_reason_code: str | None = None
    # identifies the code and settings environments are built from; renewed when they change
    # (a published version keeps the one of the $LATEST it was published from)
    deployment_id: str = ""
    account: str = ""  # the account that owns the function; "": the engine's own (--account)

    def replace(self, **changes: Any) -> FunctionConfig:
        return dataclasses.replace(self, **changes)

    @property
    def env_key(self) -> tuple[str, str, str]:
        """Environments are built for, and reused only by, this exact configuration."""
        return (self.name, self.version, self.deployment_id)

    @property
    def plain_name(self) -> str:
        """The name callers see (`name` is the function's key: domain.arns)."""
        return self.name.rpartition(":")[2]

    @property
    def log_group_name(self) -> str:
        return self.log_group or f"/aws/lambda/{self.plain_name}"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["architectures"] = list(self.architectures)
        data["layers"] = [dataclasses.asdict(layer) for layer in self.layers]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FunctionConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["architectures"] = tuple(values.get("architectures", ("x86_64",)))
        values["layers"] = tuple(LayerRef(**layer) for layer in values.get("layers", ()))
        values.setdefault("deployment_id", values.get("revision_id", ""))  # before 0018
        if values.get("vpc") is not None:
            values["vpc"] = VpcConfig.from_dict(values["vpc"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class VpcConfig:
    """A function's VpcConfig: subnets and security groups in one VPC (VpcId, looked up
    from EC2). Lamina records and shows it; its environments are not placed in the VPC."""

    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    vpc_id: str = ""
    ipv6_dual_stack: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VpcConfig:
        return cls(
            tuple(data.get("subnet_ids", ())),
            tuple(data.get("security_group_ids", ())),
            data.get("vpc_id", ""),
            bool(data.get("ipv6_dual_stack", False)),
        )


@dataclass(frozen=True, slots=True)
class Alias:
    """A named pointer to a version, optionally sending a share of calls to a second one."""

    function: str
    name: str
    function_version: str
    revision_id: str
    description: str = ""
    additional_version: str | None = None
    additional_weight: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class ResourcePolicy:
    """The resource-based policy of one function qualifier (`$LATEST`: the unqualified
    function): the statements AddPermission added, in order, and a RevisionId that changes
    with each change. Enforced for callers of another account (`domain.policies`)."""

    function: str
    qualifier: str
    revision_id: str
    statements: tuple[dict[str, Any], ...] = ()
    # the document's Version and Id: AddPermission's, or what PutResourcePolicy was given
    policy_version: str | None = "2012-10-17"
    policy_id: str | None = "default"

    def document(self) -> dict[str, Any]:
        """The policy as GetPolicy returns it (a JSON string on the wire)."""
        head = {"Version": self.policy_version, "Id": self.policy_id}
        return {
            **{k: v for k, v in head.items() if v is not None},
            "Statement": list(self.statements),
        }


@dataclass(slots=True)
class Invocation:
    """One request to run a function once, as the runtime will see it."""

    request_id: str
    config: FunctionConfig
    invoked_arn: str
    payload: bytes
    invocation_type: str = "RequestResponse"
    client_context: str | None = None
    cognito_identity: str | None = None
    trace_id: str | None = None
    tenant_id: str | None = None
    content_type: str = "application/json"

    # written out: compiled, where @dataclass's would run interpreted (ARCHITECTURE.md, 13)
    def __init__(
        self,
        request_id: str,
        config: FunctionConfig,
        invoked_arn: str,
        payload: bytes,
        invocation_type: str = "RequestResponse",
        client_context: str | None = None,
        cognito_identity: str | None = None,
        trace_id: str | None = None,
        tenant_id: str | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.request_id = request_id
        self.config = config
        self.invoked_arn = invoked_arn
        self.payload = payload
        self.invocation_type = invocation_type
        self.client_context = client_context
        self.cognito_identity = cognito_identity
        self.trace_id = trace_id
        self.tenant_id = tenant_id
        self.content_type = content_type


@dataclass(slots=True)
class InvocationOutcome:
    """What came of running an invocation in an environment.

    `function_error` is True for every failure of the function (handler error, timeout,
    runtime exit, init failure, oversized response); the caller then gets 200 with
    `X-Amz-Function-Error: Unhandled` and `payload` as the error document (spec §4.4).
    """

    payload: bytes
    content_type: str = "application/json"
    function_error: bool = False
    error_type: str | None = None
    duration_ms: float = 0.0
    init_ms: float | None = None
    environment_id: str = ""
    log_tail: bytes = b""
    streamed: bool = False  # the runtime streamed its response (InvokeWithResponseStream)

    # written out: compiled, where @dataclass's would run interpreted (ARCHITECTURE.md, 13)
    def __init__(
        self,
        payload: bytes,
        content_type: str = "application/json",
        function_error: bool = False,
        error_type: str | None = None,
        duration_ms: float = 0.0,
        init_ms: float | None = None,
        environment_id: str = "",
        log_tail: bytes = b"",
        streamed: bool = False,
    ) -> None:
        self.payload = payload
        self.content_type = content_type
        self.function_error = function_error
        self.error_type = error_type
        self.duration_ms = duration_ms
        self.init_ms = init_ms
        self.environment_id = environment_id
        self.log_tail = log_tail
        self.streamed = streamed

    @property
    def outcome(self) -> str:
        return "error" if self.function_error else "success"


@dataclass(slots=True)
class InvocationSummary:
    """One line of `lamina invocations`: an invocation and where it stands."""

    request_id: str
    function: str
    qualifier: str | None
    invocation_type: str
    accepted_at: float
    status: str = "running"
    finished_at: float | None = None
    attempts: int = 0
    error_type: str | None = None
    duration_ms: float | None = None
    # A call's whole timeline when it is short and final (a synchronous call): kept here,
    # so the call costs one row; other invocations append AttemptRecords.
    timeline: list[AttemptRecord] | None = None

    # written out: compiled, where @dataclass's would run interpreted (ARCHITECTURE.md, 13)
    def __init__(
        self,
        request_id: str,
        function: str,
        qualifier: str | None,
        invocation_type: str,
        accepted_at: float,
        status: str = "running",
        finished_at: float | None = None,
        attempts: int = 0,
        error_type: str | None = None,
        duration_ms: float | None = None,
        timeline: list[AttemptRecord] | None = None,
    ) -> None:
        self.request_id = request_id
        self.function = function
        self.qualifier = qualifier
        self.invocation_type = invocation_type
        self.accepted_at = accepted_at
        self.status = status
        self.finished_at = finished_at
        self.attempts = attempts
        self.error_type = error_type
        self.duration_ms = duration_ms
        self.timeline = timeline


@dataclass(slots=True)
class AttemptRecord:
    """One entry of an invocation's timeline (ARCHITECTURE.md decision 4).

    Kinds: `accepted`, `attempt` (environment cold/warm, init ms, start, end, outcome),
    `throttled`, and, with later features, `queued`, `retry_scheduled`, `attached`,
    `discarded`, `destination`.

    Written once and never changed, but not `frozen`: two are made for every call, and a
    frozen dataclass sets each field through `object.__setattr__` (about twice the cost).
    """

    request_id: str
    at: float
    kind: str
    detail: dict[str, Any]

    # written out: compiled, where @dataclass's would run interpreted (ARCHITECTURE.md, 13)
    def __init__(self, request_id: str, at: float, kind: str, detail: dict[str, Any]) -> None:
        self.request_id = request_id
        self.at = at
        self.kind = kind
        self.detail = detail


@dataclass(slots=True)
class AsyncEvent:
    """An accepted `Event` invocation, waiting in (or claimed from) the durable queue.

    Times are engine time (see `service.clock`). `invocations` counts the times the function
    actually ran for this event (`approximateInvokeCount`); `throttles` counts the retries
    after throttles and system errors, which Lambda does not count as retries.
    """

    request_id: str
    function: str
    qualifier: str | None
    payload: bytes
    accepted_at: float
    due_at: float
    invocations: int = 0
    throttles: int = 0
    trace_id: str | None = None
    tenant_id: str | None = None


@dataclass(frozen=True, slots=True)
class EventInvokeConfig:
    """Error handling and destinations for async invocations of one function qualifier."""

    function: str
    qualifier: str
    last_modified: float
    maximum_retry_attempts: int | None = None
    maximum_event_age: int | None = None
    on_success: str | None = None
    on_failure: str | None = None

    @property
    def retries(self) -> int:
        return 2 if self.maximum_retry_attempts is None else self.maximum_retry_attempts

    @property
    def max_age(self) -> int:
        return 21_600 if self.maximum_event_age is None else self.maximum_event_age


@dataclass(slots=True)
class Delivery:
    """A record owed to a destination or dead-letter queue, kept until it is delivered."""

    id: str
    request_id: str
    kind: str  # on_success | on_failure | dlq
    target: str  # destination ARN
    body: bytes
    attributes: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    due_at: float = 0.0


@dataclass(frozen=True, slots=True)
class EventSourceMapping:
    """A poller the engine runs: it reads a source and invokes a function with batches (§12)."""

    uuid: str
    function: str  # name
    qualifier: str | None  # as given in FunctionName, if any
    event_source_arn: str | None  # SQS, Kinesis, DynamoDB stream (None for self-managed Kafka)
    source: str  # sqs | kinesis | dynamodb | kafka
    state: str
    state_reason: str
    last_modified: float
    last_processing_result: str = "No records processed"
    batch_size: int = 10
    batching_window: int = 0
    starting_position: str | None = None
    starting_timestamp: float | None = None
    parallelization_factor: int = 1
    max_record_age: int = -1
    max_retry_attempts: int = -1
    bisect: bool = False
    tumbling_window: int = 0
    on_failure: str | None = None
    report_failures: bool = False
    filters: tuple[str, ...] = ()
    max_concurrency: int | None = None
    topics: tuple[str, ...] = ()
    bootstrap_servers: tuple[str, ...] = ()
    consumer_group: str | None = None
    enabled: bool = True
    tags: dict[str, str] = field(default_factory=dict)

    def replace(self, **changes: Any) -> EventSourceMapping:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("filters", "topics", "bootstrap_servers"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventSourceMapping:
        values = dict(data)
        for key in ("filters", "topics", "bootstrap_servers"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)
