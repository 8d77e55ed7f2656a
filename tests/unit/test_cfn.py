"""CloudFormation templates as pure values: parsing, intrinsics, conditions, the dependency
graph, parameters, physical names."""

from __future__ import annotations

import pytest

from lamina.domain import errors
from lamina.domain.cfn import graph, intrinsics, parameters, template
from lamina.domain.cfn.intrinsics import NO_VALUE, Pending, Scope
from lamina.domain.stacks import physical_name

RESOURCES = {"Fn": "my-fn", "Queue": "https://q/1"}
ATTRIBUTES = {
    ("Fn", "Arn"): "arn:aws:lambda:us-east-1:1:function:my-fn",
    ("Queue", "Arn"): "arn:aws:sqs:us-east-1:1:q",
}


def scope(**extra) -> Scope:
    values = {
        "Stage": "dev",
        "List": ["a", "b", "c"],
        "AWS::Region": "eu-west-1",
        "AWS::StackName": "app",
    }
    return Scope(
        {**values, **extra.pop("parameters", {})},
        RESOURCES.__getitem__,
        lambda r, a: ATTRIBUTES[(r, a)],
        resources=frozenset(RESOURCES),
        **extra,
    )


def resolve(value, **extra):
    return intrinsics.resolve(value, scope(**extra), "test")


def test_short_form_tags_become_intrinsics_and_dates_stay_text():
    parsed = template.parse(
        "AWSTemplateFormatVersion: 2010-09-09\nA: !Ref X\nB: !GetAtt R.Arn\n"
        "C: !Sub '${X}'\nD: !GetAtt [R, Arn]\nE: !Condition C\n"
        "F: !Join [',', [!Ref X]]\nG: !If [C, !Ref X, !Ref 'AWS::NoValue']\n"
    )
    assert parsed["AWSTemplateFormatVersion"] == "2010-09-09"
    assert parsed["A"] == {"Ref": "X"} and parsed["B"] == {"Fn::GetAtt": ["R", "Arn"]}
    assert parsed["C"] == {"Fn::Sub": "${X}"} and parsed["D"] == {"Fn::GetAtt": ["R", "Arn"]}
    assert parsed["E"] == {"Condition": "C"}
    assert parsed["F"] == {"Fn::Join": [",", [{"Ref": "X"}]]}
    assert parsed["G"] == {"Fn::If": ["C", {"Ref": "X"}, {"Ref": "AWS::NoValue"}]}
    assert template.parse('{"Resources": {}}') == {"Resources": {}}


@pytest.mark.parametrize("text", ["a: [unclosed", "- just\n- a list\n", "{bad json"])
def test_what_is_not_a_template_is_one_clear_error(text):
    with pytest.raises(errors.TemplateError):
        template.parse(text)


def test_ref_getatt_and_pseudo_parameters():
    assert resolve({"Ref": "Fn"}) == "my-fn"
    assert resolve({"Ref": "Stage"}) == "dev"
    assert resolve({"Fn::GetAtt": ["Queue", "Arn"]}) == "arn:aws:sqs:us-east-1:1:q"
    assert resolve({"Fn::GetAtt": "Fn.Arn"}) == ATTRIBUTES[("Fn", "Arn")]
    assert resolve({"Ref": "AWS::Region"}) == "eu-west-1"
    with pytest.raises(errors.TemplateError, match=r"Unresolved resource dependencies \[Nope\]"):
        resolve({"Ref": "Nope"})


def test_sub_both_forms_with_literals_and_attributes():
    assert (
        resolve({"Fn::Sub": "${AWS::StackName}-${Stage}-${Fn.Arn}-${!Literal}"})
        == f"app-dev-{ATTRIBUTES[('Fn', 'Arn')]}-${{Literal}}"
    )
    assert resolve({"Fn::Sub": ["${A}/${Queue}", {"A": {"Ref": "Stage"}}]}) == "dev/https://q/1"
    with pytest.raises(errors.TemplateError):
        resolve({"Fn::Sub": "${Missing}"})


def test_join_select_split_base64_getazs_cidr():
    assert resolve({"Fn::Join": ["-", ["a", {"Ref": "Stage"}, 3]]}) == "a-dev-3"
    assert resolve({"Fn::Select": ["1", {"Ref": "List"}]}) == "b"
    assert resolve({"Fn::Select": [0, {"Fn::Split": [",", "x,y"]}]}) == "x"
    assert resolve({"Fn::Base64": "hi"}) == "aGk="
    assert resolve({"Fn::GetAZs": ""}) == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    assert resolve({"Fn::Cidr": ["10.0.0.0/16", 2, 8]}) == ["10.0.0.0/24", "10.0.1.0/24"]
    with pytest.raises(errors.TemplateError, match="cannot select index 5"):
        resolve({"Fn::Select": [5, ["a"]]})


def test_find_in_map_and_import_value():
    mappings = {"Env": {"dev": {"Size": 128}}}
    assert resolve({"Fn::FindInMap": ["Env", {"Ref": "Stage"}, "Size"]}, mappings=mappings) == 128
    assert (
        resolve({"Fn::FindInMap": ["Env", "prod", "Size", {"DefaultValue": 1}]}, mappings=mappings)
        == 1
    )
    with pytest.raises(errors.TemplateError, match="Key 'prod' not found"):
        resolve({"Fn::FindInMap": ["Env", "prod", "Size"]}, mappings=mappings)
    assert resolve({"Fn::ImportValue": "shared"}, exports={"shared": "v"}) == "v"
    with pytest.raises(errors.TemplateError, match="No export named other"):
        resolve({"Fn::ImportValue": "other"})


def test_conditions_if_and_no_value():
    definitions = {
        "IsDev": {"Fn::Equals": [{"Ref": "Stage"}, "dev"]},
        "IsProd": {"Fn::Not": [{"Condition": "IsDev"}]},
        "Both": {"Fn::And": [{"Condition": "IsDev"}, {"Condition": "IsProd"}]},
        "Either": {"Fn::Or": [{"Condition": "IsDev"}, {"Condition": "IsProd"}]},
    }
    found = intrinsics.conditions(definitions, scope())
    assert found == {"IsDev": True, "IsProd": False, "Both": False, "Either": True}
    value = {
        "A": {"Fn::If": ["IsProd", "x", {"Ref": "AWS::NoValue"}]},
        "B": [{"Fn::If": ["IsDev", "kept", "gone"]}, {"Ref": "AWS::NoValue"}],
    }
    assert intrinsics.resolve(value, scope(conditions=found), "t") == {"B": ["kept"]}
    assert resolve({"Ref": "AWS::NoValue"}) is NO_VALUE
    with pytest.raises(errors.TemplateError, match="circular condition"):
        intrinsics.conditions({"A": {"Condition": "B"}, "B": {"Condition": "A"}}, scope())


def test_pending_values_stay_pending_through_functions():
    pending = Scope(
        {}, lambda r: Pending(r), lambda r, a: Pending(f"{r}.{a}"), resources=frozenset({"Fn"})
    )
    joined = intrinsics.resolve({"Fn::Join": [":", ["a", {"Ref": "Fn"}]]}, pending, "t")
    subbed = intrinsics.resolve({"Fn::Sub": "x-${Fn.Arn}"}, pending, "t")
    assert isinstance(joined, Pending) and isinstance(subbed, Pending)
    assert not isinstance(intrinsics.resolve({"Fn::Sub": "plain"}, pending, "t"), Pending)


RES = {
    "Role": {"Type": "AWS::IAM::Role"},
    "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Role": {"Fn::GetAtt": "Role.Arn"}}},
    "Alias": {"Type": "AWS::Lambda::Alias", "Properties": {"FunctionName": {"Fn::Sub": "${Fn}"}}},
    "Queue": {"Type": "AWS::SQS::Queue", "DependsOn": "Alias"},
    "Cond": {
        "Type": "AWS::SQS::Queue",
        "Properties": {"Name": {"Fn::If": ["Off", {"Ref": "Gone"}, {"Ref": "Stage"}]}},
    },
}


def test_graph_orders_creates_after_what_they_use():
    found = graph.dependencies(RES, ["Stage"], {"Off": False})
    assert found["Fn"] == {"Role"} and found["Alias"] == {"Fn"} and found["Queue"] == {"Alias"}
    assert found["Cond"] == set()  # the branch Fn::If does not take is not a dependency
    order = graph.order(found)
    assert order.index("Role") < order.index("Fn") < order.index("Alias") < order.index("Queue")
    assert graph.dependents(found)["Fn"] == {"Alias"}


def test_graph_refuses_unknown_references_and_cycles():
    with pytest.raises(errors.TemplateError, match=r"Unresolved resource dependencies \[Nope\]"):
        graph.dependencies({"A": {"Type": "T", "Properties": {"X": {"Ref": "Nope"}}}}, [], {})
    with pytest.raises(errors.TemplateError, match=r"Unresolved resource dependencies \[Nope\]"):
        graph.dependencies({"A": {"Type": "T", "DependsOn": ["Nope"]}}, [], {})
    cycle = {
        "A": {"Type": "T", "Properties": {"X": {"Ref": "B"}}},
        "B": {"Type": "T", "Properties": {"X": {"Fn::GetAtt": ["C", "Arn"]}}},
        "C": {"Type": "T", "DependsOn": "A"},
        "D": {"Type": "T"},
    }
    with pytest.raises(
        errors.TemplateError,
        match=r"Circular dependency between resources: "
        r"\[A, B, C\]",
    ):
        graph.dependencies(cycle, [], {})
    with pytest.raises(errors.TemplateError, match=r"\[A\]"):
        graph.dependencies({"A": {"Type": "T", "Properties": {"X": {"Ref": "A"}}}}, [], {})


DEFS = {
    "Stage": {"Type": "String", "Default": "dev", "AllowedValues": ["dev", "prod"]},
    "Size": {"Type": "Number", "Default": 128, "MinValue": 128, "MaxValue": 1024},
    "Names": {"Type": "CommaDelimitedList", "Default": "a, b"},
    "Code": {"Type": "String", "Default": "ab", "AllowedPattern": "[a-z]+", "MaxLength": 3},
    "Token": {"Type": "String", "NoEcho": True, "Default": "s3cret"},
    "Ssm": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/app/url"},
}


def test_parameters_defaults_overrides_and_types():
    values = parameters.resolve_parameters(
        DEFS, {"Stage": "prod", "Size": "512"}, ssm={"/app/url": "http://x"}.__getitem__
    )
    assert values == {
        "Stage": "prod",
        "Size": "512",
        "Names": ["a", "b"],
        "Code": "ab",
        "Token": "s3cret",
        "Ssm": "http://x",
    }
    assert parameters.shown(DEFS, values)["Token"] == "****"
    assert parameters.ssm_parameters(DEFS, {}) == {"Ssm": "/app/url"}


@pytest.mark.parametrize(
    "given,message",
    [
        ({"Stage": "test"}, "Parameter 'Stage' must be one of AllowedValues"),
        ({"Size": "64"}, "must be a number not less than 128"),
        ({"Size": "big"}, "must be a number not big"),
        ({"Code": "AB"}, "must match pattern"),
        ({"Code": "abcd"}, "must contain at most 3 characters"),
        ({"Other": "x"}, r"Parameters: \[Other\] do not exist in the template"),
    ],
)
def test_parameters_are_checked_as_cloudformation_does(given, message):
    with pytest.raises(errors.TemplateError, match=message):
        parameters.resolve_parameters(DEFS, given, ssm=lambda name: "v")


def test_a_parameter_without_value_or_default_is_refused():
    with pytest.raises(errors.TemplateError, match=r"Parameters: \[Needed\] must have values"):
        parameters.resolve_parameters({"Needed": {"Type": "String"}}, {})


def test_physical_names_as_cloudformation_makes_them():
    name = physical_name("orders", "OrdersFunction")
    stack, logical, suffix = name.rsplit("-", 2)
    assert (stack, logical) == ("orders", "OrdersFunction") and len(suffix) == 13
    assert suffix.isupper() or suffix.isdigit() or suffix.isalnum()
    long = physical_name("s" * 100, "L" * 100, 64)
    assert len(long) <= 64
    assert physical_name("My-Stack", "Bucket", 63, lower=True).islower()
