"""The statements AddPermission builds: principals and conditions as AWS writes them."""

import pytest

from lamina.domain import errors, policies
from lamina.domain.policies import Permission

FN = "arn:aws:lambda:us-east-1:123456789012:function:f"


@pytest.mark.parametrize("principal, element", [
    ("*", "*"),
    ("sns.amazonaws.com", {"Service": "sns.amazonaws.com"}),
    ("210987654321", {"AWS": "arn:aws:iam::210987654321:root"}),
    ("arn:aws:iam::210987654321:role/caller", {"AWS": "arn:aws:iam::210987654321:role/caller"}),
])
def test_principals(principal, element):
    built = policies.statement(Permission("s", "lambda:InvokeFunction", principal), FN)
    assert built == {"Sid": "s", "Effect": "Allow", "Principal": element,
                     "Action": "lambda:InvokeFunction", "Resource": FN}


def test_conditions():
    alexa = Permission("alexa", "lambda:InvokeFunction", "*",
                       event_source_token="amzn1.ask.skill.x-y")
    assert policies.statement(alexa, FN)["Condition"] == {
        "StringEquals": {"lambda:EventSourceToken": "amzn1.ask.skill.x-y"}}
    url = Permission("url", "lambda:InvokeFunction", "*", invoked_via_function_url=True)
    assert policies.statement(url, FN)["Condition"] == {
        "Bool": {"lambda:InvokedViaFunctionUrl": "true"}}


@pytest.mark.parametrize("permission, error, fragment", [
    (Permission(None, "lambda:InvokeFunction", "*"), errors.ValidationError,
     "Value null at 'statementId'"),
    (Permission("s", "lambda:InvokeFunction", "*", source_account="12"), errors.ValidationError,
     "at 'sourceAccount'"),
    (Permission("s", "lambda:InvokeFunction", "*", source_arn="bucket"), errors.ValidationError,
     "at 'sourceArn'"),
    (Permission("s", "lambda:InvokeFunction", "*", principal_org_id="org"),
     errors.ValidationError, "at 'principalOrgID'"),
    (Permission("s", "lambda:InvokeFunction", "*", function_url_auth_type="OPEN"),
     errors.ValidationError, "enum value set: [NONE, AWS_IAM]"),
    (Permission("s", "lambda:InvokeFunction", "a b"), errors.ValidationError, "at 'principal'"),
])
def test_broken_rules(permission, error, fragment):
    with pytest.raises(error) as raised:
        policies.check(permission)
    assert fragment in raised.value.message


def test_unknown_principal():
    with pytest.raises(errors.InvalidParameterValue, match="principal was invalid"):
        policies.statement(Permission("s", "lambda:InvokeFunction", "example.com"), FN)
