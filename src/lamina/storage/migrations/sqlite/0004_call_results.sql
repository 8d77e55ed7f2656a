-- Results of synchronous calls, kept for the SDK retries of the same call (one call runs once).
CREATE TABLE call_results (
    function TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    executed_version TEXT NOT NULL,
    content_type TEXT NOT NULL,
    function_error INTEGER NOT NULL,
    error_type TEXT,
    payload BLOB NOT NULL,
    log_tail BLOB NOT NULL,
    duration_ms REAL NOT NULL,
    finished_at REAL NOT NULL,
    PRIMARY KEY (function, qualifier, invocation_id)
);
CREATE INDEX call_results_by_time ON call_results (finished_at);
