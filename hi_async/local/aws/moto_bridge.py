"""moto's server app (S3, IAM, STS, CloudFormation, ...) behind our aiohttp endpoint.

moto's Flask/werkzeug WSGI app is called in a worker thread with an environ built from
the aiohttp request, so slow moto calls never block the event loop. moto keeps its state
in its usual process-global backends (account 123456789012 by default), which is what
lets the import job runner read input objects from moto's S3 in-process.

moto's state lives in memory; a stack that owns its process saves it to ``--data-dir``
when it stops and loads it when it starts again (:mod:`.moto_state`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import threading
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

#: Headers that describe the connection, not the answer; aiohttp sets its own.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date",
               "server"}


class MotoBridge:
    """Answers aiohttp requests with moto's WSGI application."""

    def __init__(self, workers: int = 8) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.app = DomainDispatcherApplication(create_backend_app)
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="moto")
        self._lock = threading.Lock()

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def reset() -> None:
        """Forget all of moto's state (every service, every account)."""
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        environ = self._environ(request, body)
        loop = asyncio.get_running_loop()
        status, headers, payload = await loop.run_in_executor(self.executor, self._call, environ)
        out: CIMultiDict[str] = CIMultiDict()
        length = None
        for name, value in headers:
            lname = name.lower()
            if lname == "content-length":
                length = value
            if lname not in _HOP_BY_HOP:
                out.add(name, value)
        if request.method == "GET" and status == 200:
            _drop_wrong_checksums(out, payload)
        if request.method == "HEAD":
            resp = web.StreamResponse(status=status, headers=out)
            if length is not None:
                resp.content_length = int(length)
            await resp.prepare(request)
            return resp
        return web.Response(status=status, headers=out, body=payload)

    def _call(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
            started["status"], started["headers"] = status, headers
            return lambda data: None

        result: Iterable[bytes] = self.app(environ, start_response)
        try:
            payload = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return int(started["status"].split(" ", 1)[0]), started["headers"], payload

    @staticmethod
    def _environ(request: web.Request, body: bytes) -> dict[str, Any]:
        from moto.core.request import (
            PRESERVED_HEADER_NAMES_ENVIRON_KEY,
            environ_key_for_header,
            should_preserve_original_header_name,
        )

        raw_path, _, query = request.raw_path.partition("?")
        host = request.host
        server_name, _, port = host.partition(":")
        path_bytes = _unquote_to_bytes(raw_path)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path_bytes.decode("latin-1"),
            "RAW_URI": request.raw_path,
            "REQUEST_URI": request.raw_path,
            "QUERY_STRING": query,
            "SERVER_NAME": server_name or "127.0.0.1",
            "SERVER_PORT": port or "80",
            "SERVER_PROTOCOL": f"HTTP/{request.version.major}.{request.version.minor}",
            "REMOTE_ADDR": (request.remote or "127.0.0.1"),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(body)),
        }
        preserved: dict[str, str] = {}
        for name, value in request.headers.items():
            key = environ_key_for_header(name)
            if key == "CONTENT_LENGTH":
                continue
            if "_" in name and not should_preserve_original_header_name(name):
                continue
            if should_preserve_original_header_name(name):
                preserved.setdefault(key, name)
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = preserved
        return environ


def _full_object_checksum(algorithm: str, payload: bytes) -> str | None:
    """S3's base64 full-object checksum of ``payload``; None for an algorithm not at hand."""
    if algorithm == "crc32":
        digest = zlib.crc32(payload).to_bytes(4, "big")
    elif algorithm in ("sha1", "sha256"):
        digest = hashlib.new(algorithm, payload).digest()
    else:
        return None
    return base64.b64encode(digest).decode()


def _drop_wrong_checksums(headers: CIMultiDict, payload: bytes) -> None:
    """Remove a full-object checksum header that does not match the body sent with it.

    moto gives a copy of a multipart object the source's composite checksum without its
    ``-N`` part count, as if it were the whole object's: boto3, which checks response
    checksums, then refuses a correct body. S3 never sends a wrong one, so neither do we.
    """
    for name in [n for n in headers if n.lower().startswith("x-amz-checksum-")]:
        algorithm, value = name.lower().removeprefix("x-amz-checksum-"), headers[name]
        if algorithm == "type" or "-" in value:
            continue  # the checksum type, or a composite (per-part) checksum
        expected = _full_object_checksum(algorithm, payload)
        if expected is not None and expected != value:
            del headers[name]


def _unquote_to_bytes(path: str) -> bytes:
    from urllib.parse import unquote_to_bytes

    return unquote_to_bytes(path)
