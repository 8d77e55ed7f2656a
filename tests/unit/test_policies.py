"""The statements AddPermission builds: principals and conditions as AWS writes them."""

import pytest

from lamina.domain import errors, policies
from lamina.domain.policies import Permission

FN = "arn:aws:lambda:us-east-1:123456789012:function:f"


@pytest.mark.parametrize(
    "principal, element",
    [
        ("*", "*"),
        ("sns.amazonaws.com", {"Service": "sns.amazonaws.com"}),
        ("210987654321", {"AWS": "arn:aws:iam::210987654321:root"}),
        ("arn:aws:iam::210987654321:role/caller", {"AWS": "arn:aws:iam::210987654321:role/caller"}),
    ],
)
def test_principals(principal, element):
    built = policies.statement(Permission("s", "lambda:InvokeFunction", principal), FN)
    assert built == {
        "Sid": "s",
        "Effect": "Allow",
        "Principal": element,
        "Action": "lambda:InvokeFunction",
        "Resource": FN,
    }


def test_conditions():
    alexa = Permission(
        "alexa", "lambda:InvokeFunction", "*", event_source_token="amzn1.ask.skill.x-y"
    )
    assert policies.statement(alexa, FN)["Condition"] == {
        "StringEquals": {"lambda:EventSourceToken": "amzn1.ask.skill.x-y"}
    }
    url = Permission("url", "lambda:InvokeFunction", "*", invoked_via_function_url=True)
    assert policies.statement(url, FN)["Condition"] == {
        "Bool": {"lambda:InvokedViaFunctionUrl": "true"}
    }


@pytest.mark.parametrize(
    "permission, error, fragment",
    [
        (
            Permission(None, "lambda:InvokeFunction", "*"),
            errors.ValidationError,
            "Value null at 'statementId'",
        ),
        (
            Permission("s", "lambda:InvokeFunction", "*", source_account="12"),
            errors.ValidationError,
            "at 'sourceAccount'",
        ),
        (
            Permission("s", "lambda:InvokeFunction", "*", source_arn="bucket"),
            errors.ValidationError,
            "at 'sourceArn'",
        ),
        (
            Permission("s", "lambda:InvokeFunction", "*", principal_org_id="org"),
            errors.ValidationError,
            "at 'principalOrgID'",
        ),
        (
            Permission("s", "lambda:InvokeFunction", "*", function_url_auth_type="OPEN"),
            errors.ValidationError,
            "enum value set: [NONE, AWS_IAM]",
        ),
        (Permission("s", "lambda:InvokeFunction", "a b"), errors.ValidationError, "at 'principal'"),
    ],
)
def test_broken_rules(permission, error, fragment):
    with pytest.raises(error) as raised:
        policies.check(permission)
    assert fragment in raised.value.message


def test_unknown_principal():
    with pytest.raises(errors.InvalidParameterValue, match="principal was invalid"):
        policies.statement(Permission("s", "lambda:InvokeFunction", "example.com"), FN)


def _granted(principal: str, action: str = "lambda:InvokeFunction", **conditions: str):
    return policies.statement(
        Permission("s", action, principal, **conditions),
        "arn:aws:lambda:us-east-1:123456789012:function:f",
    )


ACCOUNT = policies.Principal("111122223333", "arn:aws:iam::111122223333:user/ana")


@pytest.mark.parametrize(
    "principal, allowed",
    [
        ("111122223333", True),
        ("arn:aws:iam::111122223333:root", True),
        ("arn:aws:iam::111122223333:user/ana", True),
        ("arn:aws:iam::111122223333:user/bo", False),
        ("444455556666", False),
        ("*", True),
        ("s3.amazonaws.com", False),
    ],
)
def test_allows_the_principal_a_statement_names(principal, allowed):
    assert policies.allows((_granted(principal),), "lambda:InvokeFunction", ACCOUNT) is allowed


@pytest.mark.parametrize(
    "granted, allowed",
    [
        ("lambda:InvokeFunction", True),
        ("lambda:*", True),
        ("*", True),
        ("lambda:GetFunction", False),
    ],
)
def test_allows_only_the_action_granted(granted, allowed):
    statement = _granted("111122223333", granted)
    assert policies.allows((statement,), "lambda:InvokeFunction", ACCOUNT) is allowed


def test_a_deny_wins_and_no_statement_allows_nothing():
    allow = _granted("111122223333")
    deny = {**_granted("*"), "Effect": "Deny"}
    assert not policies.allows((allow, deny), "lambda:InvokeFunction", ACCOUNT)
    assert not policies.allows((), "lambda:InvokeFunction", ACCOUNT)


def test_a_service_needs_its_source_arn_and_account():
    statement = _granted(
        "sns.amazonaws.com",
        source_arn="arn:aws:sns:us-east-1:111122223333:t*",
        source_account="111122223333",
    )
    service = policies.Principal(
        service="sns.amazonaws.com",
        source_arn="arn:aws:sns:us-east-1:111122223333:topic",
        source_account="111122223333",
    )
    assert policies.allows((statement,), "lambda:InvokeFunction", service)
    for other in (
        {"source_arn": "arn:aws:sns:us-east-1:111122223333:other"},
        {"source_account": "444455556666"},
        {"service": "s3.amazonaws.com"},
    ):
        changed = policies.Principal(
            **{
                "service": service.service,
                "source_arn": service.source_arn,
                "source_account": service.source_account,
                **other,
            }
        )
        assert not policies.allows((statement,), "lambda:InvokeFunction", changed), other
    assert not policies.allows((statement,), "lambda:InvokeFunction", ACCOUNT)


def test_an_unknown_condition_grants_nothing():
    statement = _granted("111122223333", principal_org_id="o-abcdefghij")
    assert not policies.allows((statement,), "lambda:InvokeFunction", ACCOUNT)


def test_url_conditions_hold_for_a_request_through_a_url_only():
    by_url = policies.Principal(url_auth_type="NONE", via_url="true")
    url = _granted("*", action="lambda:InvokeFunctionUrl", function_url_auth_type="NONE")
    via = _granted("*", invoked_via_function_url=True)
    assert policies.allows((url,), "lambda:InvokeFunctionUrl", by_url)
    assert policies.allows((via,), "lambda:InvokeFunction", by_url)
    assert not policies.allows((via,), "lambda:InvokeFunction", ACCOUNT)  # a plain Invoke
    iam_only = policies.Principal(url_auth_type="AWS_IAM", via_url="true")
    assert not policies.allows((url,), "lambda:InvokeFunctionUrl", iam_only)


def test_the_denial_quotes_the_caller_the_action_and_the_resource():
    assert policies.denied(ACCOUNT, "lambda:InvokeFunction", "arn:x") == (
        "User: arn:aws:iam::111122223333:user/ana is not authorized to perform: "
        "lambda:InvokeFunction on resource: arn:x because no resource-based policy allows the "
        "lambda:InvokeFunction action"
    )
    assert policies.denied(ACCOUNT, "lambda:GetFunction", "arn:x") == ""  # AWS: null
    assert policies.denied(ACCOUNT, None, "arn:x") == ""
