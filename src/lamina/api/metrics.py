"""`GET /metrics`: Prometheus text exposition of the engine's counters, histograms and gauges.

Counters and histograms come from the records as they are made (`observability.metrics`);
gauges (concurrency, async queues, environments, mappings) are read here, at scrape time.
"""

from __future__ import annotations

from lamina.api import auth
from lamina.api.context import ApiContext
from lamina.domain import errors
from lamina.http.server import Request, Response
from lamina.observability.metrics import CONTENT_TYPE, Snapshot


async def metrics(ctx: ApiContext, request: Request, request_id: str) -> Response:
    if ctx.metrics is None or ctx.overview is None:
        raise errors.ResourceNotFound("This engine exports no metrics.")
    ctx.observe.recorder.observe_pending()
    overview = ctx.overview
    snapshot = Snapshot(
        concurrency=overview.concurrency(),
        queues=await overview.queue_gauges(),
        environments=overview.environment_counts(),
        mappings=[
            (m.function, m.uuid, m.backlog, m.lag_s) for m in await overview.mapping_status()
        ],
    )
    account = auth.viewer(request)  # a signed caller sees its own account's functions
    only = None if account is None else {c.name: c.plain_name for c in ctx.functions.list(account)}
    return Response(
        200,
        [("Content-Type", CONTENT_TYPE), ("x-amzn-RequestId", request_id)],
        ctx.metrics.render(snapshot, only),
    )
