-- Durable executions: one row each, the execution itself (operations, history, timers) as a
-- JSON document written with compare-and-set on seq, beside the columns the engine
-- searches by: a function's executions, a name's (idempotent starts), what is due, what
-- has outlived its retention. Executions outlive their function's deletion until retention.
CREATE TABLE durable_executions (
    arn TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    version TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    due_at REAL,
    expires_at REAL,
    seq BIGINT NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (function, name)
);
CREATE INDEX durable_executions_due ON durable_executions (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX durable_executions_by_function ON durable_executions (function, started_at);
CREATE INDEX durable_executions_expiry ON durable_executions (expires_at)
    WHERE expires_at IS NOT NULL;
