-- Durable executions, second form: the execution's row keeps its own state only (timers,
-- tokens, what is owed); its operations and its history move to rows of their own, so a
-- checkpoint writes what it changed, not the whole execution. `writer` names the row's last
-- write: the operations and events written with it land only if that write won the
-- compare-and-set on `seq`. (Executions stored by 0015's form, whose document held its
-- operations and history, read back without them.)
ALTER TABLE durable_executions ADD COLUMN writer TEXT NOT NULL DEFAULT '';
-- An execution's operations (one row each, rewritten when it changes; `position` keeps the
-- order they started in) and its history (appended, never changed).
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
