"""SigV4 signature checking for ``--verify-signatures``, and the per-key denials after it.

The canonical request is rebuilt from what arrived (method, the path as sent, the
query, the signed headers, the payload hash) exactly as botocore builds it, and the
signature recomputed with the configured secret. Neither the secret nor any signed
header value is ever logged or echoed in an error.

Two dialects: S3 signs the path exactly as sent (already URI-encoded once), every other
service signs it URI-encoded once more. The signature comes in the Authorization header
or, for a presigned URL, in the query (``X-Amz-Signature`` and friends, payload
``UNSIGNED-PAYLOAD``, refused once ``X-Amz-Expires`` has passed). For S3 the payload hash
is whatever ``X-Amz-Content-SHA256`` says (a streaming upload's chunk signatures are not
checked; its seed signature is).

:func:`authorize` then refuses the operations configured as denied for the signing key,
in the words IAM uses, so that a client's access-denied path can be tested over the wire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote

from ..healthimaging.apierrors import (
    AccessDeniedException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def parse_authorization(header: str) -> dict[str, str]:
    """``Credential``, ``SignedHeaders`` and ``Signature`` of an AWS4-HMAC-SHA256 header."""
    algorithm, _, rest = header.partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        raise MissingAuthenticationTokenException(
            "only AWS4-HMAC-SHA256 signatures are accepted")
    parts = {}
    for item in rest.split(","):
        name, _, value = item.strip().partition("=")
        parts[name] = value
    if not {"Credential", "SignedHeaders", "Signature"} <= parts.keys():
        raise MissingAuthenticationTokenException("the Authorization header is incomplete")
    return parts


def verify(method: str, raw_path: str, headers: Mapping[str, str], body: bytes,
           credentials: dict[str, str], *, s3: bool = False,
           now: datetime | None = None) -> str:
    """The signing access key id; raise the error AWS answers with unless the signature is right.

    ``headers`` is a case-insensitive mapping (aiohttp's ``request.headers``); ``s3``
    selects S3's canonical path.
    """
    get = headers.get
    path, _, query = raw_path.partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    auth = get("Authorization")
    if not auth and s3 and any(k == "Signature" for k, _ in params):
        return _verify_s3_v2_presigned(method, path, dict(params), headers, credentials, now)
    if auth:
        parts = parse_authorization(auth)
        amz_date = get("X-Amz-Date") or ""
        payload_hash = get("X-Amz-Content-SHA256") or hashlib.sha256(body).hexdigest()
    else:
        parts, amz_date = _presigned(dict(params), now)
        params = [(k, v) for k, v in params if k != "X-Amz-Signature"]
        payload_hash = get("X-Amz-Content-SHA256") or (
            "UNSIGNED-PAYLOAD" if s3 else hashlib.sha256(body).hexdigest())
    scope = parts["Credential"].split("/")
    if len(scope) != 5:
        raise InvalidSignatureException("the credential scope is malformed")
    access_key, date, region, service, terminator = scope
    secret = _secret(credentials, access_key)
    canonical_uri = (path or "/") if s3 else quote(path, safe="/~")
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in params)
    canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    signed = parts["SignedHeaders"].split(";")
    canonical_headers = "".join(
        f"{name}:{' '.join((get(name) or '').split())}\n" for name in signed)
    canonical = "\n".join([method, canonical_uri, canonical_query, canonical_headers,
                           parts["SignedHeaders"], payload_hash])
    string_to_sign = "\n".join([
        "AWS4-HMAC-SHA256", amz_date, f"{date}/{region}/{service}/{terminator}",
        hashlib.sha256(canonical.encode()).hexdigest()])
    key = _sign(_sign(_sign(_sign(f"AWS4{secret}".encode(), date), region), service), terminator)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    _must_match(expected, parts["Signature"], "your AWS Secret Access Key")
    return access_key


#: Sub-resources that S3's version 2 signature covers (with the response overrides).
_V2_SUBRESOURCES = frozenset({
    "acl", "cors", "delete", "lifecycle", "location", "logging", "notification",
    "partNumber", "policy", "requestPayment", "tagging", "torrent", "uploadId", "uploads",
    "versionId", "versioning", "versions", "website", "response-cache-control",
    "response-content-disposition", "response-content-encoding", "response-content-language",
    "response-content-type", "response-expires"})


def _verify_s3_v2_presigned(method: str, path: str, query: dict[str, str], headers: Any,
                            credentials: dict[str, str], now: datetime | None) -> str:
    """An S3 URL presigned with signature version 2 (botocore's default for presigning).

    ``AWSAccessKeyId``, ``Expires`` (epoch seconds) and ``Signature`` (base64
    HMAC-SHA1 of the verb, Content-MD5, Content-Type, Expires, the x-amz- headers and
    the resource with its sub-resources).
    """
    get = headers.get
    access_key, expires = query.get("AWSAccessKeyId"), query.get("Expires")
    if not access_key or not expires:
        raise MissingAuthenticationTokenException("the request carries no signature; sign it")
    secret = _secret(credentials, access_key)
    try:
        deadline = datetime.fromtimestamp(int(expires), UTC)
    except (ValueError, OverflowError):
        raise InvalidSignatureException("Expires is malformed") from None
    _refuse_if_past(deadline, now)
    amz = sorted((name.lower(), " ".join(str(value).split()))
                 for name, value in headers.items()
                 if name.lower().startswith("x-amz-"))
    subresources = sorted((k, v) for k, v in query.items() if k in _V2_SUBRESOURCES)
    resource = (path or "/") + ("?" + "&".join(k if v == "" else f"{k}={v}"
                                               for k, v in subresources)
                                if subresources else "")
    string_to_sign = "\n".join([
        method, get("Content-MD5") or "", get("Content-Type") or "", expires,
        *(f"{name}:{value}" for name, value in amz), resource])
    expected = base64.b64encode(
        hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()).decode()
    _must_match(expected, query.get("Signature", ""), "your key")
    return access_key


_PRESIGNED = ("X-Amz-Credential", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Date")


def _presigned(query: dict[str, str], now: datetime | None) -> tuple[dict[str, str], str]:
    """The signature parts of a presigned URL's query, and its date; refuses an expired one."""
    if query.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or not all(
            query.get(name) for name in _PRESIGNED):
        raise MissingAuthenticationTokenException("the request carries no signature; sign it")
    amz_date = query["X-Amz-Date"]
    if expires := query.get("X-Amz-Expires"):
        try:
            signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            lifetime = timedelta(seconds=int(expires))
        except ValueError:
            raise InvalidSignatureException("X-Amz-Date or X-Amz-Expires is malformed") from None
        _refuse_if_past(signed_at + lifetime, now)
    return ({"Credential": query["X-Amz-Credential"],
             "SignedHeaders": query["X-Amz-SignedHeaders"],
             "Signature": query["X-Amz-Signature"]}, amz_date)


def _secret(credentials: dict[str, str], access_key: str) -> str:
    secret = credentials.get(access_key)
    if secret is None:
        raise UnrecognizedClientException("The security token included in the request is invalid.")
    return secret


def _refuse_if_past(deadline: datetime, now: datetime | None) -> None:
    if (now or datetime.now(UTC)) > deadline:
        raise AccessDeniedException("Request has expired")


def _must_match(expected: str, given: str, what: str) -> None:
    """Refuse a signature other than the one computed; ``what`` is what to check (S3
    and the other services word it differently)."""
    if not hmac.compare_digest(expected, given):
        raise InvalidSignatureException(
            "The request signature we calculated does not match the signature you provided. "
            f"Check {what} and signing method.")


def authorize(access_key: str, operation: str, resource_arn: str, account: str,
              denied: dict[str, frozenset[str]]) -> None:
    """Raise AccessDeniedException if ``operation`` is denied to ``access_key``.

    The message follows IAM's shape for an identity-based denial; the stack knows no
    user names, so the access key id (never the secret) stands in for one.
    """
    if operation in denied.get(access_key, ()):
        action = f"medical-imaging:{operation}"
        raise AccessDeniedException(
            f"User: arn:aws:iam::{account}:user/{access_key} is not authorized to perform: "
            f"{action} on resource: {resource_arn} because no identity-based policy allows "
            f"the {action} action")
