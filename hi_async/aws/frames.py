"""GetImageFrame, the one call made thousands of times a second: lean, or through the SDK.

Through aiobotocore a call costs about as much client CPU as decoding the frame (event
hooks, user-agent assembly, model-driven serialisation and parsing, an invocation ID from
os.urandom; figures in benchmarks/NOTES.md). :class:`LeanFrames` sends the same HTTP
request the SDK sends (same URI, JSON body, SigV4 signature computed as botocore's signer
does, with the same credential chain, region and endpoint) on a pool of keep-alive
connections (:mod:`hi_async.aws.http`), and reports error answers as
:class:`~hi_async.aws.errors.ApiError`, parsed by botocore's rules. :class:`SdkFrames`
is the same call through aiobotocore.
"""

from __future__ import annotations

import gzip
import inspect
import json
import zlib
from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

import botocore.exceptions as bx
from botocore.credentials import Credentials

from .. import __version__
from ..settings import Settings
from .clients import aws_session, custom_endpoint, explicit_credentials, resolve_region
from .errors import ApiError, BodyError, translate
from .http import HttpPool
from .sigv4 import JsonPostSigner

_SIGNING_NAME = "medical-imaging"
# Every data-plane operation carries this host prefix (botocore's model: "endpoint":
# {"hostPrefix": "runtime-"}); a custom endpoint URL is used as it is.
_DATA_PLANE_PREFIX = "runtime-"


class FrameGetter(Protocol):
    """One GetImageFrame: the frame's bytes as stored and their Content-Type.

    Raises the transport's own errors (ApiError, connection and timeout errors, botocore's
    for the SDK path); the caller's Retrier classifies and translates them.
    """

    async def get_frame(self, datastore_id: str, image_set_id: str,
                        frame_id: str) -> tuple[bytes, str | None]: ...


def data_plane_url(control_plane_url: str, *, custom: bool) -> str:
    """The base URL GetImageFrame goes to, given the client's (control plane) endpoint."""
    if custom:
        return control_plane_url.rstrip("/")
    parts = urlsplit(control_plane_url)
    host = parts.netloc
    if not host.startswith(_DATA_PLANE_PREFIX):
        host = _DATA_PLANE_PREFIX + host
    return urlunsplit((parts.scheme, host, "", "", "")).rstrip("/")


def identity_body(data: bytes, encoding: str | None) -> bytes:
    """The body as stored, should a proxy compress it despite ``Accept-Encoding: identity``."""
    kind = (encoding or "identity").strip().lower()
    if kind in ("identity", ""):
        return data
    if kind in ("gzip", "x-gzip"):
        return gzip.decompress(data)
    if kind == "deflate":
        return zlib.decompress(data)
    raise BodyError(f"unsupported Content-Encoding {encoding!r}")


class SdkFrames:
    """GetImageFrame through an aiobotocore client (``Settings.frame_client="sdk"``)."""

    def __init__(self, mi: Any) -> None:
        self._mi = mi

    async def get_frame(self, datastore_id: str, image_set_id: str,
                        frame_id: str) -> tuple[bytes, str | None]:
        answer = await self._mi.get_image_frame(
            datastoreId=datastore_id, imageSetId=image_set_id,
            imageFrameInformation={"imageFrameId": frame_id})
        body = answer["imageFrameBlob"]
        try:
            data = await body.read()
        finally:
            body.close()
        return bytes(data), answer.get("contentType")


class LeanFrames:
    """GetImageFrame on a pool of keep-alive connections, signed per request; use as an
    async context."""

    def __init__(self, settings: Settings, control_plane_url: str, pool: int) -> None:
        self._settings = settings
        custom = custom_endpoint(settings, "medical-imaging") is not None
        self._base = data_plane_url(control_plane_url, custom=custom)
        self._base_path = urlsplit(self._base).path.rstrip("/")
        self._signer: JsonPostSigner | None = None
        self._pool = pool
        self._http: HttpPool | None = None
        self._credentials: Any = None
        self._refresh: Any = None  # async getter of frozen credentials, when they expire

    async def __aenter__(self) -> LeanFrames:
        try:
            await self._resolve()
        except bx.BotoCoreError as exc:
            raise translate(exc, "get AWS credentials", self._settings) from None
        self._http = HttpPool(self._base, size=self._pool,
                              connect_timeout=self._settings.connect_timeout,
                              read_timeout=self._settings.read_timeout,
                              user_agent=f"hi_async/{__version__}")
        return self

    async def _resolve(self) -> None:
        """Region, signer and credentials, from the same chain the SDK uses."""
        session = aws_session(self._settings)
        region = resolve_region(session, self._settings)
        self._signer = JsonPostSigner(self._base, _SIGNING_NAME, region)
        explicit = explicit_credentials(self._settings)
        if explicit:
            self._credentials = Credentials(explicit["aws_access_key_id"],
                                            explicit["aws_secret_access_key"],
                                            explicit.get("aws_session_token"))
        else:
            self._credentials = await session.get_credentials()
            getter = getattr(self._credentials, "get_frozen_credentials", None)
            if getter is not None and inspect.iscoroutinefunction(getter):
                self._refresh = getter

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _signed_headers(self, path: str, body: bytes) -> dict[str, str]:
        if self._credentials is None:
            raise bx.NoCredentialsError()
        frozen = await self._refresh() if self._refresh is not None else self._credentials
        assert self._signer is not None
        return self._signer.headers(path, body, frozen.access_key, frozen.secret_key,
                                    frozen.token)

    async def get_frame(self, datastore_id: str, image_set_id: str,
                        frame_id: str) -> tuple[bytes, str | None]:
        """The frame's bytes as stored, read whole."""
        assert self._http is not None, "use LeanFrames inside 'async with'"
        path = (f"{self._base_path}/datastore/{quote(datastore_id, safe='')}"
                f"/imageSet/{quote(image_set_id, safe='')}/getImageFrame")
        body = json.dumps({"imageFrameId": frame_id}).encode()
        headers = await self._signed_headers(path, body)
        answer = await self._http.post(path, headers, body)
        if answer.status != 200:
            raise ApiError.from_answer(answer.status, answer.headers, answer.body)
        return (identity_body(answer.body, answer.header("content-encoding")),
                answer.header("content-type"))
