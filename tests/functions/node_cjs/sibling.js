// Found by require("sibling") through NODE_PATH, which includes the task root (as on Lambda).
exports.name = "sibling";
