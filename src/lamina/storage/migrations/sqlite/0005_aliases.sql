-- Aliases, and the last version number published (numbers are never reused).
CREATE TABLE aliases (
    function TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (function, name)
);
ALTER TABLE functions ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0;
