"""Who may call the control routes (``/_hi_async/*``) of a stack that checks signatures.

Without ``--verify-signatures`` the stack trusts every caller (it binds 127.0.0.1 unless
told otherwise) and the control routes stay open, as they always were. With it, a stack
is meant to be reachable by others, and an open ``POST /_hi_async/reset`` would let
anyone who reaches the port wipe its data, an open ``POST /_hi_async/faults`` make it
fail on purpose. So every control route but the health check needs one of:

- ``Authorization: Bearer <control token>``, the token the stack was started with
  (:class:`~.stack.LocalStack` makes one per stack; ``local serve`` takes
  ``HI_ASYNC_LOCAL_CONTROL_TOKEN`` or writes a fresh one to ``<data dir>/control-token``,
  readable by its owner only). The easy way for curl and scripts.
- A SigV4 signature by one of the stack's credentials, with any service name and region
  in its scope: these routes belong to no AWS service, and the signature already binds
  the key, method, path, body and time. It must be less than 15 minutes old (AWS's
  window), so a request seen on the wire cannot be replayed later. A key restricted with
  ``deny=`` or ``readonly`` stands in for a limited IAM user: it may read (GET) but not
  change (POST) the stack.

``GET /_hi_async/health`` stays open: load balancers and readiness probes (the workflow's
among them) call it without credentials, and to such a caller it says only whether the
stack is ready.

Refusals are 403 with the error types and words AWS uses for the same faults.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from .aws.sigv4_verify import verify
from .config import StackConfig
from .healthimaging.apierrors import (
    AccessDeniedException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
)

#: Environment variable ``local serve`` reads the control token from.
CONTROL_TOKEN_ENV = "HI_ASYNC_LOCAL_CONTROL_TOKEN"
#: How far a signed request's X-Amz-Date may be from now, either way (AWS's window).
MAX_CLOCK_SKEW = timedelta(minutes=15)
_BEARER = "Bearer "
_AMZ_DATE = "%Y%m%dT%H%M%SZ"


def is_open(name: str, method: str) -> bool:
    """The one control route that needs no credentials: the health check."""
    return name == "health" and method == "GET"


def check_control_access(method: str, raw_path: str, headers: Mapping[str, str],
                         body: bytes, config: StackConfig, *,
                         now: datetime | None = None) -> str:
    """Who is calling (``"token"`` or the access key id); raise a 403 ServiceError if nobody
    the stack trusts.

    ``headers`` is a case-insensitive mapping (aiohttp's ``request.headers``).
    """
    auth = headers.get("Authorization") or ""
    if auth.startswith(_BEARER):
        token = config.control_token
        if token and hmac.compare_digest(auth[len(_BEARER):].strip().encode(), token.encode()):
            return "token"
        raise AccessDeniedException(
            "The control token is not the one this local stack was started with; take it "
            "from HI_ASYNC_LOCAL_CONTROL_TOKEN or the control-token file in its data folder")
    query = raw_path.partition("?")[2]
    if not auth and "X-Amz-Credential=" not in query:
        raise MissingAuthenticationTokenException(
            "The control routes of a local stack started with --verify-signatures need "
            "'Authorization: Bearer <control token>' or a SigV4 signature by one of its "
            "credentials")
    key = verify(method, raw_path, headers, body, config.credentials, now=now)
    if auth:  # a presigned URL's lifetime is checked by verify() itself
        _check_fresh(headers.get("X-Amz-Date"), now or datetime.now(UTC))
    if method != "GET" and config.denied.get(key):
        raise AccessDeniedException(
            f"User: arn:aws:iam::{config.account_id}:user/{key} is not authorized to "
            f"change the local stack: the key is restricted (deny= or readonly in "
            f"HI_ASYNC_LOCAL_CREDENTIALS); sign with an unrestricted key or use the "
            f"control token")
    return key


def _check_fresh(amz_date: str | None, now: datetime) -> None:
    """Refuse a signature made more than :data:`MAX_CLOCK_SKEW` from now, in AWS's words."""
    try:
        signed_at = datetime.strptime(amz_date or "", _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidSignatureException(
            "The request must carry its signing time in X-Amz-Date (YYYYMMDDTHHMMSSZ)"
        ) from None
    stamp, at = signed_at.strftime(_AMZ_DATE), now.strftime(_AMZ_DATE)
    if signed_at < now - MAX_CLOCK_SKEW:
        earliest = (now - MAX_CLOCK_SKEW).strftime(_AMZ_DATE)
        raise InvalidSignatureException(
            f"Signature expired: {stamp} is now earlier than {earliest} ({at} - 15 min.)")
    if signed_at > now + MAX_CLOCK_SKEW:
        latest = (now + MAX_CLOCK_SKEW).strftime(_AMZ_DATE)
        raise InvalidSignatureException(
            f"Signature not yet current: {stamp} is still later than {latest} "
            f"({at} + 15 min.)")
