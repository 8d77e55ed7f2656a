-- Stacks made by `lamina deploy` (CloudFormation's), one row each: the whole stack as JSON
-- (template, parameters, resources, outputs, the journal of the operation in progress), and
-- their events, numbered per stack.
CREATE TABLE stacks (
    name TEXT PRIMARY KEY,
    stack_id TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    stack TEXT NOT NULL
);

CREATE TABLE stack_events (
    stack_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (stack_id, seq)
);
