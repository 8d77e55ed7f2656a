-- Debug mode of function versions (`lamina debug`), kept so that it survives an engine
-- restart: one row per function version, its settings (port, wait, qualifier) as one JSON
-- document. Rows of a deleted function or version are removed with it.
CREATE TABLE debug_modes (
    function TEXT NOT NULL,
    version TEXT NOT NULL,
    settings TEXT NOT NULL,
    PRIMARY KEY (function, version)
);
