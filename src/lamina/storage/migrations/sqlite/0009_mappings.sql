-- Event source mappings, and the checkpoints of their stream shards.
CREATE TABLE event_source_mappings (
    uuid TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    last_modified REAL NOT NULL,  -- of the user's last change: stale writes are refused
    config TEXT NOT NULL
);

CREATE TABLE checkpoints (
    mapping TEXT NOT NULL REFERENCES event_source_mappings (uuid) ON DELETE CASCADE,
    shard TEXT NOT NULL,
    position TEXT NOT NULL,
    PRIMARY KEY (mapping, shard)
);
