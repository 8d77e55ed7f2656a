-- Deployment packages, so that every engine sharing a store can unpack any function's code.
CREATE TABLE packages (
    key TEXT PRIMARY KEY,
    zip BYTEA NOT NULL
);
