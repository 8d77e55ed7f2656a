"""What CDK and the Serverless Framework write, read by the loaders (assemblies and
packages made here by hand, for the cases the real tools' output in
tests/acceptance/test_deploy_tools.py does not reach), and a template's Rules."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from lamina import loaders
from lamina.domain import errors
from lamina.domain.cfn import rules
from lamina.domain.cfn.intrinsics import Scope
from lamina.domain.stacks import PACKAGE_BUCKET

CHECK_BOOTSTRAP = {
    "CheckBootstrapVersion": {
        "Assertions": [
            {
                "Assert": {
                    "Fn::Not": [
                        {"Fn::Contains": [["1", "2", "3", "4", "5"], {"Ref": "BootstrapVersion"}]}
                    ]
                },
                "AssertDescription": "CDK bootstrap stack version 6 required.",
            }
        ]
    }
}


def scope(**values) -> Scope:
    return Scope({"AWS::Region": "us-east-1", **values}, lambda r: r, lambda r, a: r)


def test_cdk_bootstrap_rule_holds_from_version_6_and_names_itself_below():
    rules.check(CHECK_BOOTSTRAP, scope(BootstrapVersion="6"), {})
    with pytest.raises(errors.TemplateError) as refused:
        rules.check(CHECK_BOOTSTRAP, scope(BootstrapVersion="5"), {})
    assert refused.value.message == "CDK bootstrap stack version 6 required."


def test_rule_condition_false_skips_the_assertions_and_member_functions():
    definitions = {"Env": {"Type": "String"}, "Size": {"Type": "String"}}
    rule = {
        "ProdSizes": {
            "RuleCondition": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
            "Assertions": [{"Assert": {"Fn::EachMemberIn": [[{"Ref": "Size"}], ["m", "l"]]}}],
        }
    }
    rules.check(rule, scope(Env="dev", Size="s"), definitions)
    rules.check(rule, scope(Env="prod", Size="l"), definitions)
    with pytest.raises(errors.TemplateError, match="rule ProdSizes failed"):
        rules.check(rule, scope(Env="prod", Size="s"), definitions)
    with pytest.raises(errors.TemplateError, match="Fn::ValueOf reads attributes"):
        rules.check(
            {
                "R": {
                    "Assertions": [
                        {"Assert": {"Fn::Equals": [{"Fn::ValueOf": ["Vpc", "Tags"]}, "x"]}}
                    ]
                }
            },
            scope(),
            definitions,
        )
    with pytest.raises(errors.TemplateError, match="Assertions list"):
        rules.check({"R": {"RuleCondition": True}}, scope(), definitions)


def _zip(name: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, text)
    return buffer.getvalue()


def _assembly(root: Path, asset_path: str = "asset.abc") -> Path:
    """A cloud assembly as `cdk synth` lays it out: a nested one (a Stage) holding one stack
    that depends on a top-level stack, and a function whose code is a folder asset."""
    out = root / "cdk.out"
    (out / asset_path).mkdir(parents=True)
    (out / asset_path / "app.py").write_text("def handler(e, c):\n    return 1\n")
    function = {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": {
                "S3Bucket": {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"},
                "S3Key": "abc.zip",
            },
            "Handler": "app.handler",
            "Runtime": "python3.12",
            "Role": "arn:aws:iam::1:role/r",
        },
    }
    template = {
        "Parameters": {
            "BootstrapVersion": {
                "Type": "AWS::SSM::Parameter::Value<String>",
                "Default": "/cdk-bootstrap/hnb659fds/version",
            }
        },
        "Resources": {"Fn": function},
        "Rules": CHECK_BOOTSTRAP,
    }
    (out / "Base.template.json").write_text(
        json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
    )
    stage = out / "assembly-Prod"
    stage.mkdir()
    (stage / "ProdApi.template.json").write_text(json.dumps(template))
    (stage / "ProdApi.assets.json").write_text(
        json.dumps(
            {
                "files": {
                    "abc": {
                        "source": {"path": f"../{asset_path}", "packaging": "zip"},
                        "destinations": {
                            "d": {
                                "bucketName": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}",
                                "objectKey": "abc.zip",
                            }
                        },
                    }
                }
            }
        )
    )
    (stage / "manifest.json").write_text(
        json.dumps(
            {
                "version": "55.0.0",
                "artifacts": {
                    "ProdApi": {
                        "type": "aws:cloudformation:stack",
                        "dependencies": ["ProdApi.assets"],
                        "properties": {
                            "templateFile": "ProdApi.template.json",
                            "stackName": "Prod-Api",
                            "requiresBootstrapStackVersion": 6,
                        },
                    },
                    "ProdApi.assets": {
                        "type": "cdk:asset-manifest",
                        "properties": {"file": "ProdApi.assets.json"},
                    },
                },
            }
        )
    )
    (out / "manifest.json").write_text(
        json.dumps(
            {
                "version": "55.0.0",
                "artifacts": {
                    "assembly-Prod": {
                        "type": "cdk:cloud-assembly",
                        "dependencies": ["Base"],
                        "properties": {"directoryName": "assembly-Prod"},
                    },
                    "Base": {
                        "type": "aws:cloudformation:stack",
                        "properties": {"templateFile": "Base.template.json"},
                    },
                },
            }
        )
    )
    return out


def test_cdk_assembly_stacks_in_dependency_order_with_assets_packaged(tmp_path):
    out = _assembly(tmp_path)
    base, api = loaders.load_all(tmp_path)  # the project folder finds cdk.out
    assert (base.stack_name, api.stack_name) == ("Base", "Prod-Api")
    assert api.fixed_name and "ProdApi" in api.aliases
    code = api.template["Resources"]["Fn"]["Properties"]["Code"]
    assert code["S3Bucket"] == PACKAGE_BUCKET and code["S3Key"] in api.packages
    with zipfile.ZipFile(io.BytesIO(api.packages[code["S3Key"]])) as archive:
        assert archive.namelist() == ["app.py"]
    assert api.template["Parameters"]["BootstrapVersion"]["Default"] == "6"
    assert [a.stack_name for a in loaders.load_all(out / "manifest.json")] == ["Base", "Prod-Api"]


def test_cdk_asset_missing_or_not_a_zip_is_one_line(tmp_path):
    out = _assembly(tmp_path)
    (out / "asset.abc" / "app.py").unlink()
    (out / "asset.abc").rmdir()
    with pytest.raises(loaders.LoadError, match=r"Resource Fn: asset abc: .* does not exist"):
        loaders.load_all(out)
    (out / "asset.abc").write_text("not a zip")
    with pytest.raises(loaders.LoadError, match="not a zip"):
        loaders.load_all(out)


def _package(root: Path) -> Path:
    folder = root / "svc" / ".serverless"
    folder.mkdir(parents=True)
    (folder / "svc.zip").write_bytes(_zip("handler.py", "def hello(e, c):\n    return 1\n"))
    template = {
        "Resources": {
            "ServerlessDeploymentBucket": {"Type": "AWS::S3::Bucket"},
            "ServerlessDeploymentBucketPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {"Bucket": {"Ref": "ServerlessDeploymentBucket"}},
            },
            "HelloLambdaFunction": {
                "Type": "AWS::Lambda::Function",
                "DependsOn": ["ServerlessDeploymentBucket"],
                "Properties": {
                    "Code": {
                        "S3Bucket": {"Ref": "ServerlessDeploymentBucket"},
                        "S3Key": "serverless/svc/dev/1-2026/svc.zip",
                    }
                },
            },
        },
        "Outputs": {
            "ServerlessDeploymentBucketName": {"Value": {"Ref": "ServerlessDeploymentBucket"}},
            "Fn": {"Value": {"Ref": "HelloLambdaFunction"}},
        },
    }
    (folder / "cloudformation-template-update-stack.json").write_text(json.dumps(template))
    (folder / "serverless-state.json").write_text(
        json.dumps({"service": {"service": "svc", "provider": {"stage": "dev"}}})
    )
    return folder


def test_serverless_package_artifacts_packaged_and_the_bucket_left_out(tmp_path):
    folder = _package(tmp_path)
    app = loaders.load(folder.parent)
    assert app.stack_name == "svc-dev" and not app.fixed_name
    resources = app.template["Resources"]
    assert set(resources) == {"HelloLambdaFunction"}
    assert resources["HelloLambdaFunction"]["DependsOn"] == []
    code = resources["HelloLambdaFunction"]["Properties"]["Code"]
    assert code["S3Bucket"] == PACKAGE_BUCKET
    assert app.packages[code["S3Key"]] == (folder / "svc.zip").read_bytes()
    assert set(app.template["Outputs"]) == {"Fn"}
    (folder / "svc.zip").unlink()
    with pytest.raises(loaders.LoadError, match="run serverless package again"):
        loaders.load(folder)


def test_nothing_to_deploy_names_what_was_looked_for(tmp_path):
    with pytest.raises(loaders.LoadError, match="CDK cloud assembly"):
        loaders.load_all(tmp_path)
