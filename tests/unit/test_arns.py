import pytest

from lamina.domain import arns, errors


@pytest.mark.parametrize(
    "value, name, qualifier, account",
    [
        ("orders", "orders", None, None),
        ("orders:live", "orders", "live", None),
        ("orders:$LATEST", "orders", "$LATEST", None),
        ("arn:aws:lambda:us-east-1:123456789012:function:orders", "orders", None, "123456789012"),
        ("arn:aws:lambda:us-east-1:123456789012:function:orders:7", "orders", "7", "123456789012"),
        ("123456789012:function:orders:live", "orders", "live", "123456789012"),
    ],
)
def test_accepted_forms(value, name, qualifier, account):
    assert arns.parse_function_name(value, "us-east-1", "123456789012") == arns.FunctionRef(
        name, qualifier, account
    )


def test_another_accounts_arn_is_left_to_the_caller_when_no_account_is_given():
    ref = arns.parse_function_name(
        "arn:aws:lambda:us-east-1:999999999999:function:f:live", "us-east-1", None
    )
    assert ref == arns.FunctionRef("f", "live", "999999999999")


def test_other_region_is_not_found_and_other_account_is_denied():
    with pytest.raises(errors.ResourceNotFound, match="not reachable in this region"):
        arns.parse_function_name(
            "arn:aws:lambda:eu-west-1:123456789012:function:f", "us-east-1", "123456789012"
        )
    with pytest.raises(errors.AccessDenied):
        arns.parse_function_name(
            "arn:aws:lambda:us-east-1:999999999999:function:f", "us-east-1", "123456789012"
        )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "has space",
        "a/b",
        "f:bad qualifier",
        "my-function!",
        "*",
        "invalid-account:function:my-function",
        "arn:aws:lambda:invalid-region:123456789012:function:f",
        "arn:aws:lambda::123456789012:function:f",
        "arn:aws:lambda:us-east-1::function:f",
        "arn:aws:ec2:us-east-1:123456789012:instance:i-1",
        "function:f:$LATEST:extra",
        "arn:aws:lambda:us-east-1:123456789012:function:f:1:2",
        "f:$LATES",
    ],
)
def test_malformed_names_are_validation_errors(value):
    with pytest.raises(errors.ValidationError):
        arns.parse_function_name(value, "us-east-1", "123456789012")


def test_validation_quotes_awss_pattern():
    with pytest.raises(errors.ValidationError) as caught:
        arns.parse_function_name("my-function!", "us-east-1", "123456789012")
    assert caught.value.message == (
        "1 validation error detected: Value 'my-function!' at 'functionName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:"
        "lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:)?(\\d{12}:)?"
        "(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST(\\.PUBLISHED)?|[a-zA-Z0-9-_]+))?"
    )


def test_dotted_names_are_namespaced_names_except_when_creating():
    assert (
        arns.parse_function_name("dots.are.fine", "us-east-1", "123456789012").name
        == "dots.are.fine"
    )
    with pytest.raises(errors.ValidationError, match=r"\(function:\)\?\(\[a-zA-Z0-9-_\]\+\)"):
        arns.parse_function_name("dots.are.fine", "us-east-1", "123456789012", creating=True)


def test_name_and_qualifier_errors_come_together():
    with pytest.raises(errors.ValidationError) as caught:
        arns.parse_function_name(
            "arn:aws:lambda:nowhere:123456789012:function:f",
            "us-east-1",
            "123456789012",
            qualifier="q" * 129,
        )
    message = caught.value.message
    assert message.startswith("2 validation errors detected: Value ")
    parts = message.removeprefix("2 validation errors detected: ").split("; ")
    assert sorted(p.split("' at '")[1].split("'")[0] for p in parts) == [
        "functionName",
        "qualifier",
    ]
    assert (
        f"Value '{'q' * 129}' at 'qualifier' failed to satisfy constraint: Member must "
        "have length less than or equal to 128" in parts
    )


def test_creating_checks_the_whole_value_length_too():
    value = "arn:aws:lambda:us-east-1:123456789012:function:" + "a" * 100
    with pytest.raises(errors.ValidationError, match="less than or equal to 140"):
        arns.parse_function_name(value, "us-east-1", "123456789012", creating=True)


def test_long_name_is_invalid_parameter_when_creating_and_not_found_otherwise():
    with pytest.raises(
        errors.InvalidParameterValue, match="Member must have length less than or equal to 64"
    ):
        arns.parse_function_name("a" * 65, "us-east-1", "123456789012", creating=True)
    assert arns.parse_function_name("a" * 65, "us-east-1", "123456789012").name == "a" * 65


def test_qualifier_pattern_admits_dollar_signs():
    assert arns.qualifier_problems("$latest") == []
    assert arns.qualifier_problems("$LATEST.PUBLISHED") == []
    assert [p[2] for p in arns.qualifier_problems("invalid!")] == [
        "Member must satisfy regular expression pattern: \\$(LATEST(\\.PUBLISHED)?)|[a-zA-Z0-9-_$]+"
    ]


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
    assert (
        arns.function_arn("us-east-1", "123456789012", "f")
        == "arn:aws:lambda:us-east-1:123456789012:function:f"
    )
    assert arns.function_arn("us-east-1", "123456789012", "f", "$LATEST").endswith(":f:$LATEST")


def test_function_keys_are_plain_for_the_engines_account_and_qualified_for_others():
    own, other = "123456789012", "111122223333"
    assert arns.function_key("", "orders") == "orders"
    key = arns.function_key(other, "orders")
    assert key == f"{other}:orders"
    assert (arns.key_owner(key), arns.plain_name(key)) == (other, "orders")
    assert (arns.key_owner("orders"), arns.plain_name("orders")) == ("", "orders")
    # an ARN built from a key carries the key's account, whatever account is given
    assert arns.function_arn("us-east-1", own, key, "live") == (
        f"arn:aws:lambda:us-east-1:{other}:function:orders:live"
    )
    assert arns.function_arn("us-east-1", own, "orders") == (
        f"arn:aws:lambda:us-east-1:{own}:function:orders"
    )
    # a resource's target ARN: keyed by the account it names, plain for the engine's own
    named = arns.parse_function_name(
        f"arn:aws:lambda:us-east-1:{other}:function:orders:2", "us-east-1", None
    )
    assert arns.keyed(named, own) == arns.FunctionRef(key, "2", other)
    mine = arns.parse_function_name(
        f"arn:aws:lambda:us-east-1:{own}:function:orders", "us-east-1", None
    )
    assert arns.keyed(mine, own).name == "orders"
    assert arns.keyed(arns.FunctionRef("orders", None), own).name == "orders"
