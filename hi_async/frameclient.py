"""A lean GetImageFrame: one aiohttp session, signed with botocore's own SigV4 signer.

GetImageFrame is the one call made thousands of times a second. Through aiobotocore it
costs about 1 ms of client CPU per call on this kind of machine (event hooks, user-agent
assembly, model-driven serialisation and parsing, an invocation ID from os.urandom), which
is close to what decoding the frame costs. This path sends the same HTTP request the SDK
sends (same URI, JSON body, SigV4 signature from botocore's signer with the same
credential chain, region and endpoint) and turns error answers into the same
``botocore.exceptions.ClientError`` the SDK raises, so retries and error messages are
shared with every other call. Everything else still goes through aiobotocore.
"""

from __future__ import annotations

import gzip
import inspect
import json
import zlib
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import botocore.exceptions as bx

from . import __version__, aws
from .settings import Settings
from .sigv4 import JsonPostSigner

_SIGNING_NAME = "medical-imaging"
# Every data-plane operation carries this host prefix (botocore's model: "endpoint":
# {"hostPrefix": "runtime-"}); a custom endpoint URL is used as it is.
_DATA_PLANE_PREFIX = "runtime-"


def data_plane_url(control_plane_url: str, *, custom: bool) -> str:
    """The base URL GetImageFrame goes to, given the client's (control plane) endpoint."""
    if custom:
        return control_plane_url.rstrip("/")
    parts = urlsplit(control_plane_url)
    host = parts.netloc
    if not host.startswith(_DATA_PLANE_PREFIX):
        host = _DATA_PLANE_PREFIX + host
    return urlunsplit((parts.scheme, host, "", "", "")).rstrip("/")


def _client_error(status: int, headers: Any, body: bytes) -> bx.ClientError:
    """The ClientError botocore would raise for this error answer (same code rules)."""
    code = ""
    message = ""
    header = headers.get("x-amzn-ErrorType")
    if header:
        code = header.split(":", 1)[0]
    try:
        doc = json.loads(body) if body else {}
    except ValueError:
        doc = {}
    if isinstance(doc, dict):
        code = code or str(doc.get("code") or doc.get("Code") or doc.get("__type") or "")
        message = str(doc.get("message") or doc.get("Message") or "")
    if "#" in code:
        code = code.rsplit("#", 1)[1]
    response = {
        "Error": {"Code": code or str(status), "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": dict(headers)},
    }
    return bx.ClientError(response, "GetImageFrame")  # type: ignore[arg-type]


def _identity(data: bytes, encoding: str | None) -> bytes:
    """The body as stored, should a proxy compress it despite ``Accept-Encoding: identity``."""
    kind = (encoding or "identity").strip().lower()
    if kind in ("identity", ""):
        return data
    if kind in ("gzip", "x-gzip"):
        return gzip.decompress(data)
    if kind == "deflate":
        return zlib.decompress(data)
    raise bx.ResponseStreamingError(error=f"unsupported Content-Encoding {encoding!r}")


class FrameClient:
    """``await get_frame(...)`` → (encoded bytes, Content-Type); use as an async context."""

    def __init__(self, settings: Settings, control_plane_url: str, pool: int) -> None:
        self._settings = settings
        self._base = data_plane_url(control_plane_url, custom=settings.endpoint_url is not None)
        self._base_path = urlsplit(self._base).path.rstrip("/")
        self._signer: JsonPostSigner | None = None
        self._pool = pool
        self._http: aiohttp.ClientSession | None = None
        self._credentials: Any = None
        self._refresh: Any = None  # async getter of frozen credentials, when they expire
        self._region = ""

    async def __aenter__(self) -> FrameClient:
        try:
            await self._resolve()
        except bx.BotoCoreError as exc:
            raise aws.translate(exc, "get AWS credentials", self._settings) from None
        connector = aiohttp.TCPConnector(limit=self._pool, limit_per_host=self._pool,
                                         keepalive_timeout=60.0, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(sock_connect=self._settings.connect_timeout,
                                        sock_read=self._settings.read_timeout)
        self._http = aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=False,
            # As botocore does: never ask for a compressed frame (it is compressed already).
            headers={"User-Agent": f"hi_async/{__version__}", "Accept-Encoding": "identity"},
        )
        return self

    async def _resolve(self) -> None:
        """Region, signer and credentials, from the same chain the SDK uses."""
        session = aws._session(self._settings)
        self._region = aws.resolve_region(session, self._settings)
        self._signer = JsonPostSigner(self._base, _SIGNING_NAME, self._region)
        explicit = aws.explicit_credentials(self._settings)
        if explicit:
            from botocore.credentials import Credentials

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
            await self._http.close()
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
        """The frame's bytes as stored, read whole; raises botocore/aiohttp errors."""
        assert self._http is not None, "use FrameClient inside 'async with'"
        path = (f"{self._base_path}/datastore/{quote(datastore_id, safe='')}"
                f"/imageSet/{quote(image_set_id, safe='')}/getImageFrame")
        body = json.dumps({"imageFrameId": frame_id}).encode()
        headers = await self._signed_headers(path, body)
        url = self._base + path[len(self._base_path):]
        try:
            async with self._http.post(url, data=body, headers=headers) as resp:
                data = await resp.read()
                if resp.status != 200:
                    raise _client_error(resp.status, resp.headers, data)
                return _identity(data, resp.headers.get("Content-Encoding")), resp.headers.get(
                    "Content-Type")
        except aiohttp.ClientConnectorError as exc:
            raise bx.EndpointConnectionError(endpoint_url=self._base) from exc

