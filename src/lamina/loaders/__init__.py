"""Loaders: what `lamina deploy PATH` finds at PATH, turned into `Application`s — each a
CloudFormation template (SAM allowed) whose local code is replaced by packages to upload.

A loader is a module with `detect(path) -> Path | None` (the file it would read, or None if
PATH is not its kind) and `load(found, hot_reload) -> Application`; one whose PATH holds
several stacks (a CDK cloud assembly) also has `load_all(found, hot_reload)`, the stacks in
the order they deploy. `LOADERS` is tried in order.
"""

from __future__ import annotations

from pathlib import Path

from lamina.loaders import cdk, serverless, template
from lamina.loaders.app import Application, LoadError

LOADERS = (cdk, serverless, template)


def load_all(path: Path, hot_reload: bool = False) -> list[Application]:
    """The applications at `path`, in deploy order (one, except for a CDK assembly)."""
    if not path.exists():
        raise LoadError(f"{path} does not exist")
    for loader in LOADERS:
        found = loader.detect(path)
        if found is not None:
            many = getattr(loader, "load_all", None)
            return list(many(found, hot_reload)) if many else [loader.load(found, hot_reload)]
    raise LoadError(
        f"nothing to deploy in {path} (looked for a SAM or CloudFormation "
        "template — .aws-sam/build/template.yaml, template.yaml, template.yml, "
        "template.json —, a CDK cloud assembly — manifest.json, cdk.out/ —, and a "
        "Serverless Framework package — .serverless/)"
    )


def load(path: Path, hot_reload: bool = False) -> Application:
    """The application at `path` (the first stack, for a CDK assembly)."""
    return load_all(path, hot_reload)[0]


__all__ = ["LOADERS", "Application", "LoadError", "load", "load_all"]
