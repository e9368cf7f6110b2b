"""SigV4 signature checking for ``--verify-signatures``, and the per-key denials after it.

The canonical request is rebuilt from what arrived (method, the path as sent, the
query, the signed headers, the body's SHA-256) exactly as botocore builds it for a
rest-json service, and the signature recomputed with the configured secret. Neither the
secret nor any signed header value is ever logged or echoed in an error.

:func:`authorize` then refuses the operations configured as denied for the signing key,
in the words IAM uses, so that a client's access-denied path can be tested over the wire.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, quote

from .apierrors import (
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


def verify(method: str, raw_path: str, headers: dict[str, str] | object, body: bytes,
           credentials: dict[str, str]) -> str:
    """The signing access key id; raise the error AWS answers with unless the signature is right.

    ``headers`` is a case-insensitive mapping (aiohttp's ``request.headers``).
    """
    get = headers.get  # type: ignore[attr-defined]
    auth = get("Authorization")
    if not auth:
        raise MissingAuthenticationTokenException("the request carries no signature; sign it")
    parts = parse_authorization(auth)
    scope = parts["Credential"].split("/")
    if len(scope) != 5:
        raise InvalidSignatureException("the credential scope is malformed")
    access_key, date, region, service, terminator = scope
    secret = credentials.get(access_key)
    if secret is None:
        raise UnrecognizedClientException("The security token included in the request is invalid.")
    path, _, query = raw_path.partition("?")
    canonical_uri = quote(path, safe="/~")
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~"))
                   for k, v in parse_qsl(query, keep_blank_values=True))
    canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    signed = parts["SignedHeaders"].split(";")
    canonical_headers = "".join(
        f"{name}:{' '.join((get(name) or '').split())}\n" for name in signed)
    payload_hash = get("X-Amz-Content-SHA256") or hashlib.sha256(body).hexdigest()
    canonical = "\n".join([method, canonical_uri, canonical_query, canonical_headers,
                           parts["SignedHeaders"], payload_hash])
    amz_date = get("X-Amz-Date") or ""
    string_to_sign = "\n".join([
        "AWS4-HMAC-SHA256", amz_date, f"{date}/{region}/{service}/{terminator}",
        hashlib.sha256(canonical.encode()).hexdigest()])
    key = _sign(_sign(_sign(_sign(f"AWS4{secret}".encode(), date), region), service), terminator)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parts["Signature"]):
        raise InvalidSignatureException(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.")
    return access_key


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
