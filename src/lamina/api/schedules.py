"""Lamina's schedule endpoints: GET /_lamina/schedules, GET|PUT|DELETE /_lamina/schedules/NAME.

A PUT body is `domain.schedules.to_wire`'s shape (ScheduleExpression, TargetArn, Input,
Source, State, ScheduleExpressionTimezone, Stack); answers add the schedule's ARN and where
it stands (NextDue, LastDue, LastRequestId, LastError, Fired, Missed).
"""

from __future__ import annotations

from typing import Any

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain import errors, schedules
from lamina.domain.schedules import Schedule
from lamina.http.server import Request, Response


def describe(ctx: ApiContext, schedule: Schedule) -> dict[str, Any]:
    assert ctx.schedules is not None
    return {
        **schedules.to_wire(schedule),
        "Arn": ctx.schedules.arn(schedule),
        **schedules.state_to_wire(ctx.schedules.state(schedule.name)),
    }


async def list_schedules(ctx: ApiContext, request: Request, request_id: str) -> Response:
    assert ctx.schedules is not None
    stack = request.query_params().get("stack")
    found = [s for s in ctx.schedules.list() if stack is None or s.stack == stack]
    return wire.json_response(
        200,
        {"Schedules": [describe(ctx, s) for s in found], "Leading": ctx.schedules.leading},
        request_id,
    )


async def get_schedule(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    return wire.json_response(200, describe(ctx, _existing(ctx, name)), request_id)


async def put_schedule(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    assert ctx.schedules is not None
    schedule = await ctx.schedules.put(schedules.from_wire(name, wire.json_body(request.body)))
    return wire.json_response(200, describe(ctx, schedule), request_id)


async def delete_schedule(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    assert ctx.schedules is not None
    await ctx.schedules.delete(name)
    return wire.empty_response(204, request_id)


def _existing(ctx: ApiContext, name: str) -> Schedule:
    assert ctx.schedules is not None
    found = ctx.schedules.get(name)
    if found is None:
        raise errors.ResourceNotFound(f"Schedule {name} does not exist.")
    return found
