"""Loaders: what `lamina deploy PATH` finds at PATH, turned into one `Application` — a
CloudFormation template (SAM allowed) whose local code is replaced by packages to upload.

A loader is a module with `detect(path) -> Path | None` (the file it would read, or None if
PATH is not its kind) and `load(found, hot_reload) -> Application`. `LOADERS` is tried in
order; CDK cloud assemblies (`cdk.out`) and Serverless Framework packages (`.serverless`)
are each one more module here.
"""

from __future__ import annotations

from pathlib import Path

from lamina.loaders import template
from lamina.loaders.app import Application, LoadError

LOADERS = (template,)


def load(path: Path, hot_reload: bool = False) -> Application:
    """The application at `path` (a template file, or a folder holding one)."""
    if not path.exists():
        raise LoadError(f"{path} does not exist")
    for loader in LOADERS:
        found = loader.detect(path)
        if found is not None:
            return loader.load(found, hot_reload)
    raise LoadError(f"no template found in {path} (looked for .aws-sam/build/template.yaml, "
                    "template.yaml, template.yml, template.json)")


__all__ = ["LOADERS", "Application", "LoadError", "load"]
