-- Functions, their versions, and the attempt records of invocations.
CREATE TABLE functions (
    name TEXT PRIMARY KEY,
    created_at DOUBLE PRECISION NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE function_versions (
    name TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
    version TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE invocations (
    request_id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    qualifier TEXT,
    invocation_type TEXT NOT NULL,
    accepted_at DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL,
    finished_at DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0,
    error_type TEXT,
    duration_ms DOUBLE PRECISION
);
CREATE INDEX invocations_by_function ON invocations (function, accepted_at);
CREATE INDEX invocations_by_time ON invocations (accepted_at);

CREATE TABLE invocation_records (
    seq BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX records_by_request ON invocation_records (request_id, seq);
