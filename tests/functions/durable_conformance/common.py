"""What the conformance handlers share: retry strategies, files that count attempts across
replays, and the names of the chained-invoke targets."""

import os

from aws_durable_execution_sdk_python.config import Duration, StepConfig
from aws_durable_execution_sdk_python.retries import (
    JitterStrategy,
    RetryPresets,
    RetryStrategyConfig,
    create_retry_strategy,
)

NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())
ECHO = os.environ.get("ECHO_FUNCTION", "durable-echo")
FAILING = os.environ.get("FAILING_FUNCTION", "durable-fail")


class TransientError(Exception):
    pass


def marker_path(context, key):
    """A file of this execution in the environment's /tmp (shared by the replays that run in
    it, as on Lambda's warm reuse): counts attempts across replays."""
    return f"{os.environ.get('TMPDIR', '/tmp')}/{key}-{context.state.durable_execution_arn[-12:]}"


def fixed_retry(max_attempts, delay, backoff=1.0):
    return create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=max_attempts,
            initial_delay=Duration.from_seconds(delay),
            backoff_rate=backoff,
            jitter_strategy=JitterStrategy.NONE,
        )
    )


def marker_step(context, key, fail_times, result="ok"):
    """A step body that fails `fail_times` times, counted across replays."""
    path = marker_path(context, key)

    def run(step_context):
        count = int(open(path).read()) if os.path.exists(path) else 0
        with open(path, "w") as handle:
            handle.write(str(count + 1))
        if count < fail_times:
            raise RuntimeError(f"failure {count + 1}")
        return result

    return run


def replaying(context):
    """True once the execution has operations from an earlier invocation: what a handler
    that crashes its process on the first try checks (a crash resets the environment's
    /tmp, so a marker file would not survive it)."""
    return any(op.operation_type.value != "EXECUTION" for op in context.state.operations.values())


PROJECTION = ("completionReason", "status", "successCount", "failureCount", "totalCount")


def projection(result, *keys):
    """A batch result (map, parallel) as the requirements' projection object."""
    values = {
        "completionReason": result.completion_reason.value,
        "status": result.status.value,
        "successCount": result.success_count,
        "failureCount": result.failure_count,
        "totalCount": result.total_count,
        "hasFailure": result.has_failure,
    }
    return {key: values[key] for key in keys or PROJECTION}
