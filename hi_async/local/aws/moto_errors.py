"""Errors the stack answers for moto's services, in each service's own wire shape.

Two kinds: a refused signature (403, answered before moto sees the request) and a
crash inside moto (500). Each is written the way the service named in the request's
SigV4 credential scope writes its errors, so that botocore parses the code and message
as it would AWS's: S3 answers a bare ``<Error>`` document, the query services (IAM,
STS, CloudFormation) an ``<ErrorResponse>``, the JSON services (SSM, Lambda) a JSON
object with ``__type`` and the ``x-amzn-ErrorType`` header.
"""

from __future__ import annotations

import functools
import json
import logging
from xml.sax.saxutils import escape as xml_escape

from aiohttp import web

from ..healthimaging.apierrors import ServiceError

log = logging.getLogger("hi_async.local")

#: The code each service answers an internal failure with: the 500 error its API
#: reference documents, else the common ``InternalFailure``.
_INTERNAL_CODES = {
    "s3": ("InternalError", "We encountered an internal error. Please try again."),
    "iam": ("ServiceFailure", "The request processing has failed because of an unknown "
            "error, exception or failure."),
    "ssm": ("InternalServerError", "An error occurred on the server side."),
    "lambda": ("ServiceException", "The AWS Lambda service encountered an internal error."),
}
_INTERNAL_DEFAULT = ("InternalFailure", "The request processing has failed because of an "
                     "unknown error, exception or failure.")

#: The codes S3 and the query-protocol services (IAM, STS, CloudFormation) answer a
#: refused signature with, by the emulator's error type.
_S3_AUTH_CODES = {
    "InvalidSignatureException": ("SignatureDoesNotMatch", None),
    "UnrecognizedClientException": (
        "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."),
    "MissingAuthenticationTokenException": ("AccessDenied", "Access Denied"),
    "AccessDeniedException": ("AccessDenied", None),
}
_QUERY_AUTH_CODES = {
    "InvalidSignatureException": ("SignatureDoesNotMatch", None),
    "UnrecognizedClientException": ("InvalidClientTokenId", None),
    "MissingAuthenticationTokenException": (
        "MissingAuthenticationToken", "Request is missing Authentication Token"),
    "AccessDeniedException": ("AccessDenied", None),
}


@functools.lru_cache(maxsize=64)
def protocol_of(service: str | None) -> tuple[str, str]:
    """``(protocol, xml namespace)`` of the service a signing name stands for.

    Read from botocore's model; an unsigned request or an unknown name counts as S3,
    which is what moto answers unsigned requests as.
    """
    if not service or service == "s3":
        return "rest-xml", ""
    try:
        from botocore.session import get_session

        model = get_session().get_service_model(service)
    except Exception:  # not a service botocore knows by this name
        return "query", ""
    return model.protocol, str(model.metadata.get("xmlNamespace") or "")


def _xml_error(service: str | None, status: int, code: str, message: str,
               request_id: str, *, sender: bool) -> web.Response:
    protocol, namespace = protocol_of(service)
    text = xml_escape(message)
    if protocol == "rest-xml":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{text}</Message>"
                f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>")
    else:
        xmlns = f' xmlns="{namespace}"' if namespace else ""
        kind = "Sender" if sender else "Receiver"
        body = (f"<ErrorResponse{xmlns}><Error><Type>{kind}</Type><Code>{code}</Code>"
                f"<Message>{text}</Message></Error><RequestId>{request_id}</RequestId>"
                "</ErrorResponse>")
    return web.Response(status=status, body=body.encode(), content_type="text/xml",
                        headers={"x-amzn-RequestId": request_id,
                                 "x-amz-request-id": request_id})


def _json_error(service: str | None, status: int, code: str, message: str,
                request_id: str) -> web.Response:
    protocol, _ = protocol_of(service)
    content_type = "application/x-amz-json-1.1" if protocol == "json" else "application/json"
    body = json.dumps({"__type": code, "message": message}).encode()
    return web.Response(status=status, body=body, content_type=content_type,
                        headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": request_id})


def speaks_json(service: str | None) -> bool:
    return protocol_of(service)[0] in ("json", "rest-json")


def internal_error(service: str | None, request_id: str, cause: str) -> web.Response:
    """The 500 the service answers when it fails; ``cause`` names the local reason."""
    code, message = _INTERNAL_CODES.get(service or "s3", _INTERNAL_DEFAULT)
    message = f"{message} (local stack: {cause}; its log has the details)"
    if speaks_json(service):
        return _json_error(service, 500, code, message, request_id)
    return _xml_error(service, 500, code, message, request_id, sender=False)


def auth_error(service: str | None, exc: ServiceError, request_id: str) -> web.Response:
    """A refused signature (403) in the words and shape the service itself uses."""
    if speaks_json(service):
        # The JSON services use the same codes as HealthImaging, the emulator's own.
        return _json_error(service, 403, exc.code, exc.message, request_id)
    s3 = protocol_of(service)[0] == "rest-xml"
    code, message = (_S3_AUTH_CODES if s3 else _QUERY_AUTH_CODES).get(
        exc.code, ("AccessDenied", None))
    return _xml_error(service, 403, code, message or exc.message, request_id, sender=True)
