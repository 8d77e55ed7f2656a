-- Function URL configurations, one per function qualifier ($LATEST: the unqualified
-- function, else an alias); an alias's row goes with it (see delete_alias).
CREATE TABLE function_urls (
    function TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
    qualifier TEXT NOT NULL,
    url_id TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL,
    PRIMARY KEY (function, qualifier)
);
