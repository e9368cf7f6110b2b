"""A small HTTP/1.1 client for the one request hi_async sends thousands of times a second.

GetImageFrame is a POST with a tiny JSON body whose answer is one binary body. A general
client (aiohttp) spends most of a request's client CPU on machinery this needs none of:
cookie jars, tracing hooks, multidict headers, redirect and proxy handling, a stream
reader per response. This one keeps a pool of keep-alive connections
(:mod:`hi_async.aws.http_connection`), each parsing its answer as it arrives. TLS is
asyncio's, with the system's trust store.

Errors are the transport's own kinds, which :mod:`hi_async.aws.errors` classifies:
:class:`~hi_async.aws.errors.Unreachable` when nobody answers at the endpoint,
``ConnectionError`` when a connection breaks mid-answer (the whole request is sent again
by the retry loop), ``TimeoutError`` when the server goes silent for ``read_timeout``
seconds or sends slower than ``min_rate`` (see :mod:`hi_async.aws.http_connection`).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from urllib.parse import urlsplit

from .errors import Unreachable
from .http_connection import Connection, ProtocolError, Response

__all__ = ["HttpPool", "ProtocolError", "Response"]


class HttpPool:
    """Keep-alive connections to one origin; ``await pool.post(...)`` sends one request.

    At most ``size`` connections exist; a request waits for a free one. A reused
    connection the server had already closed fails before any byte of an answer: the
    request is then sent once more on a new connection, as browsers and aiohttp do.
    """

    def __init__(self, base_url: str, *, size: int, connect_timeout: float,
                 read_timeout: float, min_rate: float, user_agent: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.base_url = base_url
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = (ssl.create_default_context()
                                            if parts.scheme == "https" else None)
        default_port = (parts.scheme == "http" and self._port == 80) or (
            parts.scheme == "https" and self._port == 443)
        host_header = parts.netloc if not default_port else parts.hostname
        if ":" in (parts.hostname or "") and default_port:
            host_header = f"[{parts.hostname}]"
        self._fixed_headers = (f"Host: {host_header}\r\nUser-Agent: {user_agent}\r\n"
                               "Accept-Encoding: identity\r\n").encode("latin-1")
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._min_rate = min_rate
        self._idle: collections.deque[Connection] = collections.deque()
        self._slots = asyncio.Semaphore(size)
        self._closed = False

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> Response:
        """POST ``body`` to ``path`` with ``headers``; the whole answer."""
        varying = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
        request = b"".join((f"POST {path} HTTP/1.1\r\n".encode("latin-1"),
                            self._fixed_headers,
                            f"{varying}Content-Length: {len(body)}\r\n\r\n".encode("latin-1"),
                            body))
        async with self._slots:
            return await self._exchange(request)

    async def _exchange(self, request: bytes) -> Response:
        conn, reused = await self._connection()
        try:
            try:
                response = await conn.request(request)
            except ConnectionError:
                if not (reused and not conn.received_any):
                    raise
                # A keep-alive connection the server closed while it sat idle.
                conn, reused = await self._new_connection(), False
                response = await conn.request(request)
        except BaseException:
            conn.abort()
            raise
        if conn.reusable and not conn.closed and not self._closed:
            self._idle.append(conn)
        return response

    async def _connection(self) -> tuple[Connection, bool]:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn, True
        return await self._new_connection(), False

    async def _new_connection(self) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: Connection(loop, self._read_timeout, self._min_rate),
                    self._host, self._port,
                    ssl=self._ssl, server_hostname=self._host if self._ssl else None)
        except (OSError, TimeoutError) as exc:
            if isinstance(exc, ssl.SSLError):
                raise  # the endpoint answers, but not with a certificate we trust
            raise Unreachable(self.base_url) from exc
        return conn

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
