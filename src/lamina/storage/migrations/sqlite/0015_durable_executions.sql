-- Durable executions: one row each, the execution's own state (timers, tokens, what is owed;
-- not its operations or history) as a JSON document written with compare-and-set on seq,
-- beside the columns the engine searches by: a function's executions, a name's (idempotent
-- starts), what is due, what has outlived its retention. Executions outlive their function's
-- deletion until retention. `writer` names the last write, so the operations and events
-- written with it land only if that write won the compare-and-set.
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
    writer TEXT NOT NULL DEFAULT '',
    doc TEXT NOT NULL,
    UNIQUE (function, name)
);
CREATE INDEX durable_executions_due ON durable_executions (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX durable_executions_by_function ON durable_executions (function, started_at);
CREATE INDEX durable_executions_expiry ON durable_executions (expires_at)
    WHERE expires_at IS NOT NULL;

-- An execution's operations (one row each, rewritten when it changes; `position` keeps the
-- order they started in) and its history (appended, never changed): a checkpoint writes
-- what it changed, not the whole execution.
CREATE TABLE durable_operations (
    arn TEXT NOT NULL,
    id TEXT NOT NULL,
    position INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (arn, id)
);
CREATE INDEX durable_operations_order ON durable_operations (arn, position);
CREATE TABLE durable_events (
    arn TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (arn, event_id)
);
