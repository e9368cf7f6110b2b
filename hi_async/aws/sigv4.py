"""SigV4 for the one request shape sent thousands of times a second: a JSON POST.

botocore's ``SigV4Auth.add_auth`` rebuilds everything per request (URL parsing, header
normalisation, the four-HMAC signing key), a large share of the event loop's time in a
frame download. This signer computes the same signature (same canonical request,
same string to sign; a test checks it against botocore's signer byte for byte) with the
signing key cached per day, the timestamp per second and the canonical path per path
(one per image set), so that a request costs two SHA-256 digests and one HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlsplit

_ALGORITHM = "AWS4-HMAC-SHA256"
_CONTENT_TYPE = "application/json"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def canonical_host(url: str) -> str:
    """The Host header botocore signs: the netloc without a default port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    if port is not None and not (
        (parts.scheme == "http" and port == 80) or (parts.scheme == "https" and port == 443)
    ):
        host = f"{host}:{port}"
    return host


class JsonPostSigner:
    """Signs ``POST <path>`` with a JSON body for one host, service and region."""

    def __init__(self, base_url: str, service: str, region: str) -> None:
        self._host = canonical_host(base_url)
        self._service = service
        self._region = region
        self._key = b""
        self._key_for: tuple[str, str] = ("", "")
        self._second = -1
        self._stamp = ""
        self._paths: dict[str, str] = {}

    def _signing_key(self, secret: str, day: str) -> bytes:
        if self._key_for != (secret, day):
            k = _hmac(("AWS4" + secret).encode(), day)
            k = _hmac(k, self._region)
            k = _hmac(k, self._service)
            self._key = _hmac(k, "aws4_request")
            self._key_for = (secret, day)
        return self._key

    def headers(self, path: str, body: bytes, access_key: str, secret_key: str,
                token: str | None = None, *, now: float | None = None) -> dict[str, str]:
        """The headers to send: Content-Type, X-Amz-Date, [X-Amz-Security-Token], Authorization.

        ``path`` is the request path as sent (already percent-encoded where needed).
        """
        second = int(time.time() if now is None else now)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y%m%dT%H%M%SZ",
                                                              time.gmtime(second))
        stamp = self._stamp
        day = stamp[:8]
        canonical_path = self._paths.get(path)
        if canonical_path is None:
            if len(self._paths) > 4096:
                self._paths.clear()
            # botocore (non-S3) quotes the already-encoded path once more, keeping '/', '~'.
            canonical_path = self._paths[path] = quote(path, safe="/~")
        if token:
            signed = "content-type;host;x-amz-date;x-amz-security-token"
            canonical_headers = (f"content-type:{_CONTENT_TYPE}\nhost:{self._host}\n"
                                 f"x-amz-date:{stamp}\nx-amz-security-token:{token}\n")
        else:
            signed = "content-type;host;x-amz-date"
            canonical_headers = (f"content-type:{_CONTENT_TYPE}\nhost:{self._host}\n"
                                 f"x-amz-date:{stamp}\n")
        canonical_request = (f"POST\n{canonical_path}\n\n{canonical_headers}\n{signed}\n"
                             f"{hashlib.sha256(body).hexdigest()}")
        scope = f"{day}/{self._region}/{self._service}/aws4_request"
        string_to_sign = (f"{_ALGORITHM}\n{stamp}\n{scope}\n"
                          f"{hashlib.sha256(canonical_request.encode()).hexdigest()}")
        signature = hmac.digest(self._signing_key(secret_key, day), string_to_sign.encode(),
                                "sha256").hex()
        out = {
            "Content-Type": _CONTENT_TYPE,
            "X-Amz-Date": stamp,
            "Authorization": f"{_ALGORITHM} Credential={access_key}/{scope}, "
                             f"SignedHeaders={signed}, Signature={signature}",
        }
        if token:
            out["X-Amz-Security-Token"] = token
        return out
