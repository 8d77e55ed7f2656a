-- Resource-based policies (AddPermission), one per function qualifier ($LATEST: the
-- unqualified function); a version's or alias's row goes with it (see delete_version).
CREATE TABLE function_policies (
    function TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
    qualifier TEXT NOT NULL,
    policy TEXT NOT NULL,
    PRIMARY KEY (function, qualifier)
);
