"""The data plane a download lives on: GetImageFrame and GetImageSetMetadata.

GetImageFrame is made thousands of times a second. Through aiobotocore a call costs about
as much client CPU as decoding the frame (event hooks, user-agent assembly, model-driven
serialisation and parsing, an invocation ID from os.urandom; figures in
benchmarks/NOTES.md), and importing and building the SDK client costs a second of start-up
that a short download pays in full. :class:`LeanDataPlane` sends the same HTTP requests
the SDK sends (same URIs, JSON bodies, SigV4 signatures computed as botocore's signer
does, with the same credential chain, region and endpoint) on a pool of keep-alive
connections (:mod:`hi_async.aws.http`), and reports error answers as
:class:`~hi_async.aws.errors.ApiError`, parsed by botocore's rules. :class:`SdkDataPlane`
makes the same calls through aiobotocore.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

from .. import __version__
from ..settings import Settings
from .credentials import SERVICE, CredentialSource, custom_endpoint
from .errors import ApiError, BodyError
from .http import HttpPool
from .sigv4 import JsonPostSigner

# Every data-plane operation carries this host prefix (botocore's model: "endpoint":
# {"hostPrefix": "runtime-"}); a custom endpoint URL is used as it is.
_DATA_PLANE_PREFIX = "runtime-"
#: Request paths kept (per image set and operation) before the cache starts over.
_PATHS_KEPT = 4096
#: JSON's string encoder (C-accelerated).
_quote = json.encoder.encode_basestring_ascii


class DataPlane(Protocol):
    """The two data-plane calls a download makes.

    Both raise the transport's own errors (ApiError, connection and timeout errors,
    botocore's for the SDK path); the caller's Retrier classifies and translates them.
    """

    async def get_frame(self, datastore_id: str, image_set_id: str,
                        frame_id: str) -> tuple[bytes, str | None]:
        """The frame's bytes as stored, read whole, and their Content-Type."""

    async def get_metadata(self, datastore_id: str, image_set_id: str) -> bytes:
        """The image set's metadata document, gzip-compressed as served, read whole."""


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



class LeanDataPlane:
    """The data plane on a pool of keep-alive connections, each request signed; use as an
    async context. ``control_plane_url`` is HealthImaging's endpoint for the region."""

    def __init__(self, settings: Settings, control_plane_url: str, region: str,
                 credentials: CredentialSource, pool: int) -> None:
        self._settings = settings
        custom = custom_endpoint(settings, SERVICE) is not None
        self._base = data_plane_url(control_plane_url, custom=custom)
        self._base_path = urlsplit(self._base).path.rstrip("/")
        self._signer = JsonPostSigner(self._base, SERVICE, region)
        self._credentials = credentials
        self._pool = pool
        self._http: HttpPool | None = None
        self._paths: dict[tuple[str, str, str], str] = {}

    async def __aenter__(self) -> LeanDataPlane:
        self._http = HttpPool(self._base, size=self._pool,
                              connect_timeout=self._settings.connect_timeout,
                              read_timeout=self._settings.read_timeout,
                              min_rate=self._settings.min_rate,
                              user_agent=f"hi_async/{__version__}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _path(self, datastore_id: str, image_set_id: str, operation: str) -> str:
        key = (datastore_id, image_set_id, operation)
        path = self._paths.get(key)
        if path is None:  # one per image set: quoting is dear at thousands a second
            if len(self._paths) >= _PATHS_KEPT:
                self._paths.clear()
            path = self._paths[key] = (
                f"{self._base_path}/datastore/{quote(datastore_id, safe='')}"
                f"/imageSet/{quote(image_set_id, safe='')}/{operation}")
        return path

    async def _post(self, path: str, body: bytes) -> Any:
        assert self._http is not None, "use LeanDataPlane inside 'async with'"
        key, secret, token = self._credentials.frozen()
        headers = self._signer.headers(path, body, key, secret, token)
        answer = await self._http.post(path, headers, body)
        if answer.status != 200:
            raise ApiError.from_answer(answer.status, answer.headers, answer.body)
        return answer

    async def get_frame(self, datastore_id: str, image_set_id: str,
                        frame_id: str) -> tuple[bytes, str | None]:
        path = self._path(datastore_id, image_set_id, "getImageFrame")
        # The JSON the SDK sends, {"imageFrameId": "..."}, without a trip through json.
        body = f'{{"imageFrameId": {_quote(frame_id)}}}'.encode()
        answer = await self._post(path, body)
        return (identity_body(answer.body, answer.header("content-encoding")),
                answer.header("content-type"))

    async def get_metadata(self, datastore_id: str, image_set_id: str) -> bytes:
        # Served with Content-Encoding: gzip, which is the document's own compression:
        # the body is kept as it came, and inflated (with a bound) by the parser.
        answer = await self._post(self._path(datastore_id, image_set_id,
                                             "getImageSetMetadata"), b"")
        return bytes(answer.body)


class SdkDataPlane:
    """The data plane through an aiobotocore client (``Settings.frame_client="sdk"``).

    botocore's read timeout is per read, so a body is read under the same minimum-rate
    deadline the lean client keeps (``read_timeout`` plus its length over ``min_rate``).
    """

    def __init__(self, mi: Any, settings: Settings) -> None:
        self._mi = mi
        self._settings = settings

    async def _read(self, answer: dict[str, Any], blob: str) -> bytes:
        body = answer[blob]
        headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        length = str(headers.get("content-length", "0"))
        allowance = self._settings.read_timeout + (
            int(length) if length.isdigit() else 0) / self._settings.min_rate
        try:
            async with asyncio.timeout(allowance):
                return bytes(await body.read())
        finally:
            body.close()

    async def get_frame(self, datastore_id: str, image_set_id: str,
                        frame_id: str) -> tuple[bytes, str | None]:
        answer = await self._mi.get_image_frame(
            datastoreId=datastore_id, imageSetId=image_set_id,
            imageFrameInformation={"imageFrameId": frame_id})
        return await self._read(answer, "imageFrameBlob"), answer.get("contentType")

    async def get_metadata(self, datastore_id: str, image_set_id: str) -> bytes:
        answer = await self._mi.get_image_set_metadata(datastoreId=datastore_id,
                                                       imageSetId=image_set_id)
        return await self._read(answer, "imageSetMetadataBlob")
