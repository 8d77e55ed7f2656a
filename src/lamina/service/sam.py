"""The SAM transform (`Transform: AWS::Serverless-2016-10-31`), by aws-sam-translator, the
library SAM CLI and CloudFormation's own transform use; run offline: managed policy names
come from the map the library bundles (any other name becomes an AWS managed policy ARN), and
the region comes from the engine, never from an AWS call."""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any

from lamina.domain import errors

_LOCK = threading.Lock()  # the translator keeps the region in a class attribute
# the translator warns of "unpublished metrics" on every run (it has nowhere to publish)
logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)


class _AnyManagedPolicy(dict[str, str]):
    """Managed policy names the bundled map lacks: AWS's ARN form for the name."""

    def __init__(self, partition: str) -> None:
        super().__init__()
        self.partition = partition

    def get(self, name: str, default: Any = None) -> str:
        return f"arn:{self.partition}:iam::aws:policy/{name}"


def transform(template: dict[str, Any], parameters: dict[str, Any], region: str) -> dict[str, Any]:
    """The CloudFormation template a SAM template expands to (blocking: run in a thread)."""
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    session = boto3.session.Session(
        region_name=region, aws_access_key_id="lamina", aws_secret_access_key="lamina"
    )
    policies = _AnyManagedPolicy("aws")
    with _LOCK:
        translator = Translator(None, Parser(), boto_session=session)
        try:
            result: dict[str, Any] = translator.translate(
                copy.deepcopy(template),
                parameter_values=dict(parameters),
                get_managed_policy_map=lambda: policies,
            )
            return result
        except InvalidDocumentException as exc:
            causes = "; ".join(str(getattr(c, "message", c)) for c in exc.causes) or str(exc)
            raise errors.TemplateError(f"SAM transform failed: {causes}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise errors.TemplateError(
                f"SAM transform failed: {type(exc).__name__}: {exc}"
            ) from None
