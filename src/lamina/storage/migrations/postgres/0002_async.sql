-- Asynchronous invocation: the durable event queue, event invoke configs, and the
-- destination/dead-letter deliveries still owed.
CREATE TABLE async_events (
    request_id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    qualifier TEXT,
    payload BYTEA NOT NULL,
    accepted_at DOUBLE PRECISION NOT NULL,
    due_at DOUBLE PRECISION NOT NULL,
    invocations INTEGER NOT NULL DEFAULT 0,
    throttles INTEGER NOT NULL DEFAULT 0,
    trace_id TEXT,
    owner TEXT,
    lease_until DOUBLE PRECISION
);
CREATE INDEX async_events_queued ON async_events (function, due_at) WHERE owner IS NULL;
CREATE INDEX async_events_next ON async_events (due_at) WHERE owner IS NULL;

CREATE TABLE event_invoke_configs (
    function TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
    qualifier TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (function, qualifier)
);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    body BYTEA NOT NULL,
    attributes TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at DOUBLE PRECISION NOT NULL,
    owner TEXT,
    lease_until DOUBLE PRECISION
);
CREATE INDEX deliveries_queued ON deliveries (due_at) WHERE owner IS NULL;

-- Reserved concurrency (PutFunctionConcurrency): NULL when the function has none.
ALTER TABLE functions ADD COLUMN reserved_concurrency INTEGER;
