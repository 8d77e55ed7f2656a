"""The one exception tree of Lamina, sorted by who is at fault.

    LaminaError                      carries Lambda's error type, HTTP status, body message key
    ├── ClientError                  the caller sent something wrong ("Type": "User")
    │   ├── ValidationError              400 ValidationException (model constraint violated)
    │   ├── InvalidParameterValue        400 InvalidParameterValueException
    │   ├── InvalidRequestContent        400 InvalidRequestContentException
    │   ├── ResourceInUse                400 ResourceInUseException
    │   ├── AccessDenied                 403 AccessDeniedException
    │   ├── Unauthenticated              403, no "Type": a request's signature is refused
    │   │   ├── MissingAuthenticationToken   403 MissingAuthenticationTokenException
    │   │   ├── IncompleteSignature          403 IncompleteSignatureException
    │   │   ├── InvalidSignature             403 InvalidSignatureException (also expired)
    │   │   ├── UnrecognizedClient           403 UnrecognizedClientException (unknown key)
    │   │   └── ExpiredToken                 403 ExpiredTokenException
    │   ├── ResourceNotFound             404 ResourceNotFoundException
    │   ├── CodeSigningConfigNotFound    404 CodeSigningConfigNotFoundException
    │   ├── CodeVerificationFailed       400 CodeVerificationFailedException
    │   ├── PolicyLengthExceeded         400 PolicyLengthExceededException
    │   ├── PublicPolicy                 400 PublicPolicyException
    │   ├── CapacityProviderLimit        400 CapacityProviderLimitExceededException
    │   ├── ProvisionedConfigNotFound    404 ProvisionedConcurrencyConfigNotFoundException
    │   ├── UnknownOperation             404 UnknownOperationException
    │   ├── ResourceConflict             409 ResourceConflictException
    │   ├── DurableExecutionAlreadyStarted 409 DurableExecutionAlreadyStartedException
    │   ├── CallbackTimeout              400 CallbackTimeoutException
    │   ├── PreconditionFailed           412 PreconditionFailedException
    │   ├── RequestTooLarge              413 RequestEntityTooLargeException
    │   ├── UnsupportedMediaType         415 UnsupportedMediaTypeException
    │   ├── TemplateError                400 ValidationError (CloudFormation's: a bad template,
    │   │                                    parameter or stack operation)
    │   └── TooManyRequests              429 TooManyRequestsException (+ Reason, Retry-After)
    └── PlatformError                the engine could not do it ("Type": "Service")
        ├── ServiceError                 500 ServiceException
        │   └── StoreUnavailable             the store failed (disk full, database down)
        └── ResourceNotReady             502 ResourceNotReadyException

Errors of the *function* (handler exceptions, timeouts, runtime exits) are not exceptions of
the engine: they are outcomes of an invocation (`model.InvocationOutcome`), answered with 200
and `X-Amz-Function-Error` as Lambda does.

The only place that turns these into HTTP responses is `api/app.py`. Spec §2.2, §3.
"""

from __future__ import annotations

from typing import Any, ClassVar


class LaminaError(Exception):
    """Base of every error the engine reports to a caller."""

    error_type: ClassVar[str] = "ServiceException"
    status: ClassVar[int] = 500
    fault: ClassVar[str] = "platform"
    # AWS's recorded bodies use "message" for some shapes and "Message" for others (spec §2.2).
    message_key: ClassVar[str] = "Message"

    def __init__(self, message: str = "", *, typed: bool = True, **members: Any) -> None:
        super().__init__(message)
        self.message = message
        self.members = members
        # AWS leaves "Type" out of a few error bodies of a class that otherwise carries it
        self.typed = typed

    def body(self) -> dict[str, Any]:
        """The JSON body AWS sends for this error."""
        body: dict[str, Any] = dict(self.members)
        if self.typed:
            body["Type"] = "User" if self.fault == "client" else "Service"
        body[self.message_key] = self.message
        return body

    def headers(self) -> list[tuple[str, str]]:
        return []


class ClientError(LaminaError):
    fault = "client"
    status = 400


class ValidationError(ClientError):
    """A value breaks a constraint of the API model (pattern, length, range, enum)."""

    error_type = "ValidationException"
    message_key = "message"

    def body(self) -> dict[str, Any]:
        return {"message": self.message}

    @classmethod
    def field(cls, value: Any, field: str, constraint: str) -> ValidationError:
        return cls.fields([(value, field, constraint)])

    @classmethod
    def fields(cls, problems: list[tuple[Any, str, str]]) -> ValidationError:
        """Every broken constraint of a request in one error, as AWS reports them."""
        count = len(problems)
        listed = "; ".join(
            f"Value {_shown(value)} at '{field}' failed to satisfy constraint: {constraint}"
            for value, field, constraint in problems
        )
        return cls(f"{count} validation error{'s' if count > 1 else ''} detected: {listed}")


def _shown(value: Any) -> str:
    """A value as AWS quotes it in a validation message: `null` (a missing member) bare."""
    return "null" if value is None else f"'{value}'"


class InvalidParameterValue(ClientError):
    error_type = "InvalidParameterValueException"
    message_key = "message"


class InvalidRequestContent(ClientError):
    error_type = "InvalidRequestContentException"
    message_key = "message"


class ResourceInUse(ClientError):
    error_type = "ResourceInUseException"


class AccessDenied(ClientError):
    """A resource of another account. AWS's body is `{"Message": null}`: no words, no Type."""

    error_type = "AccessDeniedException"
    status = 403

    def body(self) -> dict[str, Any]:
        return {"Message": self.message or None}


class Unauthenticated(ClientError):
    """SigV4 refused the request (`--auth sigv4`): AWS's body is `{"message": ...}`."""

    status = 403
    message_key = "message"

    def __init__(self, message: str = "") -> None:
        super().__init__(message, typed=False)


class MissingAuthenticationToken(Unauthenticated):
    error_type = "MissingAuthenticationTokenException"


class IncompleteSignature(Unauthenticated):
    error_type = "IncompleteSignatureException"


class InvalidSignature(Unauthenticated):
    error_type = "InvalidSignatureException"


class UnrecognizedClient(Unauthenticated):
    error_type = "UnrecognizedClientException"


class ExpiredToken(Unauthenticated):
    error_type = "ExpiredTokenException"


class ResourceNotFound(ClientError):
    error_type = "ResourceNotFoundException"
    status = 404


class CodeSigningConfigNotFound(ClientError):
    error_type = "CodeSigningConfigNotFoundException"
    status = 404


class CodeVerificationFailed(ClientError):
    """A deployment a code signing policy of `Enforce` refuses (signature checks failed)."""

    error_type = "CodeVerificationFailedException"


class PolicyLengthExceeded(ClientError):
    error_type = "PolicyLengthExceededException"
    message_key = "message"


class PublicPolicy(ClientError):
    error_type = "PublicPolicyException"


class CapacityProviderLimit(ClientError):
    error_type = "CapacityProviderLimitExceededException"
    message_key = "message"


class ProvisionedConfigNotFound(ClientError):
    error_type = "ProvisionedConcurrencyConfigNotFoundException"
    status = 404
    message_key = "message"


class UnknownOperation(ClientError):
    error_type = "UnknownOperationException"
    status = 404


class ResourceConflict(ClientError):
    error_type = "ResourceConflictException"
    status = 409
    message_key = "message"


class DurableExecutionAlreadyStarted(ClientError):
    error_type = "DurableExecutionAlreadyStartedException"
    status = 409


class CallbackTimeout(ClientError):
    """A callback answered after it timed out (or after its execution ended)."""

    error_type = "CallbackTimeoutException"


class PreconditionFailed(ClientError):
    error_type = "PreconditionFailedException"
    status = 412
    message_key = "message"


class RequestTooLarge(ClientError):
    # The model calls the shape RequestTooLargeException; AWS sends this code (spec §3, §20 #1).
    error_type = "RequestEntityTooLargeException"
    status = 413
    message_key = "message"


class UnsupportedMediaType(ClientError):
    error_type = "UnsupportedMediaTypeException"
    status = 415
    message_key = "message"


class TemplateError(ClientError):
    """A template, its parameters or a stack operation CloudFormation would refuse."""

    error_type = "ValidationError"


class TooManyRequests(ClientError):
    """A throttle: the function did not run. `reason` is one of Lambda's Reason values."""

    error_type = "TooManyRequestsException"
    status = 429
    message_key = "message"

    def __init__(
        self, reason: str, message: str = "Rate Exceeded.", retry_after: int | None = 1
    ) -> None:
        if reason == "ReservedFunctionConcurrentInvocationLimitExceeded":
            retry_after = None  # AWS sends no Retry-After when a reservation is used up
        super().__init__(message, Reason=reason)
        self.reason = reason
        self.retry_after = retry_after

    def headers(self) -> list[tuple[str, str]]:
        return [] if self.retry_after is None else [("Retry-After", str(self.retry_after))]


class PlatformError(LaminaError):
    fault = "platform"
    status = 500


class ServiceError(PlatformError):
    error_type = "ServiceException"


class StoreUnavailable(ServiceError):
    """The store could not be read or written; nothing was changed, the caller may retry."""


class ResourceNotReady(PlatformError):
    error_type = "ResourceNotReadyException"
    status = 502
    message_key = "message"
