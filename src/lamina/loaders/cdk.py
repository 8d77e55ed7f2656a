"""A CDK cloud assembly (`cdk synth` output, `cdk.out`): `manifest.json`, one
`<Stack>.template.json` per stack and the `<Stack>.assets.json` asset manifests that name
each file asset's source under `cdk.out` (a folder packaged `zip`, or a `file`).

The templates name their code as CDK's bootstrap bucket and the asset's object key
(`S3Bucket: {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"}`,
`S3Key: <hash>.zip`); each such reference is rewritten to the packaged asset, which
`lamina deploy` uploads to the engine (there is no bucket to publish to, as `cdk deploy`
would). Several stacks deploy in the manifest's dependency order; nested assemblies (CDK
Stages) are read too.

The environment Lamina stands for is a bootstrapped one: a `BootstrapVersion` parameter
(CDK reads it from SSM, `/cdk-bootstrap/<qualifier>/version`) is given the highest bootstrap
version the assembly requires, so CDK's `CheckBootstrapVersion` rule holds, as it does in a
bootstrapped account.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from lamina.domain.stacks import PACKAGE_BUCKET
from lamina.loaders.app import Application, LoadError, zip_folder

MANIFEST = "manifest.json"
STACK = "aws:cloudformation:stack"
ASSETS = "cdk:asset-manifest"
NESTED = "cdk:cloud-assembly"
_BOOTSTRAP_SSM = re.compile(r"/cdk-bootstrap/[^/]+/version")
DEFAULT_BOOTSTRAP_VERSION = 6  # what CDK v2's default synthesizer requires


def detect(path: Path) -> Path | None:
    """`manifest.json` of a cloud assembly: PATH itself, in PATH, or in PATH/cdk.out."""
    if path.is_file():
        return path if path.name == MANIFEST and _is_assembly(path) else None
    for candidate in (path / MANIFEST, path / "cdk.out" / MANIFEST):
        if candidate.is_file() and _is_assembly(candidate):
            return candidate
    return None


def _is_assembly(manifest: Path) -> bool:
    try:
        found = json.loads(manifest.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return (
        isinstance(found, dict) and isinstance(found.get("artifacts"), dict) and "version" in found
    )


def load(found: Path, hot_reload: bool = False) -> Application:
    """The first stack (in deploy order): for callers that take one application."""
    return load_all(found, hot_reload)[0]


def load_all(found: Path, hot_reload: bool = False) -> list[Application]:
    """Every stack of the assembly, in the order they deploy (dependencies first)."""
    apps = _assembly(found, [])
    if not apps:
        raise LoadError(f"{found}: the cloud assembly has no stacks")
    return apps


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise LoadError(f"cannot read {path}: {exc}") from None


def _assembly(manifest_path: Path, seen: list[Path]) -> list[Application]:
    if manifest_path.resolve() in seen:
        return []
    seen.append(manifest_path.resolve())
    manifest = _read(manifest_path)
    folder = manifest_path.parent
    artifacts: dict[str, Any] = manifest.get("artifacts") or {}
    out: list[Application] = []
    for artifact_id in _order(artifacts, manifest_path):
        artifact = artifacts[artifact_id]
        kind = artifact.get("type")
        properties = artifact.get("properties") or {}
        if kind == NESTED:
            nested = folder / str(properties.get("directoryName", "")) / MANIFEST
            if not nested.is_file():
                raise LoadError(
                    f"{manifest_path}: nested assembly {artifact_id}: {nested} does not exist"
                )
            out.extend(_assembly(nested, seen))
        elif kind == STACK:
            out.append(_stack(folder, manifest_path, artifacts, artifact_id))
    return out


def _order(artifacts: dict[str, Any], where: Path) -> list[str]:
    """Artifact ids, each after the artifacts it depends on (the manifest's order otherwise)."""
    done: list[str] = []
    visiting: list[str] = []

    def visit(artifact_id: str) -> None:
        if artifact_id in done or artifact_id not in artifacts:
            return
        if artifact_id in visiting:
            raise LoadError(
                f"{where}: artifacts depend on each other in a cycle: "
                + " -> ".join([*visiting, artifact_id])
            )
        visiting.append(artifact_id)
        for dependency in artifacts[artifact_id].get("dependencies") or []:
            visit(dependency)
        visiting.pop()
        done.append(artifact_id)

    for artifact_id in artifacts:
        visit(artifact_id)
    return done


def _stack(
    folder: Path, manifest_path: Path, artifacts: dict[str, Any], artifact_id: str
) -> Application:
    artifact = artifacts[artifact_id]
    properties = artifact.get("properties") or {}
    template_path = folder / str(properties.get("templateFile", ""))
    if not template_path.is_file():
        raise LoadError(
            f"{manifest_path}: stack {artifact_id}: template {template_path} does not exist"
        )
    template = _read(template_path)
    if not isinstance(template, dict):
        raise LoadError(f"{template_path}: a template is a JSON object")
    assets: dict[str, dict[str, Any]] = {}
    required = [properties.get("requiresBootstrapStackVersion")]
    manifests = [template_path]
    for dependency in artifact.get("dependencies") or []:
        found = artifacts.get(dependency) or {}
        if found.get("type") != ASSETS:
            continue
        asset_props = found.get("properties") or {}
        required.append(asset_props.get("requiresBootstrapStackVersion"))
        asset_path = folder / str(asset_props.get("file", ""))
        manifests.append(asset_path)
        assets.update(_file_assets(folder, asset_path))
    required.append((properties.get("lookupRole") or {}).get("requiresBootstrapStackVersion"))
    version = max([v for v in required if isinstance(v, int)] or [DEFAULT_BOOTSTRAP_VERSION])
    packages: dict[str, bytes] = {}
    document = _rewrite(template, assets, packages, template_path)
    _bootstrapped(document, version)
    name = str(properties.get("stackName") or artifact_id)
    return Application(
        document,
        template_path,
        name,
        packages,
        [manifest_path, *manifests],
        fixed_name=True,
        aliases={artifact_id, name, str(artifact.get("displayName") or name)},
    )


def _file_assets(folder: Path, asset_manifest: Path) -> dict[str, dict[str, Any]]:
    """objectKey → {"path", "packaging", "bucket"} for each file asset of a manifest."""
    manifest = _read(asset_manifest)
    out: dict[str, dict[str, Any]] = {}
    for asset_id, asset in (manifest.get("files") or {}).items():
        source = asset.get("source") or {}
        if "path" not in source:
            continue  # an executable-made asset: nothing on disk to package
        for destination in (asset.get("destinations") or {}).values():
            key = destination.get("objectKey")
            if isinstance(key, str):
                out[key] = {
                    "path": folder / str(source["path"]),
                    "id": asset_id,
                    "packaging": source.get("packaging", "file"),
                    "bucket": str(destination.get("bucketName", "")),
                    "name": asset.get("displayName") or asset_id,
                }
    return out


def _bucket_matches(value: Any, pattern: str) -> bool:
    """Whether a template's bucket (a string, or Fn::Sub of one) is the asset's bucket."""
    if isinstance(value, dict) and len(value) == 1 and "Fn::Sub" in value:
        value = value["Fn::Sub"]
    if not isinstance(value, str):
        return False
    if value == pattern:
        return True
    regex = re.escape(pattern)
    for name in ("AWS::AccountId", "AWS::Region", "AWS::Partition", "AWS::URLSuffix"):
        regex = regex.replace(re.escape("${" + name + "}"), "[A-Za-z0-9.-]+")
    return re.fullmatch(regex, value) is not None


def _rewrite(
    template: dict[str, Any],
    assets: dict[str, dict[str, Any]],
    packages: dict[str, bytes],
    where: Path,
) -> dict[str, Any]:
    document = copy.deepcopy(template)
    resources = document.get("Resources")
    if not isinstance(resources, dict):
        return document

    def walk(value: Any, logical_id: str) -> None:
        if isinstance(value, dict):
            for bucket_key, object_key in (("S3Bucket", "S3Key"), ("Bucket", "Key")):
                key = value.get(object_key)
                if (
                    isinstance(key, str)
                    and key in assets
                    and _bucket_matches(value.get(bucket_key), assets[key]["bucket"])
                ):
                    value[bucket_key] = PACKAGE_BUCKET
                    value[object_key] = _package(assets[key], packages, logical_id)
                    value.pop("S3ObjectVersion", None)
                    return
            for item in value.values():
                walk(item, logical_id)
        elif isinstance(value, list):
            for item in value:
                walk(item, logical_id)

    for logical_id, resource in resources.items():
        if isinstance(resource, dict):
            walk(resource.get("Properties"), str(logical_id))
    return document


def _package(asset: dict[str, Any], packages: dict[str, bytes], logical_id: str) -> str:
    path: Path = asset["path"]
    where = f"Resource {logical_id}: asset {asset['name']}"
    if not path.exists():
        raise LoadError(f"{where}: {path} does not exist (run cdk synth again)")
    if path.is_dir():
        data = zip_folder(path)
    elif zipfile.is_zipfile(path):
        data = path.read_bytes()
    else:
        raise LoadError(
            f"{where}: {path} is a file asset that is not a zip: Lambda code is a folder or a zip"
        )
    key = hashlib.sha256(data).hexdigest()
    packages[key] = data
    return key


def _bootstrapped(document: dict[str, Any], version: int) -> None:
    """CDK's BootstrapVersion parameter, answered as a bootstrapped environment would."""
    for name, definition in (document.get("Parameters") or {}).items():
        if not isinstance(definition, dict):
            continue
        if (
            str(definition.get("Type", "")).startswith("AWS::SSM::Parameter::Value")
            and isinstance(definition.get("Default"), str)
            and _BOOTSTRAP_SSM.fullmatch(definition["Default"])
        ):
            document["Parameters"][name] = {
                "Type": "String",
                "Default": str(version),
                "Description": f"CDK bootstrap version (Lamina stands for an environment "
                f"bootstrapped at version {version}; SSM "
                f"{definition['Default']} is not read)",
            }
