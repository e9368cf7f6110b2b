"""The service's error types, as the backend raises them and the wire carries them.

botocore reads the code from the ``x-amzn-ErrorType`` header and the message from the
body's ``message``; the status codes are the ones botocore's model gives each shape.
"""

from __future__ import annotations


class ServiceError(Exception):
    """An error the emulator answers with; ``code`` is the model's shape name."""

    code = "InternalServerException"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationException(ServiceError):
    code, status = "ValidationException", 400


class AccessDeniedException(ServiceError):
    code, status = "AccessDeniedException", 403


class ResourceNotFoundException(ServiceError):
    code, status = "ResourceNotFoundException", 404


class ConflictException(ServiceError):
    code, status = "ConflictException", 409


class ServiceQuotaExceededException(ServiceError):
    code, status = "ServiceQuotaExceededException", 402


class ThrottlingException(ServiceError):
    code, status = "ThrottlingException", 429


class InternalServerException(ServiceError):
    code, status = "InternalServerException", 500


class ServiceUnavailableException(ServiceError):
    code, status = "ServiceUnavailableException", 503


class UnknownOperationException(ServiceError):
    code, status = "UnknownOperationException", 404


class InvalidSignatureException(ServiceError):
    code, status = "InvalidSignatureException", 403


class UnrecognizedClientException(ServiceError):
    code, status = "UnrecognizedClientException", 403


class MissingAuthenticationTokenException(ServiceError):
    code, status = "MissingAuthenticationTokenException", 403
