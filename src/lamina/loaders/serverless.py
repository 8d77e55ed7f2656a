"""A Serverless Framework package (`serverless package` output, `.serverless/`):
`cloudformation-template-update-stack.json` and the zip artifacts beside it.

The template names each artifact as an object of the framework's deployment bucket
(`S3Bucket: {"Ref": "ServerlessDeploymentBucket"}`, or the `provider.deploymentBucket` name,
and `S3Key: serverless/<service>/<stage>/<timestamp>/<artifact>.zip`): each such reference is
rewritten to the zip beside the template, which `lamina deploy` uploads to the engine, as
`serverless deploy` uploads it to the bucket. The deployment bucket and its policy exist only
to hold those artifacts, which the engine now holds: they are left out (with the output that
names the bucket), so a service deploys with no S3 endpoint at all.

The stack is named as the framework names it, `<service>-<stage>` (serverless-state.json).
"""

from __future__ import annotations

import copy
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from lamina.domain.stacks import PACKAGE_BUCKET
from lamina.loaders.app import Application, LoadError, default_stack_name

FOLDER = ".serverless"
TEMPLATE = "cloudformation-template-update-stack.json"
STATE = "serverless-state.json"
BUCKET = "ServerlessDeploymentBucket"
BUCKET_POLICY = "ServerlessDeploymentBucketPolicy"


def detect(path: Path) -> Path | None:
    if path.is_file():
        return path if path.name == TEMPLATE else None
    for candidate in (path / TEMPLATE, path / FOLDER / TEMPLATE):
        if candidate.is_file():
            return candidate
    return None


def load(found: Path, hot_reload: bool = False) -> Application:
    try:
        template = json.loads(found.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise LoadError(f"cannot read {found}: {exc}") from None
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise LoadError(f"{found}: not a CloudFormation template (no Resources)")
    folder = found.parent
    state = _state(folder)
    bucket_name = _deployment_bucket(state)
    packages: dict[str, bytes] = {}
    document = copy.deepcopy(template)
    for logical_id, resource in document["Resources"].items():
        if isinstance(resource, dict):
            _walk(resource.get("Properties"), str(logical_id), folder, bucket_name, packages)
    _drop_bucket(document)
    return Application(document, found, _stack_name(state, folder), packages, [found])


def _state(folder: Path) -> dict[str, Any]:
    path = folder / STATE
    if not path.is_file():
        return {}
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return found if isinstance(found, dict) else {}


def _deployment_bucket(state: dict[str, Any]) -> str | None:
    provider = (state.get("service") or {}).get("provider") or {}
    bucket = provider.get("deploymentBucket")
    if isinstance(bucket, dict):
        bucket = bucket.get("name")
    return bucket if isinstance(bucket, str) else None


def _stack_name(state: dict[str, Any], folder: Path) -> str:
    service = state.get("service") or {}
    name = service.get("service")
    if isinstance(name, dict):
        name = name.get("name")
    stage = (service.get("provider") or {}).get("stage")
    stack = (service.get("provider") or {}).get("stackName")
    if isinstance(stack, str) and stack:
        return stack
    if isinstance(name, str) and isinstance(stage, str):
        return f"{name}-{stage}"
    project = folder.parent if folder.name == FOLDER else folder
    return default_stack_name(project)


def _is_deployment_bucket(value: Any, bucket_name: str | None) -> bool:
    return value == {"Ref": BUCKET} or (bucket_name is not None and value == bucket_name)


def _walk(
    value: Any, logical_id: str, folder: Path, bucket_name: str | None, packages: dict[str, bytes]
) -> None:
    if isinstance(value, dict):
        key = value.get("S3Key")
        if isinstance(key, str) and _is_deployment_bucket(value.get("S3Bucket"), bucket_name):
            value["S3Bucket"] = PACKAGE_BUCKET
            value["S3Key"] = _package(folder / key.rsplit("/", 1)[-1], logical_id, packages)
            value.pop("S3ObjectVersion", None)
            return
        for item in value.values():
            _walk(item, logical_id, folder, bucket_name, packages)
    elif isinstance(value, list):
        for item in value:
            _walk(item, logical_id, folder, bucket_name, packages)


def _package(path: Path, logical_id: str, packages: dict[str, bytes]) -> str:
    where = f"Resource {logical_id}, property S3Key"
    if not path.is_file():
        raise LoadError(
            f"{where}: the artifact {path} does not exist (run serverless package again)"
        )
    if not zipfile.is_zipfile(path):
        raise LoadError(f"{where}: {path} is not a zip file")
    data = path.read_bytes()
    key = hashlib.sha256(data).hexdigest()
    packages[key] = data
    return key


def _drop_bucket(document: dict[str, Any]) -> None:
    """Leave out the deployment bucket, its policy and what names only them."""
    resources = document["Resources"]
    gone = {BUCKET, BUCKET_POLICY} & set(resources)
    if not gone:
        return
    for logical_id in gone:
        del resources[logical_id]
    outputs = document.get("Outputs") or {}
    for key in [k for k, v in outputs.items() if _names(v, gone)]:
        del outputs[key]
    for resource in resources.values():
        depends = resource.get("DependsOn") if isinstance(resource, dict) else None
        if isinstance(depends, str) and depends in gone:
            del resource["DependsOn"]
        elif isinstance(depends, list):
            resource["DependsOn"] = [d for d in depends if d not in gone]


def _names(value: Any, logical_ids: set[str]) -> bool:
    if isinstance(value, dict):
        if value.get("Ref") in logical_ids:
            return True
        getatt = value.get("Fn::GetAtt")
        if isinstance(getatt, list) and getatt and getatt[0] in logical_ids:
            return True
        return any(_names(v, logical_ids) for v in value.values())
    if isinstance(value, list):
        return any(_names(v, logical_ids) for v in value)
    return False
