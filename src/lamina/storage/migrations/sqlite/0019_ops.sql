-- Code signing configurations (by ARN) and capacity providers (by name), each kept as one
-- JSON document. Functions name them in their configuration; a function's attachment to a
-- code signing configuration lives on its $LATEST row (functions.versions).
CREATE TABLE code_signing_configs (
    arn TEXT PRIMARY KEY,
    config TEXT NOT NULL
);

CREATE TABLE capacity_providers (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL
);
