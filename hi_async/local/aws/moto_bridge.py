"""moto's server app (S3, IAM, STS, CloudFormation, ...) behind our aiohttp endpoint.

moto's Flask/werkzeug WSGI app is called in a worker thread with an environ built from
the aiohttp request, so slow moto calls never block the event loop. moto keeps its state
in its usual process-global backends (account 123456789012 by default), which is what
lets the import job runner read input objects from moto's S3 in-process.

CloudFormation calls run one at a time. moto adds a stack to its backend before the
stack's resources exist and creates a resource on the first lookup that misses it, so a
DescribeStacks that reads the outputs while CreateStack runs on another thread could
create a second data store or bucket; AWS has no such race, so neither may we.

A crash inside moto never reaches the client as a bare 500: it is logged with its
traceback and answered as the service's own internal error (:mod:`.moto_errors`).

moto's state lives in memory; a stack that owns its process saves it to ``--data-dir``
when it stops and loads it when it starts again (:mod:`.moto_state`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import logging
import threading
import uuid
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from .moto_errors import internal_error

log = logging.getLogger("hi_async.local")

#: Held by every CloudFormation call of every stack in this process (moto's state is
#: process-wide; see the module docstring).
_CLOUDFORMATION_LOCK = threading.Lock()

#: Headers that describe the connection, not the answer; aiohttp sets its own.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date",
               "server"}


class MotoBridge:
    """Answers aiohttp requests with moto's WSGI application."""

    def __init__(self, workers: int = 8) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.app = DomainDispatcherApplication(create_backend_app)
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="moto")
        # CloudFormation calls get a thread of their own, so that callers queued behind a
        # long CreateStack or DeleteStack do not take the workers S3 and IAM need.
        self.cloudformation = ThreadPoolExecutor(max_workers=1, thread_name_prefix="moto-cfn")

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.cloudformation.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def reset() -> None:
        """Forget all of moto's state (every service, every account)."""
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()

    async def handle(self, request: web.Request, service: str | None) -> web.StreamResponse:
        """moto's answer to ``request``, whose SigV4 scope names ``service`` (None: unsigned)."""
        body = await request.read()
        environ = self._environ(request, body)
        loop = asyncio.get_running_loop()
        if service == "cloudformation":
            executor, call = self.cloudformation, self._call_serialized
        else:
            executor, call = self.executor, self._call
        try:
            status, headers, payload = await loop.run_in_executor(executor, call, environ)
        except Exception as exc:
            log.exception("moto failed on %s %s (%s)", request.method, request.path,
                          service or "unsigned")
            return internal_error(service, str(uuid.uuid4()), type(exc).__name__)
        if status >= 500 and _is_html(headers):
            # moto's web framework caught the crash and wrote its own page.
            log.error("moto answered %s %s (%s) with a bare %d", request.method, request.path,
                      service or "unsigned", status)
            return internal_error(service, str(uuid.uuid4()), f"HTTP {status}")
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

    def _call_serialized(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]],
                                                                  bytes]:
        with _CLOUDFORMATION_LOCK:
            return self._call(environ)

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


def _is_html(headers: list[tuple[str, str]]) -> bool:
    return any(name.lower() == "content-type" and "html" in value.lower()
               for name, value in headers)


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
