import pytest

from lamina.domain import arns, errors


@pytest.mark.parametrize("value, name, qualifier", [
    ("orders", "orders", None),
    ("orders:live", "orders", "live"),
    ("orders:$LATEST", "orders", "$LATEST"),
    ("arn:aws:lambda:us-east-1:123456789012:function:orders", "orders", None),
    ("arn:aws:lambda:us-east-1:123456789012:function:orders:7", "orders", "7"),
    ("123456789012:function:orders:live", "orders", "live"),
])
def test_accepted_forms(value, name, qualifier):
    assert arns.parse_function_name(value, "us-east-1", "123456789012") == \
        arns.FunctionRef(name, qualifier)


def test_other_region_is_not_found_and_other_account_is_denied():
    with pytest.raises(errors.ResourceNotFound, match="not reachable in this region"):
        arns.parse_function_name("arn:aws:lambda:eu-west-1:123456789012:function:f",
                                 "us-east-1", "123456789012")
    with pytest.raises(errors.AccessDenied):
        arns.parse_function_name("arn:aws:lambda:us-east-1:999999999999:function:f",
                                 "us-east-1", "123456789012")


@pytest.mark.parametrize("value", ["", "has space", "dots.not.allowed", "a/b", "f:bad qualifier"])
def test_malformed_names_are_validation_errors(value):
    with pytest.raises(errors.ValidationError):
        arns.parse_function_name(value, "us-east-1", "123456789012")


def test_long_name_is_invalid_parameter_with_awss_message():
    with pytest.raises(errors.InvalidParameterValue,
                       match="Member must have length less than or equal to 64"):
        arns.parse_function_name("a" * 65, "us-east-1", "123456789012")


def test_qualifier_merge():
    ref = arns.FunctionRef("f", "live")
    assert arns.merge_qualifier(ref, None) == "live"
    assert arns.merge_qualifier(ref, "live") == "live"
    assert arns.merge_qualifier(arns.FunctionRef("f", None), "3") == "3"
    with pytest.raises(errors.InvalidParameterValue, match="does not match"):
        arns.merge_qualifier(ref, "other")
    with pytest.raises(errors.ValidationError):
        arns.merge_qualifier(ref, "bad/qualifier")


def test_function_arn():
    assert arns.function_arn("us-east-1", "123456789012", "f") == \
        "arn:aws:lambda:us-east-1:123456789012:function:f"
    assert arns.function_arn("us-east-1", "123456789012", "f", "$LATEST").endswith(":f:$LATEST")
