-- Layer versions (PublishLayerVersion). A deleted version keeps its row, marked deleted in
-- its JSON, so that its number is never given again; its package stays in code_packages.
CREATE TABLE layer_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    layer TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
