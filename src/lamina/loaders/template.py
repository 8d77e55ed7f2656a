"""A SAM or CloudFormation template file, a folder holding one, or `sam build` output
(`.aws-sam/build/template.yaml`, whose CodeUri are the built folders). Local code is
packaged as `sam package` does, for the properties it packages:
AWS::Serverless::Function CodeUri (also in Globals; the template's folder when left out),
AWS::Serverless::LayerVersion ContentUri, AWS::Lambda::Function Code, AWS::Lambda::LayerVersion
Content; a local AWS::Serverless::Api / HttpApi DefinitionUri is read into DefinitionBody."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from lamina.domain import errors
from lamina.domain.cfn import template as templates
from lamina.loaders.app import Application, LoadError, Packager, default_stack_name

NAMES = ("template.yaml", "template.yml", "template.json")
BUILT = Path(".aws-sam") / "build" / "template.yaml"


def detect(path: Path) -> Path | None:
    if path.is_file():
        return path if path.suffix.lower() in (".yaml", ".yml", ".json", ".template") else None
    for candidate in (BUILT, *NAMES):
        if (path / candidate).is_file():
            return path / candidate
    return None


def _project(found: Path) -> Path:
    """The application's folder: the template's, or the one holding .aws-sam/build."""
    folder = found.parent
    if folder.name == "build" and folder.parent.name == ".aws-sam":
        return folder.parent.parent
    return folder


def load(found: Path, hot_reload: bool = False) -> Application:
    try:
        document = templates.parse(found.read_text(), str(found))
    except errors.TemplateError as exc:
        raise LoadError(exc.message) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(f"cannot read {found}: {exc}") from None
    packager = Packager(found.parent, hot_reload)
    document = package_template(document, packager)
    return Application(
        document,
        found,
        default_stack_name(_project(found)),
        packager.packages,
        [found, *packager.folders],
    )


def package_template(document: dict[str, Any], packager: Packager) -> dict[str, Any]:
    document = copy.deepcopy(document)
    resources = document.get("Resources")
    if not isinstance(resources, dict):
        return document
    sam = templates.is_sam(document)
    function_globals = ((document.get("Globals") or {}).get("Function") or {}) if sam else {}
    if isinstance(function_globals, dict) and "CodeUri" in function_globals:
        _sam_uri(function_globals, "CodeUri", "Globals.Function", packager)
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Properties", {}), dict):
            continue
        properties = resource.setdefault("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function":
            _serverless_function(logical_id, properties, function_globals, packager)
        elif kind == "AWS::Serverless::LayerVersion":
            _sam_uri(properties, "ContentUri", logical_id, packager, folders_hot=False)
        elif kind in ("AWS::Lambda::Function", "AWS::Lambda::LayerVersion"):
            prop = "Code" if kind == "AWS::Lambda::Function" else "Content"
            _cfn_code(logical_id, properties, prop, packager, kind == "AWS::Lambda::Function")
        elif kind in ("AWS::Serverless::Api", "AWS::Serverless::HttpApi"):
            _definition(logical_id, properties, packager)
    return document


def _serverless_function(
    logical_id: str, properties: dict[str, Any], function_globals: Any, packager: Packager
) -> None:
    if (
        "InlineCode" in properties
        or "ImageUri" in properties
        or properties.get("PackageType") == "Image"
    ):
        return
    if "CodeUri" not in properties and "CodeUri" not in (function_globals or {}):
        properties["CodeUri"] = "."  # sam package's default: the template's folder
    if "CodeUri" in properties:
        _sam_uri(properties, "CodeUri", logical_id, packager)


def _sam_uri(
    properties: dict[str, Any], prop: str, where: str, packager: Packager, folders_hot: bool = True
) -> None:
    path = packager.local(properties[prop])
    if path is None:
        return
    bucket, key = packager.package(f"Resource {where}, property {prop}", path, folders_hot)
    properties[prop] = {"Bucket": bucket, "Key": key}


def _cfn_code(
    logical_id: str, properties: dict[str, Any], prop: str, packager: Packager, hot: bool
) -> None:
    path = packager.local(properties.get(prop))
    if path is None:
        return
    bucket, key = packager.package(f"Resource {logical_id}, property {prop}", path, hot)
    properties[prop] = {"S3Bucket": bucket, "S3Key": key}


def _definition(logical_id: str, properties: dict[str, Any], packager: Packager) -> None:
    path = packager.local(properties.get("DefinitionUri"))
    if path is None:
        return
    if not path.is_file():
        raise LoadError(f"Resource {logical_id}, property DefinitionUri: {path} does not exist")
    try:
        properties["DefinitionBody"] = templates.parse(path.read_text(), str(path))
    except errors.TemplateError as exc:
        raise LoadError(exc.message) from None
    del properties["DefinitionUri"]
