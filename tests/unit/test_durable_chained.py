"""domain.durable: a chained invoke's outcome that comes while the invocation that started it
still runs is recorded when that invocation ends, so the history reads as Lambda's
(ChainedInvokeStarted, InvocationCompleted, ChainedInvokeSucceeded) whatever the target's
speed; one that comes between invocations is recorded at once and owes an invocation."""

from __future__ import annotations

from lamina.domain import durable

ARN = "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST/durable-execution/e/1"


def started_invoke() -> durable.Execution:
    ex = durable.start(ARN, "root", "f", "$LATEST", "e", '"in"', 300, 7, now=1.0)
    durable.begin_invocation(ex, "req-1", 1.0)
    durable.checkpoint(
        ex,
        ex.token(),
        [
            {
                "Type": "CHAINED_INVOKE",
                "Action": "START",
                "Id": "op1",
                "Payload": '"x"',
                "ChainedInvokeOptions": {"FunctionName": "echo"},
                "_Target": {"Version": "$LATEST"},
            }
        ],
        now=1.1,
    )
    return ex


def kinds(ex: durable.Execution) -> list[str]:
    return [e["EventType"] for e in ex.new_events]


def test_an_outcome_during_the_invocation_is_recorded_when_it_ends():
    ex = started_invoke()
    assert durable.chained_finished(ex, "op1", "SUCCEEDED", 1.2, result='"echoed"')
    assert ex.operations["op1"]["Status"] == "STARTED"  # held, not yet seen
    durable.end_invocation(ex, "req-1", 1.3, {"Status": "PENDING"}, None)
    assert kinds(ex) == [
        "ExecutionStarted",
        "ChainedInvokeStarted",
        "InvocationCompleted",
        "ChainedInvokeSucceeded",
    ]
    assert ex.operations["op1"]["Status"] == "SUCCEEDED"
    assert ex.invoke_due == 1.3 and "op1" not in ex.chained  # the replay is owed now
    restored = durable.Execution.from_json(ex.to_json())
    assert restored.chained == {}


def test_an_outcome_between_invocations_is_recorded_at_once():
    ex = started_invoke()
    durable.end_invocation(ex, "req-1", 1.3, {"Status": "PENDING"}, None)
    assert ex.invoke_due is None
    assert durable.chained_finished(
        ex, "op1", "FAILED", 1.4, error={"ErrorType": "E", "ErrorMessage": "m"}
    )
    assert kinds(ex)[-2:] == ["InvocationCompleted", "ChainedInvokeFailed"]
    assert ex.invoke_due == 1.4


def test_a_held_outcome_survives_the_store_and_comes_before_the_execution_ends():
    ex = started_invoke()
    durable.chained_finished(ex, "op1", "SUCCEEDED", 1.2, result='"echoed"')
    restored = durable.Execution.from_json(ex.to_json())
    assert restored.chained["op1"]["state"] == "held"
    durable.end_invocation(ex, "req-1", 1.3, {"Status": "SUCCEEDED", "Result": '"r"'}, None)
    assert ex.status == durable.SUCCEEDED
    assert kinds(ex)[-3:] == ["InvocationCompleted", "ChainedInvokeSucceeded", "ExecutionSucceeded"]
